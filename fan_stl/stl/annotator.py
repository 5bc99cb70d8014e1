"""Any timm classifier as an online token annotator (LV-ViT's machine annotator, computed in the step).

A classifier whose head is `pool -> (norm / pre-logits) -> linear` has a dense form: the same post-pool layers and
the same linear classifier applied at every location of `forward_features` give a score map (CAM-style logits).
`DenseAnnotator` wraps such a model as a token teacher: `forward_dense(images) -> (cls_logits (B, K),
token_logits (B, N, K))`, the map resized bilinearly (on logits) to the student's token grid (`H / token_stride`
x `W / token_stride` of the images it is given, i.e. the student's crop when the teacher sees the same crop).
`fan_stl.stl.teacher.annotator_labeler(model, ...)` puts it behind the FAN labeler (`TeacherTokenLabeler`: gumbel /
argmax / soft / topk token targets), so any timm classifier replaces a trained FAN token labeler; `load_annotator`
makes one from a pretrained timm name or a checkpoint (the `annotator` label source, `--label-source annotator`).

Supported heads (the `kind` attribute):
* `'pool-linear'`: average / max / avg-max pooling then a linear (or 1x1 conv) classifier: timm's `ClassifierHead`
  and the `global_pool` + `fc` / `classifier` models (ResNet, RegNet, EfficientNet, DenseNet, ...). With average
  pooling the spatial mean of the map is exactly the model's logits.
* `'pool-norm-linear'`: timm's `NormMlpClassifierHead` (ConvNeXt, ...): pool -> LayerNorm -> (MLP) -> linear; the
  norm and MLP run at every location.
* `'token-linear'`: ViT-style token models (`num_prefix_tokens`, class-token or average pooling, `fc_norm`, `head`):
  the head on every patch token (as LV-ViT's label generator).
* `'token-head'`: models with a per-token head `aux_head` (FAN `*_tl` / `*_stl`): that head on every patch token.
Any other head (attention pooling, heads with layers after the pooling that are not per-location, ...) is refused
with a message naming these kinds. The decomposition is verified on the first batch: the post-pool layers applied
to the pooled features must reproduce the model's own `forward_head(..., pre_logits=True)` (checked in eval mode,
which `TeacherTokenLabeler` sets).
"""
import os
from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

import timm
from timm.layers import NormMlpClassifierHead, SelectAdaptivePool2d

from ..models.fan import checkpoint_filter_fn
from ..weights import WeightsMismatchError, create_pretrained, load_checkpoint

__all__ = ['DenseAnnotator', 'load_annotator', 'resolve_annotator', 'SUPPORTED_HEADS']

SUPPORTED_HEADS = ('pool-linear', 'pool-norm-linear', 'token-linear', 'token-head')
_POOLS = {
    'avg': lambda f: f.mean(dim=(2, 3)),
    'max': lambda f: f.amax(dim=(2, 3)),
    'avgmax': lambda f: 0.5 * (f.mean(dim=(2, 3)) + f.amax(dim=(2, 3))),
}


def _refuse(model: nn.Module, why: str) -> ValueError:
    return ValueError(
        f'{type(model).__name__} cannot be a dense token annotator: {why}. '
        f'Supported heads: {", ".join(SUPPORTED_HEADS)} '
        f'(pool -> optional norm/MLP -> linear classifier, e.g. ResNet, RegNet, EfficientNet, ConvNeXt, ViT/DeiT, '
        f'FAN token labelers).')


class DenseAnnotator(nn.Module):
    """ A timm classifier as a token teacher with `forward_dense` on the student's token grid (module docstring). """

    def __init__(self, model: nn.Module, token_stride: int = 16):
        """
        Args:
            model: A timm classifier (`forward_features`, `forward_head`, `get_classifier`) with num_classes > 0.
            token_stride: The student's token stride in pixels (16 for FAN): the map is resized to `H / stride`
                x `W / stride` of the images.
        """
        super().__init__()
        for method in ('forward_features', 'forward_head'):
            if not callable(getattr(model, method, None)):
                raise _refuse(model, f'it has no {method}()')
        if not getattr(model, 'num_classes', 0):
            raise _refuse(model, 'it has no classifier (num_classes == 0)')
        self.model = model
        self.token_stride = token_stride
        self.kind, self._pool, self._per_location = self._decompose(model)
        self._verified = False

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    @staticmethod
    def _decompose(model: nn.Module) -> Tuple[str, Optional[Callable], Callable]:
        """ `(kind, pool, per_location)`: `per_location` maps features `(..., C)` to pre-logits `(..., C')`. """
        aux = getattr(model, 'aux_head', None)
        if isinstance(aux, nn.Linear):
            return 'token-head', None, nn.Identity()
        prefix = getattr(model, 'num_prefix_tokens', None)
        if prefix is not None:
            pool_name = getattr(model, 'global_pool', None)
            if pool_name == 'token' and prefix > 0:
                pool = lambda t: t[:, 0]  # noqa: E731
            elif pool_name == 'avg':
                pool = lambda t: t[:, prefix:].mean(dim=1)  # noqa: E731
            else:
                raise _refuse(model, f'its token pooling {pool_name!r} has no per-token form')
            if getattr(model, 'attn_pool', None) is not None:
                raise _refuse(model, 'it pools with attention')
            return 'token-linear', pool, getattr(model, 'fc_norm', None) or nn.Identity()
        head = getattr(model, 'head', None)
        if isinstance(head, NormMlpClassifierHead):
            pool_module = head.global_pool

            def per_location(f: torch.Tensor) -> torch.Tensor:  # (..., C): the head's norm and MLP on the last dim
                if isinstance(head.norm, nn.LayerNorm):  # LayerNorm2d is one, applied here channels-last
                    f = F.layer_norm(f, head.norm.normalized_shape, head.norm.weight, head.norm.bias, head.norm.eps)
                elif not isinstance(head.norm, nn.Identity):
                    raise _refuse(model, f'its head norm is a {type(head.norm).__name__}')
                return head.pre_logits(f)
            kind = 'pool-norm-linear'
        else:
            pool_module = getattr(head, 'global_pool', None) or getattr(model, 'global_pool', None)
            per_location = nn.Identity()
            kind = 'pool-linear'
        if not isinstance(pool_module, SelectAdaptivePool2d) or pool_module.pool_type not in _POOLS:
            pool_type = getattr(pool_module, 'pool_type', type(pool_module).__name__)
            raise _refuse(model, f'its pooling {pool_type!r} is not one of {tuple(_POOLS)}')
        return kind, _POOLS[pool_module.pool_type], per_location

    def _check_decomposition(self, features: torch.Tensor) -> None:
        """ The post-pool layers on the pooled features must give the model's own pre-logits (once). """
        if self._verified or self._pool is None or self.model.training:  # dropout would break the comparison
            return
        pooled = self._pool(features if features.ndim == 3 else features.float())
        expected = self.model.forward_head(features, pre_logits=True)
        mine = self._per_location(pooled.to(features.dtype))
        if mine.shape != expected.shape or not torch.allclose(mine.float(), expected.float(), rtol=1e-3, atol=1e-3):
            raise _refuse(self.model, 'its head does more than pooling, a norm/MLP and a linear classifier '
                                      f'(read as {self.kind!r}, the pooled features did not reproduce its pre-logits)')
        self._verified = True

    def score_map(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """ `(cls_logits (B, K), score map (B, K, h, w))` at the teacher's own feature resolution. """
        features = self.model.forward_features(x)
        self._check_decomposition(features)
        cls_logits = self.model.forward_head(features)
        if isinstance(cls_logits, (tuple, list)):
            cls_logits = cls_logits[0]
        if features.ndim == 3:  # tokens: drop the prefix tokens, lay the rest out on the image's aspect ratio
            prefix = self.model.num_prefix_tokens
            tokens = features[:, prefix:]
            head = self.model.aux_head if self.kind == 'token-head' else self.model.get_classifier()
            scores = head(self._per_location(tokens))
            rows = int(round((tokens.shape[1] * x.shape[-2] / x.shape[-1]) ** 0.5))
            if rows == 0 or tokens.shape[1] % rows:
                raise _refuse(self.model, f'its {tokens.shape[1]} patch tokens do not form a grid for a '
                                          f'{x.shape[-2]}x{x.shape[-1]} image')
            return cls_logits, scores.transpose(1, 2).reshape(x.shape[0], -1, rows, tokens.shape[1] // rows)
        if features.ndim != 4:
            raise _refuse(self.model, f'forward_features gave a {features.ndim}-D output')
        classifier = self.model.get_classifier()
        if isinstance(classifier, nn.Conv2d):  # ClassifierHead(use_conv=True): a 1x1 conv on the map
            return cls_logits, classifier(features)
        if not isinstance(classifier, nn.Linear):
            raise _refuse(self.model, f'its classifier is a {type(classifier).__name__}, not a linear layer')
        scores = classifier(self._per_location(features.permute(0, 2, 3, 1)))
        return cls_logits, scores.permute(0, 3, 1, 2)

    def forward_dense(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """ Images -> `(cls_logits (B, K), token_logits (B, N, K))` on the student's grid (bilinear on logits). """
        height, width = x.shape[-2:]
        if height % self.token_stride or width % self.token_stride:
            raise ValueError(f'Annotated images must be multiples of the student token stride {self.token_stride}; '
                             f'got {height}x{width}.')
        cls_logits, scores = self.score_map(x)
        grid = (height // self.token_stride, width // self.token_stride)
        if tuple(scores.shape[-2:]) != grid:
            scores = F.interpolate(scores.float(), size=grid, mode='bilinear', align_corners=False)
        return cls_logits, scores.flatten(2).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.forward_dense(x)


def _class_mismatch(what: str, found: int, num_classes: int) -> ValueError:
    return ValueError(
        f'The annotator {what} predicts {found} classes but the student is trained on {num_classes}; token labels '
        f'are never mapped between class sets. Use an annotator trained on the student\'s classes (fine-tune it on '
        f'your data and pass its checkpoint: --teacher path/to/model_best.pth.tar --teacher-model NAME), or train '
        f'the student on the annotator\'s classes.')


def resolve_annotator(teacher: str, model_name: Optional[str]) -> Tuple[str, str]:
    """ `('checkpoint', architecture)` or `('pretrained', name[.tag])` for `--teacher` / `--teacher-model`; a
    `ValueError` naming the fix when they do not say which classifier to use (checked before any work). """
    if os.path.isfile(teacher):
        if not model_name:
            raise ValueError(f'The annotator checkpoint {teacher} needs its architecture: pass --teacher-model NAME '
                             f'(the timm model it was trained as, e.g. resnet50).')
        return 'checkpoint', model_name
    if teacher == 'pretrained' and not model_name:
        raise ValueError('--teacher pretrained needs the annotator\'s name: --teacher-model NAME[.TAG], a timm '
                         'classifier with pretrained weights (e.g. convnext_base.fb_in22k_ft_in1k).')
    name = model_name if teacher == 'pretrained' else teacher
    if not timm.is_model(name.split('.')[0]):
        raise ValueError(f'Annotator {name!r} is neither an existing checkpoint file nor a registered timm model '
                         f'(e.g. --teacher pretrained --teacher-model convnext_base.fb_in22k_ft_in1k).')
    return 'pretrained', name


def load_annotator(
        teacher: str,
        model_name: Optional[str],
        num_classes: int,
        token_stride: int = 16,
        device: Optional[torch.device] = None,
) -> DenseAnnotator:
    """ A frozen `DenseAnnotator` from `--teacher` / `--teacher-model`.

    Args:
        teacher: `'pretrained'` (the pretrained weights of `model_name`, e.g. `convnext_base.fb_in22k_ft_in1k`), a
            timm model name with an optional pretrained tag (loaded pretrained), or a checkpoint file of
            `model_name` (its EMA weights when it holds them; read without running pickled code).
        model_name: The annotator's timm architecture (with a pretrained tag for `'pretrained'`).
        num_classes: The student's classes; an annotator predicting another number of classes is refused.
        token_stride: The student's token stride in pixels.
        device: Where the annotator runs.
    """
    kind, name = resolve_annotator(teacher, model_name)
    if kind == 'checkpoint':
        model = timm.create_model(name, num_classes=num_classes)
        try:  # checkpoint_filter_fn strips DDP / compile prefixes (any timm model)
            load_checkpoint(model, teacher, filter_fn=checkpoint_filter_fn)
        except WeightsMismatchError as e:
            if getattr(e, 'checkpoint_classes', None) is None:
                raise
            raise _class_mismatch(f'checkpoint {teacher}', e.checkpoint_classes, num_classes) from None
    else:
        model = create_pretrained(name)  # offline: one message, no retries
        if model.num_classes != num_classes:
            raise _class_mismatch(repr(name), model.num_classes, num_classes)
    return DenseAnnotator(model.to(device or torch.device('cpu')), token_stride).eval().requires_grad_(False)
