"""`eval` with the extra sets: bad input is one line before any model is built; reports, CSVs and charts written."""
import csv
import json

import pytest

import fan_stl.commands.evaluate as evaluate_command
from fan_stl.cli import main
from fan_stl.robustness.class_maps import imagenet1k_wnids
from fan_stl.robustness.robustbench import MODEL_INFO_FIELDS
from fan_stl.robustness.results_csv import TIMM_COLUMNS

from ..robustness.evalsets_helpers import make_folder

WNIDS = imagenet1k_wnids()


def _eval(tmp_path, *options):
    return main(['eval', 'test_vit', '--img-size', '32', '--workers', '0', '--out', str(tmp_path / 'out'), *options])


def test_bad_input_is_one_error_before_any_model(tmp_path, capsys, monkeypatch):
    val = make_folder(tmp_path / 'val', {f'{WNIDS[0]}/ILSVRC2012_val_00000001.png': 'red'})
    mixed = make_folder(tmp_path / 'mixed', {'fog/1/a/0.png': 'red', 'sparkles/1/a/0.png': 'red'})
    unknown = make_folder(tmp_path / 'unknown', {'wobble/1/a/0.png': 'red'})
    cue = make_folder(tmp_path / 'cue', {'cat/cat-dog.png': 'red'})
    ids = tmp_path / 'ids.txt'
    ids.write_text(f'{WNIDS[0]}/ILSVRC2012_val_00000001.JPEG\n{WNIDS[0]}/ILSVRC2012_val_00000009.JPEG\n')
    labels = tmp_path / 'real.json'
    labels.write_text('[]')
    cases = [
        (['--corruption-set', str(mixed)], 'mixes corruption families'),
        (['--corruption-set', str(unknown)], 'no corruption of any known family'),
        (['--data', str(val), '--protocol', 'robustbench', '--subset-list', str(ids)], 'lacks 1 of the 2 images'),
        (['--cue-conflict', str(cue)], 'do not parse'),
        (['--real', str(val), '--real-labels', str(labels)], 'does not fit the dataset'),
        (['--data', str(val), '--subset-list', str(ids)], 'belong to --protocol robustbench'),
        (['--imagenet-c', str(mixed), '--protocol', 'robustbench', '--alexnet-normalise'], 'do not normalise'),
    ]
    def refuse(*args, **kwargs):
        raise AssertionError('a model was built before the input was checked')
    monkeypatch.setattr(evaluate_command, 'create_model', refuse)
    for options, message in cases:
        assert _eval(tmp_path, *options) == 1, options
        err = capsys.readouterr().err
        assert message in err and err.count('\n') == 1, err


def test_reports_csv_charts_and_model_info(tmp_path, capsys):
    pytest.importorskip('matplotlib')
    val = make_folder(tmp_path / 'val', {f'{WNIDS[0]}/ILSVRC2012_val_00000001.png': 'red',
                                         'n01498041/ILSVRC2012_val_00000002.png': 'green'})
    ids = tmp_path / 'ids.txt'
    ids.write_text(f'{WNIDS[0]}/ILSVRC2012_val_00000001.JPEG\nn01498041/ILSVRC2012_val_00000002.JPEG\n')
    cue = make_folder(tmp_path / 'cue', {'cat/cat1-dog1.png': 'red', 'dog/dog1-cat1.png': 'blue'})
    assert _eval(tmp_path, '--data', str(val), '--protocol', 'robustbench', '--subset-list', str(ids),
                 '--ar-clean', '--occlusion', '0', '0.5', '--cue-conflict', str(cue)) == 0
    out = tmp_path / 'out'
    printed = capsys.readouterr().out
    assert '| model | clean | A-clean | R-clean | shape bias % | occl. area |' in printed
    assert (out / 'results.md').read_text().startswith('| model |')
    with open(out / 'results-imagenet-a-clean.csv') as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == TIMM_COLUMNS and rows[0]['img_size'] == '32' and rows[0]['model'] == 'test_vit-random-init'
    info = json.loads((out / 'test_vit-random-init.model_info.json').read_text())
    assert tuple(info) == MODEL_INFO_FIELDS and info['clean_acc'] is not None
    for chart in ('occlusion.png', 'shape_bias.png'):
        assert (out / chart).read_bytes()[:4] == b'\x89PNG'
