"""STLConfig: one declaration per option; the launcher's flags are generated from it."""
import argparse
from dataclasses import fields

import pytest

from fan_stl.stl.config import STLConfig
from fan_stl.training.train_launcher import build_parser


def test_launcher_flags_and_config_fields_agree():
    parser = build_parser()
    flags = {a.dest: a for a in parser._actions if a.dest not in ('help', 'timm_train')}
    assert set(flags) == {f.name for f in fields(STLConfig)}
    for f in fields(STLConfig):
        assert flags[f.name].default == f.default, f.name
    args = parser.parse_args(['--timm-train', 't.py', '--stage', 'tl', '--token-label-topk', '3', '--follow-mixing',
                              '--token-label-smoothing', '0.2'])
    config = STLConfig.from_namespace(args)
    assert (config.stage, config.token_label_topk, config.follow_mixing, config.token_label_smoothing) == (
        'tl', 3, True, 0.2)


def test_token_smoothing_follows_the_image_smoothing_unless_set():
    assert STLConfig(stage='tl').token_smoothing(0.2) == 0.2
    assert STLConfig(stage='tl', token_label_smoothing=0.).token_smoothing(0.2) == 0.


def test_invalid_configs_are_named():
    with pytest.raises(ValueError, match='needs a teacher'):
        STLConfig(stage='stl')
    with pytest.raises(ValueError, match='only used by stage stl'):
        STLConfig(stage='tl', teacher='x')
    with pytest.raises(ValueError, match='token_label_mode'):
        STLConfig(stage='tl', token_label_mode='bogus')
    assert STLConfig(stage='tl').to_dict()['eval_rule'] == 'cls'
    assert isinstance(STLConfig.from_namespace(argparse.Namespace(**STLConfig(stage='tl').to_dict())), STLConfig)
