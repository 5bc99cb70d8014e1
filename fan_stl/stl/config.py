"""`STLConfig`: every STL option, declared once.

The launcher's command-line flags (`python -m fan_stl.train --stage ... --teacher ...`) are generated from the
fields and their metadata (`add_arguments` / `from_namespace`), the engine holds an `STLConfig` in its
`TrainConfig.stl`, and `build_task` / `build_data` read nothing else. Options whose choices come from a registry
(`mix_method`, `label_source`, `attention_relabel`, `batch_augment`) list the registry's names, so a new mixing
method, label source, relabel rule or batch augmentation appears here by itself.

The config checks what it owns (the stage, the teacher, the registry names); a method's settings (`maskmix_cell`,
`mix_alpha`, `mix_pairing`, `pal_alpha`, ...) are checked once, by the method object its registry builds from the
config (built here too, so a bad setting is refused when the config is made). Drivers ask the stage what it needs
(`token_head`, `needs_teacher`), never its name.
"""
import argparse
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Dict, NamedTuple, Optional, Union

import torch.nn as nn

from .attention_labels import ATTENTION_RELABELS, TRANSMIX_TOKENS, build_relabel
from .augment import BATCH_AUGMENTS, build_batch_augment
from .consistency import JSD_WEIGHT
from .eval_rule import EVAL_RULES, TRAINING_RULE
from .maskmix import MASKMIX_MODES
from .mix_method import PAIRINGS
from .mixing import MIX_METHODS, build_mix_method
from .teacher import CLASS_TARGETS, LABEL_SOURCES, TOKEN_LABEL_MODES

__all__ = ['Stage', 'STAGES', 'EVAL_RULES', 'STLConfig']


class Stage(NamedTuple):
    """ What a training stage needs. """
    token_head: bool  # a `*_tl` / `*_stl` model trained with `TokenLabelLoss`
    needs_teacher: bool  # a frozen label source labels a clean teacher view: paired batches


STAGES: Dict[str, Stage] = {
    'plain': Stage(token_head=False, needs_teacher=False),  # any timm classifier, image labels
    'tl': Stage(token_head=True, needs_teacher=False),  # STL stage 1, the token labeler
    'stl': Stage(token_head=True, needs_teacher=True),  # STL stage 2, the student
}


def _option(default: Any, help: str, choices: Any = None, type: Optional[type] = None, method: bool = False) -> Any:
    """ A dataclass field with the metadata its command-line flag is generated from (`choices` may be a callable
    returning the names of a registry, resolved when the parser is built; `type` the flag's type where the default
    does not say it, e.g. a None default; `method`: a method's setting, checked by the method, not here). """
    return field(default=default, metadata={'help': help, 'choices': choices, 'type': type, 'method': method})


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
                                choices=lambda: tuple(LABEL_SOURCES))
    label_maps: Optional[str] = _option(
        None, 'with --label-source maps: the maps folder written by `python -m fan_stl label` (no --teacher then)')
    class_target: str = _option('label', 'stl: the class-head target: the image label (label, the STL paper) or the '
                                         'label source\'s prediction for the student\'s crop (crop, LV-ViT\'s '
                                         'annotator)', choices=CLASS_TARGETS)
    cls_weight: float = _option(1.0, 'class-head loss weight')
    dense_weight: float = _option(1.0, 'token-head loss weight')
    token_label_mode: str = _option('gumbel', 'how teacher token logits become targets (gumbel, as the paper)',
                                    choices=TOKEN_LABEL_MODES)
    token_label_smoothing: Optional[float] = _option(
        None, 'token label smoothing (default: the image label smoothing, --smoothing, as officially)', type=float)
    token_label_temperature: float = _option(1.0, 'teacher softmax temperature (gumbel, soft, topk)')
    token_label_topk: int = _option(5, 'classes kept per token in topk mode')
    mix_method: str = _option('mixup_cutmix', 'mixing method, every stage (a registered producer of MixRecord; '
                                              'mixtoken mixes tokens inside the model)',
                              choices=lambda: tuple(MIX_METHODS))
    mix_pairing: str = _option('flip', 'partner of each sample: flip (reversed batch, timm / LV-ViT) or perm '
                                       '(random permutation, MixPro)', choices=lambda: tuple(PAIRINGS), method=True)
    mix_alpha: float = _option(1.0, 'Beta(alpha, alpha) of the maskmix ratio and of the mixtoken / patch_cutmix box')
    maskmix_cell: int = _option(4, 'maskmix / mixpro: mask cell side in tokens (k; a cell is k x 16 pixels)')
    maskmix_mode: str = _option('batch', 'maskmix / mixpro: one kept-cell ratio per batch (MixPro) or per sample',
                                choices=MASKMIX_MODES, method=True)
    mixpro_p_maskmix: float = _option(0.5, 'mixpro: probability of MaskMix per batch (else timm Mixup / CutMix)')
    attention_relabel: str = _option('none', 'rewrite the class-target share from the last class-attention map: '
                                             'pal (MixPro) or transmix', choices=lambda: tuple(ATTENTION_RELABELS))
    pal_alpha: Optional[float] = _option(None, 'pal: a fixed alpha in [0, 1] (default: the per-sample cosine of '
                                               'MixPro\'s code)', type=float)
    pal_alpha_grad: bool = _option(False, 'pal: let gradients flow through the cosine alpha (as MixPro\'s code)')
    transmix_tokens: str = _option('top_left', 'transmix: a token is inside the CutMix box when its top-left pixel '
                                               'is (top_left, the released code) or by its exact pixel share',
                                   choices=TRANSMIX_TOKENS, method=True)
    follow_mixing: bool = _option(False, 'token targets follow every mix (per-token pixel ownership); beyond the '
                                         'paper, whose token labels ignore the mixing')
    # robust training (fan_stl.stl.augment, fan_stl.stl.consistency, fan_stl.stl.multiview, fan_stl.stl.student_source)
    batch_augment: str = _option('none', 'student-only batch augmentation after the mixer, before the forward pass',
                                 choices=lambda: tuple(BATCH_AUGMENTS))
    randconv_kernels: str = _option('1,3,5,7', 'randconv: kernel sizes drawn from (comma-separated, odd)', method=True)
    randconv_mix: bool = _option(True, 'randconv: RC_mix, alpha*x + (1-alpha)*conv(x), alpha~U(0,1) (else RC_img)')
    pixmix_dir: Optional[str] = _option(None, 'pixmix: folder of mixing pictures (default: generated fractals)')
    pixmix_k: int = _option(4, 'pixmix: at most k mixing rounds')
    pixmix_beta: float = _option(4., 'pixmix: mixing severity beta')
    prime_primitives: Optional[str] = _option(
        None, 'prime: comma-separated of spectral,color,diffeo (default: all three; spectral,color in stage stl, '
              'whose token labels the diffeomorphism would misalign)')
    soft_aug_power: float = _option(2., 'soft_aug: k of the confidence curve 1 - (1 - p_min)(1 - visibility)^k')
    soft_aug_min: float = _option(0., 'soft_aug: p_min, the confidence of a fully hidden image / token')
    styleaug_weights: Optional[str] = _option(None, 'styleaug: converted weights file (default: the cached copy)')
    styleaug_alpha: float = _option(0.5, 'styleaug: interpolation towards the random style')
    aug_splits: int = _option(0, 'views per image for a consistency loss (timm\'s --aug-splits; also accepted '
                                 'after `--`): split 0 clean (the teacher view in stage stl), the rest augmented')
    jsd_loss: bool = _option(False, 'Jensen-Shannon consistency across the --aug-splits views (timm\'s --jsd-loss)')
    jsd_weight: float = _option(JSD_WEIGHT, 'weight of the JS term (AugMix: 12)')
    jsd_tokens: bool = _option(False, 'also a JS term on the token predictions (token-head stages)')
    student_data_dir: Optional[str] = _option(
        None, 'stl: a tree like --data-dir whose same-named images the student reads (Stylized-ImageNet, '
              'DeepAugment copies); the teacher reads the original, crop and flips shared')
    eval_rule: str = _option(TRAINING_RULE, 'what validation scores (and the best checkpoint is chosen on): the '
                                            'class head (cls, as officially during training) or the fused '
                                            'cls + 0.5*max(token) rule', choices=EVAL_RULES)

    def __post_init__(self):
        for f in fields(self):
            choices = f.metadata.get('choices')
            choices = choices() if callable(choices) else choices
            if choices and not f.metadata['method'] and getattr(self, f.name) not in choices:
                raise ValueError(f'STLConfig.{f.name}={getattr(self, f.name)!r} is not one of {tuple(choices)}.')
        if self.needs_teacher and self.teacher is None and LABEL_SOURCES[self.label_source].uses_teacher:
            raise ValueError(f'Stage {self.stage} needs a teacher: a stage-1 checkpoint (--teacher '
                             f'path/to/model_best.pth.tar --teacher-model fan_t_hybrid_tl), a pretrained *_tl model '
                             f'name, or a module.')
        if self.class_target != 'label' and not self.needs_teacher:
            raise ValueError(f'--class-target {self.class_target} takes the class target from the label source of '
                             f'stage stl; stage {self.stage} trains on image labels (use --class-target label).')
        if not self.needs_teacher and self.teacher is not None:
            raise ValueError(f'A teacher is only used by stage stl; stage {self.stage} learns from image labels alone.')
        build_mix_method(self)  # the method and the relabel rule check their own settings
        build_relabel(self)
        self._check_views(build_batch_augment(self))
        if self.token_label_smoothing is not None and not 0. <= self.token_label_smoothing < 1.:
            raise ValueError(f'token_label_smoothing must be in [0, 1); got {self.token_label_smoothing}.')

    def _check_views(self, augment) -> None:
        if self.aug_splits == 1 or self.aug_splits < 0:
            raise ValueError(f'--aug-splits must be 0 (off) or >= 2 (a clean view and augmented ones); got '
                             f'{self.aug_splits}.')
        if self.jsd_loss and not self.aug_splits:
            raise ValueError('--jsd-loss compares the views of each image: add --aug-splits 3 (AugMix: the clean '
                             'view and two augmented ones).')
        if self.aug_splits and augment is not None and (augment.softens_targets or not self.jsd_loss):
            raise ValueError(f'--batch-augment {self.batch_augment} with --aug-splits: the batch augmentation runs on '
                             f'the augmented splits, which only the JS term of --jsd-loss scores; it cannot soften '
                             f'targets there (drop --aug-splits for soft augmentation) and needs --jsd-loss.')
        if self.jsd_tokens and not (self.jsd_loss and self.token_head):
            raise ValueError('--jsd-tokens adds a JS term on the token predictions: it needs --jsd-loss and a '
                             'token-head stage (tl or stl).')
        if self.needs_teacher and (self.aug_splits or self.student_data_dir) and not LABEL_SOURCES[
                self.label_source].teacher_view:
            raise ValueError(f'--label-source {self.label_source} labels no teacher view, so --aug-splits (whose clean '
                             f'split is the teacher view) and --student-data-dir have nothing to pair with; use an '
                             f'online label source (e.g. teacher).')
        if self.student_data_dir and (not self.needs_teacher or self.aug_splits):
            raise ValueError('--student-data-dir gives the student view of stage stl its own source; it needs '
                             'stage stl without --aug-splits.')

    @property
    def num_views(self) -> int:
        """ Views of each image in a batch (1 without --aug-splits). """
        return max(1, self.aug_splits)

    @property
    def token_head(self) -> bool:
        """ The stage trains a token-head model (`*_tl` / `*_stl`) with `TokenLabelLoss`. """
        return STAGES[self.stage].token_head

    @property
    def needs_teacher(self) -> bool:
        """ The stage's token labels come from a frozen label source on a clean teacher view (paired batches). """
        return STAGES[self.stage].needs_teacher

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
