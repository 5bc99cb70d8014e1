"""The package as a maintainer publishes it: wheel and sdist build, pass `twine check`, install and import alone.

Builds run without build isolation (no network: setuptools and build are already installed) from a copy of the files
a distribution is made of, so the checkout is left untouched.
"""
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from fan_stl import __version__
from fan_stl.utils.extras import EXTRAS, install_hint

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / 'pyproject.toml').read_text())


def _build(tmp_path: Path, *kinds: str) -> Path:
    """ Build `kinds` ('--wheel', '--sdist') from a copy of pyproject.toml, README.md, LICENSE and fan_stl/; the
    dist folder. """
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('pyproject.toml', 'README.md', 'LICENSE'):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / 'fan_stl', src / 'fan_stl', ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    dist = tmp_path / 'dist'
    result = subprocess.run([sys.executable, '-m', 'build', '--no-isolation', *kinds, '--outdir', str(dist), str(src)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return dist


def test_wheel_installs_alone_and_import_registers_the_models(tmp_path):
    wheel, = _build(tmp_path, '--wheel').glob('*.whl')
    assert wheel.name == f'fan_stl-{__version__}-py3-none-any.whl'
    packaged = set(zipfile.ZipFile(wheel).namelist())
    source = {p.relative_to(ROOT).as_posix() for p in (ROOT / 'fan_stl').rglob('*.py')}
    assert source <= packaged, f'missing from the wheel: {sorted(source - packaged)}'
    data = {p.relative_to(ROOT).as_posix() for p in (ROOT / 'fan_stl' / 'robustness' / 'data').iterdir()}
    assert data <= packaged, f'package data missing from the wheel: {sorted(data - packaged)}'  # subset list + licence
    assert not any(name.startswith(('tests/', 'benchmarks/')) for name in packaged)
    assert f'fan_stl-{__version__}.dist-info/licenses/LICENSE' in packaged  # the Apache-2.0 text travels with the code
    target = tmp_path / 'site'
    install = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-compile', '--quiet',
                              '--target', str(target), str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    probe = ('import fan_stl, timm; print(fan_stl.__file__); '
             'print(timm.create_model("fan_t_hybrid_stl", device="meta").default_cfg["architecture"])')
    env = {**os.environ, 'PYTHONPATH': str(target)}  # the installed copy only, not this checkout
    result = subprocess.run([sys.executable, '-c', probe], cwd=tmp_path, capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    where, arch = result.stdout.split()
    assert Path(where).is_relative_to(target) and arch == 'fan_t_hybrid_stl'


@pytest.mark.slow
def test_wheel_and_sdist_pass_twine_check_and_the_script_runs(tmp_path):
    dist = _build(tmp_path, '--sdist', '--wheel')
    sdist, = dist.glob('*.tar.gz')
    wheel, = dist.glob('*.whl')
    check = subprocess.run([sys.executable, '-m', 'twine', 'check', '--strict', str(sdist), str(wheel)],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0 and check.stdout.count('PASSED') == 2, check.stdout + check.stderr
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages', str(venv)], check=True, timeout=300)
    bin_dir = venv / ('Scripts' if os.name == 'nt' else 'bin')
    install = subprocess.run([str(bin_dir / 'python'), '-m', 'pip', 'install', '--no-deps', '--quiet', str(wheel)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    result = subprocess.run([str(bin_dir / 'fan-stl'), 'demo', '--help'], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0 and 'usage: python -m fan_stl demo' in result.stdout, result.stderr[-3000:]


def test_extras_table_matches_pyproject_and_hints_work_from_a_checkout():
    for extra, modules in EXTRAS.items():
        declared = {re.split(r'[<>=!~;\[ ]', req, maxsplit=1)[0]
                    for req in PYPROJECT['project']['optional-dependencies'][extra]}
        assert declared == set(modules.values())
        assert f'pip install -e ".[{extra}]"' in install_hint(extra)


def test_no_hint_in_the_package_names_an_index_install_of_fan_stl():
    """ fan_stl is not on a package index: `pip install "fan_stl[...]"` / `pip install fan_stl` would fail. """
    offending = [f'{path.relative_to(ROOT)}:{n}' for path in [*(ROOT / 'fan_stl').rglob('*.py'), ROOT / 'README.md']
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r'pip install ["\']?fan[_-]stl\b', line)]
    assert not offending, offending
