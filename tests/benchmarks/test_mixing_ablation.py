"""benchmarks/mixing_ablation.py: an arm whose option the installed STLConfig does not know is refused with one line
(the others run), the smoke mode runs every available arm end to end and records nothing unless asked."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))

import mixing_ablation  # noqa: E402


def test_arms_with_options_unknown_to_stlconfig_are_refused(capsys):
    table = dict(mixing_ablation.ABLATION_ARMS,
                 odd=dict(stage='stl', model='fan_t_hybrid_stl', mix_method='no_such_mix'),
                 new=dict(stage='stl', model='fan_t_hybrid_stl', no_such_option='x'))
    assert "STLConfig.mix_method='no_such_mix' is not one of" in mixing_ablation.unknown_option('odd', table)
    assert 'STLConfig has no option no_such_option' in mixing_ablation.unknown_option('new', table)
    for arm in ('baseline', 'tl', 'cnn', 'stl', 'annotator'):  # what the wing has today
        assert mixing_ablation.unknown_option(arm, table) is None
    kept = mixing_ablation.select_arms(None, table)
    assert kept[:2] == ['baseline', 'tl'] and {'stl', 'annotator', 'cnn'} <= set(kept)
    assert 'odd' not in kept and 'new' not in kept
    err = capsys.readouterr().err
    assert 'arm odd refused' in err and 'arm new refused' in err
    with pytest.raises(ValueError, match='arm odd refused'):  # asked for by name: an error, not a skipped arm
        mixing_ablation.select_arms(['baseline', 'odd'], table)
    # a requested student brings its teacher and the baseline
    assert mixing_ablation.select_arms(['annotator'], table) == ['baseline', 'cnn', 'annotator']


def test_mixing_arm_table_uses_the_stlconfig_names():
    arms = mixing_ablation.ABLATION_ARMS
    assert arms['maskmix_pal']['mix_method'] == 'maskmix' and arms['maskmix_pal']['attention_relabel'] == 'pal'
    assert arms['mixtoken']['mix_method'] == 'mixtoken' and arms['stl']['mix_method'] == 'mixup_cutmix'
    assert arms['annotator']['label_source'] == 'annotator' and arms['annotator']['teacher_arm'] == 'cnn'
    assert 'TOO SMALL TO SEPARATE THE METHODS' in ' '.join(mixing_ablation.__doc__.split())
    assert 'TOO SMALL TO SEPARATE THE METHODS' in mixing_ablation.TOO_SMALL['cpu']


def test_the_mixpro_arm_is_mixpros_released_recipe_and_maskmix_pal_is_not_called_so():
    from fan_stl.stl.config import STLConfig
    from fan_stl.stl.maskmix import MixPro
    from fan_stl.stl.mixing import build_mix_method
    options = {k: v for k, v in mixing_ablation.ABLATION_ARMS['mixpro'].items() if k != 'model'}
    method = build_mix_method(STLConfig(**options, teacher='teacher'))
    assert isinstance(method, MixPro) and method.p_maskmix == 0.5 and method.pairing == 'perm'
    assert method.maskmix.pairing == method.timm_mix.pairing == 'perm' and method.maskmix.mode == 'batch'
    assert options['attention_relabel'] == 'none'  # every released MixPro configuration has PAL off
    assert mixing_ablation.unknown_option('mixpro') is None
    doc = ' '.join(mixing_ablation.__doc__.split())
    assert "maskmix_pal as maskmix (every batch, reversed-batch pairing)" in doc and 'NOT MixPro\'s recipe' in doc
    assert "pal`): MixPro's recipe" not in doc


def test_needs_a_mode_and_data(monkeypatch, capsys):
    with pytest.raises(SystemExit):
        mixing_ablation.main([])
    monkeypatch.setattr(mixing_ablation, 'find_data', lambda: None)
    with pytest.raises(SystemExit):
        mixing_ablation.main(['--cpu'])
    assert 'no Imagenette found' in capsys.readouterr().err


def _smoke(tmp_path, capsys, *arms):
    results_md = mixing_ablation.RESULTS.read_text()
    argv = ['--smoke', '--quiet', '--out', str(tmp_path), '--json', str(tmp_path / 'r.json')]
    assert mixing_ablation.main(argv + (['--arms', *arms] if arms else [])) == 0
    out = capsys.readouterr()
    report = json.loads((tmp_path / 'r.json').read_text())
    assert mixing_ablation.RESULTS.read_text() == results_md  # recorded only with --record
    return report, out


def test_smoke_run_of_the_annotator_arm(tmp_path, capsys):
    report, out = _smoke(tmp_path, capsys, 'annotator')
    assert report['arms'] == ['baseline', 'cnn', 'annotator'] and report['refused'] == []
    assert [r['arm'] for r in report['results']] == report['arms']
    assert next(r for r in report['results'] if r['arm'] == 'baseline')['mce_vs_baseline'] == pytest.approx(100.)
    assert all(0. <= r['clean_top1'] <= 100. for r in report['results'])
    assert (tmp_path / 'smoke' / 'clean_and_mce.png').stat().st_size > 0
    assert 'pipeline check only' in out.out and 'resnet10t trained from random initialisation' in out.err


@pytest.mark.slow
def test_smoke_run_of_every_arm_the_installation_knows(tmp_path, capsys):
    report, out = _smoke(tmp_path, capsys)
    runnable = [a for a in mixing_ablation.ABLATION_ARMS if mixing_ablation.unknown_option(a) is None]
    assert report['arms'] == runnable and {r['arm'] for r in report['results']} == set(runnable)
    assert report['refused'] == [a for a in mixing_ablation.ABLATION_ARMS if a not in runnable]

