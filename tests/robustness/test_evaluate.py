"""The evaluation runner on tiny synthetic folders: known accuracies, resumability, layout errors, reports."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fan_stl.robustness.class_maps import imagenet1k_wnids
from fan_stl.robustness.evaluate import (
    EvalSettings, ResultsMismatchError, baseline_from_results, evaluate_imagefolder, evaluate_imagenet_c,
    evaluate_robustness, imagenet_c_mismatch, load_baseline, load_results, summarize_results,
)
from fan_stl.robustness.layouts import ImageNetCLayout, LayoutError, discover_imagenet_c, list_classes
from fan_stl.robustness.metrics import ALEXNET, STANDARD_CORRUPTIONS
from fan_stl.robustness.report import format_tables, plot_corruption_errors, write_csvs

COLOURS = {'a_red': (200, 30, 30), 'b_green': (30, 200, 30), 'c_blue': (30, 30, 200)}
SETTINGS = EvalSettings(batch_size=4, workers=0, device='cpu', img_size=32, progress=False)


class ColourClassifier(torch.nn.Module):
    """ Predicts the dominant colour channel: class i <-> channel i (times `gain`). Counts its forward calls. """
    num_classes = 3

    def __init__(self, gain=(1.0, 1.0, 1.0)):
        super().__init__()
        self.calls = 0
        self.gain = torch.nn.Parameter(torch.tensor(gain))

    def forward(self, x):
        self.calls += 1
        return x.mean(dim=(2, 3)) * self.gain


def make_imagefolder(root: Path, counts: dict, size: int = 40) -> Path:
    """ `counts`: class folder -> list of colour names, one image each. """
    for class_name, colours in counts.items():
        (root / class_name).mkdir(parents=True, exist_ok=True)
        for i, colour in enumerate(colours):
            pixels = np.full((size, size, 3), COLOURS[colour], dtype=np.uint8)
            Image.fromarray(pixels).save(root / class_name / f'{i}.png')
    return root


def make_imagenet_c(root: Path, corruptions=('gaussian_noise', 'fog'), severities=range(1, 6), mislabelled=0) -> Path:
    for c in corruptions:
        for s in severities:
            counts = {k: [k] * 2 for k in COLOURS}
            counts['a_red'] += ['b_green'] * mislabelled  # wrong images lower the accuracy by a known amount
            make_imagefolder(root / c / str(s), counts)
    return root


def test_accuracy_on_a_folder_with_known_answers(tmp_path):
    root = make_imagefolder(tmp_path / 'clean', {'a_red': ['a_red'] * 3 + ['b_green'], 'b_green': ['b_green'] * 2,
                                                 'c_blue': ['c_blue'] * 2})
    result = evaluate_imagefolder(ColourClassifier(), root, SETTINGS)
    assert result['num_images'] == 8
    assert result['top1'] == pytest.approx(100 * 7 / 8)
    assert result['top5'] == pytest.approx(100.0)  # top-5 of 3 classes always hits


def test_head_mismatch_is_a_clear_error(tmp_path):
    root = make_imagefolder(tmp_path / 'two', {'a_red': ['a_red'], 'b_green': ['b_green']})
    with pytest.raises(ValueError, match='2 classes .* but the model head has 3 outputs'):
        evaluate_imagefolder(ColourClassifier(), root, SETTINGS)


def test_imagenet_c_grid_and_resume(tmp_path):
    root = make_imagenet_c(tmp_path / 'c', mislabelled=2)
    results_path = tmp_path / 'out' / 'colour.json'
    model = ColourClassifier()
    clean = make_imagefolder(tmp_path / 'clean', {k: [k] for k in COLOURS})
    results = evaluate_robustness(model, 'colour', results_path, clean=clean, imagenet_c=root, settings=SETTINGS)
    cells = results['imagenet_c']['cells']
    assert sorted(cells) == ['fog', 'gaussian_noise'] and sorted(cells['fog']) == ['1', '2', '3', '4', '5']
    assert cells['fog']['3']['top1'] == pytest.approx(100 * 6 / 8)
    summary = results['imagenet_c']['summary']
    assert summary['corruption_errors']['fog'] == pytest.approx(25.0)
    assert summary['mce'] is None and 'missing' in summary['notes'][0]  # 13 standard corruptions absent
    assert json.loads(results_path.read_text()) == results

    # mark a stored cell: a recomputation would overwrite the marker
    stored = json.loads(results_path.read_text())
    stored['imagenet_c']['cells']['fog']['3']['top1'] = 12.5
    results_path.write_text(json.dumps(stored))
    model.calls = 0
    make_imagenet_c(root, corruptions=('snow',), severities=(2,))  # one new cell on disk
    again = evaluate_robustness(model, 'colour', results_path, clean=clean, imagenet_c=root, settings=SETTINGS)
    assert again['imagenet_c']['cells']['fog']['3']['top1'] == 12.5
    assert again['imagenet_c']['cells']['snow']['2']['num_images'] == 6
    assert model.calls == 2  # only the new cell (6 images, batch 4) ran


def test_results_file_of_another_model_is_refused(tmp_path):
    clean = make_imagefolder(tmp_path / 'clean', {k: [k] for k in COLOURS})
    path = tmp_path / 'r.json'
    evaluate_robustness(ColourClassifier(), 'first', path, clean=clean, settings=SETTINGS)
    with pytest.raises(ValueError, match='results of another model .*model: first there, second now.*--overwrite'):
        evaluate_robustness(ColourClassifier(), 'second', path, clean=clean, settings=SETTINGS)
    other = make_imagefolder(tmp_path / 'other', {k: [k] for k in COLOURS})
    with pytest.raises(ValueError, match='holds clean results for .*new --out'):
        evaluate_robustness(ColourClassifier(), 'first', path, clean=other, settings=SETTINGS)


def test_evaluate_imagenet_c_skips_given_cells(tmp_path):
    root = make_imagenet_c(tmp_path / 'c', corruptions=('fog',), severities=(1, 2))
    model = ColourClassifier()
    done = {'fog': {'1': {'top1': 1.0, 'top5': 1.0, 'num_images': 1}}}
    seen = []
    cells = evaluate_imagenet_c(model, root, SETTINGS, cells=done, on_cell_done=lambda c: seen.append(sorted(c['fog'])))
    assert cells['fog']['1']['top1'] == 1.0 and cells['fog']['2']['top1'] == 100.0
    assert seen == [['1', '2']]


def fog_1(root: Path) -> Path:
    """ A valid one-cell grid to break in the cases below. """
    return make_imagenet_c(root, corruptions=('fog',), severities=(1,))


@pytest.mark.parametrize('build, message', [
    (lambda r: make_imagefolder(r, {'a_red': ['a_red']}), 'looks like a plain ImageFolder'),
    (lambda r: fog_1(r) / 'fog', 'pass its parent folder'),
    (lambda r: (fog_1(r) / 'Gaussian_Noise' / '1').mkdir(parents=True) or r, "did you mean 'gaussian_noise'"),
    (lambda r: make_imagefolder(r / 'Fog' / '1', {'a_red': ['a_red']}) and make_imagefolder(
        r / 'Snow' / '1', {'a_red': ['a_red']}) and r, "'Fog' \\(did you mean 'fog'.*'Snow' \\(did you mean 'snow'"),
    (lambda r: (fog_1(r) / 'fog' / '2').mkdir() or r, 'severity folder .*fog/2 is empty'),
    (lambda r: (fog_1(r) / 'fog' / 'x').mkdir() or r, 'should hold severity folders 1-5'),
    (lambda r: make_imagefolder(fog_1(r) / 'fog' / '2', {'a_red': ['a_red'], 'z_other': ['a_red']}) and r,
     'different classes .*extra: z_other'),
    (lambda r: r.mkdir() or r, 'is empty'),
    (lambda r: r, 'does not exist'),
])
def test_bad_imagenet_c_layouts(tmp_path, build, message):
    root = build(tmp_path / 'c')
    with pytest.raises(LayoutError, match=message):
        discover_imagenet_c(root)


def test_bad_imagefolder_layouts(tmp_path):
    (tmp_path / 'loose').mkdir()
    Image.new('RGB', (8, 8)).save(tmp_path / 'loose' / 'x.png')
    with pytest.raises(LayoutError, match='1 images but no class folders'):
        list_classes(tmp_path / 'loose')
    (tmp_path / 'loose' / 'empty_class').mkdir()
    with pytest.raises(LayoutError, match='hold no images .*empty_class'):
        list_classes(tmp_path / 'loose')
    with pytest.raises(LayoutError, match='lacks the requested corruption'):
        discover_imagenet_c(fog_1(tmp_path / 'c'), corruptions=['snow'])


def test_reports_and_baseline_file(tmp_path):
    root = make_imagenet_c(tmp_path / 'c', corruptions=('fog', 'saturate'), mislabelled=1)
    results = evaluate_robustness(ColourClassifier(), 'colour', tmp_path / 'colour.json', imagenet_c=root,
                                  settings=SETTINGS)
    baseline = load_baseline(tmp_path / 'colour.json')
    assert baseline.name == 'colour' and baseline.clean_error is None
    assert baseline.corruption_errors['fog'] == pytest.approx(100 / 7)

    text = format_tables([results])
    assert 'mCE vs' not in text and 'no mCE: ' in text  # 3 colour classes are not ImageNet-C
    assert 'C-acc (15)' in text and 'IN-C acc' not in text and 'saturate*' in text and '14.29' in text
    summary_csv, cells_csv = write_csvs([results], tmp_path / 'out')
    assert summary_csv.read_text().splitlines()[0].startswith('model,clean_images,clean_top1')
    assert len(cells_csv.read_text().splitlines()) == 1 + 10
    pytest.importorskip('matplotlib', reason='the chart needs the robustness extra')
    png = plot_corruption_errors({'colour': results, 'again': results}, tmp_path / 'out' / 'chart.png')
    assert png.read_bytes()[:4] == b'\x89PNG'


def test_results_are_identified_by_weights_and_files_not_by_path(tmp_path):
    """ a retrained model at the same checkpoint path, or changed data, never gets the stored numbers. """
    clean = make_imagefolder(tmp_path / 'clean', {k: [k] * 2 for k in COLOURS})
    path, source = tmp_path / 'r.json', {'checkpoint': str(tmp_path / 'last.safetensors')}
    first = evaluate_robustness(ColourClassifier(), 'm', path, clean=clean, settings=SETTINGS, source=source)
    assert first['clean']['top1'] == 100.0 and len(first['identity']['weights_sha256']) == 64
    retrained = ColourClassifier(gain=(1.0, 1.0, -1.0))  # blue images now lose: 4 of 6 right
    with pytest.raises(ResultsMismatchError, match='weights_sha256: .* there, .* now.*new --out.*--overwrite'):
        evaluate_robustness(retrained, 'm', path, clean=clean, settings=SETTINGS, source=source)
    again = evaluate_robustness(retrained, 'm', path, clean=clean, settings=SETTINGS, source=source, overwrite=True)
    assert again['clean']['top1'] == pytest.approx(100 * 4 / 6)
    make_imagefolder(clean, {'a_red': ['a_red', 'a_red', 'b_green']})  # a third, mislabelled red image
    with pytest.raises(ResultsMismatchError, match='other files than .*clean has now'):
        evaluate_robustness(retrained, 'm', path, clean=clean, settings=SETTINGS, source=source)


class NaNClassifier(ColourClassifier):
    def forward(self, x):
        return super().forward(x) * float('nan')


def test_non_finite_outputs_are_refused_not_scored(tmp_path):
    """ NaN logits would make class 0 'win' every time (33 % here); they stop the evaluation instead. """
    clean = make_imagefolder(tmp_path / 'clean', {k: [k] for k in COLOURS})
    with pytest.raises(ValueError, match='NaN or infinite logits for 3 of 3 images .*not scored'):
        evaluate_imagefolder(NaNClassifier(), clean, SETTINGS)
    assert not (tmp_path / 'r.json').exists()


def test_unreadable_images_are_counted_never_replaced(tmp_path):
    """ a broken file is left out and counted (not replaced by the next image); strict stops on it. """
    clean = make_imagefolder(tmp_path / 'clean', {'a_red': ['a_red', 'a_red', 'b_green'], 'b_green': ['b_green'] * 2,
                                                  'c_blue': ['c_blue']})
    (clean / 'a_red' / '0.png').write_bytes(b'\x89PNG\r\n\x1a\n not really an image')  # sorts before the others
    result = evaluate_imagefolder(ColourClassifier(), clean, SETTINGS)
    assert (result['num_images'], result['unreadable']) == (5, 1)
    assert result['top1'] == pytest.approx(100 * 4 / 5)
    assert result['unreadable_files'] == [str(clean / 'a_red' / '0.png')]
    with pytest.raises(OSError, match=r'a_red/0.png.*strict'):
        evaluate_imagefolder(ColourClassifier(), clean, EvalSettings(**{**SETTINGS.__dict__, 'strict': True}))
    results = evaluate_robustness(ColourClassifier(), 'm', tmp_path / 'r.json', clean=clean, settings=SETTINGS)
    text = format_tables([results])
    assert 'clean: 1 unreadable image(s) left out, 5 scored' in text
    assert text.splitlines()[2].split()[1] == '5'  # the images column


def test_duplicate_stems_in_a_cell_are_warned_about(tmp_path):
    """ x.jpg beside x.png (two `corrupt --format` runs) would count one picture twice. """
    root = make_imagenet_c(tmp_path / 'c', corruptions=('fog',), severities=(1,))
    Image.open(root / 'fog' / '1' / 'a_red' / '0.png').save(root / 'fog' / '1' / 'a_red' / '0.jpg')
    with pytest.warns(UserWarning, match=r'1 image\(s\) are there twice .*a_red/0\.\*'):
        cells = evaluate_imagenet_c(ColourClassifier(), root, SETTINGS)
    assert cells['fog']['1']['duplicate_stems'] == 1


def fake_imagenet_c(root: Path, image_size: int) -> ImageNetCLayout:
    """ One real cell standing for all 75 standard cells, with the 1000 ImageNet classes. """
    wnids = list(imagenet1k_wnids())
    (root / wnids[0]).mkdir(parents=True)
    Image.new('RGB', (image_size, image_size)).save(root / wnids[0] / 'x.jpg')
    return ImageNetCLayout(root, {c: {s: root for s in range(1, 6)} for c in STANDARD_CORRUPTIONS}, wnids)


def test_alexnet_normalisation_only_for_recognisable_imagenet_c(tmp_path):
    """ corrupted copies of other data get no AlexNet mCE by default; a baseline model normalises instead. """
    assert imagenet_c_mismatch(fake_imagenet_c(tmp_path / 'in-c', 224)) is None
    assert '128x128 px' in imagenet_c_mismatch(fake_imagenet_c(tmp_path / 'small', 128))
    assert '3 class folders' in imagenet_c_mismatch(discover_imagenet_c(make_imagenet_c(tmp_path / 'c')))

    root = make_imagenet_c(tmp_path / 'c15', corruptions=STANDARD_CORRUPTIONS, mislabelled=1)
    results = evaluate_robustness(ColourClassifier(), 'model', tmp_path / 'm.json', imagenet_c=root,
                                  settings=SETTINGS)
    summary = results['imagenet_c']['summary']
    assert summary['mce'] is None and summary['baseline'] is None
    assert summary['mean_corruption_accuracy'] == pytest.approx(100 * 6 / 7)
    assert 'not recognisably ImageNet-C: it has 3 class folders' in summary['notes'][0]
    base = evaluate_robustness(ColourClassifier(gain=(1.0, 1.0, -1.0)), 'base', tmp_path / 'b.json',
                               imagenet_c=root, settings=SETTINGS)
    baseline = baseline_from_results(base)
    relative = evaluate_robustness(ColourClassifier(), 'model', tmp_path / 'm.json', imagenet_c=root,
                                   settings=SETTINGS, baseline=baseline)['imagenet_c']['summary']
    assert relative['baseline'] == 'base' and relative['mce'] == pytest.approx(100 * (1 / 7) / (3 / 7))
    alexnet = evaluate_robustness(ColourClassifier(), 'model', tmp_path / 'm.json', imagenet_c=root,
                                  settings=SETTINGS, baseline=ALEXNET)
    text = format_tables([summarize_results(base, baseline), {**alexnet, 'model': 'model (AlexNet)'}])
    header = text.splitlines()[0]
    assert 'mCE vs base' in header and 'mCE vs AlexNet' in header  # two normalisers, two columns
    assert 'the corruption errors of base, evaluated on the same images' in text


def test_partial_sets_get_a_per_corruption_table_and_chart(tmp_path):
    """ any cells present are tabulated and plotted (severities named); mCE waits for the full set. """
    root = make_imagenet_c(tmp_path / 'c', corruptions=('fog', 'snow'), severities=(3,), mislabelled=2)
    make_imagenet_c(root, corruptions=('snow',), severities=(5,))
    results = evaluate_robustness(ColourClassifier(), 'colour', tmp_path / 'r.json', imagenet_c=root,
                                  settings=SETTINGS)
    text = format_tables([results])
    assert 'fog [sev 3]' in text and 'snow [sev 3,5]' in text
    fog_row = next(line for line in text.splitlines() if line.startswith('fog [sev 3]'))
    assert fog_row.split()[-1] == '25.00'
    assert 'mCE, relative mCE and mean corruption accuracy need all 15' in text
    pytest.importorskip('matplotlib', reason='the chart needs the robustness extra')
    png = plot_corruption_errors({'colour': results}, tmp_path / 'chart.png')
    assert png.read_bytes()[:4] == b'\x89PNG'


def test_results_files_of_the_earlier_format_load_or_are_refused(tmp_path):
    """ A file as fan_stl 0.1.0 wrote it (model named by checkpoint path only): usable as a baseline and in tables,
    refused - with the fix - as a resume point. """
    clean = make_imagefolder(tmp_path / 'clean', {k: [k] for k in COLOURS})
    cells = {'fog': {str(s): {'top1': 75.0, 'top5': 100.0, 'num_images': 8} for s in range(1, 6)}}
    old = {'model': 'old', 'identity': {'model': 'old', 'source': {'checkpoint': '/x/last.pth'}, 'data_config': {}},
           'clean': {'root': str(clean.resolve()), 'top1': 90.0, 'top5': 100.0, 'num_images': 3},
           'imagenet_c': {'root': '/x/c', 'cells': cells,
                          'summary': {'baseline': 'AlexNet', 'corruption_errors': {'fog': 25.0}, 'mce': None,
                                      'relative_mce': None, 'mean_corruption_accuracy': None,
                                      'extra_mean_corruption_accuracy': None, 'notes': []}}}
    path = tmp_path / 'old.json'
    path.write_text(json.dumps(old))
    assert load_baseline(path).corruption_errors == {'fog': 25.0}
    assert 'old' in format_tables([load_results(path)])
    with pytest.raises(ResultsMismatchError, match='earlier fan_stl .*format 1.*--overwrite'):
        evaluate_robustness(ColourClassifier(), 'old', path, clean=clean, settings=SETTINGS)
    path.write_text('{"model": 1}')
    with pytest.raises(ValueError, match='not a fan_stl robustness results file'):
        load_results(path)
