"""`python -m fan_stl list`: every model with its parameters, GMACs, token head and default weight tag."""
import timm

from fan_stl.cli import main
from fan_stl.commands.list_models import model_summary


def test_list_prints_every_fan_model(capsys):
    assert main(['list']) == 0
    out = capsys.readouterr().out
    for name in timm.list_models('fan*'):
        assert name in out


def test_summary_counts_parameters_and_macs_and_marks_the_default_tag():
    row = model_summary('fan_small_12_p4_hybrid')
    assert round(row['params_m'] * 1e6) == 26_117_944
    assert 6.5 < row['gmacs'] < 7.5 and not row['token_head']
    stl = model_summary('fan_l_hybrid_stl')
    assert stl['token_head'] and stl['pretrained_tags'] == ['in1k*']
    assert model_summary('fan_large_16_p4_hybrid', img_size=448)['gmacs'] > 4 * model_summary(
        'fan_large_16_p4_hybrid')['gmacs'] * 0.95


def test_unmatched_filter_is_a_clear_failure(capsys):
    assert main(['list', 'resnet*']) == 1
    assert "No FAN model matches 'resnet*'" in capsys.readouterr().out
