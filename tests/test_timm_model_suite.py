"""timm's own `tests/test_models.py`, run on the fan models (slow: `pytest -m slow tests/test_timm_model_suite.py`).

The test file is not in timm's wheel, so it is taken from the source distribution of the *installed* timm version
(downloaded from PyPI into a temporary folder, never committed), adjusted the way timm adjusts it for its own
ViT-like families (`fan_*` joins `NON_STD_FILTERS`, the `fan` module joins `FEAT_INTER_FILTERS`), and run with a
conftest that imports fan_stl before collection.
"""
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import timm


def _fetch_timm_tests(dest: Path) -> Path:
    """ Download the sdist of the installed timm and extract its `tests/` folder into `dest`. """
    version = timm.__version__
    cmd = [sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps', '--no-binary', ':all:',
           f'timm=={version}', '-d', str(dest)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    sdists = list(dest.glob(f'timm-{version}.tar.gz'))
    if result.returncode != 0 or not sdists:
        pytest.skip(f'could not download the timm {version} source distribution from PyPI: {result.stderr[-500:]}')
    with tarfile.open(sdists[0]) as archive:
        members = [m for m in archive.getmembers() if re.match(rf'timm-{re.escape(version)}/tests/[^/]+\.py$', m.name)]
        archive.extractall(dest, members=members, filter='data')
    return dest / f'timm-{version}' / 'tests'


def _adjust(tests_dir: Path) -> None:
    source = tests_dir / 'test_models.py'
    text = source.read_text()
    for name, entry in (('NON_STD_FILTERS', "'fan_*'"), ('FEAT_INTER_FILTERS', "'fan'")):
        text, count = re.subn(rf'^{name} = \[', f'{name} = [{entry}, ', text, count=1, flags=re.M)
        assert count == 1, f'{name} not found in timm {timm.__version__} tests/test_models.py: adjust this runner'
    source.write_text(text)
    conftest = tests_dir / 'conftest.py'
    conftest.write_text('import fan_stl  # registers the fan_* models before collection\n' + conftest.read_text())


@pytest.mark.slow
def test_timm_test_models_pass_for_fan_models(tmp_path):
    tests_dir = _fetch_timm_tests(tmp_path)
    _adjust(tests_dir)
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    cmd = [sys.executable, '-m', 'pytest', str(tests_dir / 'test_models.py'), '-q', '-p', 'no:cacheprovider',
           '-k', 'fan_ and not pretrained', '--rootdir', str(tests_dir)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=tests_dir, env=env, timeout=3600)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    print(f'timm {timm.__version__} tests/test_models.py -k "fan_ and not pretrained": {summary}')
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert re.search(r'\d+ passed', summary) and 'failed' not in summary
