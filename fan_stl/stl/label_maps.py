"""The `maps` label source: token labels read from label maps stored once by `python -m fan_stl label`.

LV-ViT's offline answer to "token labels for my own data": a teacher labels every training image once (its dense
top-k score map on the full image, `fan_stl.stl.map_store`), and training cuts each random crop's region out of the
map instead of running the teacher. Per batch, `MapsLabeler(crops, grid)`:

1. reads the samples' maps (rows from the crop record, `fan_stl.stl.crop_record`) and makes each cell's class
   distribution: mode `soft` keeps the teacher's probabilities `exp(log_prob)` of the top-k and spreads the rest of
   the mass evenly over the other classes (exact when k equals the class count); the other modes drop the rest and
   renormalise the top-k with the temperature, `softmax(log_prob / T)` over the k stored classes;
2. RoI-aligns the crop box (in map cells: the maps cover the full image) to the student's token grid
   (`torchvision.ops.roi_align`, `aligned=True`, adaptive sampling: bilinear, an average over the cells a token
   covers when the map is finer than the grid), on probabilities;
3. flips the token grid as the image was flipped;
4. turns the distributions into `TokenTargets` as the online sources do: `soft` (dense), `topk` (the `topk` most
   likely classes renormalised), `argmax`, or `gumbel` (one class per token sampled by Gumbel-max from the
   distribution, a fresh draw every step from a `(seed, rank)` stream); the token label smoothing on top.

No teacher view and no teacher forward: the batches are not paired (`teacher_view = False`) and the mixing methods
act on the targets through the batch's `MixRecord` exactly as for the online sources. With a full-image crop, no
flip and the map on the student's grid, the targets equal the online source's for the same teacher (up to fp16
storage; `soft` up to the spread of the mass outside the top-k).
"""
from typing import Tuple

import torch
from torch.utils.data import Dataset
from torchvision.ops import roi_align

from .crop_record import HFLIP, VFLIP, CropRecordDataset
from .label_source import LabelSource, rank_seed
from .map_store import MapStore, MapsError
from .targets import TokenTargets

__all__ = ['MapsLabeler', 'MapsSource', 'MAPS_MODES']

MAPS_MODES = ('gumbel', 'argmax', 'soft', 'topk')


class MapsLabeler:
    """ Crop records `(B, 8)` and the student's token grid -> `TokenTargets (B, N, K)` (see the module docstring). """

    reads_crops = True

    def __init__(self, store: MapStore, mode: str = 'gumbel', smoothing: float = 0.1, temperature: float = 1.,
                 topk: int = 5, seed: int = 0, rank: int = 0, device: torch.device = torch.device('cpu')):
        if mode not in MAPS_MODES:
            raise ValueError(f'Unknown token label mode {mode!r}; choose one of {MAPS_MODES}.')
        if temperature <= 0:
            raise ValueError(f'Token label temperature must be positive; got {temperature}.')
        if mode == 'soft' and temperature != 1.:
            raise ValueError(
                f'Soft token labels from label maps use the stored temperature-1 probabilities; got '
                f'--token-label-temperature {temperature}. Use 1, or mode topk / gumbel / argmax (which apply it).')
        self.store, self.mode, self.smoothing, self.temperature, self.topk = store, mode, smoothing, temperature, topk
        self.num_classes = store.num_classes
        self.seed = rank_seed(seed, rank)
        self.device = device
        self._generator = None

    def cell_distributions(self, rows: torch.Tensor) -> torch.Tensor:
        """ `(B, K, S_h, S_w)` class distribution of each map cell of rows `rows` (step 1 of the module docstring). """
        indices, log_probs = self.store.read(rows.long().tolist())
        indices, log_probs = indices.to(self.device), log_probs.to(self.device)
        batch, k, height, width = indices.shape
        if self.mode == 'soft':
            top = log_probs.exp()
            rest = (1. - top.sum(1, keepdim=True)).clamp(min=0.) / max(1, self.num_classes - k)
            dense = rest.expand(batch, self.num_classes, height, width).clone()
        else:
            top = (log_probs / self.temperature).softmax(1)
            dense = torch.zeros(batch, self.num_classes, height, width, device=self.device)
        return dense.scatter_(1, indices, top)

    def _gumbel(self, like: torch.Tensor) -> torch.Tensor:
        if self._generator is None or self._generator.device != like.device:
            self._generator = torch.Generator(device=like.device).manual_seed(self.seed)
        uniform = torch.rand(like.shape, generator=self._generator, device=like.device).clamp_(1e-20, 1.)
        return -torch.log(-torch.log(uniform))

    def __call__(self, crops: torch.Tensor, grid: Tuple[int, int]) -> TokenTargets:
        crops = crops.to(self.device).float()
        rows, top, left, height, width, image_height, image_width, flips = crops.unbind(1)
        cells = self.cell_distributions(rows)
        map_height, map_width = cells.shape[-2:]
        boxes = torch.stack([
            torch.arange(len(crops), device=self.device, dtype=torch.float32),
            left / image_width * map_width, top / image_height * map_height,
            (left + width) / image_width * map_width, (top + height) / image_height * map_height], dim=1)
        tokens = roi_align(cells, boxes, output_size=grid, spatial_scale=1., sampling_ratio=-1, aligned=True)
        flips = flips.long()
        for bit, dim in ((HFLIP, -1), (VFLIP, -2)):
            flipped = (flips & bit).bool()
            tokens = torch.where(flipped[:, None, None, None], tokens.flip(dim), tokens)
        probs = tokens.flatten(2).transpose(1, 2)  # (B, N, K)
        probs = probs / probs.sum(-1, keepdim=True).clamp(min=1e-12)
        if self.mode == 'soft':
            return TokenTargets(self.num_classes, probs=probs, smoothing=self.smoothing)
        if self.mode == 'topk':
            weights, indices = probs.topk(min(self.topk, self.num_classes), dim=-1)
            return TokenTargets(self.num_classes, indices=indices, weights=weights / weights.sum(-1, keepdim=True),
                                smoothing=self.smoothing)
        if self.mode == 'gumbel':
            probs = probs.clamp(min=1e-20).log() + self._gumbel(probs)
        return TokenTargets(self.num_classes, indices=probs.argmax(-1), smoothing=self.smoothing)


class MapsSource(LabelSource):
    """ Token labels from a maps folder (`config.label_maps`), see the module docstring. """

    uses_teacher = False
    teacher_view = False

    def _store(self, config) -> MapStore:
        if not config.label_maps:
            raise ValueError('--label-source maps needs the maps folder: --label-maps MAPS/ (made by '
                             '`python -m fan_stl label DATA --teacher SPEC --out MAPS/`).')
        return MapStore(config.label_maps)

    def check_teacher(self, config) -> None:
        self._store(config)

    def training_set(self, dataset: Dataset, config) -> Dataset:
        return CropRecordDataset(dataset, self._store(config).rows_for(dataset))

    def __call__(self, config, student_model, num_classes, device, image_smoothing, seed, rank, autocast):
        store = self._store(config)
        if store.num_classes != num_classes:
            raise MapsError(
                f'The label maps in {config.label_maps} were made by a teacher predicting {store.num_classes} classes '
                f'but the student is trained on {num_classes}; label with a teacher of the student\'s classes.')
        return MapsLabeler(store, mode=config.token_label_mode, smoothing=config.token_smoothing(image_smoothing),
                           temperature=config.token_label_temperature, topk=config.token_label_topk, seed=seed,
                           rank=rank, device=device)
