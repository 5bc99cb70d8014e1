"""Sources of token targets: online per-token labels from a frozen teacher (the STL stage-2 targets).

A label source turns the clean teacher view of a batch into `TokenTargets`. `LABEL_SOURCES` maps each
`STLConfig.label_source` name to a `LabelSource`: `check_teacher(config)` refuses a `--teacher` it cannot use before
any work (the launcher asks it, by registry, not by name) and calling it builds the labeler. Adding a source is one
`LabelSource` subclass and one registry line. Sources: `teacher` (the paper's FAN token labeler), `annotator` (any
timm classifier applied densely, `fan_stl.stl.annotator`) and `maps` (label maps stored once by `fan_stl label`,
`fan_stl.stl.label_maps`). `LabelSource` itself is in `fan_stl.stl.label_source`.

`TeacherTokenLabeler` wraps any model exposing `forward_dense(x) -> (cls_logits, token_logits (B, N, K))` (our
`*_tl` models first), keeps it frozen in eval mode, runs it without gradients under the same autocast as the student
and turns its token logits into compact `TokenTargets`:

* `gumbel` (the paper's default): one class per token sampled from `softmax(logits / temperature)` by Gumbel-max,
  a fresh sample every step, then label smoothing;
* `argmax`: the most likely class per token, then smoothing;
* `soft`: `softmax(logits / temperature)` (the official code applies no smoothing here; set smoothing 0 to match);
* `topk`: the `topk` most likely classes with their renormalised probabilities, then smoothing.

The Gumbel noise comes from a private generator seeded from `(seed, rank)`: reproducible, and different per DDP rank.

Class target (`CLASS_TARGETS`, `--class-target`): `label` (default, the STL paper) keeps each image's label as the
class-head target; `crop` replaces it by the label source's own prediction for the crop the student sees,
`softmax(cls_logits / temperature)` smoothed as the token labels (LV-ViT's machine annotator: its class token learns
the annotator's crop-level label, not the ImageNet label). With `crop` the labeler returns
`(TokenTargets, crop targets (B, K))` and the task uses the crop targets as each sample's own class target (mixed by
the batch's mix record as any own target).
"""
import contextlib
import os
from typing import Callable, ContextManager, Dict, Optional, Tuple, Union

import torch
import torch.nn as nn

import timm

from ..models.fan import TOKEN_STRIDE
from ..weights import create_pretrained, load_checkpoint
from .annotator import DenseAnnotator, load_annotator, resolve_annotator
from .label_maps import MapsSource
from .label_source import LabelSource, rank_seed
from .targets import TokenTargets

__all__ = ['TOKEN_LABEL_MODES', 'CLASS_TARGETS', 'LABEL_SOURCES', 'LabelSource', 'TeacherTokenLabeler',
           'annotator_labeler', 'load_teacher', 'rank_seed']

TOKEN_LABEL_MODES = ('gumbel', 'argmax', 'soft', 'topk')
CLASS_TARGETS = ('label', 'crop')  # the class-head target: the image label, or the label source's crop prediction


def _check_token_head(model: nn.Module, what: str) -> None:
    if not callable(getattr(model, 'forward_dense', None)) or getattr(model, 'aux_head', True) is None:
        raise ValueError(
            f'{what} has no per-token head: a token-label teacher must expose forward_dense(x) -> (cls_logits, '
            f'token_logits). Use a FAN token labeler (`*_tl`, e.g. fan_t_hybrid_tl) or another token-head model.')


class TeacherTokenLabeler:
    """ Frozen teacher -> `TokenTargets` for a batch of clean teacher views. Not an `nn.Module` on purpose: the teacher
    stays out of the student's optimizer, EMA, checkpoints and DDP wrapper. """

    def __init__(
            self,
            teacher: nn.Module,
            mode: str = 'gumbel',
            smoothing: float = 0.1,
            temperature: float = 1.,
            topk: int = 5,
            seed: int = 0,
            rank: int = 0,
            autocast: Optional[Callable[[], ContextManager]] = None,
            crop_labels: bool = False,
    ):
        """
        Args:
            teacher: Model with `forward_dense` (frozen here: eval mode, `requires_grad=False`).
            mode: One of `TOKEN_LABEL_MODES`.
            smoothing: Token label smoothing `(1 - s) * p + s / K`.
            temperature: Softmax temperature of `gumbel`, `soft` and `topk`.
            topk: Number of classes kept per token in `topk` mode.
            seed: Run seed of the Gumbel noise stream.
            rank: DDP rank (each rank draws its own stream).
            autocast: Context factory the teacher runs under (the student's autocast); None runs it as is.
            crop_labels: Also return the teacher's class prediction for each view as its class target (`crop`).
        """
        _check_token_head(teacher, f'Teacher {type(teacher).__name__}')
        if mode not in TOKEN_LABEL_MODES:
            raise ValueError(f'Unknown token label mode {mode!r}; choose one of {TOKEN_LABEL_MODES}.')
        if temperature <= 0:
            raise ValueError(f'Token label temperature must be positive; got {temperature}.')
        if mode == 'topk' and topk < 1:
            raise ValueError(f'topk token labels need topk >= 1; got {topk}.')
        self.teacher = teacher.eval().requires_grad_(False)
        self.mode = mode
        self.smoothing = smoothing
        self.temperature = temperature
        self.topk = topk
        self.seed = rank_seed(seed, rank)
        self.autocast = autocast or contextlib.nullcontext
        self.crop_labels = crop_labels
        self._generator: Optional[torch.Generator] = None

    @property
    def num_classes(self) -> int:
        return self.teacher.num_classes

    def _gumbel_noise(self, like: torch.Tensor) -> torch.Tensor:
        if self._generator is None or self._generator.device != like.device:
            self._generator = torch.Generator(device=like.device).manual_seed(self.seed)
        uniform = torch.rand(like.shape, generator=self._generator, device=like.device).clamp_(1e-20, 1.)
        return -torch.log(-torch.log(uniform))

    def __call__(self, images: torch.Tensor) -> Union[TokenTargets, Tuple[TokenTargets, torch.Tensor]]:
        """ Token targets `(B, N, K)` for teacher views `images (B, C, H, W)`; with `crop_labels` also each view's
        class target `(B, K)`. """
        self.teacher.eval()  # guard against a caller switching it back to train mode
        with torch.no_grad(), self.autocast():
            cls_logits, token_logits = self.teacher.forward_dense(images)
        stride = getattr(self.teacher, 'token_stride', TOKEN_STRIDE)
        grid = (images.shape[-2] // stride, images.shape[-1] // stride)
        tokens = self._token_targets(token_logits.float() / self.temperature, grid)
        if not self.crop_labels:
            return tokens
        crop = (cls_logits.float() / self.temperature).softmax(-1)
        return tokens, (1. - self.smoothing) * crop + self.smoothing / crop.shape[-1]

    def _token_targets(self, logits: torch.Tensor, grid: Tuple[int, int]) -> TokenTargets:
        num_classes = logits.shape[-1]
        common = dict(smoothing=self.smoothing, grid=grid)
        if self.mode == 'soft':
            return TokenTargets(num_classes, probs=logits.softmax(-1), **common)
        if self.mode == 'topk':
            values, indices = logits.topk(min(self.topk, num_classes), dim=-1)
            return TokenTargets(num_classes, indices=indices, weights=values.softmax(-1), **common)
        if self.mode == 'gumbel':
            logits = logits + self._gumbel_noise(logits)
        return TokenTargets(num_classes, indices=logits.argmax(-1), **common)


def load_teacher(
        name_or_checkpoint: str,
        model_name: Optional[str] = None,
        num_classes: Optional[int] = None,
        device: Optional[torch.device] = None,
) -> nn.Module:
    """ Create a frozen token-label teacher.

    Args:
        name_or_checkpoint: A checkpoint file (its `state_dict_ema` is used when present, as in the official recipe)
            or a timm model name, optionally with a pretrained tag (`fan_t_hybrid_tl.in1k`), loaded pretrained.
        model_name: Architecture of a checkpoint teacher (e.g. the student's `fan_t_hybrid_stl`: same architecture).
        num_classes: Classes of a checkpoint teacher (default: the model's default).
        device: Where the teacher runs.
    """
    kwargs = {} if num_classes is None else {'num_classes': num_classes}
    if os.path.isfile(name_or_checkpoint):
        if model_name is None:
            raise ValueError(
                f'Teacher checkpoint {name_or_checkpoint} needs its architecture: pass the model name too '
                f'(--teacher-model fan_t_hybrid_tl).')
        teacher = timm.create_model(model_name, **kwargs)
        load_checkpoint(teacher, name_or_checkpoint)  # the messages of `file=`, EMA weights first
    elif timm.is_model(name_or_checkpoint.split('.')[0]):
        teacher = create_pretrained(name_or_checkpoint, **kwargs)  # offline: one message, no retries
    else:
        raise ValueError(
            f'Teacher {name_or_checkpoint!r} is neither an existing checkpoint file nor a registered timm model '
            f'(e.g. fan_t_hybrid_tl.in1k, or the path to a stage-1 model_best.pth.tar).')
    _check_token_head(teacher, f'Teacher {name_or_checkpoint!r}')
    return teacher.to(device or torch.device('cpu')).eval().requires_grad_(False)


def _labeler(config, teacher: nn.Module, num_classes: int, image_smoothing: float, seed: int, rank: int,
             autocast: Optional[Callable[[], ContextManager]]) -> TeacherTokenLabeler:
    """ `teacher` behind the token-label modes of `config`; a teacher of another class count is refused. """
    labeler = TeacherTokenLabeler(
        teacher, mode=config.token_label_mode, smoothing=config.token_smoothing(image_smoothing),
        temperature=config.token_label_temperature, topk=config.token_label_topk, seed=seed, rank=rank,
        autocast=autocast, crop_labels=config.class_target == 'crop')
    if labeler.num_classes != num_classes:
        raise ValueError(
            f'The teacher predicts {labeler.num_classes} classes but the student is trained on {num_classes}; '
            f'use a teacher trained on the same classes (or set --num-classes to match).')
    return labeler


class TeacherSource(LabelSource):
    """ The paper's source: a frozen token-head model (`config.teacher`: checkpoint, model name or module). """

    def check_teacher(self, config) -> None:
        teacher = config.teacher
        if isinstance(teacher, str) and not (os.path.isfile(teacher) or timm.is_model(teacher.split('.')[0])):
            raise ValueError(f'--teacher {teacher!r} is neither a file nor a registered model name.')

    def __call__(self, config, student_model, num_classes, device, image_smoothing, seed, rank, autocast):
        teacher = config.teacher if isinstance(config.teacher, nn.Module) else load_teacher(
            config.teacher, model_name=config.teacher_model or student_model, num_classes=num_classes, device=device)
        return _labeler(config, teacher.to(device), num_classes, image_smoothing, seed, rank, autocast)


def annotator_labeler(model: nn.Module, token_stride: int = TOKEN_STRIDE, **labeler_kwargs) -> TeacherTokenLabeler:
    """ A `TeacherTokenLabeler` (mode, smoothing, temperature, topk, seed, rank, autocast) over
    `DenseAnnotator(model, token_stride)`: any timm classifier with a dense head form as a token teacher. """
    return TeacherTokenLabeler(DenseAnnotator(model, token_stride), **labeler_kwargs)


class AnnotatorSource(LabelSource):
    """ LV-ViT's machine annotator computed online: any timm classifier (`config.teacher`: `'pretrained'` with
    `config.teacher_model`, a timm name, a checkpoint of `config.teacher_model`, or a module) applied densely; its
    score map is resized to the student's token grid of the teacher view (the student's crop). """

    def check_teacher(self, config) -> None:
        if isinstance(config.teacher, str):
            resolve_annotator(config.teacher, config.teacher_model)  # also `--teacher pretrained --teacher-model X`

    def __call__(self, config, student_model, num_classes, device, image_smoothing, seed, rank, autocast):
        if isinstance(config.teacher, nn.Module):
            annotator = config.teacher if isinstance(config.teacher, DenseAnnotator) else DenseAnnotator(config.teacher)
        else:
            annotator = load_annotator(config.teacher, config.teacher_model, num_classes, TOKEN_STRIDE, device)
        return _labeler(config, annotator.to(device), num_classes, image_smoothing, seed, rank, autocast)


# name -> LabelSource: source(config, student_model, num_classes, device, image_smoothing, seed, rank, autocast) is
# a callable mapping teacher-view images (B, C, H, W) to TokenTargets (B, N, K)
LABEL_SOURCES: Dict[str, LabelSource] = {
    'teacher': TeacherSource(),
    'annotator': AnnotatorSource(),
    'maps': MapsSource(),
}
