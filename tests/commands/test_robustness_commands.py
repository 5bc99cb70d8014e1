"""`python -m fan_stl corrupt` and `python -m fan_stl eval` end to end on two real images, and their error paths."""
import json
import shutil

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from fan_stl.cli import main
from fan_stl.commands.evaluate import create_model, unique_labels

pytest.importorskip('imagecorruptions', reason='needs the robustness extra: pip install -e ".[robustness]"')


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


@pytest.fixture
def noise_images(tmp_path):
    """ 2 classes x 3 random 48 px images (seeded): an ImageFolder that needs no shared data. """
    rng = np.random.default_rng(0)
    for c in ('a', 'b'):
        (tmp_path / 'noise' / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(tmp_path / 'noise' / c / f'{i}.png')
    return tmp_path / 'noise'


def save_checkpoint(path, num_classes=2):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(timm.create_model('test_vit', num_classes=num_classes).state_dict(), path)
    return str(path)


FAST = ['--img-size', '32', '--workers', '0', '--batch-size', '4']


def test_out_is_checked_before_any_work(noise_images, tmp_path, capsys, monkeypatch):
    """ an unwritable --out fails at once, not after the clean pass. """
    monkeypatch.setattr('fan_stl.commands.evaluate.create_model', lambda *a, **k: pytest.fail('model was built'))
    (tmp_path / 'a_file').write_text('')
    assert main(['eval', 'test_vit', '--data', str(noise_images), '--out', str(tmp_path / 'a_file' / 'out')]
                + FAST) == 1
    assert 'cannot write results to --out' in capsys.readouterr().err
    assert main(['eval', 'test_vit', '--data', str(noise_images), '--baseline', 'test_vit', '--out',
                 str(tmp_path / 'out')] + FAST) == 2
    assert 'an mCE normaliser needs corruptions' in capsys.readouterr().err


def test_same_named_checkpoints_get_their_own_labels(noise_images, tmp_path, capsys):
    """ run1/last.pth and run2/last.pth in one command must not share a results file. """
    first, second = save_checkpoint(tmp_path / 'run1' / 'last.pth'), save_checkpoint(tmp_path / 'run2' / 'last.pth')
    out = tmp_path / 'out'
    assert main(['eval', 'test_vit', 'test_vit', '--num-classes', '2', '--checkpoint', first, '--checkpoint', second,
                 '--data', str(noise_images), '--out', str(out)] + FAST) == 0
    labels = {json.loads(p.read_text())['model'] for p in out.glob('*.json')}
    assert labels == {'test_vit-run1-last', 'test_vit-run2-last'}
    assert 'test_vit-run1-last' in capsys.readouterr().out


def test_hub_and_local_dir_names_become_safe_file_names():
    """ `local-dir:` / `hf-hub:` names gave nested folders with a colon in the name. """
    labels = unique_labels(['local-dir:/runs/demo/weights/stl-seed0/', 'hf-hub:fan-stl/fan_t_hybrid_stl.in1k',
                            'hf-hub:fan-stl/fan_t_hybrid_stl.in1k'], [None, None, None], pretrained=False)
    assert labels == ['local-dir-stl-seed0', 'hf-hub-fan-stl-fan_t_hybrid_stl.in1k',
                      'hf-hub-fan-stl-fan_t_hybrid_stl.in1k-2']
    assert not any(set(label) & set(':/\\') for label in labels)


def test_head_mismatch_names_the_num_classes_flag(noise_images, tmp_path, capsys):
    """ raw torch 'size mismatch' text becomes the flag to pass. """
    checkpoint = save_checkpoint(tmp_path / 'two.pth', num_classes=2)
    assert main(['eval', 'test_vit', '--checkpoint', checkpoint, '--data', str(noise_images),
                 '--out', str(tmp_path / 'out')] + FAST) == 1
    err = capsys.readouterr().err
    assert 'has a 2-class head' in err and 'pass --num-classes 2' in err and 'size mismatch' not in err


def test_pretrained_failure_names_the_checkpoint_flag(noise_images, tmp_path, capsys):
    """ the CLI's hint is its own --checkpoint, not a Python keyword argument. """
    assert main(['eval', 'test_vit', '--pretrained', '--data', str(noise_images), '--out', str(tmp_path / 'out')]
                + FAST) == 1  # the test session is offline (HF_HUB_OFFLINE=1)
    assert 'pass it with `--checkpoint PATH` instead of --pretrained' in capsys.readouterr().err


def test_on_the_fly_partial_set_with_a_baseline_model(noise_images, tmp_path, capsys):
    """ corruptions made in the loader; a partial set still gets its table and chart, no mCE. """
    base, other = save_checkpoint(tmp_path / 'base.pth'), save_checkpoint(tmp_path / 'other.pth')
    out = tmp_path / 'out'
    argv = ['eval', 'test_vit', 'test_vit', '--num-classes', '2', '--checkpoint', other, '--checkpoint', base,
            '--data', str(noise_images), '--corrupt-on-the-fly', '--corruptions', 'contrast', 'fog',
            '--severities', '3', '--baseline', 'test_vit-base', '--out', str(out)] + FAST
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert 'contrast [sev 3]' in printed and 'fog [sev 3]' in printed
    assert 'mCE, relative mCE and mean corruption accuracy need all 15' in printed
    assert (out / 'corruption_errors.png').read_bytes()[:4] == b'\x89PNG'
    assert not list(noise_images.rglob('*.jpg')) and not (out / 'contrast').exists()
    assert main(argv[:-2] + ['--out', str(out), '--seed', '1']) == 1  # the stored cells are of seed 0
    assert "'seed': 0" in capsys.readouterr().err


def test_corrupt_a_tree_with_the_torch_backend_and_its_errors(two_images, tmp_path, capsys):
    dst = tmp_path / 'c'
    assert main(['corrupt', str(two_images), str(dst), '--tree', '--corruption-backend', 'torch', '--format', 'png',
                 '--corruptions', 'glass_blur', 'spatter', '--severities', '2', '--batch-size', '2']) == 0
    assert '2 source images: wrote 4 corrupted files' in capsys.readouterr().out
    written = sorted(p.relative_to(dst).as_posix() for p in dst.rglob('*.png'))
    assert len(written) == 4 and all(p.count('/') == 3 for p in written)  # <corruption>/<severity>/<class>/<image>
    assert json.loads((dst / 'fan_stl_corruptions.json').read_text())['backend'] == 'torch'
    if not torch.cuda.is_available():
        assert main(['corrupt', str(two_images), str(tmp_path / 'g'), '--corruption-backend', 'torch',
                     '--device', 'cuda']) == 1
        assert 'no usable CUDA GPU; use --device cpu' in capsys.readouterr().err
        assert not (tmp_path / 'g').exists()
