"""pyproject's timm floor is the oldest timm whose train.py the launcher accepts. With FAN_STL_TIMM_SRC pointing to a
folder of per-tag copies (`<dir>/v1.0.23/train.py`, ...), every tag below the floor is refused and every tag from it
on is accepted. (A training run per tag is recorded in the notes of the change; this test checks the names.)"""
import os
import re
from pathlib import Path

import pytest

from fan_stl.training.train_launcher import LauncherError, load_timm_train

ROOT = Path(__file__).resolve().parents[2]
TIMM_SRC = os.environ.get('FAN_STL_TIMM_SRC')


def _floor():
    match = re.search(r'"timm>=([\d.]+)"', (ROOT / 'pyproject.toml').read_text())
    return tuple(int(v) for v in match.group(1).split('.'))


@pytest.mark.skipif(not TIMM_SRC, reason='set FAN_STL_TIMM_SRC to a folder of per-tag train.py copies')
def test_floor_is_the_oldest_supported_train_py():
    tags = sorted((tuple(int(v) for v in p.name[1:].split('.')), p / 'train.py')
                  for p in Path(TIMM_SRC).glob('v1.0.*') if (p / 'train.py').is_file())
    assert any(version == _floor() for version, _ in tags), 'the floor tag is not among the copies'
    for version, path in tags:
        if version < _floor():
            with pytest.raises(LauncherError, match='Task-based'):
                load_timm_train(str(path))
        else:
            load_timm_train(str(path))
