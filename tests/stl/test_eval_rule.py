"""The eval rule: one function sets what a token-head model is scored on; the engine's form restores it."""
import pytest
import timm
import torch.nn as nn

from fan_stl.stl.eval_rule import PUBLISHED_RULE, TRAINING_RULE, apply_eval_rule, scored_with


def test_apply_and_restore_the_eval_rule():
    model = timm.create_model('fan_t_hybrid_tl', num_classes=3, depth=1, stem_depths=(1, 1))
    assert model.fuse_token_logits and (TRAINING_RULE, PUBLISHED_RULE) == ('cls', 'fused')
    with scored_with(model, 'cls'):
        assert not model.fuse_token_logits
    assert model.fuse_token_logits  # the model's own (inference) rule is back
    assert apply_eval_rule(model, 'cls') is True and not model.fuse_token_logits
    assert apply_eval_rule(nn.Linear(2, 2), 'fused') is None  # no token head: left as it is
    with pytest.raises(ValueError, match="Unknown eval rule 'max'"):
        apply_eval_rule(model, 'max')
