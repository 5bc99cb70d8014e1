"""A timm `Task` for STL stage 2: labels the clean teacher view inside the training step.

timm's train.py calls `task(input, target)` under its autocast for every batch, on both data paths (the prefetcher
path never calls `mixup_fn`). `TokenLabelTask` turns the paired batch and its image (or packed mixing) target into the
student batch and a `TokenLabelTarget`, with the frozen teacher run under the same autocast as the student, then
computes the loss like timm's `ClassificationTask`. The teacher is held by a `TeacherTokenLabeler`, not as a
submodule, so it stays out of DDP, EMA, the optimizer and checkpoints (one teacher per rank).
"""
from typing import Callable, Dict, Optional, Union

import torch
import torch.nn as nn

from timm.task import ClassificationTask

from .loss import TokenLabelTarget
from .mixing import TOKEN_STRIDE, attach_token_labels
from .token_labels import TeacherTokenLabeler

__all__ = ['TokenLabelTask']


class TokenLabelTask(ClassificationTask):
    """ `ClassificationTask` whose batches are paired teacher/student views (see the module docstring). """

    def __init__(
            self,
            model: nn.Module,
            criterion: Union[nn.Module, Callable],
            labeler: TeacherTokenLabeler,
            token_stride: int = TOKEN_STRIDE,
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
            verbose: bool = True,
    ):
        super().__init__(model=model, criterion=criterion, device=device, dtype=dtype, verbose=verbose)
        self.labeler = labeler
        self.token_stride = token_stride

    def forward(self, input: torch.Tensor, target: Union[torch.Tensor, TokenLabelTarget]) -> Dict[str, torch.Tensor]:
        if not isinstance(target, TokenLabelTarget):
            input, target = attach_token_labels(input, target, self.labeler, self.token_stride)
        output = self.trainable_module(input)
        return {'loss': self.criterion(output, target), 'output': output}
