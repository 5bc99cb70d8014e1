"""timm's own `tests/test_models.py`, run on the fan models (slow: `pytest -m slow tests/test_timm_model_suite.py`).

The test file is not in timm's wheel, so it is taken from the source distribution of the *installed* timm version
(downloaded from PyPI into a temporary folder, never committed), adjusted the way timm adjusts it for its own
ViT-like families (`fan_*` joins `NON_STD_FILTERS`, the `fan` module joins `FEAT_INTER_FILTERS`), and run with a
conftest that imports fan_stl before collection. The inner run's output streams to the terminal as it comes (pytest's
capture is bypassed for it), so the minutes it takes show their progress.
"""
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import List, Tuple

import pytest

import timm


def _fetch_timm_tests(dest: Path) -> Path:
    """ Download the sdist of the installed timm and extract its `tests/` folder into `dest`. """
    version = timm.__version__
    print(f'downloading the timm {version} source distribution from PyPI for its tests/ ...', flush=True)
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


def _run_streaming(cmd: List[str], cwd: Path, env: dict) -> Tuple[int, str]:
    """ Run `cmd`, copying its output to the terminal as it arrives; `(return code, whole output)`. """
    chunks = []
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        for chunk in iter(lambda: process.stdout.read1(4096), b''):
            text = chunk.decode(errors='replace')
            sys.stdout.write(text)
            sys.stdout.flush()
            chunks.append(text)
    return process.returncode, ''.join(chunks)


@pytest.mark.slow
def test_timm_test_models_pass_for_fan_models(tmp_path, capsys):
    with capsys.disabled():  # the progress of a run of many minutes goes straight to the terminal
        print()
        tests_dir = _fetch_timm_tests(tmp_path)
        _adjust(tests_dir)
        checkout = str(Path(__file__).resolve().parents[1])  # fan_stl from this checkout, installed or not
        env = dict(os.environ, HF_HUB_OFFLINE='1',
                   PYTHONPATH=os.pathsep.join(filter(None, [checkout, os.environ.get('PYTHONPATH')])))
        cmd = [sys.executable, '-m', 'pytest', str(tests_dir / 'test_models.py'), '-q', '-p', 'no:cacheprovider',
               '-k', 'fan_ and not pretrained', '--rootdir', str(tests_dir)]
        print(f'running timm {timm.__version__} tests/test_models.py -k "fan_ and not pretrained" '
              '(about 250 tests, minutes on a CPU; one dot per test):', flush=True)
        returncode, output = _run_streaming(cmd, tests_dir, env)
    lines = output.strip().splitlines()
    summary = lines[-1] if lines else ''
    assert returncode == 0, output[-8000:]
    assert re.search(r'\d+ passed', summary) and 'failed' not in summary, summary
