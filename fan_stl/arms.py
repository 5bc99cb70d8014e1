"""The arms of the STL comparison run by `fan_stl.experiment` and `python -m fan_stl demo` (standard library only).

    baseline    `fan_tiny_8_p4_hybrid`, cross-entropy on the (mixed, smoothed) image label (the engine's stage `plain`)
    tl          `fan_t_hybrid_tl`, STL stage 1 (token labeler; its token head is supervised by the image label)
    stl         `fan_t_hybrid_stl`, STL stage 2 taught by the `tl` arm of the same seed (the paper's method)
    stl_follow  as `stl` with token targets that follow CutMix / Mixup (an option beyond the paper)
"""
from typing import Any, Dict, Sequence

ARMS: Dict[str, Dict[str, Any]] = {
    'baseline': dict(stage='plain', model='fan_tiny_8_p4_hybrid'),
    'tl': dict(stage='tl', model='fan_t_hybrid_tl'),
    'stl': dict(stage='stl', model='fan_t_hybrid_stl'),
    'stl_follow': dict(stage='stl', model='fan_t_hybrid_stl', follow_mixing=True),
}


def check_arms(arms: Sequence[str]) -> None:
    """ Raise `ValueError` naming the fix when `arms` cannot make the comparison (unknown, no baseline, no teacher). """
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f'unknown arm(s) {", ".join(unknown)}; choose from {", ".join(ARMS)}')
    if 'baseline' not in arms:
        raise ValueError('the comparison is relative to the baseline: include the "baseline" arm '
                         f'(e.g. --arms baseline {" ".join(arms)})')
    if any(ARMS[a]['stage'] == 'stl' for a in arms) and 'tl' not in arms:
        raise ValueError('the STL student needs its teacher: include the "tl" arm (e.g. --arms baseline tl stl)')


def training_order(arms: Sequence[str]) -> list:
    """ `arms` in the order they must train: the teacher (tl) before the students. """
    return sorted(dict.fromkeys(arms), key=list(ARMS).index)
