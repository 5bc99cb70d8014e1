"""`python -m fan_stl corrupt` and `python -m fan_stl eval` end to end on two real images, and their error paths."""
import json
import shutil

import pytest
import timm
import torch

from fan_stl.cli import main
from fan_stl.commands.evaluate import create_model

pytest.importorskip('imagecorruptions', reason='needs the robustness extra: pip install "fan_stl[robustness]"')


@pytest.fixture
def two_images(imagenette_root, tmp_path):
    src = tmp_path / 'src'
    for class_dir in sorted((imagenette_root / 'val').iterdir())[:2]:
        (src / class_dir.name).mkdir(parents=True)
        shutil.copy(sorted(class_dir.iterdir())[0], src / class_dir.name)
    return src


def test_corrupt_then_eval_with_a_checkpoint(two_images, tmp_path, capsys):
    dst = tmp_path / 'c'
    assert main(['corrupt', str(two_images), str(dst), '--corruptions', 'fog', 'saturate',
                 '--severities', '1', '2', '3', '4', '5']) == 0
    assert '2 source images: wrote 20 corrupted files, 0 already there' in capsys.readouterr().out

    model = timm.create_model('fan_t_hybrid_stl', num_classes=2)
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'tiny.pth')
    out = tmp_path / 'out'
    argv = ['eval', 'fan_t_hybrid_stl', '--checkpoint', str(tmp_path / 'tiny.pth'), '--num-classes', '2',
            '--img-size', '64', '--workers', '0', '--batch-size', '2', '--data', str(two_images),
            '--imagenet-c', str(dst), '--out', str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert 'fan_t_hybrid_stl-tiny' in printed and 'saturate*' in printed and 'C-acc (15)' in printed
    results = json.loads((out / 'fan_t_hybrid_stl-tiny.json').read_text())
    assert sorted(results['imagenet_c']['cells']) == ['fog', 'saturate'] and results['clean']['num_images'] == 2
    assert results['identity']['data_config']['interpolation'] == 'bicubic'
    assert results['identity']['data_config']['crop_pct'] == 1.0
    assert {p.name for p in out.iterdir()} >= {'summary.csv', 'cells.csv', 'corruption_errors.png'}

    # the checkpoint's weights are what was evaluated, not a fresh random initialisation
    loaded = create_model('fan_t_hybrid_stl', pretrained=False, checkpoint=str(tmp_path / 'tiny.pth'), num_classes=2)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_eval_errors_are_one_line_messages(two_images, tmp_path, capsys):
    base = ['--out', str(tmp_path / 'out'), '--workers', '0']
    assert main(['eval', 'test_vit', '--num-classes', '3', '--data', str(two_images)] + base) == 1
    assert 'the dataset has 2 classes' in capsys.readouterr().err
    assert main(['eval', 'test_vit', '--num-classes', '2', '--imagenet-c', str(two_images)] + base) == 1
    assert 'looks like a plain ImageFolder' in capsys.readouterr().err
    assert main(['eval', 'test_vit', '--num-classes', '2', '--imagenet-a', str(two_images)] + base) == 1
    assert 'imagenet_a is scored on the 1000-class ImageNet head' in capsys.readouterr().err
    assert main(['eval', 'test_vit', '--data', str(two_images), '--checkpoint', 'a', '--checkpoint', 'b'] + base) == 1
    assert 'one --checkpoint per model' in capsys.readouterr().err
    assert main(['eval', 'test_vit'] + base) == 2
    assert main(['corrupt', str(two_images), str(tmp_path / 'x'), '--corruptions', 'fogg']) == 1
    assert 'unknown corruption(s) fogg' in capsys.readouterr().err
