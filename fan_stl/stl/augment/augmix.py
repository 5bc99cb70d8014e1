"""AugMix for the STL student view: timm's `AugMixAugment` with its photometric operations only.

AugMix (Hendrycks et al., 2020; timm's Apache-2.0 implementation, used here unmodified) blends `width` chains of
random operations with Dirichlet / Beta weights. Its geometric operations (shear, translate, rotate) cannot be shared
with STL's clean teacher view: every chain moves the pixels differently and the blend of them has no single geometry
the teacher's token labels could follow. `photometric_augmix(step)` is the same AugMix with those operations removed
(autocontrast, equalize, posterize, solarize, and colour / contrast / brightness / sharpness where timm's `augmix`
string enables them); the teacher keeps the shared crop and flips. The paired views (`fan_stl.stl.views`) run it in
place of every `AugMixAugment` of the train transform (`--aa augmix-m3-w3` after `--`).
"""
from timm.data.auto_augment import AugMixAugment

__all__ = ['GEOMETRIC_AUGMENT_OPS', 'photometric_augmix']

# timm's augment ops that move pixels (RandAugment / AutoAugment / AugMix names)
GEOMETRIC_AUGMENT_OPS = frozenset({
    'Rotate', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'TranslateXRel', 'TranslateYRel'})


def photometric_augmix(step: AugMixAugment) -> AugMixAugment:
    """ `step` with its geometric operations removed (same alpha, width, depth and blending). """
    ops = [op for op in step.ops if op.name not in GEOMETRIC_AUGMENT_OPS]
    if not ops:
        raise ValueError('AugMix for the STL student view needs photometric operations; this AugMix has only '
                         'geometric ones. Use timm\'s default augmix ops (--aa augmix-m3-w3).')
    return AugMixAugment(ops, alpha=step.alpha, width=step.width, depth=step.depth, blended=step.blended)
