"""`python -m fan_stl list`: every model with its parameters, GMACs, token head and default weight tag."""
import pytest
import timm

from fan_stl.cli import main
from fan_stl.commands import list_models
from fan_stl.commands.list_models import model_summary


def test_list_prints_every_fan_model(capsys):
    assert main(['list']) == 0
    out = capsys.readouterr().out
    for name in timm.list_models('fan*'):
        assert name in out


def test_rows_are_printed_as_they_are_computed(capsys, monkeypatch):
    """ The header and each finished row are out before the next row is computed. """
    computed = []

    def summary_then_stop(name, img_size):
        if computed:
            raise KeyboardInterrupt  # the user gives up during the second row
        computed.append(name)
        return model_summary(name, img_size)

    monkeypatch.setattr(list_models, 'model_summary', summary_then_stop)
    with pytest.raises(KeyboardInterrupt):
        main(['list', 'fan_t*'])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == list_models.HEADER and lines[2].startswith(computed[0] + ' ')


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
    assert "No FAN model matches 'resnet*'" in capsys.readouterr().err


@pytest.mark.parametrize('size', ['100', '0', 'big'])
def test_img_size_must_be_a_positive_multiple_of_16(size, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['list', '--img-size', size])
    assert exit_info.value.code == 2
    assert 'argument --img-size' in capsys.readouterr().err


def test_list_says_where_each_tag_can_be_had_without_any_request(tmp_path, monkeypatch, capsys):
    """ `list` showed tags without saying which are reachable now; it makes no network request. """
    import socket

    from huggingface_hub import constants as hf_constants

    from tests.weights.helpers import add_to_hf_cache

    cache = tmp_path / 'hf'
    monkeypatch.setattr(hf_constants, 'HF_HUB_CACHE', str(cache))
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.delenv('FAN_STL_OFFLINE', raising=False)
    monkeypatch.setattr(__import__('torch').hub, '_hub_dir', str(tmp_path / 'torch'))

    def refuse(*args, **kwargs):
        raise AssertionError('list must not use the network')

    monkeypatch.setattr(socket, 'create_connection', refuse)
    monkeypatch.setattr(socket, 'getaddrinfo', refuse)
    folder = tmp_path / 'copy'
    folder.mkdir()
    (folder / 'model.safetensors').write_bytes(b'x')
    add_to_hf_cache(cache, 'fan-stl/fan_t_hybrid_stl.in1k', folder)
    assert main(['list', 'fan_t*']) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:] if line.startswith('fan_')}
    assert 'in1k* (cached Hub copy)' in rows['fan_t_hybrid_stl']
    assert "in1k* (needs network: Hub, else authors' Drive)" in rows['fan_t_hybrid_tl']
    monkeypatch.setenv('FAN_STL_OFFLINE', '1')
    assert model_summary('fan_t_hybrid_tl')['availability'] == ['not cached, offline']
