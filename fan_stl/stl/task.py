"""`build_task`: the one place a training stage is assembled, for the launcher, the engine and any own loop.

`build_task(config, model, ...)` returns a timm `ClassificationTask` (train.py, the engine and a user loop call
`task(input, target)['loss']` under their autocast):

* stage `plain`: timm's own `ClassificationTask` with soft-target (mixing) or label-smoothing cross-entropy;
* stage `tl`: `STLTask` on plain image batches, `TokenLabelLoss` on the class head and the token-averaged logits;
* stage `stl`: `STLTask` on paired batches `(B, 2C, H, W)`: the label source (the frozen teacher, run under the
  caller's autocast) labels the clean teacher view, the token targets follow the batch's `MixRecord` when
  `follow_mixing` is on, and `TokenLabelLoss` scores the student on the student view.

The label source is held outside the module tree, so the teacher stays out of DDP, EMA, the optimizer and the
checkpoints (one per rank). `STLTask.steps` counts the steps it ran (the launcher checks it is the task in use).
"""
from typing import Callable, ContextManager, Dict, Optional, Tuple

import torch
import torch.nn as nn

from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.task import ClassificationTask

from .config import STLConfig
from .loss import TokenLabelLoss
from .mix_record import MixRecord
from .targets import TokenLabelTarget, TokenTargets
from .teacher import LABEL_SOURCES
from .views import split_views

__all__ = ['STLTask', 'build_task', 'split_target']


def split_target(target: torch.Tensor, num_classes: int) -> Tuple[torch.Tensor, Optional[MixRecord]]:
    """ `(image_target, record)` from class indices `(B,)`, soft targets `(B, K)` or a packed mix target. """
    if target.ndim == 2 and target.shape[1] > num_classes:
        return MixRecord.unpack(target, num_classes)
    if target.ndim == 1 or (target.ndim == 2 and target.shape[1] == num_classes):
        return target, None
    raise ValueError(
        f'Unexpected STL target of shape {tuple(target.shape)} for {num_classes} classes: expected class indices, '
        f'soft targets (B, {num_classes}) or a packed mix target (B, {num_classes} + 2 + tokens). Check that '
        f'--num-classes matches the data and the teacher.')


class STLTask(ClassificationTask):
    """ The `tl` and `stl` stages as a timm task (see the module docstring). """

    def __init__(
            self,
            model: nn.Module,
            criterion: TokenLabelLoss,
            labeler: Optional[Callable[[torch.Tensor], TokenTargets]] = None,
            follow_mixing: bool = False,
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
            verbose: bool = True,
    ):
        super().__init__(model=model, criterion=criterion, device=device, dtype=dtype, verbose=verbose)
        self.num_classes = model.num_classes
        self.labeler = labeler
        self.follow_mixing = follow_mixing
        self.steps = 0

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> Dict[str, torch.Tensor]:
        image_target, record = split_target(target, self.num_classes)
        tokens = None
        if self.labeler is not None:
            teacher_images, input = split_views(input)
            tokens = self.labeler(teacher_images)
            if self.follow_mixing and record is not None:
                tokens = tokens.blend(record)
        output = self.trainable_module(input)
        self.steps += 1
        return {'loss': self.criterion(output, TokenLabelTarget(image_target, tokens)), 'output': output}


def build_task(
        config: STLConfig,
        model: nn.Module,
        *,
        smoothing: float = 0.1,
        mixing: bool = True,
        seed: int = 0,
        rank: int = 0,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
        autocast: Optional[Callable[[], ContextManager]] = None,
        model_name: Optional[str] = None,
        verbose: bool = False,
) -> ClassificationTask:
    """ The training task of `config.stage` for `model` (see the module docstring).

    Args:
        config: The STL options.
        model: The model to train (a `*_tl` / `*_stl` token-head model for stages tl and stl).
        smoothing: Image label smoothing (`--smoothing`); also the token label smoothing unless the config sets it.
        mixing: Whether Mixup / CutMix produce soft image targets (stage plain picks its loss by it).
        seed: Run seed (the teacher's Gumbel stream is drawn from it and the rank).
        rank: Distributed rank.
        device: Where the model and the teacher run.
        dtype: Model dtype (timm's `--model-dtype`).
        autocast: The context the teacher runs under (the student's autocast); None runs it as is.
        model_name: The student's architecture name (default architecture of a checkpoint teacher).
        verbose: Let timm's task log its set-up.
    """
    common = dict(device=device, dtype=dtype, verbose=verbose)
    if config.stage == 'plain':
        criterion = SoftTargetCrossEntropy() if mixing else LabelSmoothingCrossEntropy(smoothing)
        return ClassificationTask(model=model, criterion=criterion, **common)
    if not callable(getattr(model, 'set_token_label_training', None)):
        raise ValueError(
            f'Stage {config.stage} trains a token-head model (`*_tl` for stage tl, `*_stl` for stage stl, e.g. '
            f'fan_t_hybrid_tl); {type(model).__name__} has none. Use stage plain for other models.')
    model.set_token_label_training(True)
    model.fuse_token_logits = config.eval_rule == 'fused'
    criterion = TokenLabelLoss(config.cls_weight, config.dense_weight, label_smoothing=smoothing)
    labeler = None
    if config.stage == 'stl':
        source = LABEL_SOURCES[config.label_source]
        labeler = source(config, model_name or model.default_cfg.get('architecture', ''), model.num_classes,
                         device or torch.device('cpu'), smoothing, seed, rank, autocast)
    return STLTask(model=model, criterion=criterion, labeler=labeler, follow_mixing=config.follow_mixing, **common)

