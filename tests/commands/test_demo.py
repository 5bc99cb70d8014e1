"""`python -m fan_stl demo` at toy size: one progress display, the comparison table, the written files, and
one-line errors for bad arguments before any work."""
import re
import sys

import pytest
import torch

from fan_stl.cli import main
from fan_stl.commands import demo

TOY = ['--epochs', '1', '--img-size', '32', '--train-per-class', '2', '--eval-per-class', '1', '--batch-size', '8',
       '--workers', '1']


def test_demo_runs_the_whole_story_with_one_progress_display(tmp_path, capsys, monkeypatch):
    pytest.importorskip('imagecorruptions', reason='the demo corrupts images: pip install -e ".[robustness]"')
    from fan_stl.demo import experiment
    threads, train = [], experiment.train

    def train_counting_threads(cfg, **kwargs):
        threads.append(torch.get_num_threads())
        return train(cfg, **kwargs)

    monkeypatch.setattr(experiment, 'train', train_counting_threads)
    torch.set_num_threads(2)
    out = tmp_path / 'demo'
    try:
        assert main(['demo', '--out', str(out), *TOY]) == 0
        # one torch thread per training by default (two threads on two busy cores ran ~10x slower), and the
        # caller's setting is back afterwards; tl trains in a second process beside the baseline (not counted here)
        assert threads == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    captured = capsys.readouterr()
    assert 'mCE vs baseline' in captured.out and all(arm in captured.out for arm in ('baseline', 'tl', 'stl'))
    progress = captured.err.replace('\r', '\n')  # the bar redraws in place; each state on its own line here
    for k, arm in enumerate(('baseline', 'tl', 'stl'), start=1):
        assert f'arm {k}/3 {arm}' in progress
        assert re.search(rf'^{arm}: val top-1 \(%\) per epoch \d+ \(\d+ s\)$', progress, flags=re.M)
    assert 'epoch 1/1, val top-1' in progress and '3/3 epochs' in progress
    assert 'plain' not in progress + captured.out  # one name per arm: the engine's stage name never shows
    for arm in ('baseline', 'tl', 'stl'):
        assert (out / 'weights' / f'{arm}-seed0' / 'model.safetensors').is_file()
    assert (out / 'corruption_errors.png').is_file() and (out / 'data' / 'train').is_dir()
    # what STL is about, measured: where the token heads put the class, for the two token-head arms only
    assert re.search(r'^  tl   on the object +\d+\.\d%   on the background +\d+\.\d%$', captured.out, flags=re.M)
    assert re.search(r'^  stl  on the object', captured.out, flags=re.M) and '  baseline  on the' not in captured.out
    assert (out / 'token_labels.png').is_file() and str(out / 'token_labels.png') in captured.out


@pytest.mark.parametrize('args, message', [
    (['--arms', 'tl', 'stl'], 'error: --arms: the comparison is relative to the baseline: include the "baseline"'),
    (['--arms', 'baseline', 'stl'], 'error: --arms: the STL student needs its teacher: include the "tl" arm'),
    (['--data', '{tmp}'],
     'has no train/ or val/ folder: give an ImageFolder root with train/<class>/ and val/<class>/'),
])
def test_bad_arguments_are_one_line_errors_before_any_work(tmp_path, capsys, args, message):
    out = tmp_path / 'out'
    assert main(['demo', '--out', str(out), *(a.format(tmp=tmp_path) for a in args)]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('python -m fan_stl demo: error: ') and message in err
    assert not out.exists()


def test_missing_robustness_extra_is_named_with_the_install_that_works(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, 'missing_modules', lambda extra: ['imagecorruptions'])
    assert main(['demo', '--out', str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'needs imagecorruptions' in err and 'pip install -e ".[robustness]"' in err
    assert not (tmp_path / 'out').exists()


def test_a_broken_robustness_extra_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    """ an extra that is found but does not import (a dependency of its own missing) gave a traceback. """
    broken = tmp_path / 'site' / 'imagecorruptions'
    broken.mkdir(parents=True)
    (broken / '__init__.py').write_text('import fan_stl_test_a_dependency_that_is_not_installed\n')
    monkeypatch.syspath_prepend(str(tmp_path / 'site'))
    monkeypatch.delitem(sys.modules, 'imagecorruptions', raising=False)
    assert main(['demo', '--out', str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('python -m fan_stl demo: error: ')
    assert "imagecorruptions does not import (No module named 'fan_stl_test_a_dependency" in err
    assert 'pip install -e ".[robustness]"' in err and not (tmp_path / 'out').exists()


@pytest.mark.parametrize('args', [['--img-size', '40'], ['--epochs', '0'], ['--arms', 'plain']])
def test_malformed_values_are_argparse_errors(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['demo', *args])
    assert exit_info.value.code == 2 and 'python -m fan_stl demo: error: argument' in capsys.readouterr().err


def test_rerun_resumes_the_same_run_and_refuses_another_in_one_line(tmp_path, capsys):
    """ a rerun into the same --out resumes; other settings are refused (naming --out and --overwrite) unless
    --overwrite discards the earlier run. """
    pytest.importorskip('imagecorruptions', reason='the demo corrupts images: pip install -e ".[robustness]"')
    out = tmp_path / 'demo'
    argv = ['demo', '--out', str(out), '--quiet', '--arms', 'baseline', *TOY]
    assert main(argv) == 0
    first = capsys.readouterr().out
    weights = out / 'weights' / 'baseline-seed0' / 'model.safetensors'
    stamp = weights.stat().st_mtime_ns
    assert main(argv) == 0  # the same run: reused, same numbers
    assert weights.stat().st_mtime_ns == stamp and capsys.readouterr().out.split('|', 1)[1] == first.split('|', 1)[1]
    assert main([*argv, '--lr', '1e-3']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'holds a run with other settings: train.lr differs' in err  # field first
    assert 'train.lr: 0.0002 there, 0.001 now' in err
    assert '--out' in err and '--overwrite' in err and weights.stat().st_mtime_ns == stamp
    assert main([*argv, '--lr', '1e-3', '--overwrite']) == 0
    assert weights.stat().st_mtime_ns != stamp
    assert main([*argv, '--lr', '1e-3']) == 0  # now the folder's run


def test_outputs_of_an_older_demo_without_a_run_record_are_refused(tmp_path, capsys):
    pytest.importorskip('imagecorruptions', reason='the demo corrupts images: pip install -e ".[robustness]"')
    out = tmp_path / 'demo'
    (out / 'results').mkdir(parents=True)
    (out / 'results' / 'baseline-seed0.json').write_text('{}')
    (out / 'notes.txt').write_text('mine')
    assert main(['demo', '--out', str(out), '--quiet', '--arms', 'baseline', *TOY]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'without its record' in err and '--overwrite' in err
    assert main(['demo', '--out', str(out), '--quiet', '--arms', 'baseline', '--overwrite', *TOY]) == 0
    assert (out / 'notes.txt').read_text() == 'mine'  # only what a run writes is discarded
