"""Segmentation models of segmentation_models_pytorch (smp, the optional extra `seg`) on timm encoders.

Any timm model with `features_only` is an smp encoder through smp's "timm universal" name `tu-<timm name>`; every
fan model gives the stride 4 / 8 / 16 / 32 pyramid smp expects (`fan_stl.models.fan.FEATURE_STRIDES`), so nothing
has to be adapted on smp's side. Pretrained encoder weights go through timm's `pretrained=True` (for fan models the
weight sources of `fan_stl.weights`); `encoder_checkpoint` loads a local timm-style checkpoint the same way.
A trained model is saved with the settings that rebuild it (`save_segmenter` / `load_segmenter`).
"""
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional

import timm
import torch
import torch.nn as nn

from fan_stl.utils.extras import install_hint
from fan_stl.models.fan import FAN, TOKEN_STRIDE
from fan_stl.weights.files import read_checkpoint

CHECKPOINT_KIND = 'fan_stl.segmentation'


def import_smp():
    """ The segmentation_models_pytorch module, or an ImportError that names the extra to install. """
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        raise ImportError(f'segmentation models need the optional package segmentation-models-pytorch: '
                          f'{install_hint("seg")}') from None
    return smp


def build_segmenter(
        arch: str,
        encoder: str,
        num_classes: int,
        pretrained: bool = False,
        encoder_checkpoint: Optional[Path] = None,
        **encoder_kwargs: Any,
) -> nn.Module:
    """ smp `arch` (e.g. 'Unet', 'Segformer', 'FPN') on the timm model `encoder` (e.g. 'fan_tiny_8_p4_hybrid').

    Args:
        arch: An smp architecture class name.
        encoder: A timm model name (without smp's `tu-` prefix).
        num_classes: Output classes.
        pretrained: Start the encoder from its default pretrained weights (timm / fan_stl.weights; may download).
        encoder_checkpoint: Start the encoder from this local checkpoint instead (timm-style state dict or training
            checkpoint, or an official FAN / STL file), whatever its number of classes; the classifier is left out.
        encoder_kwargs: Passed on to `timm.create_model` (e.g. drop_path_rate).
    """
    smp = import_smp()
    model_cls = getattr(smp, arch, None)
    if not isinstance(model_cls, type) or not issubclass(model_cls, nn.Module):
        raise ValueError(f'{arch!r} is not an smp architecture; use e.g. Unet, FPN, Segformer, DeepLabV3Plus')
    if encoder_checkpoint is not None:
        if not Path(encoder_checkpoint).is_file():
            raise FileNotFoundError(f'encoder checkpoint {encoder_checkpoint} does not exist')
        encoder_kwargs['pretrained_cfg_overlay'] = dict(file=str(encoder_checkpoint))
        num_classes_there = checkpoint_num_classes(encoder, encoder_checkpoint)
        if num_classes_there is not None:  # the classifier is dropped, but must fit to load strictly
            encoder_kwargs.setdefault('num_classes', num_classes_there)
    weights = True if pretrained or encoder_checkpoint is not None else None  # smp tu- encoders: True -> pretrained
    return model_cls(encoder_name=f'tu-{encoder}', encoder_weights=weights, classes=num_classes, **encoder_kwargs)


def checkpoint_num_classes(encoder: str, path: Path) -> Optional[int]:
    """ The class count of the classifier a timm-style checkpoint of `encoder` holds (None: no classifier found). """
    state_dict, _ = read_checkpoint(path)
    classifier = timm.create_model(encoder, device='meta').pretrained_cfg.get('classifier') or ''
    first = classifier[0] if isinstance(classifier, (tuple, list)) else classifier
    for key, tensor in state_dict.items():
        if first and (key == f'{first}.weight' or key.endswith(f'.{first}.weight')):
            return int(tensor.shape[0])
    return None


def input_multiple(model: nn.Module) -> int:
    """ What the model's input height and width must be divisible by: the encoder's output stride when the smp
    decoder needs it (Segformer, FPN, ...; smp's Unet resizes instead), and FAN's token stride 16 for fan encoders. """
    encoder = getattr(model, 'encoder', None)
    multiple = int(getattr(encoder, 'output_stride', 32)) if getattr(model, 'requires_divisible_input_shape', True) \
        else 1
    if any(isinstance(m, FAN) for m in model.modules()):
        multiple = math.lcm(multiple, TOKEN_STRIDE)
    return multiple


def save_segmenter(model: nn.Module, path: Path, arch: str, encoder: str, num_classes: int,
                   extra: Optional[Dict[str, Any]] = None) -> None:
    """ Save the weights with what rebuilds the model, atomically (temporary file, then rename). """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {'kind': CHECKPOINT_KIND, 'arch': arch, 'encoder': encoder, 'num_classes': num_classes,
             'state_dict': model.state_dict(), 'extra': dict(extra or {})}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_segmenter(path: Path) -> Dict[str, Any]:
    """ A checkpoint of `save_segmenter` as {'model', 'arch', 'encoder', 'num_classes', 'extra'} (model in eval). """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'segmentation checkpoint {path} does not exist')
    state = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(state, dict) or state.get('kind') != CHECKPOINT_KIND:
        raise ValueError(f'{path} is not a fan_stl segmentation checkpoint (written by save_segmenter / '
                         f'benchmarks/segmentation.py --save)')
    model = build_segmenter(state['arch'], state['encoder'], state['num_classes'])
    model.load_state_dict(state['state_dict'])
    return {'model': model.eval(), **{k: state[k] for k in ('arch', 'encoder', 'num_classes', 'extra')}}
