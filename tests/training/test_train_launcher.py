"""The train.py launcher: option errors, the refusal of a train.py it could not patch, the STL options in args.yaml;
both stages against timm's real train.py when FAN_STL_TIMM_TRAIN points to it
(e.g. FAN_STL_TIMM_TRAIN=/path/to/pytorch-image-models/train.py)."""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from fan_stl.training.train_launcher import main

TIMM_TRAIN = os.environ.get('FAN_STL_TIMM_TRAIN')
ROOT = Path(__file__).resolve().parents[2]


def _error(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_option_errors(capsys, tmp_path):
    assert 'needs a teacher' in _error(capsys, ['--timm-train', 'x.py', '--stage', 'stl'])
    assert 'only used by stage stl' in _error(capsys, ['--timm-train', 'x.py', '--stage', 'tl', '--teacher', 'a'])
    assert 'neither a file nor a registered' in _error(
        capsys, ['--timm-train', 'x.py', '--stage', 'stl', '--teacher', 'no_such_model'])
    assert 'not in the timm wheel' in _error(capsys, ['--timm-train', str(tmp_path / 'train.py'), '--stage', 'tl'])
    old = tmp_path / 'legacy_train.py'
    old.write_text('def main():\n    pass\n')
    assert 'Task-based' in _error(capsys, ['--timm-train', str(old), '--stage', 'tl'])


# A miniature of train.py's structure: the names the launcher patches, one training step through the task.
MINI_TRAIN = '''
import argparse, yaml, torch, timm, timm.task
from timm.data import create_dataset, create_loader, Mixup, FastCollateMixup, AugMixDataset
from timm.task import ClassificationTask

def _parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument('--data-dir')
    parser.add_argument('--epochs', type=int, default=1)
    parser.add_argument('--output')
    parser.add_argument('--cutmix', type=float, default=0.)
    args = parser.parse_args()
    args.__dict__.update(dataset='', train_split='train', val_split='val', num_classes=2, smoothing=0.1, mixup=0.,
                         seed=0, model='fan_t_hybrid_tl', grad_accum_steps=1, world_size=1)
    return args, yaml.safe_dump(args.__dict__)

def train_one_epoch(epoch, model, loader, optimizer, args, task=None):
    task(torch.rand(2, 3, 32, 32), torch.tensor([0, 1]))['loss'].backward()

def main():
    args, args_text = _parse_args()
    open(args.output, 'w').write(args_text)
    model = timm.create_model('fan_t_hybrid_tl', num_classes=2, depth=1, stem_depths=(1, 1))
    BEFORE_TASK
    task = TASK_CONSTRUCTION
    train_one_epoch(0, model, None, None, args, task=task)
    print('TRAINED WITH', type(task).__name__)
'''


def _mini_run(tmp_path, construction, stl_options=('--stage', 'tl'), before_task='pass', script_options=()):
    for split in ('train', 'val'):
        for name in ('a', 'b'):
            (tmp_path / 'data' / split / name).mkdir(parents=True, exist_ok=True)
            (tmp_path / 'data' / split / name / 'x.jpg').write_bytes(b'x')
    script = tmp_path / 'train.py'
    script.write_text(MINI_TRAIN.replace('TASK_CONSTRUCTION', construction).replace('BEFORE_TASK', before_task))
    return subprocess.run(
        [sys.executable, '-m', 'fan_stl.train', '--timm-train', str(script), *stl_options, '--', '--data-dir',
         str(tmp_path / 'data'), '--output', str(tmp_path / 'args.yaml'), *script_options],
        capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_patched_task_runs_and_stl_options_reach_args_yaml(tmp_path):
    proc = _mini_run(tmp_path, 'ClassificationTask(model=model, criterion=None)')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'TRAINED WITH STLTask' in proc.stdout
    written = yaml.safe_load((tmp_path / 'args.yaml').read_text())
    assert written['stl']['stage'] == 'tl' and written['stl']['eval_rule'] == 'cls'


def test_train_py_whose_task_construction_changed_is_refused(tmp_path):
    proc = _mini_run(tmp_path, 'timm.task.ClassificationTask(model=model, criterion=None)')
    assert proc.returncode == 2
    assert str(tmp_path / 'train.py') in proc.stderr and "timm's plain loss" in proc.stderr
    assert 'TRAINED WITH' not in proc.stdout


def test_method_drawn_in_the_mixup_slot_needs_the_slot_switched_on(tmp_path):
    proc = _mini_run(tmp_path, 'ClassificationTask(model=model, criterion=None)',
                     ('--stage', 'plain', '--mix-method', 'maskmix'))
    assert proc.returncode == 2 and 'add --cutmix 1.0' in proc.stderr and 'TRAINED WITH' not in proc.stdout


def test_maskmix_cell_covering_the_image_is_refused_when_train_py_builds_its_loader(tmp_path):
    loader = ("create_loader(create_dataset('', root=args.data_dir, split='train', is_training=True), "
              "input_size=(3, 64, 64), batch_size=2, is_training=True, use_prefetcher=False, "
              "device=torch.device('cpu'))")
    proc = _mini_run(tmp_path, 'ClassificationTask(model=model, criterion=None)',
                     ('--stage', 'plain', '--mix-method', 'maskmix', '--maskmix-cell', '4'), before_task=loader,
                     script_options=('--cutmix', '1.0'))
    assert proc.returncode == 2 and 'TRAINED WITH' not in proc.stdout and 'Traceback' not in proc.stderr
    assert 'one cell covers the whole image. Use --maskmix-cell 3 or less' in proc.stderr


def _subset(src: Path, dst: Path, per_class: int) -> Path:
    for split, count in (('train', per_class), ('val', 1)):
        for class_dir in sorted((src / split).iterdir())[:3]:
            (dst / split / class_dir.name).mkdir(parents=True)
            for image in sorted(class_dir.iterdir())[:count]:
                (dst / split / class_dir.name / image.name).symlink_to(image)
    return dst


def _checkpoint(path):
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, map_location='cpu', weights_only=True)


def _run(*args):
    proc = subprocess.run([sys.executable, '-m', 'fan_stl.train', '--timm-train', TIMM_TRAIN, *args],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


needs_train_py = pytest.mark.skipif(not TIMM_TRAIN, reason='set FAN_STL_TIMM_TRAIN to the path of timm\'s train.py')


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    """ A real train.py stage-1 run on 3 Imagenette classes: (data, output folder, common train.py options). """
    from tests.conftest import SHARED_DATA
    if not (SHARED_DATA / 'train').is_dir():
        pytest.skip(f'real-image test data not found at {SHARED_DATA}')
    root = tmp_path_factory.mktemp('real_train')
    data = _subset(SHARED_DATA, root / 'data', per_class=4)
    common = ['--data-dir', str(data), '--num-classes', '3', '--img-size', '64', '-b', '4', '--epochs', '1',
              '--workers', '0', '--device', 'cpu', '--output', str(root / 'out'), '--mixup', '0.8',
              '--cutmix', '1.0', '--model-ema', '--model-ema-decay', '0.9', '--aa', 'rand-m9-mstd0.5-inc1-mmax9',
              '--reprob', '0.3', '--grad-accum-steps', '2', '--log-interval', '1']
    _run('--stage', 'tl', '--', *common, '--model', 'fan_t_hybrid_tl', '--experiment', 'tl')
    return root / 'out', common


@needs_train_py
def test_stage1_with_real_timm_train(stage1):
    out, _ = stage1
    assert _checkpoint(out / 'tl' / 'model_best.pth.tar')['args'].stl['stage'] == 'tl'
    assert yaml.safe_load((out / 'tl' / 'args.yaml').read_text())['stl']['eval_rule'] == 'cls'


@needs_train_py
@pytest.mark.parametrize('extra', [[], ['--no-prefetcher'], ['--channels-last'],
                                   ['--no-prefetcher', '--channels-last']],
                         ids=['prefetcher', 'no-prefetcher', 'channels-last', 'no-prefetcher-channels-last'])
def test_stage2_with_real_timm_train(stage1, extra):
    out, common = stage1
    teacher = out / 'tl' / 'model_best.pth.tar'
    name = 'stl' + ''.join(extra)
    proc = _run('--stage', 'stl', '--teacher', str(teacher), '--teacher-model', 'fan_t_hybrid_tl', '--follow-mixing',
                '--', *common, *extra, '--model', 'fan_t_hybrid_stl', '--amp', '--amp-dtype', 'bfloat16',
                '--experiment', name)
    written = yaml.safe_load((out / name / 'args.yaml').read_text())
    assert written['stl']['teacher'] == str(teacher) and written['stl']['follow_mixing'] is True
    assert _checkpoint(out / name / 'last.pth.tar')['args'].stl['stage'] == 'stl'
    assert 'STLTask' in proc.stdout + proc.stderr
    if extra == ['--no-prefetcher']:
        _run('--stage', 'stl', '--teacher', str(teacher), '--teacher-model', 'fan_t_hybrid_tl', '--', *common,
             '--no-prefetcher', '--model', 'fan_t_hybrid_stl', '--epochs', '2', '--experiment', 'resumed',
             '--resume', str(out / name / 'last.pth.tar'))


@needs_train_py
def test_real_train_py_with_a_changed_task_line_is_refused(imagenette_root, tmp_path):
    data = _subset(imagenette_root, tmp_path / 'data', per_class=2)
    source = Path(TIMM_TRAIN).read_text()
    assert source.count('task = ClassificationTask(') == 1
    patched = tmp_path / 'train.py'
    patched.write_text(source.replace('task = ClassificationTask(', 'task = timm.task.ClassificationTask(')
                       .replace('import torch\n', 'import torch\nimport timm.task\n', 1))
    proc = subprocess.run(
        [sys.executable, '-m', 'fan_stl.train', '--timm-train', str(patched), '--stage', 'tl', '--', '--data-dir',
         str(data), '--num-classes', '3', '--img-size', '64', '-b', '2', '--epochs', '1', '--workers', '0',
         '--device', 'cpu', '--model', 'fan_t_hybrid_tl', '--output', str(tmp_path / 'out')],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 2 and str(patched) in proc.stderr and "plain loss" in proc.stderr


MIXING_RUNS = {  # name: (STL options, model and its train.py options)
    'plain-maskmix': (['--stage', 'plain', '--mix-method', 'maskmix', '--mix-pairing', 'perm', '--maskmix-cell', '1'],
                      ['--model', 'fan_tiny_8_p4_hybrid']),
    'plain-mixpro-pal': (['--stage', 'plain', '--mix-method', 'mixpro', '--maskmix-cell', '1', '--attention-relabel',
                          'pal'],
                         ['--model', 'fan_tiny_8_p4_hybrid', '--smoothing', '0']),
    'plain-vit-patch_cutmix': (['--stage', 'plain', '--mix-method', 'patch_cutmix'],
                               ['--model', 'vit_tiny_patch16_224', '--model-kwargs', 'depth=1', 'img_size=64']),
    'tl-mixtoken': (['--stage', 'tl', '--mix-method', 'mixtoken'], ['--model', 'fan_t_hybrid_tl']),
    'stl-maskmix-transmix': (['--stage', 'stl', '--mix-method', 'maskmix', '--maskmix-cell', '1',
                              '--attention-relabel', 'transmix', '--follow-mixing'], ['--model', 'fan_t_hybrid_stl']),
    'stl-mixtoken': (['--stage', 'stl', '--mix-method', 'mixtoken'],
                     ['--model', 'fan_t_hybrid_stl', '--no-prefetcher']),
}


@needs_train_py
@pytest.mark.parametrize('name', list(MIXING_RUNS))
def test_mixing_methods_with_real_timm_train(stage1, name):
    out, common = stage1
    stl_options, train_options = MIXING_RUNS[name]
    if '--stage' in stl_options and stl_options[stl_options.index('--stage') + 1] == 'stl':
        stl_options = stl_options + ['--teacher', str(out / 'tl' / 'model_best.pth.tar'),
                                     '--teacher-model', 'fan_t_hybrid_tl']
    proc = _run(*stl_options, '--', *common, *train_options, '--experiment', name)
    written = yaml.safe_load((out / name / 'args.yaml').read_text())['stl']
    assert written['mix_method'] == stl_options[stl_options.index('--mix-method') + 1]
    assert 'STLTask' in proc.stdout + proc.stderr and 'Train: 0' in proc.stdout + proc.stderr
