"""benchmarks/corruption_speed.py and corruption_agreement.py: a tiny run of each, the aggregate rows, and the
accuracy comparison of two eval results files."""
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip('imagecorruptions', reason='needs the robustness extra: pip install "fan_stl[robustness]"')
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))

import corruption_agreement  # noqa: E402
import corruption_speed  # noqa: E402


def test_speed_table_sums_seconds_per_image_into_the_aggregates():
    rows = {c: {'reference': 0.01, 'cpu': 0.002} for c in corruption_speed.STANDARD_CORRUPTIONS}
    table = corruption_speed.format_table(rows, ['cpu'])
    aggregate = next(line for line in table.splitlines() if 'aggregate, 15 standard' in line)
    assert '| 6.7 | 33.3 | 5.0x (2.5x) |' in aggregate  # 15 x 0.01 s -> 6.7 img/s; 15 x 0.002 s -> 33.3 img/s
    assert 'all 19' not in table  # only when all 19 were measured


def test_tiny_speed_and_agreement_runs(imagenette_root, capsys):
    data = str(imagenette_root / 'val')
    assert corruption_speed.main(['--data', data, '--images', '2', '--reference-images', '1', '--size', '48',
                                  '--corruptions', 'contrast', 'fog', '--severities', '2', '--repeats', '1',
                                  '--batch-size', '2', '--no-cuda']) == 0
    out = capsys.readouterr().out
    assert '| contrast |' in out and '| fog |' in out
    assert corruption_agreement.main(['--data', data, '--images', '2', '--size', '48', '--corruptions', 'brightness',
                                      '--severities', '1']) == 0
    assert '| brightness | exact | 0.0' in capsys.readouterr().out


def _results(path: Path, backend: str, top1: float) -> Path:
    cells = {'fog': {'1': {'top1': top1, 'num_images': 50}, '2': {'top1': 40.0, 'num_images': 50}}}
    path.write_text(json.dumps({'imagenet_c': {'on_the_fly': {'backend': backend}, 'cells': cells}}))
    return path


def test_accuracy_table_compares_cells_and_checks_the_backends(tmp_path):
    ours, ref = _results(tmp_path / 't.json', 'torch', 52.0), _results(tmp_path / 'r.json', 'imagecorruptions', 50.0)
    seed = _results(tmp_path / 's.json', 'imagecorruptions', 49.0)
    table = corruption_agreement.accuracy_table(ours, ref, seed)
    assert '| fog | 46.0 | 45.0 | +2.0 / +1.00 | -1.0 / -0.50 |' in table and 'one image = 2.00 points' in table
    assert '50% of cells within 1 point' in table and '100% of cells within 1 point' in table
    with pytest.raises(ValueError, match='the torch file first'):
        corruption_agreement.accuracy_table(ref, ours)
