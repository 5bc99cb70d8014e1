"""benchmarks/stl_step.py at toy size: the table on stdout, RESULTS.md touched only with --record (then appended)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / 'benchmarks'
ENV = dict(os.environ, PYTHONPATH=str(BENCHMARKS.parent))  # the copies import this checkout's fan_stl
TOY = ['--model', 'fan_t_hybrid_stl', '--batch-size', '2', '--img-size', '32', '--iters', '1', '--warmup', '0',
       '--num-classes', '4', '--device', 'cpu', '--methods', 'maskmix+pal']


def test_table_is_printed_and_recorded_only_when_asked(tmp_path):
    for name in ('stl_step.py', 'throughput.py'):  # a copy: its RESULTS.md is the one beside it, in tmp_path
        shutil.copyfile(BENCHMARKS / name, tmp_path / name)
    results = tmp_path / 'RESULTS.md'
    results.write_text('# earlier results\n')
    run = [sys.executable, str(tmp_path / 'stl_step.py'), *TOY]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '| STL + maskmix+pal |' in proc.stdout and results.read_text() == '# earlier results\n'
    proc = subprocess.run(run + ['--record'], capture_output=True, text=True, timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = results.read_text()
    assert text.startswith('# earlier results\n') and '## stl_step: fan_t_hybrid_stl' in text
    assert '| STL + maskmix+pal |' in text and list(tmp_path.glob('.*.tmp')) == []


def test_maps_rows_are_printed(tmp_path):
    for name in ('stl_step.py', 'throughput.py'):
        shutil.copyfile(BENCHMARKS / name, tmp_path / name)
    toy = TOY[:-2] + ['--maps', '--maps-images', '2']
    proc = subprocess.run([sys.executable, str(tmp_path / 'stl_step.py'), *toy], capture_output=True, text=True,
                          timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '| STL step from label maps |' in proc.stdout and 'labelling throughput' in proc.stdout
    assert 'bytes per image' in proc.stdout and not (tmp_path / 'RESULTS.md').exists()
