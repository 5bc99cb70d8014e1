"""The launchers' cached `--help`: built once, reused while the source and settings are the same, rebuilt after."""
from fan_stl.utils import help_cache
from fan_stl.utils.help_cache import asks_for_help, cached_help


def test_help_is_asked_for_before_the_script_options_only():
    assert asks_for_help(['--timm-train', 'x', '-h']) and asks_for_help(['--help'])
    assert not asks_for_help(['--timm-train', 'x', '--', '--help'])  # train.py's own --help


def test_built_once_then_read_and_rebuilt_when_the_key_changes(tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    builds = []

    def build():
        builds.append(1)
        return f'usage {len(builds)}\n'

    assert cached_help('train', build) == cached_help('train', build) == 'usage 1\n' and len(builds) == 1
    monkeypatch.setattr(help_cache, '_key', lambda name: 'other source')
    assert cached_help('train', build) == 'usage 2\n'
    assert [p.name for p in (tmp_path / 'fan_stl' / 'help').iterdir()] == ['train-other source.txt']


def test_an_unwritable_cache_only_costs_the_speed(tmp_path, monkeypatch):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    monkeypatch.setenv('XDG_CACHE_HOME', str(blocker))  # a file where the folder would go
    assert cached_help('validate', lambda: 'usage\n') == 'usage\n'


def test_the_key_follows_the_package_source(tmp_path, monkeypatch):
    (tmp_path / 'a.py').write_text('x = 1\n')
    monkeypatch.setattr(help_cache, 'PACKAGE', tmp_path)
    before = help_cache._key('train')
    (tmp_path / 'a.py').write_text('x = 2\n')
    assert help_cache._key('train') != before and help_cache._key('validate') != help_cache._key('train')
