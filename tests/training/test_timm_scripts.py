"""Loading timm's stock scripts: the version cue (a script of another timm than the installed one is named in one
warning and still runs) and a script importing what the installed timm lacks (one clear error)."""
import os

import pytest

import timm
from fan_stl.training import timm_scripts
from fan_stl.training.timm_scripts import ScriptError, load_timm_script, script_releases, version_warning

SCRIPT = 'def main():\n    return 0\n'


def _known(monkeypatch, tmp_path, span):
    path = tmp_path / 'train.py'
    path.write_text(SCRIPT)
    monkeypatch.setitem(timm_scripts.KNOWN_SCRIPTS, 'train.py', {timm_scripts._blob_id(str(path)): span})
    return str(path)


def test_blob_id_is_gits(tmp_path):
    path = tmp_path / 'x.py'
    path.write_text('hello\n')
    assert timm_scripts._blob_id(str(path)) == 'ce013625030ba8dba906f756967f9e9ca394464a'  # git hash-object


def test_a_script_of_another_timm_release_gets_one_warning_and_still_loads(monkeypatch, tmp_path, capsys):
    path = _known(monkeypatch, tmp_path, ('1.0.23', '1.0.24'))
    monkeypatch.setattr(timm, '__version__', '1.0.31')
    module = load_timm_script(path, 'train.py', ('main',))
    assert module.main() == 0
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and err.startswith('warning: ')
    assert 'the train.py of timm 1.0.23 to 1.0.24, but timm 1.0.31 is installed' in err and 'tag v1.0.31' in err
    assert version_warning(path, 'train.py', '1.0.24') is None
    assert version_warning(path, 'train.py', '1.0.23') is None


def test_a_script_unlike_the_installed_releases_known_file_is_named(monkeypatch, tmp_path):
    path = _known(monkeypatch, tmp_path, ('1.0.27', '1.0.28'))
    other = tmp_path / 'modified.py'
    other.write_text(SCRIPT + '# changed\n')
    assert script_releases(str(other), 'train.py') is None
    assert 'is not the train.py of the installed timm 1.0.28' in version_warning(str(other), 'train.py', '1.0.28')
    assert version_warning(str(other), 'train.py', '1.0.40') is None  # nothing known to compare with: silent
    assert version_warning(path, 'train.py', '1.0.29.dev0') is not None  # a dev release is after 1.0.28


def test_a_script_needing_a_name_the_installed_timm_lacks_is_refused(tmp_path):
    path = tmp_path / 'train.py'
    path.write_text('from timm.data import no_such_name_in_timm\n')
    with pytest.raises(ScriptError, match=f'installed timm {timm.__version__} lacks: it is the train.py of another'):
        load_timm_script(str(path), 'train.py', ('main',))


@pytest.mark.parametrize('variable,script', [('FAN_STL_TIMM_TRAIN', 'train.py'),
                                             ('FAN_STL_TIMM_VALIDATE', 'validate.py')])
def test_the_stock_scripts_of_the_installed_timm_are_known(variable, script):
    path = os.environ.get(variable)
    if not path:
        pytest.skip(f'set {variable} to timm\'s {script} of the installed release')
    assert version_warning(path, script) is None
    assert script_releases(path, script) is not None, f'{path} is not a stock {script} known to fan_stl'
