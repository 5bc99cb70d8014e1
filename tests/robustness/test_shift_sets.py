"""Clean distribution-shift sets on tiny folders in their real layouts, with answers worked out by hand."""
import json

import pytest

from fan_stl.robustness.class_maps import imagenet1k_wnids
from fan_stl.robustness.evaluate import ResultsMismatchError, evaluate_robustness
from fan_stl.robustness.layouts import LayoutError
from fan_stl.robustness.sets import ExtraSets

from .evalsets_helpers import SETTINGS, ColourModel1k, make_folder

IN1K = imagenet1k_wnids()
TENCH, GOLDFISH = IN1K[0], IN1K[1]


def _run(tmp_path, model, **extra):
    return evaluate_robustness(model, 'm', tmp_path / 'out.json', settings=SETTINGS, extra=ExtraSets(**extra))


def test_real_labels_by_hand(tmp_path):
    root = make_folder(tmp_path / 'val', {
        f'{TENCH}/ILSVRC2012_val_00000001.png': 'red',     # predicts 0; labels [0]: top-1 hit
        f'{TENCH}/ILSVRC2012_val_00000002.png': 'green',   # predicts 1; labels [5, 1]: top-1 hit
        f'{GOLDFISH}/ILSVRC2012_val_00000003.png': 'blue',  # no ReaL label: left out
        f'{GOLDFISH}/ILSVRC2012_val_00000004.png': 'red',  # top-5 is 0, 2, 1, 3, 4; labels [4]: top-5 hit only
    })
    labels = tmp_path / 'real.json'
    labels.write_text(json.dumps([[0], [5, 1], [], [4]]))
    real = _run(tmp_path, ColourModel1k(), real=root, real_labels=labels)['imagenet_real']
    assert real['num_images'] == 3
    assert real['top1'] == pytest.approx(200 / 3) and real['top5'] == pytest.approx(100.0)
    assert real['original_top1'] == pytest.approx(25.0)  # folder labels (0, 0, 1, 1): only image 1 is right


def test_real_label_file_that_does_not_fit_is_refused(tmp_path):
    root = make_folder(tmp_path / 'val', {f'{TENCH}/ILSVRC2012_val_00000003.png': 'red'})
    labels = tmp_path / 'real.json'
    labels.write_text(json.dumps([[0], [1]]))
    with pytest.raises(ValueError, match=r'has 2 entries, but .*\(ILSVRC2012_val_00000003.png\).*does not fit'):
        _run(tmp_path, ColourModel1k(), real=root, real_labels=labels)
    labels.write_text(json.dumps({'a': 1}))
    with pytest.raises(ValueError, match='not a list of lists of ImageNet-1k class indices'):
        _run(tmp_path, ColourModel1k(), real=root, real_labels=labels)


def test_imagenet_v2_targets_are_folder_numbers(tmp_path):
    root = make_folder(tmp_path / 'imagenetv2-matched-frequency-format-val',
                       {'0/a.jpeg': 'red', '1/b.jpeg': 'green', '2/c.jpeg': 'red', '10/d.jpeg': 'red'})
    v2 = _run(tmp_path, ColourModel1k(), imagenet_v2=[root])['imagenetv2_matched_frequency']
    assert v2['num_images'] == 4 and v2['top1'] == pytest.approx(50.0)  # 2 and 10 predicted as 0
    assert v2['top5'] == pytest.approx(75.0)  # class 10 is not in the top 5 (0, 2, 1, 3, 4)


def test_imagenet_v2_bad_layouts(tmp_path):
    bad = make_folder(tmp_path / 'imagenetv2-top-images-format-val', {'cat/a.jpeg': 'red'})
    with pytest.raises(LayoutError, match='class folders named 0-999'):
        _run(tmp_path, ColourModel1k(), imagenet_v2=[bad])
    unnamed = make_folder(tmp_path / 'v2', {'0/a.jpeg': 'red'})
    with pytest.raises(LayoutError, match='cannot tell the ImageNetV2 variant'):
        _run(tmp_path, ColourModel1k(), imagenet_v2=[unnamed])


def test_sketch_wnid_folders(tmp_path):
    root = make_folder(tmp_path / 'sketch', {f'{TENCH}/a.JPEG': 'red', f'{GOLDFISH}/b.JPEG': 'red'})
    assert _run(tmp_path, ColourModel1k(), sketch=root)['sketch']['top1'] == pytest.approx(50.0)
    make_folder(tmp_path / 'sketch', {'cat/c.JPEG': 'red'})
    with pytest.raises(LayoutError, match='not ImageNet-1k wnids'):
        _run(tmp_path, ColourModel1k(), sketch=root)


def test_clean_200_class_baselines_mask_the_logits(tmp_path):
    first, second = 'n01498041', 'n01531178'  # in both the ImageNet-A and -R 200
    model = ColourModel1k((IN1K.index(first), IN1K.index(second), 0))
    root = make_folder(tmp_path / 'val', {f'{first}/a.png': 'red', f'{second}/b.png': 'red',
                                          f'{TENCH}/c.png': 'blue'})  # tench: in neither subset, left out
    results = evaluate_robustness(model, 'm', tmp_path / 'out.json', clean=root, settings=SETTINGS,
                                  extra=ExtraSets(ar_clean=True))
    for key in ('imagenet_a_clean', 'imagenet_r_clean'):
        assert results[key]['num_images'] == 2 and results[key]['top1'] == pytest.approx(50.0)
    assert results['clean']['top1'] == pytest.approx(200 / 3)  # unmasked: tench (blue -> logit 0) now counts


def test_finished_sets_resume_and_changed_files_are_refused(tmp_path):
    root = make_folder(tmp_path / 'imagenetv2-top-images-format-val', {'0/a.jpeg': 'red', '1/b.jpeg': 'green'})
    sketch = make_folder(tmp_path / 'sketch', {f'{TENCH}/a.JPEG': 'red'})
    first = _run(tmp_path, ColourModel1k(), imagenet_v2=[root], sketch=sketch)
    model = ColourModel1k()
    again = _run(tmp_path, model, imagenet_v2=[root], sketch=sketch)
    assert model.calls == 0 and again['imagenetv2_top_images'] == first['imagenetv2_top_images']
    make_folder(root, {'2/c.jpeg': 'blue'})
    with pytest.raises(ResultsMismatchError, match='imagenetv2_top_images results for other files'):
        _run(tmp_path, ColourModel1k(), imagenet_v2=[root])
