"""The robust-training options through timm's real train.py (FAN_STL_TIMM_TRAIN=/path/to/train.py), at 64 px:
--aug-splits / --jsd-loss in stages plain, tl and stl, and every batch augmentation; each run must exit 0 and report
that its term ran (`fan_stl task terms in epoch 1: ...`). Option errors need no train.py."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
import yaml
from PIL import Image

from fan_stl.training.train_launcher import main
from tests.training.test_train_launcher import _subset

ROOT = Path(__file__).resolve().parents[2]
TIMM_TRAIN = os.environ.get('FAN_STL_TIMM_TRAIN')
needs_train_py = pytest.mark.skipif(not TIMM_TRAIN, reason='set FAN_STL_TIMM_TRAIN to the path of timm\'s train.py')

RUNS = {  # name: (STL options, train.py options, the term the task must report)
    'plain-jsd-timm-flags': (['--stage', 'plain'], ['--model', 'resnet10t', '--aug-splits', '3', '--jsd-loss',
                                                    '--aa', 'augmix-m3-w3'], "'jsd': 2"),
    'tl-jsd-tokens': (['--stage', 'tl', '--aug-splits', '2', '--jsd-loss', '--jsd-tokens'],
                      ['--model', 'fan_t_hybrid_tl', '--aa', 'augmix-m3-w3'], "'jsd_with_tokens': 2"),
    'stl-jsd-augmix': (['--stage', 'stl', '--aug-splits', '3', '--jsd-loss', '--jsd-tokens'],
                       ['--model', 'fan_t_hybrid_stl', '--aa', 'augmix-m3-w3'], "'jsd_with_tokens': 2"),
    'stl-jsd-no-prefetcher': (['--stage', 'stl', '--jsd-loss'],
                              ['--model', 'fan_t_hybrid_stl', '--aug-splits', '2', '--no-prefetcher'], "'jsd': 2"),
    'tl-randconv': (['--stage', 'tl', '--batch-augment', 'randconv'], ['--model', 'fan_t_hybrid_tl'],
                    "'RandConv': 2"),
    'stl-pixmix': (['--stage', 'stl', '--batch-augment', 'pixmix'], ['--model', 'fan_t_hybrid_stl'], "'PixMix': 2"),
    'stl-prime': (['--stage', 'stl', '--batch-augment', 'prime'], ['--model', 'fan_t_hybrid_stl'], "'PRIME': 2"),
    'plain-prime-diffeo': (['--stage', 'plain', '--batch-augment', 'prime'], ['--model', 'resnet10t'], "'PRIME': 2"),
    'stl-soft': (['--stage', 'stl', '--batch-augment', 'soft_aug'], ['--model', 'fan_t_hybrid_stl'],
                 "'softened_targets': 2"),
}


def _launch(setup, name, stl_options, train_options):
    root, teacher, common = setup
    if 'stl' in stl_options:
        stl_options = stl_options + ['--teacher', str(teacher), '--teacher-model', 'fan_t_hybrid_tl']
    return subprocess.run([sys.executable, '-m', 'fan_stl.train', '--timm-train', TIMM_TRAIN, *stl_options, '--',
                           *common, *train_options, '--experiment', name],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    from tests.conftest import SHARED_DATA
    if not (SHARED_DATA / 'train').is_dir():
        pytest.skip(f'real-image test data not found at {SHARED_DATA}')
    root = tmp_path_factory.mktemp('robust_train')
    data = _subset(SHARED_DATA, root / 'data', per_class=2)
    teacher = root / 'teacher.pth.tar'
    torch.save({'state_dict': timm.create_model('fan_t_hybrid_tl', num_classes=3).state_dict()}, teacher)
    common = ['--data-dir', str(data), '--num-classes', '3', '--img-size', '64', '-b', '3', '--epochs', '1',
              '--workers', '0', '--device', 'cpu', '--output', str(root / 'out'), '--log-interval', '1',
              '--smoothing', '0.1']
    return root, teacher, common


@needs_train_py
@pytest.mark.parametrize('name', list(RUNS))
def test_robust_options_with_real_timm_train(setup, name):
    root = setup[0]
    stl_options, train_options, term = RUNS[name]
    proc = _launch(setup, name, stl_options, train_options)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert term in proc.stderr, proc.stderr[-2000:]
    written = yaml.safe_load((root / 'out' / name / 'args.yaml').read_text())
    assert written['aug_splits'] == written['stl']['aug_splits']  # timm's flag and the config agree


def test_option_errors_before_training(capsys, tmp_path):
    def error(argv):
        with pytest.raises(SystemExit):
            main(argv)
        return capsys.readouterr().err

    assert "invalid choice: 'cutout'" in error(['--timm-train', 'x.py', '--stage', 'tl', '--batch-augment', 'cutout'])
    assert '--aug-splits 3' in error(['--timm-train', 'x.py', '--stage', 'tl', '--jsd-loss'])
    assert 'spectral,color' in error(['--timm-train', 'x.py', '--stage', 'stl', '--teacher', 'fan_t_hybrid_tl',
                                      '--batch-augment', 'prime', '--prime-primitives', 'spectral,diffeo'])
    assert 'holds no images' in error(['--timm-train', 'x.py', '--stage', 'tl', '--batch-augment', 'pixmix',
                                       '--pixmix-dir', str(tmp_path)])


@needs_train_py
def test_student_data_dir_with_real_timm_train(setup):
    root = setup[0]
    copy = root / 'student'
    for image in (root / 'data' / 'train').rglob('*.jpg'):
        target = copy / 'train' / image.parent.name / (image.stem + '.png')  # a re-encoded copy
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(image).save(target)
    proc = _launch(setup, 'stl-student-dir', ['--stage', 'stl', '--student-data-dir', str(copy)],
                   ['--model', 'fan_t_hybrid_stl'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    next((copy / 'train').rglob('*.png')).unlink()
    proc = _launch(setup, 'stl-student-dir-missing', ['--stage', 'stl', '--student-data-dir', str(copy)],
                   ['--model', 'fan_t_hybrid_stl'])
    assert proc.returncode == 2 and '1 of 6 training images have no same-named copy' in proc.stderr, proc.stderr
