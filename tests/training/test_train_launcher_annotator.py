"""The `annotator` label source through the train.py launcher: its option errors before any work, and (with
FAN_STL_TIMM_TRAIN pointing to timm's train.py and the real images present) a stock train.py STL run taught by a
randomly initialised timm CNN saved as a checkpoint."""
import pytest
import timm
import torch

from tests.training.test_train_launcher import _checkpoint, _error, _run, _subset, needs_train_py


def test_annotator_option_errors(capsys, tmp_path):
    stl = ['--timm-train', 'x.py', '--stage', 'stl', '--label-source', 'annotator']
    assert '--teacher pretrained needs the annotator\'s name: --teacher-model' in _error(
        capsys, stl + ['--teacher', 'pretrained'])
    assert 'no_such_cnn\' is neither an existing checkpoint file nor a registered timm model' in _error(
        capsys, stl + ['--teacher', 'pretrained', '--teacher-model', 'no_such_cnn'])
    checkpoint = tmp_path / 'cnn.pth'
    checkpoint.write_bytes(b'')
    assert 'needs its architecture: pass --teacher-model' in _error(capsys, stl + ['--teacher', str(checkpoint)])


@needs_train_py
def test_stock_train_py_with_a_cnn_annotator(imagenette_root, tmp_path):
    data = _subset(imagenette_root, tmp_path / 'data', per_class=8)
    teacher = tmp_path / 'resnet10t.pth.tar'
    torch.save({'state_dict': timm.create_model('resnet10t', num_classes=3).state_dict()}, teacher)
    proc = _run('--stage', 'stl', '--label-source', 'annotator', '--teacher', str(teacher), '--teacher-model',
                'resnet10t', '--', '--data-dir', str(data), '--num-classes', '3', '--img-size', '64', '-b', '4',
                '--epochs', '1', '--workers', '0', '--device', 'cpu', '--output', str(tmp_path / 'out'),
                '--mixup', '0.8', '--cutmix', '1.0', '--log-interval', '1', '--model', 'fan_t_hybrid_stl',
                '--experiment', 'annotator')
    print(proc.stdout[-2000:], proc.stderr[-2000:])
    args = _checkpoint(tmp_path / 'out' / 'annotator' / 'last.pth.tar')['args']
    assert args.stl['label_source'] == 'annotator' and args.stl['teacher_model'] == 'resnet10t'
    assert 'STLTask' in proc.stdout + proc.stderr and 'Train: 0 [   5/6' in proc.stdout + proc.stderr
