"""Student-only batch augmentations for every stage, from the robust-training literature.

`BATCH_AUGMENTS` maps `STLConfig.batch_augment` names to `BatchAugment` classes (`batch_augment.py`), each built
from the config by its `from_config`, holding and checking its own settings. The task runs the one the config names
after the mixer and before the forward pass, on the student images only (`fan_stl.stl.task`):

* `none`: nothing;
* `randconv`: `RandConv`, random convolutions (Xu et al., ICLR 2021);
* `pixmix`: `PixMix`, mixing with fractals or `--pixmix-dir` pictures (Hendrycks et al., CVPR 2022);
* `prime`: `PRIME`, spectral, colour and (not in stage stl) spatial primitives (Modas et al., ECCV 2022);
* `soft_aug`: `SoftAugment`, token-aligned crop and occlusion with per-token softened targets (Liu et al., CVPR 2023);
* `styleaug`: `StyleAugment`, random style transfer (Jackson et al., 2019), weights through `fan_stl.weights`.

The per-image AugMix for the STL student view (`augmix.py`) is a per-image step (`fan_stl.stl.views.VIEW_STEPS`).
Adding a method is one module (a `BatchAugment` subclass) and one registry line here.
"""
from typing import Dict, Optional, Type

from .batch_augment import BatchAugment
from .pixmix import PixMix
from .prime import PRIME
from .randconv import RandConv
from .soft import SoftAugment, Softening
from .styleaug import StyleAugment

__all__ = ['BATCH_AUGMENTS', 'BatchAugment', 'Softening', 'build_batch_augment']

BATCH_AUGMENTS: Dict[str, Optional[Type[BatchAugment]]] = {
    'none': None,
    'randconv': RandConv,
    'pixmix': PixMix,
    'prime': PRIME,
    'soft_aug': SoftAugment,
    'styleaug': StyleAugment,
}


def build_batch_augment(config) -> Optional[BatchAugment]:
    """ The batch augmentation of an `STLConfig` (None for `none`), its settings checked, refused in stage stl when it
    would move pixels under the teacher's token labels. """
    if config.batch_augment not in BATCH_AUGMENTS:
        raise ValueError(f'Unknown batch augmentation {config.batch_augment!r}; registered: '
                         f'{", ".join(BATCH_AUGMENTS)}.')
    kind = BATCH_AUGMENTS[config.batch_augment]
    if kind is None:
        return None
    method = kind.from_config(config)
    method.check_stage(config.needs_teacher, config.batch_augment)
    return method
