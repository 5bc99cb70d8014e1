"""benchmarks/reproduce_small.py: the lr follows the linear rule in the GPU modes, nothing is recorded unless
asked, and a missing data folder gets a message that says how to get Imagenette."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))

import reproduce_small  # noqa: E402


def test_gpu_modes_scale_the_official_lr_linearly():
    assert reproduce_small.linear_lr(1024) == pytest.approx(2e-3)
    for mode in ('full', 'gpu-fast'):
        train = reproduce_small.MODES[mode]['train']
        assert train['lr'] == pytest.approx(2e-3 * train['batch_size'] / 1024)


def test_records_only_when_asked():
    assert reproduce_small.build_parser().parse_args([]).record is False
    assert reproduce_small.build_parser().parse_args(['--record']).record is True


def test_missing_data_says_how_to_get_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(reproduce_small, 'DATA_CANDIDATES', (tmp_path / 'nowhere',))
    with pytest.raises(SystemExit):
        reproduce_small.main(['--smoke'])
    assert 'imagenette2-160.tgz' in capsys.readouterr().err


def test_the_docstring_says_what_each_gpu_mode_does_with_cooldown_and_ema():
    from fan_stl.training.engine import TrainConfig
    doc = ' '.join(reproduce_small.__doc__.split())
    for mode, cooldown, ema in (('full', 10, 0.999), ('gpu-fast', 0, 0.)):
        train = {k: v for k, v in reproduce_small.MODES[mode]['train'].items()}
        config = TrainConfig.from_options(data_dir='unused', **train)
        assert (config.cooldown_epochs, config.ema_decay) == (cooldown, ema)
    assert '`full` keeps the official 10 cooldown epochs (60 + 10 trained) with EMA decay 0.999' in doc
    assert '`gpu-fast` has no cooldown and no EMA' in doc and 'no cooldown epochs;' not in doc
