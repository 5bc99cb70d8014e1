"""The weights the FAN / STL authors released: where each original lives, its Hub copy and the reported numbers.

`RELEASED_WEIGHTS` is the table the rest of the weights layer reads (sources, convert, publish); the model file
`fan_stl/models/fan.py` writes the same names, URLs and Hub repos out literally in its `default_cfgs`, and
tests/weights/test_released.py checks that the two agree.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

from .files import PretrainedWeightsError

__all__ = ['HF_HUB_ORG', 'FAN_RELEASE_URL', 'STL_DRIVE_URL', 'ReleasedWeight', 'RELEASED_WEIGHTS', 'released_weight',
           'released_tags', 'manual_fallback', 'weight_error']

HF_HUB_ORG = 'fan-stl'
FAN_RELEASE_URL = 'https://github.com/zhoudaquan/fully_attentional_network_ckpt/releases/download/v1.0.0/'
STL_DRIVE_URL = 'https://drive.google.com/file/d/{}/view?usp=sharing'


@dataclass(frozen=True)
class ReleasedWeight:
    """ One weight file released by the FAN / STL authors, with the numbers they report for it.

    Metrics are top-1 accuracies in % as printed in the authors' README (IN-C: mean accuracy over corruptions, not
    mCE); None where the README gives none.
    """
    name: str  # `architecture.tag` of the Hub copy, whose repo is `HF_HUB_ORG/name`
    original: str  # where the authors publish the file: a direct URL (FAN) or a Google Drive page (STL)
    reported_params: str
    top1: Optional[float] = None
    in_c: Optional[float] = None
    in_a: Optional[float] = None
    in_r: Optional[float] = None
    img_size: int = 224
    aliases: Tuple[str, ...] = ()  # other registered architectures that share this weight

    @property
    def architecture(self) -> str:
        return self.name.split('.')[0]

    @property
    def tag(self) -> str:
        return self.name.split('.', 1)[1]

    @property
    def hub_repo(self) -> str:
        return f'{HF_HUB_ORG}/{self.name}'

    @property
    def direct_url(self) -> str:
        """ The URL timm can download the original file from ('' for Google Drive files). """
        return self.original if self.original.startswith(FAN_RELEASE_URL) else ''

    @property
    def drive_id(self) -> str:
        """ The Google Drive file id of the original ('' for files with a direct URL). """
        return '' if self.direct_url else self.original.split('/d/')[1].split('/')[0]

    @property
    def is_stl(self) -> bool:
        return self.architecture.endswith(('_tl', '_stl'))


def _fan(name: str, filename: str, params: str, *metrics: Optional[float], img_size: int = 224) -> ReleasedWeight:
    return ReleasedWeight(name, FAN_RELEASE_URL + filename, params, *metrics, img_size=img_size)


def _stl(short: str, size: str, kind: str, drive_id: str, params: str, *metrics: float) -> ReleasedWeight:
    return ReleasedWeight(
        f'fan_{short}_hybrid_{kind}.in1k', STL_DRIVE_URL.format(drive_id), params, *metrics,
        aliases=(f'fan_{size}_p4_hybrid_{kind}.in1k',))


# In default-tag order: per architecture, the first entry is its best IN-1K classifier at 224 px.
# The IN-22K-only files (`fan_hybrid_{base,large}_in22k.pth.tar`) are left out: their class count is not published.
RELEASED_WEIGHTS: Tuple[ReleasedWeight, ...] = (
    _fan('fan_tiny_12_p16_224.in1k', 'fan_vit_tiny.pth.tar', '7.3M', 79.2, 57.5, 15.6, 42.5),
    _fan('fan_small_12_p16_224.in1k', 'fan_vit_small.pth.tar', '28.0M', 82.5, 64.5, 29.1, 50.4),
    _fan('fan_base_18_p16_224.in1k', 'fan_vit_base.pth.tar', '54.0M', 83.6, 67.0, 35.4, 51.8),
    _fan('fan_tiny_8_p4_hybrid.in1k', 'fan_hybrid_tiny.pth.tar', '7.4M', 80.1, 57.4),
    _fan('fan_small_12_p4_hybrid.in1k', 'fan_hybrid_small.pth.tar', '26.3M', 83.5, 64.7),
    _fan('fan_base_16_p4_hybrid.in22k_ft_in1k', 'fan_hybrid_base_in22k_1k.pth.tar', '50.4M', 85.3, 70.5),
    _fan('fan_base_16_p4_hybrid.in22k_ft_in1k_384', 'fan_hybrid_base_in22k_1k_384.pth.tar', '50.4M', 85.6,
         img_size=384),
    _fan('fan_base_16_p4_hybrid.in1k', 'fan_hybrid_base.pth.tar', '50.4M', 83.9, 66.4),
    _fan('fan_large_16_p4_hybrid.in22k_ft_in1k', 'fan_hybrid_large_in22k_1k.pth.tar', '76.8M', 86.5, 73.6),
    _fan('fan_large_16_p4_hybrid.in22k_ft_in1k_384', 'fan_hybrid_large_in22k_1k_384.pth.tar', '76.8M', 87.1,
         img_size=384),
    _stl('t', 'tiny_8', 'tl', '19H58ISQmp4UE-tJb0S4LRMrwngmYkLYn', '8.0M'),
    _stl('s', 'small_12', 'tl', '1RhAchy8GbEZjSMGBcj9i6Tkd0CDHRQoy', '26.5M'),
    _stl('b', 'base_16', 'tl', '1-7mQK-UuV8rnB1MVhf7NJIdLAG9qHim3', '50.9M'),
    _stl('l', 'large_16', 'tl', '1w5NYL9c8uPmIjSeacLUDwpiWdEGdG5Lc', '77.3M'),
    _stl('t', 'tiny_8', 'stl', '1fiUzJs-9eq9CKay9OamTL4czwUtSeuMq', '8.0M', 79.9, 58.2, 23.7, 42.5),
    _stl('s', 'small_12', 'stl', '1RnN7wF0j-fZtdDLXszEWAVwETCyNhBNM', '26.5M', 83.4, 65.5, 38.2, 51.8),
    _stl('b', 'base_16', 'stl', '1d7Yi48eEL7X68CfQ62dG69PRHe5LEnWG', '50.9M', 84.5, 68.2, 42.6, 55.3),
    _stl('l', 'large_16', 'stl', '1JXM7WxlOwciaK3dalPD4UDqbph-8wUlo', '77.3M', 84.7, 68.8, 46.1, 56.6),
)


def released_weight(name: str) -> Optional[ReleasedWeight]:
    """ The released weight registered as `name` (`architecture.tag`, long or short STL name), or None. """
    for weight in RELEASED_WEIGHTS:
        if name == weight.name or name in weight.aliases:
            return weight
    return None


def released_tags(arch: str) -> Tuple[str, ...]:
    """ The release tags of architecture `arch` (long or short STL name), in default-tag order. """
    return tuple(w.tag for w in RELEASED_WEIGHTS if arch in (w.architecture, *(a.split('.')[0] for a in w.aliases)))


def manual_fallback(name: str) -> Tuple[str, str]:
    """ How to load a weight by hand, for Python and for the CLI: the authors' file, then `file=` / `--checkpoint`. """
    weight = released_weight(name)
    arch = name.split('.')[0]
    download = f"download the authors' file from {weight.original} by hand, then " if weight else ''
    python = (f"{download}load it with `timm.create_model('{arch}', pretrained=True, "
              "pretrained_cfg_overlay=dict(file=PATH))`.")
    cli = f'{download}pass it with `--checkpoint PATH`.'
    return python, cli


def weight_error(problem: str, name: str, error: type = PretrainedWeightsError) -> PretrainedWeightsError:
    """ `problem` followed by how to load weight `name` by hand, in its Python and its command-line spelling. """
    python, cli = manual_fallback(name)
    return error(f'{problem} To load it anyway, {python}', f'{problem} To load it anyway, {cli}')
