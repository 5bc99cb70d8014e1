"""`eval --checkpoint` evaluates at the input size the checkpoint records it was trained at (timm train.py and engine
`args`, or the `config.json` beside a `.safetensors`), says so, and `--img-size` still overrides it."""
import argparse
import json

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from fan_stl.cli import main
from fan_stl.commands.evaluate import checkpoint_input_size


@pytest.fixture
def images(tmp_path):
    """ 2 classes x 2 random 48 px images (seeded). """
    rng = np.random.default_rng(0)
    for c in ('a', 'b'):
        (tmp_path / 'data' / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(tmp_path / 'data' / c / f'{i}.png')
    return tmp_path / 'data'


@pytest.mark.parametrize('args, expected', [
    (dict(img_size=None, input_size=[3, 64, 64]), (64, "the checkpoint's training args (input_size)")),  # train.py
    (dict(img_size=32, input_size=None), (32, "the checkpoint's training args (img_size)")),  # fan_stl engine
    (dict(img_size=None, input_size=None), None),  # nothing recorded: the model's own size
])
def test_the_training_args_of_a_checkpoint_give_its_size(tmp_path, args, expected):
    path = tmp_path / 'checkpoint.pth.tar'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'args': argparse.Namespace(**args)}, path)
    assert checkpoint_input_size(str(path)) == expected


def test_a_safetensors_file_takes_the_size_of_the_config_beside_it(tmp_path):
    save_file({'w': torch.zeros(1)}, tmp_path / 'model.safetensors')
    assert checkpoint_input_size(str(tmp_path / 'model.safetensors')) is None
    (tmp_path / 'config.json').write_text(json.dumps({'pretrained_cfg': {'input_size': [3, 48, 48]}}))
    assert checkpoint_input_size(str(tmp_path / 'model.safetensors')) == (48, str(tmp_path / 'config.json'))


def test_eval_runs_at_the_trained_size_and_says_so(images, tmp_path, capsys):
    model = timm.create_model('fan_t_hybrid_stl', num_classes=2)
    path = tmp_path / 'last.pth.tar'
    torch.save({'state_dict': model.state_dict(), 'args': argparse.Namespace(img_size=None, input_size=[3, 32, 32])},
               path)
    argv = ['eval', 'fan_t_hybrid_stl', '--num-classes', '2', '--checkpoint', str(path), '--data', str(images),
            '--workers', '0']
    assert main([*argv, '--out', str(tmp_path / 'trained')]) == 0
    assert 'input size 32 px, as trained' in capsys.readouterr().err
    stored = json.loads((tmp_path / 'trained' / 'fan_t_hybrid_stl-last.json').read_text())
    assert stored['identity']['data_config']['input_size'] == [3, 32, 32]  # not the model's default 224

    assert main([*argv, '--img-size', '48', '--out', str(tmp_path / 'asked')]) == 0
    assert 'as trained' not in capsys.readouterr().err
    stored = json.loads((tmp_path / 'asked' / 'fan_t_hybrid_stl-last.json').read_text())
    assert stored['identity']['data_config']['input_size'] == [3, 48, 48]
