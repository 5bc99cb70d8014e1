import pytest

from fan_stl.training.timm_scripts import ScriptError, load_timm_script, split_command_line


def test_split_command_line():
    ours, theirs = split_command_line(['--stage', 'tl', '--', '--model', 'x', '--'])
    assert (ours, theirs) == (['--stage', 'tl'], ['--model', 'x', '--'])
    assert split_command_line(['--stage', 'tl']) == (['--stage', 'tl'], [])


def test_load_names_what_is_missing(tmp_path):
    with pytest.raises(ScriptError, match='not found at .* take train.py from'):
        load_timm_script(str(tmp_path / 'nope.py'), 'train.py', ('main',))
    script = tmp_path / 'train.py'
    script.write_text('def main():\n    return 0\n')
    with pytest.raises(ScriptError, match=r'lacks _parse_args\. use the right tag'):
        load_timm_script(str(script), 'train.py', ('main', '_parse_args'), fix='use the right tag')
    assert load_timm_script(str(script), 'train.py', ('main',)).main() == 0
