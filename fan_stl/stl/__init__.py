"""The STL method: one config, one stage builder, one data-side builder, one per-token mix record.

    config = STLConfig(...)
    task = build_task(config, model, ...)     # task(input, target)['loss']
    data = build_data(config)                 # training set, mixer, loader checks of the stage

This package is the method alone; the drivers that run it (the engine, the launchers of timm's scripts) live in
`fan_stl.training` and this package never imports them.

Extension points (each is one module plus one registry line; the config's flag choices follow the registries):

* a mixing method: a `MixMethod` subclass (`mix_method.py`) with its settings checked in its constructor, a
  `from_config(config)` and `draw(mixer, batch, height, width) -> (own pixels, lam)` (a token-space method also gives a
  `token_mixer`); its entry in `mixing.MIX_METHODS`; `--mix-method NAME` selects it.
* a relabel rule (rewrites `MixRecord.lam` after the forward pass, like PAL and TransMix): an `AttentionRelabel`
  subclass and its entry in `attention_labels.ATTENTION_RELABELS`; `--attention-relabel NAME` selects it.
* a source of token targets (e.g. a CNN token annotator): a `LabelSource` (`check_teacher(config)`, and a call
  `(config, student_model, num_classes, device, image_smoothing, seed, rank, autocast) -> images -> TokenTargets`) and
  its entry in `teacher.LABEL_SOURCES`; `--label-source NAME` selects it.

* a student-only batch augmentation (RandConv, PixMix, PRIME, soft augmentation, StyleAug): a `BatchAugment` subclass
  (`augment/batch_augment.py`) and its entry in `augment.BATCH_AUGMENTS`; `--batch-augment NAME` selects it.
* a per-image transform in the paired teacher / student views: `views.register_view_step(Type, 'shared' | 'student')`.

Multi-view consistency (`--aug-splits k`, `--jsd-loss`): `multiview.SplitViewDataset` and `consistency.ViewConsistency`.

Token targets consume a record in one place, `TokenTargets.blend(record)`, when `follow_mixing` is on (always for a
token-space method). Every stage (plain, tl, stl) takes every mixing method that fits its model (each method and rule
checks the model itself, `task.check_mixing`).
"""
from .attention_labels import ATTENTION_RELABELS, AttentionRelabel
from .augment import BATCH_AUGMENTS, BatchAugment
from .config import STLConfig
from .data import STLData, build_data
from .mix_method import MixMethod
from .mix_record import MixRecord
from .mixing import MIX_METHODS, STLCollateMixup, STLMixup, build_mix_method
from .targets import TokenLabelTarget, TokenTargets
from .task import STLTask, build_task
from .teacher import LABEL_SOURCES, LabelSource, TeacherTokenLabeler, load_teacher
from .views import PairedViewDataset, PairedViewLoader, PairedViewTransform

__all__ = [
    'STLConfig', 'STLData', 'build_data', 'MixMethod', 'MixRecord', 'MIX_METHODS', 'build_mix_method',
    'STLCollateMixup', 'STLMixup', 'ATTENTION_RELABELS', 'AttentionRelabel', 'TokenLabelTarget', 'TokenTargets',
    'STLTask', 'build_task', 'LABEL_SOURCES', 'LabelSource', 'TeacherTokenLabeler', 'load_teacher',
    'PairedViewDataset', 'PairedViewLoader', 'PairedViewTransform', 'BATCH_AUGMENTS', 'BatchAugment',
]
