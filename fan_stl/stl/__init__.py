"""The STL training wing: one config, one stage builder, one per-token mix record.

    STLConfig -> build_task(config, model, ...) -> task(input, target)['loss']

Extension points (each touches one module):

* a mixing method that mixes pixels (Mixup / CutMix, MaskMix, MixPro, patch CutMix): a draw function `(mixer, batch,
  height, width) -> (own pixels, lam)` and its entry in `mixing.MIX_METHODS`; `--mix-method NAME` selects it (the
  flag's choices follow the registry). MixToken mixes tokens inside the model: the task draws its
  `MixRecord(own=token mask, partner, lam)`; PAL and TransMix (`--attention-relabel`) only rewrite `MixRecord.lam`
  from the model's class attention, in the task, before the class target `record.class_target(own)` is made.
* a source of token targets (e.g. a CNN token annotator): a builder `(config, student_model, num_classes, device,
  image_smoothing, seed, rank, autocast) -> images -> TokenTargets` and its entry in `teacher.LABEL_SOURCES`;
  `--label-source NAME` selects it.

Token targets consume a record in one place, `TokenTargets.blend(record)`, when `follow_mixing` is on (always for
MixToken). Every stage (plain, tl, stl) takes every mixing method that fits its model (`task.check_mixing`).
"""
from .config import STLConfig
from .mix_record import MixRecord
from .mixing import MIX_METHODS, STLCollateMixup, STLMixup
from .targets import TokenLabelTarget, TokenTargets
from .task import STLTask, build_task
from .teacher import LABEL_SOURCES, TeacherTokenLabeler, load_teacher
from .views import PairedViewDataset, PairedViewLoader, PairedViewTransform

__all__ = [
    'STLConfig', 'MixRecord', 'MIX_METHODS', 'STLCollateMixup', 'STLMixup', 'TokenLabelTarget', 'TokenTargets',
    'STLTask', 'build_task', 'LABEL_SOURCES', 'TeacherTokenLabeler', 'load_teacher', 'PairedViewDataset',
    'PairedViewLoader', 'PairedViewTransform',
]
