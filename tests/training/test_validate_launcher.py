"""`python -m fan_stl.validate`: timm's stock validate.py on fan models; with the real scripts
(FAN_STL_TIMM_TRAIN=.../train.py, validate.py beside it or FAN_STL_TIMM_VALIDATE) it reproduces train.py's own
evaluation of a checkpoint."""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fan_stl.training.validate_launcher import main
from tests.training.test_train_launcher import _subset

ROOT = Path(__file__).resolve().parents[2]
TIMM_TRAIN = os.environ.get('FAN_STL_TIMM_TRAIN')
TIMM_VALIDATE = os.environ.get('FAN_STL_TIMM_VALIDATE') or (
    str(Path(TIMM_TRAIN).with_name('validate.py')) if TIMM_TRAIN else None)


def test_option_errors(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(['--timm-validate', str(tmp_path / 'validate.py')])
    assert 'not in the timm wheel' in capsys.readouterr().err
    other = tmp_path / 'other.py'
    other.write_text('x = 1\n')
    with pytest.raises(SystemExit):
        main(['--timm-validate', str(other)])
    assert "is not a supported validate.py" in capsys.readouterr().err


@pytest.mark.skipif(not (TIMM_TRAIN and TIMM_VALIDATE and os.path.isfile(TIMM_VALIDATE)),
                    reason='set FAN_STL_TIMM_TRAIN (validate.py beside it) or FAN_STL_TIMM_VALIDATE')
def test_reproduces_train_py_evaluation_of_its_checkpoint(imagenette_root, tmp_path):
    data = _subset(imagenette_root, tmp_path / 'data', per_class=4)
    train = subprocess.run(
        [sys.executable, '-m', 'fan_stl.train', '--timm-train', TIMM_TRAIN, '--stage', 'tl', '--', '--data-dir',
         str(data), '--num-classes', '3', '--img-size', '64', '-b', '4', '--epochs', '1', '--workers', '0',
         '--device', 'cpu', '--model', 'fan_t_hybrid_tl', '--model-ema', '--model-ema-decay', '0.9', '--output',
         str(tmp_path / 'out'), '--experiment', 'tl'],
        capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert train.returncode == 0, train.stderr[-3000:]
    checkpoint = tmp_path / 'out' / 'tl' / 'model_best.pth.tar'
    with torch.serialization.safe_globals([argparse.Namespace]):
        metric = torch.load(checkpoint, map_location='cpu', weights_only=True)['metric']
    results = tmp_path / 'results.json'
    validate = subprocess.run(
        [sys.executable, '-m', 'fan_stl.validate', '--timm-validate', TIMM_VALIDATE, '--eval-rule', 'cls', '--',
         str(data), '--split', 'val', '--model', 'fan_t_hybrid_tl', '--num-classes', '3', '--img-size', '64',
         '--checkpoint', str(checkpoint), '--use-ema', '--device', 'cpu', '--workers', '0', '-b', '4',
         '--results-file', str(results), '--results-format', 'json'],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert validate.returncode == 0, validate.stderr[-3000:]
    top1 = json.loads(results.read_text())['top1']
    assert top1 == pytest.approx(metric, abs=1e-3)


FAKE_VALIDATE = '''
import argparse

def create_model(*args, **kwargs):
    raise AssertionError('not called')

def load_checkpoint(*args, **kwargs):
    raise AssertionError('not called')

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('data')
    parser.add_argument('--device', default='cuda')  # validate.py's own default
    print('device', parser.parse_args().device)
'''


def test_without_a_gpu_the_device_is_cpu_unless_given(tmp_path, monkeypatch, capsys):
    script = tmp_path / 'validate.py'
    script.write_text(FAKE_VALIDATE)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert main(['--timm-validate', str(script), '--', str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == 'device cpu'
    for given in (['--device', 'meta'], ['--device=meta']):
        assert main(['--timm-validate', str(script), '--', str(tmp_path), *given]) == 0
        assert capsys.readouterr().out.strip() == 'device meta'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert main(['--timm-validate', str(script), '--', str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == 'device cuda'
