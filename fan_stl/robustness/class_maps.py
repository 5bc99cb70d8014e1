"""How a dataset's class folders line up with a model's logits, including the ImageNet-A / -R 200-class restriction.

A `LabelMap` keeps some logit columns (ImageNet-A / -R: the 200 classes of the dataset, as in Hendrycks et al.'s
evaluation, so a model is never credited or blamed for the 800 classes the dataset cannot contain) and renumbers the
dataset's targets to match. Plain ImageFolders either match the head one to one, or - for a 1000-class ImageNet head
and folders named by ImageNet wnids (e.g. Imagenette) - have their targets renumbered to the 1k indices.
"""
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Sequence, Tuple

import torch
from timm.data import ImageNetInfo

from .imagenet_ar_wnids import IMAGENET_A_WNIDS, IMAGENET_R_WNIDS

IMAGENET_SUBSETS = {'imagenet_a': IMAGENET_A_WNIDS, 'imagenet_r': IMAGENET_R_WNIDS}


@lru_cache(maxsize=1)
def imagenet1k_wnids() -> Tuple[str, ...]:
    """ The 1000 ImageNet-1k wnids in class-index order (timm's list). """
    return tuple(ImageNetInfo('imagenet-1k').label_names())


@dataclass(frozen=True)
class LabelMap:
    """ Logit columns to keep (None: all) and the target each dataset label becomes (None: unchanged). """
    description: str
    logit_indices: Optional[torch.Tensor] = None
    target_indices: Optional[torch.Tensor] = None

    def apply(self, logits: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.logit_indices is not None:
            logits = logits[:, self.logit_indices.to(logits.device)]
        if self.target_indices is not None:
            target = self.target_indices.to(target.device)[target]
        return logits, target


def _preview(names: Sequence[str], count: int = 5) -> str:
    names = list(names)
    return ', '.join(names[:count]) + (f' ... ({len(names)} in all)' if len(names) > count else '')


def dataset_label_map(dataset_classes: Sequence[str], num_classes: int) -> LabelMap:
    """ Map a plain ImageFolder's classes (sorted folder names) onto a model head with `num_classes` outputs. """
    if len(dataset_classes) == num_classes:
        return LabelMap(f'{num_classes} dataset classes = {num_classes} model outputs, in sorted folder order')
    in1k = imagenet1k_wnids()
    if num_classes == len(in1k) and set(dataset_classes) <= set(in1k):
        return LabelMap(
            f'{len(dataset_classes)} ImageNet classes scored by the 1000-way ImageNet head',
            target_indices=torch.tensor([in1k.index(w) for w in dataset_classes]))
    raise ValueError(
        f'the dataset has {len(dataset_classes)} classes ({_preview(dataset_classes)}) but the model head has '
        f'{num_classes} outputs. Evaluate a model trained on these classes (e.g. `--num-classes '
        f'{len(dataset_classes)}` with its checkpoint), or a 1000-class ImageNet model on folders named by '
        f'ImageNet wnids.')


def imagenet_subset_label_map(dataset_classes: Sequence[str], subset: str, num_classes: int) -> LabelMap:
    """ ImageNet-A / -R: keep the subset's 200 logits of a 1000-class ImageNet head; targets index those 200. """
    if subset not in IMAGENET_SUBSETS:
        raise ValueError(f'unknown ImageNet subset {subset!r}; expected one of {", ".join(IMAGENET_SUBSETS)}')
    subset_wnids = IMAGENET_SUBSETS[subset]
    if num_classes != 1000:
        raise ValueError(
            f'{subset} is scored on the 1000-class ImageNet head restricted to its 200 classes; this model has '
            f'{num_classes} outputs. Use an ImageNet-1k model (e.g. `--pretrained`).')
    unknown = sorted(set(dataset_classes) - set(subset_wnids))
    if unknown:
        raise ValueError(
            f'{len(unknown)} class folder(s) are not among the 200 {subset} classes: {_preview(unknown)}. '
            f'Is this the {subset} dataset (class folders named by ImageNet wnids)?')
    in1k = imagenet1k_wnids()
    return LabelMap(
        f'{subset}: logits restricted to its 200 ImageNet classes',
        logit_indices=torch.tensor([in1k.index(w) for w in subset_wnids]),
        target_indices=torch.tensor([subset_wnids.index(w) for w in dataset_classes]))
