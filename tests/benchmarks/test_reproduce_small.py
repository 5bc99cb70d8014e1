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
