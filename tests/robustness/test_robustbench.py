"""RobustBench's protocol: the shipped subset list, missing images, its mCE formula by hand, the model_info JSON."""
import hashlib
import json

import pytest

from fan_stl.robustness.evaluate import evaluate_robustness
from fan_stl.robustness.metrics import CorruptionBaseline, mce
from fan_stl.robustness.robustbench import (
    MODEL_INFO_FIELDS, SHIPPED_SUBSET, SubsetMissingError, SubsetProtocol, model_info, validate_model_info)
from fan_stl.robustness.sets import ExtraSets

from .test_evaluate import COLOURS, SETTINGS, ColourClassifier, make_imagefolder


def test_the_shipped_list_is_robustbench_s_5000_images():
    protocol = SubsetProtocol.from_file()
    assert len(protocol.ids) == 5000 and len(set(protocol.ids)) == 5000
    assert protocol.ids[0] == 'n09468604/ILSVRC2012_val_00015253.JPEG'
    digest = hashlib.sha256(SHIPPED_SUBSET.read_bytes()).hexdigest()
    assert digest == 'd4121626d07722a0126c35b1563042e46a546f1a05ce705f2cdc635896d58574'  # robustbench 1.1.1's file
    assert 'MIT License' in (SHIPPED_SUBSET.parent / 'README.md').read_text()


def _subset(tmp_path, lines, allow_missing=False):
    path = tmp_path / 'ids.txt'
    path.write_text('\n'.join(lines))
    return SubsetProtocol.from_file(path, allow_missing)


def test_missing_images_are_counted_listed_and_refused_unless_allowed(tmp_path):
    root = make_imagefolder(tmp_path / 'val', {'a_red': ['a_red', 'a_red'], 'b_green': ['b_green']})
    lines = ['a_red/0.JPEG', 'b_green/0.JPEG', 'b_green/7.JPEG', 'a_red/9.JPEG']
    with pytest.raises(SubsetMissingError, match=r'lacks 2 of the 4 images .*b_green/7.JPEG, a_red/9.JPEG.*'
                                                 r'--allow-missing'):
        _subset(tmp_path, lines).select(root, ['a_red', 'b_green'])
    kept = _subset(tmp_path, lines, allow_missing=True).select(root, ['a_red', 'b_green'])
    assert [(p.relative_to(root).as_posix(), t) for p, t in kept] == [('a_red/0.png', 0), ('b_green/0.png', 1)]
    with pytest.raises(ValueError, match='one `<class folder>/<image file>` a line'):
        _subset(tmp_path, ['no-slash-here'])


def test_mce_equals_robustbench_formula_by_hand():
    # robustbench.eval.corruptions_evaluation: per corruption (1 - acc[c, s]) / mean_s(1 - acc_alexnet[c, s]),
    # averaged over the 5 severities, then over corruptions.
    acc = {'fog': [0.9, 0.8, 0.7, 0.6, 0.5], 'snow': [0.95, 0.9, 0.85, 0.8, 0.75]}
    alexnet = {'fog': [0.5, 0.4, 0.3, 0.2, 0.1], 'snow': [0.6, 0.5, 0.4, 0.3, 0.2]}
    by_hand = 0.0
    for c in acc:
        denominator = sum(1 - a for a in alexnet[c]) / 5
        by_hand += sum((1 - a) / denominator for a in acc[c]) / 5 / len(acc)
    grid = {c: {s + 1: 100 * (1 - a) for s, a in enumerate(v)} for c, v in acc.items()}
    reference = CorruptionBaseline('AlexNet', {c: 100 * sum(1 - a for a in v) / 5 for c, v in alexnet.items()})
    assert mce(grid, reference, ('fog', 'snow')) == pytest.approx(100 * by_hand)


def test_protocol_scores_only_the_subset_and_writes_model_info(tmp_path):
    clean = make_imagefolder(tmp_path / 'val', {k: [k, k] for k in COLOURS})
    corrupted = tmp_path / 'c'
    for s in range(1, 6):
        counts = {k: [k, k] for k in COLOURS}
        counts['a_red'][1] = 'b_green'  # a_red/1 is wrong in every cell
        make_imagefolder(corrupted / 'fog' / str(s), counts)
    ids = ['a_red/0.JPEG', 'a_red/1.JPEG', 'b_green/0.JPEG', 'c_blue/1.JPEG']
    protocol = _subset(tmp_path, ids)
    results = evaluate_robustness(ColourClassifier(), 'colour', tmp_path / 'out.json', clean=clean,
                                  imagenet_c=corrupted, settings=SETTINGS, extra=ExtraSets(protocol=protocol))
    assert results['clean']['num_images'] == 4 and results['clean']['top1'] == 100.0
    cell = results['imagenet_c']['cells']['fog']['3']
    assert cell['num_images'] == 4 and cell['top1'] == pytest.approx(75.0)
    assert 'subset' in results['imagenet_c']['not_imagenet_c']
    info = model_info(results, link='https://example.org')
    assert list(info) == list(MODEL_INFO_FIELDS)
    assert info['clean_acc'] == '100.0' and info['dataset'] == 'imagenet' and info['corruptions_mce'] is None
    validate_model_info(json.loads(json.dumps(info)))
    with pytest.raises(ValueError, match='not RobustBench'):
        validate_model_info({**info, 'extra_field': 1})
    with pytest.raises(ValueError, match='percentage as a string'):
        validate_model_info({**info, 'clean_acc': 99.5})
