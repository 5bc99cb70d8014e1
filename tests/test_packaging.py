"""The package as a maintainer publishes it: wheel and sdist build, pass `twine check`, install and import alone.

Builds run without build isolation (setuptools, build and twine come from the `test` extra) from a copy of the files
a distribution is made of, so the checkout is left untouched.
"""
import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
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


def _top_level_modules_the_tests_need() -> set:
    """ Every top-level third-party module the test files import or run as `python -m MODULE` (pip comes with every
    virtual environment; the benchmark scripts and test helpers are this checkout's own). """
    needed = set()
    for path in (ROOT / 'tests').rglob('*.py'):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                needed |= {alias.name.split('.')[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                needed.add(node.module.split('.')[0])
            elif isinstance(node, ast.List):  # subprocess argument lists: [..., '-m', 'build', ...]
                items = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
                needed |= {items[i + 1].split('.')[0] for i, item in enumerate(items[:-1])
                           if item == '-m' and isinstance(items[i + 1], str)}
    local = {'fan_stl', 'tests', 'pip', 'probe'}  # pip: in every venv; probe: a module test_cli writes itself
    local |= {p.stem for folder in ('benchmarks', 'tests') for p in (ROOT / folder).rglob('*.py')}
    return {name for name in needed if name not in sys.stdlib_module_names and name not in local}


def _requirement_closure(names: set) -> set:
    """ The distributions `names` pull in when installed (their `Requires-Dist`, recursively, without extras). """
    seen, todo = set(), [_canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_canonical(re.split(r'[\s;<>=!~\[(]', r, maxsplit=1)[0]) for r in requires if 'extra ==' not in r]
    return seen


def _canonical(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def test_every_module_the_tests_need_comes_from_the_readme_install():
    """ `pip install -e ".[robustness,test,seg]"` (the README's install) provides every third-party module the tests
    import or run; a module that is only on the developer's machine would fail a user's first `pytest`. """
    project = PYPROJECT['project']
    extras = re.search(r'pip install -e "\.\[([a-z,]+)\]"', (ROOT / 'README.md').read_text()).group(1).split(',')
    declared = set(project['dependencies']).union(*(project['optional-dependencies'][extra] for extra in extras))
    installed = _requirement_closure({re.split(r'[\s;<>=!~\[(]', r, maxsplit=1)[0] for r in declared})
    providers = metadata.packages_distributions()
    missing = {module: providers.get(module, ['?']) for module in _top_level_modules_the_tests_need()
               if not any(_canonical(dist) in installed for dist in providers.get(module, []))}
    assert not missing, (f'modules the tests use but the README install does not provide (add their distribution to '
                         f'an extra in pyproject.toml): {missing}')


def test_ci_runs_the_readme_install_and_test_command():
    """ `.ci/run` installs the README's extras (in a fresh virtual environment) and runs the README's test command. """
    readme, ci = (ROOT / 'README.md').read_text(), (ROOT / '.ci' / 'run').read_text()
    extras = re.search(r'pip install -e "(\.\[[a-z,]+\])"', readme).group(1)
    assert f'-e "{extras}"' in ci and 'python -m venv' in ci
    assert '```bash\npython -m pytest\n```' in readme and '"$PY" -m pytest\n' in ci
