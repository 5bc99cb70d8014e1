"""`BatchAugment`: what a student-only, on-device batch augmentation is, owns and answers.

The task runs the config's batch augmentation after the mixer and before the forward pass, on the student images
only (stage stl: the student view, never the teacher's; with `--aug-splits`: the augmented splits, never the clean
split 0). A method is a small object built from `STLConfig` by its `BATCH_AUGMENTS` entry, holding its own settings,
checked once in its constructor. It answers:

* `transform(images) -> images`: a `(B, C, H, W)` float batch in [0, 1] (the task undoes and redoes the
  normalisation around it) -> the augmented batch, same shape; `augment(images) -> (images, softening)` adds the
  target softening of methods that soften targets (soft augmentation, `fan_stl.stl.augment.soft`; None otherwise);
* `moves_pixels`: the method moves pixels (a geometric change); token labels would no longer line up with the
  student's tokens, so stage stl refuses it (`check_stage`) unless the method also moves the token targets
  (`moves_token_targets`, via the `Softening` it returns);
"""
from typing import Any, Optional, Tuple

import torch

__all__ = ['BatchAugment']


class BatchAugment:
    """ A student-only batch augmentation (see the module docstring); subclasses add settings and `augment`. """

    moves_pixels = False
    moves_token_targets = False
    softens_targets = False  # `augment` returns a `Softening` of the targets

    @classmethod
    def from_config(cls, config) -> 'BatchAugment':
        return cls()

    def check_stage(self, token_labels_from_teacher: bool, name: str) -> None:
        """ Refuse a pixel-moving method where teacher token labels must stay aligned with the student's tokens. """
        if token_labels_from_teacher and self.moves_pixels and not self.moves_token_targets:
            raise ValueError(
                f'--batch-augment {name} moves pixels, so the teacher\'s token labels (stage stl) would no longer '
                f'line up with the student\'s tokens; {self.geometry_fix()}')

    def geometry_fix(self) -> str:
        """ How to run this method in stage stl (overridden by methods with a geometric part that can be off). """
        return 'use it in stage plain or tl, or pick a photometric method.'

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def augment(self, images: torch.Tensor) -> Tuple[torch.Tensor, Optional[Any]]:
        """ The augmented batch and the target softening it asks for (None: the targets stay as they are). """
        return self.transform(images), None
