"""StyleAug (Jackson, Abarghouei, Bonner, Breckon, Obara: "Style Augmentation: Data Augmentation via Style
Randomization", CVPR-W 2019) as a batch op: random style transfer of the student images.

The network is Ghiasi et al.'s arbitrary style-transfer network as the authors ship it (MIT,
philipjackson/style-augmentation): three conv / instance-norm / ReLU layers, five residual blocks and three upsampling
layers whose instance-norm scales and shifts are linear maps of a 100-d style embedding, a sigmoid out. Written here
with the authors' parameter names, so their `checkpoint_transformer.pth` loads as it is. A random style is
`A z + mean` (`z ~ N(0, I)`, `A A^T` the covariance of the Painter-by-Numbers embeddings), interpolated with the mean
ImageNet embedding by `alpha` (the authors' `useStylePredictor=False` form; their Inception style predictor, which
only replaces that mean by each image's own style, is not included).

Weights, through the weights machinery (`fan_stl.weights.files`): `--styleaug-weights FILE`, or the converted copy
`<torch hub dir>/fan_stl/styleaug.safetensors` (written atomically with its sha256 record, checked before each use).
When that copy is missing and the process may go online, the authors' two files are downloaded from their repository
and converted into it (`convert_styleaug_weights`); offline (`FAN_STL_OFFLINE=1` / `HF_HUB_OFFLINE=1`) or without
network it is one error naming the files and the conversion call.
"""
import os
import tempfile
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from ...weights.files import (
    PretrainedWeightsError, check_sha256_record, record_sha256, save_safetensors_atomic, unreadable_file_error,
)
from ...weights.network import offline, offline_switch
from .batch_augment import BatchAugment

__all__ = ['StyleAugment', 'StyleTransformer', 'convert_styleaug_weights', 'styleaug_cache_file',
           'STYLEAUG_SOURCE']

STYLE_DIM = 100
STYLEAUG_SOURCE = 'https://github.com/philipjackson/style-augmentation/raw/master/styleaug/checkpoints/'
_FILES = ('checkpoint_transformer.pth', 'checkpoint_embeddings.pth')
_STATS = ('imagenet_embedding_mean', 'pbn_embedding_mean', 'pbn_embedding_covariance')


class _ConvNorm(nn.Module):
    """ Reflection pad, conv, instance norm, then a style affine (`styled`) or none, then an optional ReLU. """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, upsample: Optional[int] = None,
                 styled: bool = False, relu: bool = True):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(cin, cout, kernel, stride)
        self.instancenorm = nn.InstanceNorm2d(cout)
        if styled:
            self.fc_beta, self.fc_gamma = nn.Linear(STYLE_DIM, cout), nn.Linear(STYLE_DIM, cout)
        self.styled, self.relu = styled, relu

    def forward(self, x: torch.Tensor, style: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.upsample:
            x = nn.functional.interpolate(x, scale_factor=self.upsample, mode='nearest')
        x = self.instancenorm(self.conv(self.reflection_pad(x)))
        if self.styled:
            x = self.fc_gamma(style)[..., None, None] * x + self.fc_beta(style)[..., None, None]
        return torch.relu(x) if self.relu else x


class _StyledResidual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, 3)
        self.conv2 = nn.Conv2d(channels, channels, 3)
        self.instancenorm = nn.InstanceNorm2d(channels)
        for i in (1, 2):
            setattr(self, f'fc_beta{i}', nn.Linear(STYLE_DIM, channels))
            setattr(self, f'fc_gamma{i}', nn.Linear(STYLE_DIM, channels))

    def _half(self, x: torch.Tensor, style: torch.Tensor, i: int) -> torch.Tensor:
        y = self.instancenorm(getattr(self, f'conv{i}')(self.reflection_pad(x)))
        return getattr(self, f'fc_gamma{i}')(style)[..., None, None] * y + getattr(self, f'fc_beta{i}')(style)[
            ..., None, None]

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return x + self._half(torch.relu(self._half(x, style, 1)), style, 2)


class StyleTransformer(nn.Module):
    """ The style-transfer network of the StyleAug authors (see the module docstring), `(images, style) -> images`. """

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([
            _ConvNorm(3, 32, 9), _ConvNorm(32, 64, 3, stride=2), _ConvNorm(64, 128, 3, stride=2),
            *[_StyledResidual(128) for _ in range(5)],
            _ConvNorm(128, 64, 3, upsample=2, styled=True), _ConvNorm(64, 32, 3, upsample=2, styled=True),
            _ConvNorm(32, 3, 9, styled=True, relu=False),
        ])

    def forward(self, images: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = images
        for i, layer in enumerate(self.layers):
            x = layer(x) if i < 3 else layer(x, style)
        return torch.sigmoid(x)


def styleaug_cache_file() -> Path:
    return Path(torch.hub.get_dir()) / 'fan_stl' / 'styleaug.safetensors'


def convert_styleaug_weights(transformer_pth: str, embeddings_pth: str, out: Optional[str] = None) -> Path:
    """ The authors' two files -> one checked safetensors file (`out`, default the cache file), with its sha256
    record; both are read with `weights_only=True`. """
    out = Path(out) if out else styleaug_cache_file()
    tensors: Dict[str, torch.Tensor] = {}
    for path, key in ((transformer_pth, 'state_dict_ghiasi'), (embeddings_pth, None)):
        try:
            loaded = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as e:
            raise unreadable_file_error(path, e) from e
        part = loaded[key] if key else {k: loaded[k] for k in _STATS}
        tensors.update({(f'transformer.{k}' if key else k): v.float() for k, v in part.items()})
    StyleTransformer().load_state_dict(
        {k[len('transformer.'):]: v for k, v in tensors.items() if k.startswith('transformer.')})
    out.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors_atomic(tensors, out, metadata={'source': STYLEAUG_SOURCE})
    record_sha256(out)
    return out


def _download_authors_files() -> Tuple[str, str]:
    """ The authors' two files, downloaded into a temporary folder (online only). """
    folder = tempfile.mkdtemp(prefix='styleaug-')
    paths = []
    for name in _FILES:
        paths.append(os.path.join(folder, name))
        torch.hub.download_url_to_file(STYLEAUG_SOURCE + name, paths[-1], progress=False)
    return paths[0], paths[1]


def _weights_file(path: Optional[str]) -> Path:
    if path:
        return Path(path)
    cached = styleaug_cache_file()
    if cached.is_file():
        return cached
    how = (f'Download {" and ".join(_FILES)} from {STYLEAUG_SOURCE} (MIT) and convert them once: '
           f'python -c "from fan_stl.stl.augment.styleaug import convert_styleaug_weights as c; '
           f'c(\'checkpoint_transformer.pth\', \'checkpoint_embeddings.pth\')" (or pass --styleaug-weights FILE).')
    if offline():
        raise PretrainedWeightsError(f'StyleAug weights are not on this machine ({cached}) and {offline_switch()} '
                                     f'forbids downloading them. {how}')
    try:
        return convert_styleaug_weights(*_download_authors_files())
    except OSError as e:
        raise PretrainedWeightsError(f'StyleAug weights are not on this machine ({cached}) and could not be '
                                     f'downloaded ({e}). {how}') from e


def load_styleaug_weights(path: Optional[str] = None) -> Tuple[StyleTransformer, Dict[str, torch.Tensor]]:
    """ The network and the embedding statistics from a converted file (its sha256 record checked). """
    from safetensors.torch import load_file
    file = _weights_file(path)
    problem = check_sha256_record(file)
    if problem:
        raise PretrainedWeightsError(f'StyleAug weights {file}: {problem}; convert them again '
                                     f'(fan_stl.stl.augment.styleaug.convert_styleaug_weights).')
    try:
        tensors = load_file(str(file))
    except Exception as e:
        raise unreadable_file_error(file, e) from e
    network = StyleTransformer()
    network.load_state_dict({k[len('transformer.'):]: v for k, v in tensors.items() if k.startswith('transformer.')})
    return network, {k: tensors[k] for k in _STATS}


class StyleAugment(BatchAugment):
    """ Random style transfer of the student images (see the module docstring). """

    def __init__(self, network: StyleTransformer, stats: Dict[str, torch.Tensor], alpha: float = 0.5):
        if not 0. <= alpha <= 1.:
            raise ValueError(f'--styleaug-alpha must be in [0, 1]; got {alpha}.')
        self.network, self.alpha = network.eval().requires_grad_(False), alpha
        self.mean = stats['pbn_embedding_mean'].float().reshape(1, STYLE_DIM)
        self.base = stats['imagenet_embedding_mean'].float().reshape(1, STYLE_DIM)
        u, s, _ = torch.linalg.svd(stats['pbn_embedding_covariance'].double())
        self.A = (u * s.sqrt()).float()  # cov = A A^T

    @classmethod
    def from_config(cls, config) -> 'StyleAugment':
        return cls(*load_styleaug_weights(config.styleaug_weights), alpha=config.styleaug_alpha)

    def styles(self, batch: int, device: torch.device) -> torch.Tensor:
        """ Random style embeddings `alpha (A z + mean) + (1 - alpha) imagenet_mean`, `(B, 100)`. """
        z = torch.randn(batch, STYLE_DIM, device=device)
        random_style = z @ self.A.to(device).T + self.mean.to(device)
        return self.alpha * random_style + (1. - self.alpha) * self.base.to(device)

    @torch.no_grad()
    def transform(self, images: torch.Tensor) -> torch.Tensor:
        self.network.to(images.device)
        with torch.autocast(device_type=images.device.type, enabled=False):
            out = self.network(images.float(), self.styles(images.shape[0], images.device))
        return out.to(images.dtype)
