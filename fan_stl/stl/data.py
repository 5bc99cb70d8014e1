"""`build_data(config)`: the data side of one stage, decided in one place for every driver.

    task = build_task(config, model, ...)       # the model side
    data = build_data(config)                   # the data side

`STLData` makes every data-side decision a stage needs, so the engine, the train.py launcher and an own loop agree:

* `dataset(train_set)`: stage stl wraps the training set as its label source says (`PairedViewDataset`, a clean
  teacher view beside the student view, read from `--student-data-dir` when set, for the online sources;
  `CropRecordDataset`, each sample's crop box and flips, for stored label maps); with `--aug-splits k` every stage
  wraps it in `SplitViewDataset` instead (k views, split 0 clean: the teacher's in stage stl); other stages keep it
  as it is;
* `re_split`: with the prefetcher, random erasing must spare the teacher split (timm's `re_split=True`);
* `mixer(prefetcher=..., **timm_mixup_args)`: the config's mixing method (built by its `MIX_METHODS` entry) in
  `STLCollateMixup` (prefetcher: the loader's `collate_fn`) or `STLMixup` (applied to each batch), paired in stage stl;
* `loader(loader, batch_size=..., ...)`: an epoch that would run zero steps is an error; stage stl with the
  prefetcher re-pairs the split-major batches (`PairedViewLoader`); augmentation splits without the prefetcher are
  concatenated split-major (`SplitViewLoader`);
* `check_input(input_size)`: the method refuses images it cannot mix (a MaskMix cell covering the whole image);
* `check_num_classes(num_classes, classes)`: a class count that differs from the data's class folders is an error;
* `needs_mixup_slot`: the method is drawn in timm's Mixup slot, which train.py only creates with --mixup / --cutmix.
"""
from typing import Any, Optional, Sequence, Union

from torch.utils.data import Dataset

from ..models.fan import TOKEN_STRIDE
from .config import STLConfig
from .mix_method import MixMethod
from .mixing import STLCollateMixup, STLMixup, build_mix_method
from .multiview import SplitViewDataset, SplitViewLoader
from .teacher import LABEL_SOURCES
from .views import PairedViewLoader

__all__ = ['STLData', 'build_data', 'check_steps_per_epoch']


def check_steps_per_epoch(steps: int, num_samples: int, batch_size: int, world_size: int = 1) -> None:
    """ Refuse an epoch of zero steps (a batch larger than the training set with `drop_last`), which would report a
    loss of 0 instead of training. """
    if steps < 1:
        raise ValueError(
            f'an epoch would run zero training steps: {num_samples} training images for a batch of {batch_size} '
            f'per process x {world_size} process(es), and the last incomplete batch is dropped. Use a batch size '
            f'of at most {max(1, num_samples // max(1, world_size))} (-b / batch_size) or more training images.')


class STLData:
    """ The data side of one stage (see the module docstring); made by `build_data`. """

    def __init__(self, config: STLConfig, method: MixMethod, token_stride: int = TOKEN_STRIDE):
        self.config = config
        self.method = method
        self.token_stride = token_stride
        self.num_splits = config.aug_splits
        self.source = LABEL_SOURCES[config.label_source] if config.needs_teacher else None
        # with splits, the clean split is the teacher's view: no separate pairing
        self.paired = self.source is not None and self.source.teacher_view and not self.num_splits

    @property
    def re_split(self) -> bool:
        """ The prefetcher's random erasing must spare the first split (the teacher's, or the clean view). """
        return self.paired or bool(self.num_splits)

    @property
    def needs_mixup_slot(self) -> bool:
        return self.method.needs_mixup_slot

    def check_input(self, input_size: Sequence[int]) -> None:
        """ Refuse, before the first step, `(C, H, W)` inputs the mixing method cannot mix, naming the fix. """
        self.method.check_input(input_size[-2], input_size[-1], self.token_stride)

    def check_num_classes(self, num_classes: Optional[int], classes: Sequence[str], data_dir: str = '') -> None:
        """ Refuse a set class count (`--num-classes`) other than the number of class folders found. """
        if num_classes and classes and num_classes != len(classes):
            raise ValueError(
                f'--num-classes (num_classes) {num_classes} but {data_dir or "the data"} has {len(classes)} class '
                f'folders; set it to {len(classes)} (or leave it unset to use the class folders / the model\'s '
                f'default).')

    def dataset(self, dataset: Dataset) -> Dataset:
        """ The training set of the stage: split views with --aug-splits; in stage stl, the label source's (paired
        views for the online sources, the crop record for stored maps). """
        if self.num_splits:
            return SplitViewDataset(dataset, self.num_splits, student_only=self.config.needs_teacher)
        return dataset if self.source is None else self.source.training_set(dataset, self.config)

    def mixer(self, prefetcher: bool = False, **mixup_args: Any) -> Optional[Union[STLMixup, STLCollateMixup]]:
        """ The stage's mixer with timm's Mixup arguments (`mixup_alpha`, `cutmix_alpha`, `label_smoothing`,
        `num_classes`, ...): the prefetcher's `collate_fn` (`prefetcher=True`) or a per-batch `mixer(input, target)`.
        Every stage mixes through it (with no Mixup / CutMix alpha and `mixup_cutmix` it only smooths targets); with
        --aug-splits there is none (None; Mixup / CutMix refused). """
        mixing = mixup_args.get('mixup_alpha', 0.) > 0. or mixup_args.get('cutmix_alpha', 0.) > 0. or mixup_args.get(
            'cutmix_minmax') is not None
        if self.num_splits and mixing:
            raise ValueError(
                f'--aug-splits {self.num_splits} with Mixup / CutMix: a mixed batch would mix the views of different '
                f'images and the consistency loss compares views of one image (timm refuses this too). Set --mixup 0 '
                f'--cutmix 0 (engine: mixup=0, cutmix=0) or drop --aug-splits.')
        if self.num_splits:
            return None  # timm's collate lays the views out; the task smooths the class-index targets
        kind = STLCollateMixup if prefetcher else STLMixup
        return kind(method=self.method, token_stride=self.token_stride, paired=self.paired, **mixup_args)

    def loader(self, loader, batch_size: int, world_size: int = 1, prefetcher: bool = False):
        """ The training loader after the zero-step check, re-paired in stage stl with the prefetcher. """
        check_steps_per_epoch(len(loader), len(loader.dataset), batch_size, world_size)
        if self.num_splits and not prefetcher:
            return SplitViewLoader(loader)
        return PairedViewLoader(loader) if self.paired and prefetcher else loader


def build_data(config: STLConfig, token_stride: int = TOKEN_STRIDE) -> STLData:
    """ The data side of `config`'s stage (see the module docstring); its mixing method is built (and its settings
    checked) by its `MIX_METHODS` entry. """
    return STLData(config, build_mix_method(config), token_stride)
