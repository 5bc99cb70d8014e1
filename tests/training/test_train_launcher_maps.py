"""The `maps` label source through the train.py launcher: its option errors before any work, and (with
FAN_STL_TIMM_TRAIN pointing to timm's train.py and the real images present) `fan_stl label` then a stock train.py STL
run from the maps at 64 px, with and without Mixup / CutMix."""
import subprocess
import sys

import pytest

from tests.conftest import CHECKOUT, checkout_env
from tests.maps_helpers import sharp_checkpoint
from tests.training.test_train_launcher import _checkpoint, _error, _run, _subset, needs_train_py


def test_maps_option_errors(capsys, tmp_path):
    stl = ['--timm-train', 'x.py', '--stage', 'stl', '--label-source', 'maps']
    assert '--label-source maps needs the maps folder: --label-maps MAPS/' in _error(capsys, stl)
    assert 'has no index.json' in _error(capsys, stl + ['--label-maps', str(tmp_path)])


@needs_train_py
@pytest.mark.parametrize('mixing', [[], ['--mixup', '0.8', '--cutmix', '1.0']])
def test_stock_train_py_from_label_maps(imagenette_root, tmp_path, mixing):
    data = _subset(imagenette_root, tmp_path / 'data', per_class=8)
    teacher = sharp_checkpoint(tmp_path / 'resnet10t.pth.tar', 'resnet10t')
    label = subprocess.run(
        [sys.executable, '-m', 'fan_stl', 'label', str(data), '--teacher', str(teacher), '--teacher-model',
         'resnet10t', '--out', str(tmp_path / 'maps'), '--img-size', '128', '--workers', '0', '--no-progress'],
        env=checkout_env(), cwd=CHECKOUT, capture_output=True, text=True, timeout=600)
    assert label.returncode == 0, label.stderr[-2000:]
    assert '24 images: top-3 maps on a 4x4 grid' in label.stdout
    proc = _run('--stage', 'stl', '--label-source', 'maps', '--label-maps', str(tmp_path / 'maps'),
                '--token-label-mode', 'topk', '--', '--data-dir', str(data), '--num-classes', '3', '--img-size', '64',
                '-b', '4', '--epochs', '1', '--workers', '0', '--device', 'cpu', '--output', str(tmp_path / 'out'),
                '--log-interval', '1', '--model', 'fan_t_hybrid_stl', '--experiment', 'maps', *mixing)
    args = _checkpoint(tmp_path / 'out' / 'maps' / 'last.pth.tar')['args']
    assert args.stl['label_source'] == 'maps' and args.stl['label_maps'] == str(tmp_path / 'maps')
    assert 'STLTask' in proc.stdout + proc.stderr and 'Train: 0 [   5/6' in proc.stdout + proc.stderr
