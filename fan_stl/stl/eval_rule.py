"""What a token-head model (`*_tl`, `*_stl`) is scored on in evaluation: the one place the eval rule is applied.

* `cls`: the class head alone, what STL training validates and chooses its best checkpoint on (`TRAINING_RULE`, the
  default of `STLConfig.eval_rule`);
* `fused`: `cls + 0.5 * max_n(token)`, the inference rule of the published STL numbers (`PUBLISHED_RULE`, the
  default of `python -m fan_stl.validate` and of the models themselves).

Every driver goes through `apply_eval_rule` (the train.py launcher for the model train.py validates, the validate.py
launcher for the model it creates) or `scored_with` (the engine, around each evaluation, so the trained model it
returns keeps its own inference rule). Models without a token head are left as they are.
"""
from contextlib import contextmanager
from typing import Iterator, Optional

import torch.nn as nn

__all__ = ['EVAL_RULES', 'TRAINING_RULE', 'PUBLISHED_RULE', 'apply_eval_rule', 'scored_with']

EVAL_RULES = ('cls', 'fused')
TRAINING_RULE = 'cls'
PUBLISHED_RULE = 'fused'


def apply_eval_rule(model: nn.Module, rule: str) -> Optional[bool]:
    """ Make `model` score by `rule`; returns its previous setting (None for a model without a token head). """
    if rule not in EVAL_RULES:
        raise ValueError(f'Unknown eval rule {rule!r}; choose one of {EVAL_RULES}.')
    previous = getattr(model, 'fuse_token_logits', None)
    if previous is not None:
        model.fuse_token_logits = rule == 'fused'
    return previous


@contextmanager
def scored_with(model: nn.Module, rule: str) -> Iterator[nn.Module]:
    """ `model` scoring by `rule` inside the block, its own rule restored after it. """
    previous = apply_eval_rule(model, rule)
    try:
        yield model
    finally:
        if previous is not None:
            model.fuse_token_logits = previous
