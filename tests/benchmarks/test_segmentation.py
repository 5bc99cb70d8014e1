"""benchmarks/segmentation.py at toy size on a generated CamVid tree: the table printed, RESULTS.md only with
--record (then appended), and the error without data."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import checkout_env
from tests.segmentation.camvid_helpers import make_camvid

pytest.importorskip('segmentation_models_pytorch', reason='the benchmark needs the seg extra: pip install -e ".[seg]"')
pytest.importorskip('imagecorruptions', reason='the benchmark needs the robustness extra')
BENCHMARKS = Path(__file__).resolve().parents[2] / 'benchmarks'


def test_table_is_printed_and_recorded_only_when_asked(tmp_path):
    for name in ('segmentation.py', 'throughput.py'):  # a copy: its RESULTS.md is the one beside it, in tmp_path
        shutil.copyfile(BENCHMARKS / name, tmp_path / name)
    data = tmp_path / 'camvid'
    make_camvid(data, 'train', count=4, size=(32, 64))
    make_camvid(data, 'test', count=2, size=(32, 64), seed=1)
    results = tmp_path / 'RESULTS.md'
    results.write_text('# earlier results\n')
    run = [sys.executable, str(tmp_path / 'segmentation.py'), '--data', str(data), '--out', str(tmp_path / 'out'),
           '--size', '32', '64', '--epochs', '1', '--batch-size', '2', '--corruptions', 'fog', '--severities', '2',
           '--threads', '1']
    proc = subprocess.run(run, capture_output=True, text=True, timeout=600, env=checkout_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '| fan_tiny_8_p4_hybrid | scratch |' in proc.stdout and '| resnet18 | scratch |' in proc.stdout
    assert results.read_text() == '# earlier results\n'
    assert sorted(p.name for p in (tmp_path / 'out').glob('*.json')) == ['unet_fan_tiny_8_p4_hybrid.json',
                                                                       'unet_resnet18.json']
    proc = subprocess.run(run + ['--record'], capture_output=True, text=True, timeout=600, env=checkout_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = results.read_text()
    assert text.startswith('# earlier results\n')
    assert '## segmentation.py (cpu): fan_tiny_8_p4_hybrid vs resnet18' in text
    assert 'load average' in text and 'what it can and cannot show' in text and list(tmp_path.glob('.*.tmp')) == []


def test_without_data_one_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / 'segmentation.py'), '--data', str(tmp_path / 'none')],
                          capture_output=True, text=True, timeout=300, env=checkout_env())
    assert proc.returncode == 1 and 'error: no CamVid at' in proc.stderr
