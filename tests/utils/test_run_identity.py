"""The one "stored run vs this run" refusal (`fan_stl.utils.run_identity`)."""
import pytest

from fan_stl.utils.run_identity import differing_fields, refuse_other_run

STORED = {'data_dir': '/data/' + 'x' * 200, 'train': {'lr': 2e-4, 'epochs': 14}, 'seed': 0, 'amp': None}


def test_the_same_identity_passes():
    refuse_other_run(STORED, dict(STORED), 'out holds a run with other settings', 'use --overwrite')


def test_differing_fields_are_named_first_nested_by_dotted_key():
    """ the refusal cut the settings off before the field that differed; it now names the fields first. """
    now = {**STORED, 'train': {'lr': 1e-3, 'epochs': 14}, 'amp': 'bfloat16'}
    assert differing_fields(STORED, now) == ['amp', 'train.lr']
    with pytest.raises(KeyError) as info:
        refuse_other_run(STORED, now, 'out holds a run with other settings', 'use --overwrite', error=KeyError)
    message = info.value.args[0]
    assert message.startswith('out holds a run with other settings: amp, train.lr differ (amp: null there, '
                              'bfloat16 now; train.lr: 0.0002 there, 0.001 now); use --overwrite')


def test_only_the_given_keys_count_and_long_values_are_shortened():
    now = {**STORED, 'seed': 1, 'data_dir': '/data/' + 'y' * 200}
    with pytest.raises(ValueError, match=r'^f: seed differs \(seed: 0 there, 1 now\); fix$'):
        refuse_other_run(STORED, now, 'f', 'fix', keys=('seed', 'train'))
    with pytest.raises(ValueError, match=r'data_dir: /data/x{51}\.\.\. there, /data/y{51}\.\.\. now'):
        refuse_other_run(STORED, now, 'f', 'fix')
