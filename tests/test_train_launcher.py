"""The train.py launcher: option errors always; both stages against timm's real train.py when
FAN_STL_TIMM_TRAIN points to it (e.g. FAN_STL_TIMM_TRAIN=/tmp/timm_repo/train.py)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fan_stl.train import main

TIMM_TRAIN = os.environ.get('FAN_STL_TIMM_TRAIN')


def _error(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_option_errors(capsys, tmp_path):
    assert 'needs --teacher' in _error(capsys, ['--timm-train', 'x.py', '--stage', 'stl'])
    assert 'only used by --stage stl' in _error(capsys, ['--timm-train', 'x.py', '--stage', 'tl', '--teacher', 'a'])
    assert 'neither a file nor a registered' in _error(
        capsys, ['--timm-train', 'x.py', '--stage', 'stl', '--teacher', 'no_such_model'])
    assert 'not in the timm wheel' in _error(capsys, ['--timm-train', str(tmp_path / 'train.py'), '--stage', 'tl'])
    old = tmp_path / 'legacy_train.py'
    old.write_text('def main():\n    pass\n')
    assert 'Task-based' in _error(capsys, ['--timm-train', str(old), '--stage', 'tl'])


def _subset(src: Path, dst: Path, per_class: int) -> Path:
    for split, count in (('train', per_class), ('val', 1)):
        for class_dir in sorted((src / split).iterdir())[:3]:
            (dst / split / class_dir.name).mkdir(parents=True)
            for image in sorted(class_dir.iterdir())[:count]:
                (dst / split / class_dir.name / image.name).symlink_to(image)
    return dst


@pytest.mark.skipif(not TIMM_TRAIN, reason='set FAN_STL_TIMM_TRAIN to the path of timm\'s train.py')
def test_both_stages_with_real_timm_train(imagenette_root, tmp_path):
    data = _subset(imagenette_root, tmp_path / 'data', per_class=4)
    common = ['--data-dir', str(data), '--num-classes', '3', '--img-size', '64', '-b', '4', '--epochs', '1',
              '--workers', '0', '--device', 'cpu', '--output', str(tmp_path / 'out'), '--mixup', '0.8',
              '--cutmix', '1.0', '--model-ema', '--model-ema-decay', '0.9', '--aa', 'rand-m9-mstd0.5-inc1-mmax9',
              '--reprob', '0.3', '--grad-accum-steps', '2']

    def run(*args):
        proc = subprocess.run([sys.executable, '-m', 'fan_stl.train', '--timm-train', TIMM_TRAIN, *args],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]

    run('--stage', 'tl', '--', *common, '--model', 'fan_t_hybrid_tl', '--experiment', 'tl')
    teacher = tmp_path / 'out' / 'tl' / 'model_best.pth.tar'
    assert teacher.is_file()
    for extra in ([], ['--no-prefetcher']):
        name = 'stl' + ''.join(extra)
        run('--stage', 'stl', '--teacher', str(teacher), '--teacher-model', 'fan_t_hybrid_tl', '--',
            *common, *extra, '--model', 'fan_t_hybrid_stl', '--amp', '--amp-dtype', 'bfloat16', '--experiment', name)
        assert (tmp_path / 'out' / name / 'last.pth.tar').is_file()
    run('--stage', 'stl', '--teacher', str(teacher), '--teacher-model', 'fan_t_hybrid_tl', '--', *common,
        '--no-prefetcher', '--model', 'fan_t_hybrid_stl', '--epochs', '2', '--experiment', 'resumed',
        '--resume', str(tmp_path / 'out' / 'stl--no-prefetcher' / 'last.pth.tar'))
