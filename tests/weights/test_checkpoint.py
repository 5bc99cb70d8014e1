"""The one checkpoint loader: a head of another class count, a checkpoint of another architecture and a missing file
give the same messages through `load_checkpoint`, `eval --checkpoint` and `python -m fan_stl.validate`."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import timm

from fan_stl.cli import main
from fan_stl.weights.checkpoint import load_checkpoint
from fan_stl.weights.files import PretrainedWeightsError, WeightsMismatchError

ROOT = Path(__file__).resolve().parents[2]
TIMM_VALIDATE = os.environ.get('FAN_STL_TIMM_VALIDATE')


def _save(name, num_classes, path):
    torch.save(timm.create_model(name, num_classes=num_classes).state_dict(), path)
    return path


def test_head_only_mismatch_names_the_class_count(tmp_path):
    model = timm.create_model('fan_t_hybrid_stl', num_classes=3)
    with pytest.raises(WeightsMismatchError) as info:
        load_checkpoint(model, _save('fan_t_hybrid_stl', 5, tmp_path / 'five.pth'))
    assert 'has a 5-class head' in str(info.value) and 'num_classes=5' in str(info.value)
    assert '--num-classes 5' in info.value.cli_message and info.value.checkpoint_classes == 5


def test_other_architecture_is_named_even_when_the_heads_differ(tmp_path):
    """ with --num-classes 3 a checkpoint of another architecture was answered 'pass --num-classes 1000'. """
    model = timm.create_model('fan_t_hybrid_stl', num_classes=3)
    with pytest.raises(WeightsMismatchError) as info:
        load_checkpoint(model, _save('fan_tiny_12_p16_224', 1000, tmp_path / 'vit.pth'))
    message = info.value.cli_message
    assert 'belongs to another architecture' in message and 'fits: fan_tiny_12_p16_224' in message
    assert 'pass --num-classes' not in message


def _data(root: Path) -> Path:
    for cls in ('a', 'b', 'c'):
        (root / cls).mkdir(parents=True)
        Image.new('RGB', (32, 32), (50, 100, 150)).save(root / cls / 'x.png')
    return root


def test_eval_names_the_other_architecture(tmp_path, capsys):
    path = _save('fan_tiny_12_p16_224', 1000, tmp_path / 'vit.pth')
    code = main(['eval', 'fan_t_hybrid_stl', '--num-classes', '3', '--checkpoint', str(path), '--data',
                 str(_data(tmp_path / 'data')), '--out', str(tmp_path / 'out'), '--img-size', '32', '--workers', '0'])
    err = capsys.readouterr().err
    assert code == 1 and 'belongs to another architecture' in err and 'fan_tiny_12_p16_224' in err
    assert 'pass --num-classes 1000' not in err


def _validate(tmp_path, *args):
    return subprocess.run(
        [sys.executable, '-m', 'fan_stl.validate', '--timm-validate', TIMM_VALIDATE, '--', str(_data(tmp_path / 'd')),
         '--model', 'fan_t_hybrid_stl', '--num-classes', '3', '--img-size', '32', '--device', 'cpu', '--workers', '0',
         '-b', '2', *args], capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.mark.skipif(not (TIMM_VALIDATE and os.path.isfile(TIMM_VALIDATE)),
                    reason="set FAN_STL_TIMM_VALIDATE to timm's validate.py")
@pytest.mark.parametrize('case', ['missing', 'head', 'architecture'])
def test_validate_gives_the_messages_of_eval(tmp_path, case):
    """ timm's raw FileNotFoundError and size-mismatch dump became eval's messages. """
    path = {'missing': tmp_path / 'absent.pth', 'head': _save('fan_t_hybrid_stl', 5, tmp_path / 'five.pth'),
            'architecture': _save('fan_tiny_12_p16_224', 1000, tmp_path / 'vit.pth')}[case]
    result = _validate(tmp_path, '--checkpoint', str(path))
    expected = {'missing': 'does not exist or is not a file', 'head': 'pass --num-classes 5',
                'architecture': 'belongs to another architecture'}[case]
    assert result.returncode == 1 and expected in result.stderr, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr and 'size mismatch' not in result.stderr
    python = expected.replace('--num-classes ', 'num_classes=')  # the Python spelling of the same fix
    with pytest.raises(PretrainedWeightsError, match=python):  # the same words as the Python loader
        load_checkpoint(timm.create_model('fan_t_hybrid_stl', num_classes=3), path)
