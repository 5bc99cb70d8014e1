"""The arms of the STL comparison run by `fan_stl.demo.experiment` and `python -m fan_stl demo` (the table and its
names need the standard library only; asking an arm's teacher imports the STL config).

    baseline    `fan_tiny_8_p4_hybrid`, cross-entropy on the (mixed, smoothed) image label (the engine's stage `plain`)
    tl          `fan_t_hybrid_tl`, STL stage 1 (token labeler; its token head is supervised by the image label)
    stl         `fan_t_hybrid_stl`, STL stage 2 taught by the `tl` arm of the same seed (the paper's method)
    stl_follow  as `stl` with token targets that follow CutMix / Mixup (an option beyond the paper)
"""
from typing import Any, Dict, Optional, Sequence

ArmTable = Dict[str, Dict[str, Any]]  # arm -> its `TrainConfig` / `STLConfig` options (+ `teacher_arm` for stl)

ARMS: ArmTable = {
    'baseline': dict(stage='plain', model='fan_tiny_8_p4_hybrid'),
    'tl': dict(stage='tl', model='fan_t_hybrid_tl'),
    'stl': dict(stage='stl', model='fan_t_hybrid_stl'),
    'stl_follow': dict(stage='stl', model='fan_t_hybrid_stl', follow_mixing=True),
}


def teacher_of(arm: str, table: ArmTable = ARMS) -> Optional[str]:
    """ The arm whose trained model teaches `arm`: an stl arm's `teacher_arm` ('tl' unless set); None otherwise. """
    from ..stl.config import STAGES  # torch / timm: only once a teacher is asked for, never for the arm names
    return table[arm].get('teacher_arm', 'tl') if STAGES[table[arm]['stage']].needs_teacher else None


def train_options(arm: str, table: ArmTable = ARMS) -> Dict[str, Any]:
    """ The training options of `arm` (its table entry without `teacher_arm`). """
    return {k: v for k, v in table[arm].items() if k != 'teacher_arm'}


def check_arms(arms: Sequence[str], table: ArmTable = ARMS) -> None:
    """ Raise `ValueError` naming the fix when `arms` cannot make the comparison (unknown, no baseline, no teacher). """
    unknown = [a for a in arms if a not in table]
    if unknown:
        raise ValueError(f'unknown arm(s) {", ".join(unknown)}; choose from {", ".join(table)}')
    if 'baseline' not in arms:
        raise ValueError('the comparison is relative to the baseline: include the "baseline" arm '
                         f'(e.g. --arms baseline {" ".join(arms)})')
    for arm in arms:
        teacher = teacher_of(arm, table)
        if teacher is not None and teacher not in arms:
            raise ValueError(f'the STL student needs its teacher: include the "{teacher}" arm '
                             f'(e.g. --arms baseline {teacher} {arm})')


def training_order(arms: Sequence[str], table: ArmTable = ARMS) -> list:
    """ `arms` in the order they must train: the table's order, which lists teachers before their students. """
    return sorted(dict.fromkeys(arms), key=list(table).index)
