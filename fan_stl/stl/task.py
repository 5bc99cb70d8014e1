"""`build_task`: the one place a training stage is assembled, for the launcher, the engine and any own loop.

`build_task(config, model, ...)` returns an `STLTask`, a timm `ClassificationTask` (train.py, the engine and a user
loop call `task(input, target)['loss']` under their autocast), for every stage:

* stage `plain`: any timm classifier, soft-target cross-entropy on the class target;
* stage `tl`: `TokenLabelLoss` on the class head and the token-averaged logits of a token-head model;
* stage `stl`: paired batches `(B, 2C, H, W)`: the label source (the frozen teacher, run under the caller's
  autocast) labels the clean teacher view, the token targets follow the batch's `MixRecord` when `follow_mixing` is
  on, and `TokenLabelLoss` scores the student on the student view.

Mixing, in every stage: targets are class indices, soft targets, or packed mix targets (each sample's own target and
its `MixRecord`, from the `MIX_METHODS` producers in timm's Mixup slots). The class target is made here, from the
record: `record.class_target(own)`. The task knows no method by name: it holds three callables built from the
config's registries. A `token_mixer` (the method's, e.g. MixToken's) draws a token-space record here and mixes inside
the model (`model(x, token_mix=...)`; the token targets always follow it, which is LV-ViT's un-mixing of the token
predictions as one loss). A `relabel` rule (PAL, TransMix) asks the model for its class attention
(`return_attn=True`) and rewrites `record.lam` before the class loss. Both are explicit forward arguments: no hooks,
compiled and EMA models work. The `labeler` (a label source) makes the token targets of stage stl: from the
teacher view, or (stored label maps, a labeler with `reads_crops`) from the crop record at the target's end.
Combinations that cannot work are refused here, with the fix (each method and rule checks the model itself).

Robust training, in every stage: the config's student-only batch augmentation (`fan_stl.stl.augment`) runs after
the mixer and before the forward pass, in [0, 1] pixel space (the teacher view, and the clean split, untouched); soft
augmentation's `Softening` then softens the class target and moves and softens the token targets. With `--aug-splits
k` the batch is split-major, `(k B, C, H, W)`: the teacher labels split 0 (the clean view, the teacher's in stage stl),
and `--jsd-loss` scores the stage's loss on split 0 plus the JS term across the splits (`ViewConsistency`); without
it every split is scored with the same targets. `term_steps` counts the steps each optional term ran.

The label source is held outside the module tree, so the teacher stays out of DDP, EMA, the optimizer and the
checkpoints (one per rank). `STLTask.steps` counts the steps it ran (the launcher checks it is the task in use).
"""
from dataclasses import replace
from typing import Callable, ContextManager, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.data.mixup import mixup_target
from timm.loss import SoftTargetCrossEntropy
from timm.task import ClassificationTask

from ..models.fan import TOKEN_STRIDE
from .attention_labels import AttentionRelabel, build_relabel
from .augment import BatchAugment, Softening, build_batch_augment
from .config import STLConfig
from .consistency import ViewConsistency
from .crop_record import split_crop_target
from .loss import TokenLabelLoss
from .mix_method import MixMethod
from .mix_record import MixRecord
from .mixing import build_mix_method
from .mixtoken import record_args
from .multiview import check_num_splits
from .targets import TokenLabelTarget, TokenTargets
from .teacher import LABEL_SOURCES
from .views import split_views

__all__ = ['STLTask', 'build_task', 'check_mixing', 'split_target']


def split_target(target: torch.Tensor, num_classes: int) -> Tuple[torch.Tensor, Optional[MixRecord]]:
    """ `(image_target, record)` from class indices `(B,)`, soft targets `(B, K)` or a packed mix target. """
    if target.ndim == 2 and target.shape[1] > num_classes:
        return MixRecord.unpack(target, num_classes)
    if target.ndim == 1 or (target.ndim == 2 and target.shape[1] == num_classes):
        return target, None
    raise ValueError(
        f'Unexpected STL target of shape {tuple(target.shape)} for {num_classes} classes: expected class indices, '
        f'soft targets (B, {num_classes}) or a packed mix target (B, {num_classes} + 2 + 2 x tokens). Check that '
        f'--num-classes matches the data and the teacher.')


class STLTask(ClassificationTask):
    """ Every stage as a timm task (see the module docstring). """

    def __init__(
            self,
            model: nn.Module,
            criterion: nn.Module,
            labeler: Optional[Callable[[torch.Tensor], TokenTargets]] = None,
            follow_mixing: bool = False,
            token_mixer: Optional[Callable[[int, Tuple[int, int], torch.device], MixRecord]] = None,
            relabel: Optional[AttentionRelabel] = None,
            smoothing: float = 0.,
            batch_augment: Optional[BatchAugment] = None,
            num_splits: int = 1,
            consistency: Optional[ViewConsistency] = None,
            mean_std: Tuple[Sequence[float], Sequence[float]] = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
            verbose: bool = True,
    ):
        """
        Args:
            model: The model to train.
            criterion: `TokenLabelLoss` (stages tl, stl) or a soft-target loss on the class logits (stage plain).
            labeler: The stage-stl label source (teacher view -> token targets, or token targets and each view's own
                class target, which then replaces the image label).
            follow_mixing: Token targets follow the record of every mixed batch.
            token_mixer: A token-space method's record draw `(batch, grid, device) -> MixRecord`, mixed inside the
                model (the `token_mixer` of the mixing method; None for pixel-space methods).
            relabel: The attention relabelling rule `(record, attn, logits, own) -> record` (None: the area lam).
            smoothing: Label smoothing of the own targets this task makes from class indices.
            batch_augment: The student-only batch augmentation (after the mixer, before the forward pass).
            num_splits: Views of each image in a split-major batch (`--aug-splits`; 1: none). Split 0 is clean (the
                teacher's view in stage stl); without `consistency` every split is scored like split 0.
            consistency: The JS consistency term across the splits (`--jsd-loss`).
            mean_std: The input normalisation, undone around the batch augmentation.
        """
        super().__init__(model=model, criterion=criterion, device=device, dtype=dtype, verbose=verbose)
        self.num_classes = model.num_classes
        self.labeler = labeler
        self.follow_mixing = follow_mixing
        self.token_mixer = token_mixer
        self.relabel = relabel
        self.smoothing = smoothing
        self.batch_augment = batch_augment
        self.num_splits = num_splits
        self.consistency = consistency
        self.mean_std = mean_std
        self.term_steps: Dict[str, int] = {}  # steps that ran each optional term (drivers report it)
        self.token_labels = isinstance(criterion, TokenLabelLoss)
        self.steps = 0

    def _own_targets(self, target: torch.Tensor) -> torch.Tensor:
        """ Each sample's own soft target `(B, K)` (class indices are smoothed one-hots). """
        return target.float() if target.ndim == 2 else mixup_target(target, self.num_classes, 1., self.smoothing)

    def _augment(self, images: torch.Tensor, first: int) -> Tuple[torch.Tensor, Optional[Softening]]:
        """ The batch augmentation of rows `first:` in [0, 1] pixel space (rows before it untouched). """
        mean, std = (torch.tensor(v, device=images.device, dtype=torch.float32).view(1, -1, 1, 1)
                     for v in self.mean_std)
        pixels = (images[first:].float() * std + mean).clamp(0., 1.)
        augmented, softening = self.batch_augment.augment(pixels)
        augmented = ((augmented.float() - mean) / std).to(images.dtype)
        return torch.cat([images[:first], augmented]) if first else augmented, softening

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> Dict[str, torch.Tensor]:
        per_split = check_num_splits(input.shape[0], self.num_splits) if self.num_splits > 1 else input.shape[0]
        target = target[:per_split]  # split-major batches repeat the target per split
        tokens = crop_target = None
        if getattr(self.labeler, 'reads_crops', False):  # stored maps: the crop record, no teacher view
            target, crops = split_crop_target(target)
            if crops is None:
                raise ValueError('The maps label source needs each sample\'s crop record in the target: build the '
                                 'training set with build_data(config).dataset(...) (CropRecordDataset).')
            tokens = self.labeler(crops, (input.shape[-2] // TOKEN_STRIDE, input.shape[-1] // TOKEN_STRIDE))
        elif self.labeler is not None:
            if self.num_splits > 1:
                teacher_images = input[:per_split]  # the clean split is the teacher view
            else:
                teacher_images, input = split_views(input)
            tokens = self.labeler(teacher_images)
            if isinstance(tokens, tuple):  # `--class-target crop`: the label source's crop label is the own target
                tokens, crop_target = tokens
            tokens = tokens.check_grid(
                (input.shape[-2] // TOKEN_STRIDE, input.shape[-1] // TOKEN_STRIDE))  # by position, not count
        image_target, record = split_target(target, self.num_classes)
        if crop_target is not None:
            image_target = crop_target
        softening = None
        if self.batch_augment is not None and self.training:
            input, softening = self._augment(input, per_split if self.num_splits > 1 else 0)
            self._count(type(self.batch_augment).__name__)
        forward_args = {}
        if self.token_mixer is not None and self.training:
            grid = (input.shape[-2] // TOKEN_STRIDE, input.shape[-1] // TOKEN_STRIDE)
            record = self.token_mixer(input.shape[0], grid, input.device)
            forward_args['token_mix'] = record_args(record)
        relabel = self.relabel is not None and record is not None and not record.is_identity
        if relabel:
            forward_args['return_attn'] = True
        output = self.trainable_module(input, **forward_args)
        if relabel:
            output, attn = output
        if record is not None:
            own = self._own_targets(image_target)
            if relabel:
                logits = output[0] if isinstance(output, (tuple, list)) else output
                record = self.relabel(record, attn, logits, own)
            image_target = record.class_target(own)
            if tokens is not None and (self.follow_mixing or self.token_mixer is not None):
                tokens = tokens.blend(record)
        if softening is not None:
            image_target = softening.class_target(self._own_targets(image_target))
            tokens = None if tokens is None else softening.token_targets(tokens)
            self._count('softened_targets')
        self.steps += 1
        if self.consistency is not None:
            loss = self.consistency(output, lambda clean: self._loss(clean, image_target, tokens))
            self._count('jsd_with_tokens' if self.consistency.tokens and self.token_labels else 'jsd')
        elif self.num_splits > 1:  # every split scored like the clean one
            loss = self._loss(output, repeat_rows(image_target, self.num_splits),
                              None if tokens is None else repeat_rows(tokens, self.num_splits))
        else:
            loss = self._loss(output, image_target, tokens)
        return {'loss': loss, 'output': output}

    def _count(self, term: str) -> None:
        self.term_steps[term] = self.term_steps.get(term, 0) + 1

    def _loss(self, output, image_target: torch.Tensor, tokens: Optional[TokenTargets]) -> torch.Tensor:
        if self.token_labels:
            return self.criterion(output, TokenLabelTarget(image_target, tokens))
        return self.criterion(output, self._own_targets(image_target))


def repeat_rows(target: Union[torch.Tensor, TokenTargets], times: int) -> Union[torch.Tensor, TokenTargets]:
    """ A target of B rows for a split-major batch of `times * B` rows. """
    if isinstance(target, TokenTargets):
        fields = {name: getattr(target, name) for name in ('indices', 'weights', 'probs')}
        return replace(target, **{k: v.repeat(times, *([1] * (v.ndim - 1))) for k, v in fields.items()
                                  if v is not None})
    return target.repeat(times, *([1] * (target.ndim - 1)))


def check_mixing(config: STLConfig, model: nn.Module) -> Tuple[MixMethod, Optional[AttentionRelabel]]:
    """ The mixing method and the attention relabelling rule of `config`, after each refused a `model` it cannot
    work with (naming the fix). """
    method, rule = build_mix_method(config), build_relabel(config)
    method.check_model(model)
    if rule is not None:
        rule.check_model(model)
    return method, rule


def build_task(
        config: STLConfig,
        model: nn.Module,
        *,
        smoothing: float = 0.1,
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
        seed: Run seed (the teacher's Gumbel stream is drawn from it and the rank).
        rank: Distributed rank.
        device: Where the model and the teacher run.
        dtype: Model dtype (timm's `--model-dtype`).
        autocast: The context the teacher runs under (the student's autocast); None runs it as is.
        model_name: The student's architecture name (default architecture of a checkpoint teacher).
        verbose: Let timm's task log its set-up.
    """
    method, rule = check_mixing(config, model)
    if config.aug_splits and method.token_mixer is not None:
        raise ValueError(f'--mix-method {config.mix_method} mixes tokens across the batch, which would mix the views '
                         f'of --aug-splits with each other; drop one of them.')
    cfg = getattr(model, 'pretrained_cfg', None) or {}
    common = dict(device=device, dtype=dtype, verbose=verbose, smoothing=smoothing, token_mixer=method.token_mixer,
                  relabel=rule, batch_augment=build_batch_augment(config), num_splits=config.num_views,
                  consistency=ViewConsistency(config.aug_splits, config.jsd_weight, config.jsd_tokens)
                  if config.jsd_loss else None,
                  mean_std=(cfg.get('mean', IMAGENET_DEFAULT_MEAN), cfg.get('std', IMAGENET_DEFAULT_STD)))
    if not config.token_head:
        return STLTask(model=model, criterion=SoftTargetCrossEntropy(), **common)
    if not callable(getattr(model, 'set_token_label_training', None)):
        raise ValueError(
            f'Stage {config.stage} trains a token-head model (`*_tl` for stage tl, `*_stl` for stage stl, e.g. '
            f'fan_t_hybrid_tl); {type(model).__name__} has none. Use stage plain for other models.')
    model.set_token_label_training(True)
    criterion = TokenLabelLoss(config.cls_weight, config.dense_weight, label_smoothing=smoothing)
    labeler = None
    if config.needs_teacher:
        source = LABEL_SOURCES[config.label_source]
        labeler = source(config, model_name or model.default_cfg.get('architecture', ''), model.num_classes,
                         device or torch.device('cpu'), smoothing, seed, rank, autocast)
        if config.class_target == 'crop' and not getattr(labeler, 'crop_labels', False):
            raise ValueError(f'--label-source {config.label_source} gives no crop-level class target; use '
                             f'--class-target label with it.')
    return STLTask(model=model, criterion=criterion, labeler=labeler, follow_mixing=config.follow_mixing, **common)
