"""`python -m fan_stl demo` at toy size: the generated data, the comparison table and the written files."""
import pytest

from fan_stl.cli import main

pytest.importorskip('imagecorruptions', reason='the demo corrupts images: pip install -e ".[robustness]"')


def test_demo_runs_the_whole_story_and_reports(tmp_path, capsys):
    out = tmp_path / 'demo'
    code = main(['demo', '--out', str(out), '--epochs', '1', '--img-size', '32', '--train-per-class', '2',
                 '--eval-per-class', '1', '--batch-size', '8', '--workers', '1', '--quiet'])
    printed = capsys.readouterr().out
    assert code == 0
    assert 'mCE vs baseline' in printed and all(arm in printed for arm in ('baseline', 'tl', 'stl'))
    for arm in ('baseline', 'tl', 'stl'):
        assert (out / 'weights' / f'{arm}-seed0' / 'model.safetensors').is_file()
    assert (out / 'corruption_errors.png').is_file() and (out / 'data' / 'train').is_dir()
