"""The robust-training ablation's smoke mode runs every arm end to end (a pipeline check, not a result)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_runs_every_arm(tmp_path):
    proc = subprocess.run(
        [sys.executable, 'robust_training_ablation.py', '--smoke', '--quiet', '--out', str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=ROOT / 'benchmarks',
        env={**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    for arm in ('stl_jsd', 'stl_pixmix', 'stl_prime', 'stl_randconv', 'stl_soft'):
        assert f'| {arm}' in proc.stdout
    assert (tmp_path / 'smoke' / 'clean_and_mce.png').is_file()
