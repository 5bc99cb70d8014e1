"""The command line's start-up: `--help` without torch or timm, and `import fan_stl` still registering the models.

Each check runs a fresh interpreter the way a user does (`python -X importtime -m fan_stl ...`) and reads the list of
modules it imported, so it measures what was imported rather than a wall-clock time that a loaded machine skews.
"""
import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from fan_stl.cli import COMMANDS, build_parser
from fan_stl.commands._args import TOKEN_STRIDE
from fan_stl.models.fan import TOKEN_STRIDE as MODEL_TOKEN_STRIDE

from tests.conftest import CHECKOUT, checkout_env

HEAVY = ('torch', 'timm')


def python(*args: str, cwd: Path = CHECKOUT, **env: str) -> subprocess.CompletedProcess:
    """ A fresh interpreter that imports fan_stl from this checkout. """
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=checkout_env(**env))


def imported_modules(importtime_log: str) -> set:
    """ Module names from the `-X importtime` lines ('import time: self | cumulative | name'). """
    return {line.rsplit('|', 1)[1].strip() for line in importtime_log.splitlines() if line.startswith('import time:')}


@pytest.mark.parametrize('command', [None, *COMMANDS], ids=lambda command: command or 'top-level')
def test_help_imports_neither_torch_nor_timm(command):
    result = python('-X', 'importtime', '-m', 'fan_stl', *([command] if command else []), '--help')
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith('usage: python -m fan_stl')
    heavy = [name for name in HEAVY if name in imported_modules(result.stderr)]
    assert not heavy, f'`python -m fan_stl {command or ""} --help` imported {heavy}'


def test_argument_errors_are_one_line_without_torch():
    result = python('-X', 'importtime', '-m', 'fan_stl', 'list', '--img-size', '100')
    assert result.returncode == 2
    messages = [line for line in result.stderr.splitlines() if not line.startswith('import time:')]
    assert messages[-1] == ('python -m fan_stl list: error: argument --img-size: 100 is not a positive multiple of '
                            '16 (FAN models need sides that are); try 96')
    assert 'torch' not in imported_modules(result.stderr)


def test_import_fan_stl_registers_the_models_for_timm(tmp_path):
    """ The headline, `import fan_stl` then `timm.create_model`, from a script and from a module run with `-m`
    (whose packages are imported while `sys.argv[0]` is '-m', as during `python -m fan_stl`). """
    (tmp_path / 'probe.py').write_text(
        'import fan_stl, timm\n'
        'assert timm.is_model("fan_t_hybrid_stl")\n'
        'print(type(timm.create_model("fan_t_hybrid_stl", device="meta")) is fan_stl.FAN)\n')
    for args in ([str(tmp_path / 'probe.py')], ['-m', 'probe']):
        result = python(*args, cwd=tmp_path)
        assert result.returncode == 0 and result.stdout.strip() == 'True', result.stderr[-2000:]


def test_the_command_line_start_skips_only_its_own_import():
    from fan_stl import _module_run_with_m
    assert _module_run_with_m(['python', '-X', 'importtime', '-m', 'fan_stl', 'list']) == 'fan_stl'
    assert _module_run_with_m(['python', '-mfan_stl.train']) == 'fan_stl.train'
    assert _module_run_with_m(['python', '-c', 'import fan_stl', '-m', 'fan_stl']) is None
    assert _module_run_with_m(['python', 'script.py', '-m', 'fan_stl']) is None


def test_every_command_module_registers_the_command_it_is_listed_under():
    for name in COMMANDS:
        subparsers = next(a for a in build_parser([name])._actions if isinstance(a, argparse._SubParsersAction))
        assert list(subparsers.choices) == [name]


def test_the_cli_token_stride_is_the_models():
    assert TOKEN_STRIDE == MODEL_TOKEN_STRIDE


def test_train_and_validate_are_commands_that_forward_to_their_entry_points(tmp_path, capsys):
    from fan_stl.cli import main
    listed = ' '.join(build_parser().format_help().split())
    assert 'python -m fan_stl.train' in listed and 'python -m fan_stl.validate' in listed
    for command, flag, script in (('train', '--timm-train', 'train.py'),
                                  ('validate', '--timm-validate', 'validate.py')):
        with pytest.raises(SystemExit):
            main([command, flag, str(tmp_path / script), *(['--stage', 'tl'] if command == 'train' else [])])
        err = capsys.readouterr().err
        assert f'python -m fan_stl.{command}: error: timm {script} not found' in err and 'invalid choice' not in err


@pytest.mark.parametrize('entry', [['-m', 'fan_stl.train'], ['-m', 'fan_stl.validate'], ['-m', 'fan_stl', 'train']],
                         ids=' '.join)
def test_launcher_help_is_fast_once_cached(entry, tmp_path):
    """ The first `--help` builds the launcher's parser (torch and timm); every later one prints the stored text. """
    first = python(*entry, '--help', XDG_CACHE_HOME=str(tmp_path))
    again = python('-X', 'importtime', *entry, '--help', XDG_CACHE_HOME=str(tmp_path))
    assert first.returncode == again.returncode == 0, first.stderr[-2000:] + again.stderr[-2000:]
    name = 'validate' if 'validate' in ' '.join(entry) else 'train'
    assert first.stdout.startswith(f'usage: python -m fan_stl.{name} [-h]') and again.stdout == first.stdout
    heavy = [module for module in HEAVY if module in imported_modules(again.stderr)]
    assert not heavy, f'a cached `{" ".join(entry)} --help` imported {heavy}'
