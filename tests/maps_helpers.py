"""Test doubles for the label-map tests: a small image folder and a teacher checkpoint with sharp score maps."""
from pathlib import Path

import timm
import torch

from tests.stl_helpers import random_blocks_image


def image_folder(root: Path, per_class: int = 2, classes: int = 3, size=(96, 64), seed: int = 0) -> Path:
    """ `root/train/<class>/<i>.png` (and one val image per class) of random colour blocks; returns `root`. """
    for split, count in (('train', per_class), ('val', 1)):
        for c in range(classes):
            folder = root / split / f'class{c}'
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                random_blocks_image(seed + 100 * c + i + (50 if split == 'val' else 0), size).save(folder / f'{i}.png')
    return root


def sharp_checkpoint(path: Path, model: str = 'fan_t_hybrid_tl', num_classes: int = 3, scale: float = 20.) -> Path:
    """ A randomly initialised `model` whose classifier weights are scaled by `scale` (score maps that differ from
    place to place, as a trained teacher's do), saved as a checkpoint. """
    torch.manual_seed(0)
    net = timm.create_model(model, num_classes=num_classes)
    with torch.no_grad():
        for head in ('aux_head', 'fc', 'head'):
            layer = getattr(net, head, None)
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(scale)
    torch.save({'state_dict': net.state_dict()}, path)
    return path
