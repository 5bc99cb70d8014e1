"""`STLConfig`: every STL option, declared once.

The launcher's command-line flags (`python -m fan_stl.train --stage ... --teacher ...`) are generated from the
fields and their metadata (`add_arguments` / `from_namespace`), the engine holds an `STLConfig` in its
`TrainConfig.stl`, and `build_task` reads nothing else. Options whose choices come from a registry (`mix_method`,
`label_source`) list the registry's names, so a new mixing method or label source appears here by itself.
"""
import argparse
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Dict, Optional, Union

import torch.nn as nn

__all__ = ['STAGES', 'EVAL_RULES', 'STLConfig']

STAGES = ('plain', 'tl', 'stl')
EVAL_RULES = ('cls', 'fused')


def _option(default: Any, help: str, choices: Any = None, type: Optional[type] = None) -> Any:
    """ A dataclass field with the metadata its command-line flag is generated from (`choices` may be a callable
    returning the names of a registry, resolved when the parser is built; `type` the flag's type where the default
    does not say it, e.g. a None default). """
    return field(default=default, metadata={'help': help, 'choices': choices, 'type': type})


def _mix_methods():
    from .mixing import MIX_METHODS
    return tuple(MIX_METHODS)


def _pairings():
    from .maskmix import PAIRINGS
    return PAIRINGS


def _maskmix_modes():
    from .maskmix import MASKMIX_MODES
    return MASKMIX_MODES


def _attention_relabels():
    from .attention_labels import ATTENTION_RELABELS
    return ATTENTION_RELABELS


def _label_sources():
    from .teacher import LABEL_SOURCES
    return tuple(LABEL_SOURCES)


def _token_label_modes():
    from .teacher import TOKEN_LABEL_MODES
    return TOKEN_LABEL_MODES


@dataclass
class STLConfig:
    """ The STL options of one training stage; defaults are the official recipe (STL paper, NVlabs/STL scripts). """
    stage: str = _option('stl', 'plain: the baseline, no token head; tl: token labeler (stage 1) on image labels; '
                                'stl: student (stage 2) with teacher token labels', choices=STAGES)
    teacher: Optional[Union[str, nn.Module]] = _option(
        None, 'stl: the stage-1 checkpoint (its EMA weights are used, as officially) or a pretrained *_tl model name; '
              'with --label-source annotator: a classifier checkpoint, a timm name, or "pretrained"')
    teacher_model: Optional[str] = _option(
        None, 'architecture of a checkpoint teacher (default: the student\'s model); the timm classifier of --teacher '
              'pretrained')
    label_source: str = _option('teacher', 'where token labels come from (a registered label source)',
                                choices=_label_sources)
    cls_weight: float = _option(1.0, 'class-head loss weight')
    dense_weight: float = _option(1.0, 'token-head loss weight')
    token_label_mode: str = _option('gumbel', 'how teacher token logits become targets (gumbel, as the paper)',
                                    choices=_token_label_modes)
    token_label_smoothing: Optional[float] = _option(
        None, 'token label smoothing (default: the image label smoothing, --smoothing, as officially)', type=float)
    token_label_temperature: float = _option(1.0, 'teacher softmax temperature (gumbel, soft, topk)')
    token_label_topk: int = _option(5, 'classes kept per token in topk mode')
    mix_method: str = _option('mixup_cutmix', 'mixing method, every stage (a registered producer of MixRecord; '
                                              'mixtoken mixes tokens inside the model)', choices=_mix_methods)
    mix_pairing: str = _option('flip', 'partner of each sample: flip (reversed batch, timm / LV-ViT) or perm '
                                       '(random permutation, MixPro)', choices=_pairings)
    mix_alpha: float = _option(1.0, 'Beta(alpha, alpha) of the maskmix ratio and of the mixtoken / patch_cutmix box')
    maskmix_cell: int = _option(4, 'maskmix / mixpro: mask cell side in tokens (k; a cell is k x 16 pixels)')
    maskmix_mode: str = _option('batch', 'maskmix / mixpro: one kept-cell ratio per batch (MixPro) or per sample',
                                choices=_maskmix_modes)
    mixpro_p_maskmix: float = _option(0.5, 'mixpro: probability of MaskMix per batch (else timm Mixup / CutMix)')
    attention_relabel: str = _option('none', 'rewrite the class-target share from the last class-attention map: '
                                             'pal (MixPro) or transmix', choices=_attention_relabels)
    pal_alpha: Optional[float] = _option(None, 'pal: a fixed alpha in [0, 1] (default: the per-sample cosine of '
                                               'MixPro\'s code)', type=float)
    pal_alpha_grad: bool = _option(False, 'pal: let gradients flow through the cosine alpha (as MixPro\'s code)')
    follow_mixing: bool = _option(False, 'token targets follow every mix (per-token pixel ownership); beyond the '
                                         'paper, whose token labels ignore the mixing')
    eval_rule: str = _option('cls', 'what validation scores (and the best checkpoint is chosen on): the class head '
                                    '(cls, as officially during training) or the fused cls + 0.5*max(token) rule',
                             choices=EVAL_RULES)

    def __post_init__(self):
        for f in fields(self):
            choices = f.metadata.get('choices')
            choices = choices() if callable(choices) else choices
            if choices and getattr(self, f.name) not in choices:
                raise ValueError(f'STLConfig.{f.name}={getattr(self, f.name)!r} is not one of {tuple(choices)}.')
        if self.stage == 'stl' and self.teacher is None:
            raise ValueError('Stage stl needs a teacher: a stage-1 checkpoint (--teacher path/to/model_best.pth.tar '
                             '--teacher-model fan_t_hybrid_tl), a pretrained *_tl model name, or a module.')
        if self.stage != 'stl' and self.teacher is not None:
            raise ValueError(f'A teacher is only used by stage stl; stage {self.stage} learns from image labels alone.')
        if self.pal_alpha is not None and not 0. <= self.pal_alpha <= 1.:
            raise ValueError(f'pal_alpha must be in [0, 1] (or unset for the per-sample cosine); got {self.pal_alpha}.')
        if self.maskmix_cell < 1 or self.mix_alpha <= 0 or not 0. <= self.mixpro_p_maskmix <= 1.:
            raise ValueError(f'Need maskmix_cell >= 1, mix_alpha > 0 and 0 <= mixpro_p_maskmix <= 1; got '
                             f'{self.maskmix_cell}, {self.mix_alpha} and {self.mixpro_p_maskmix}.')
        if self.token_label_smoothing is not None and not 0. <= self.token_label_smoothing < 1.:
            raise ValueError(f'token_label_smoothing must be in [0, 1); got {self.token_label_smoothing}.')

    def token_smoothing(self, image_smoothing: float) -> float:
        """ The token label smoothing: as set, or the image label smoothing (`--smoothing`) when unset. """
        return image_smoothing if self.token_label_smoothing is None else self.token_label_smoothing

    def to_dict(self) -> Dict[str, Any]:
        """ Plain values (a module teacher becomes its class name) for args.yaml, checkpoints and JSON. """
        values = asdict(self) if not isinstance(self.teacher, nn.Module) else {
            f.name: getattr(self, f.name) for f in fields(self)}
        if isinstance(self.teacher, nn.Module):
            values['teacher'] = f'<module {type(self.teacher).__name__}>'
        return values

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """ One `--flag` per field (`stage` -> `--stage`), with the field's default, type, choices and help. """
        for f in fields(cls):
            flag = '--' + f.name.replace('_', '-')
            default = None if f.default is MISSING else f.default
            if isinstance(default, bool):
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                    help=f.metadata['help'])
                continue
            choices = f.metadata.get('choices')
            choices = choices() if callable(choices) else choices
            kind = f.metadata.get('type') or {float: float, int: int}.get(type(default), str)
            parser.add_argument(flag, type=kind, default=default, choices=choices,
                                help=f.metadata['help'] + ('' if default is None else f' (default: {default})'))

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> 'STLConfig':
        """ The config of parsed flags made by `add_arguments`. """
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})
