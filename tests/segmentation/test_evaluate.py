"""Robustness in mIoU: clean and corrupted cells, the summary, resuming, result identity."""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from fan_stl.robustness.evaluate import ResultsMismatchError
from fan_stl.segmentation.evaluate import SegEvalSettings, evaluate_segmentation, summarize
from tests.segmentation.camvid_helpers import make_camvid

pytest.importorskip('imagecorruptions', reason='corruptions need the robustness extra: pip install -e ".[robustness]"')
SETTINGS = SegEvalSettings(size=(32, 64), batch_size=2)


class Constant(nn.Module):
    """ Predicts one class everywhere, and counts its calls. """

    def __init__(self, cls: int):
        super().__init__()
        self.logits = nn.Parameter(torch.nn.functional.one_hot(torch.tensor(cls), 11).float())
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.logits.view(1, 11, 1, 1).expand(x.shape[0], 11, *x.shape[2:])


def _camvid(tmp_path):
    root = make_camvid(tmp_path / 'camvid', count=3, size=(32, 64))
    for i in range(3):  # left half road (3), right half sky (0), a void row
        mask = np.zeros((32, 64), np.uint8)
        mask[:, :32] = 3
        mask[0] = 11
        Image.fromarray(mask).save(root / 'testannot' / f'img_{i:03d}.png')
    return root


def test_clean_and_corrupted_miou_resume_and_identity(tmp_path):
    root = _camvid(tmp_path)
    out = tmp_path / 'out' / 'road.json'
    model = Constant(3)
    results = evaluate_segmentation(model, 'road', root, out, ['fog', 'gaussian_noise'], [1, 2], SETTINGS,
                                    progress=False)
    # road everywhere: road IoU = 31*32 / (31*64) = 0.5, sky IoU 0 (never predicted) -> mIoU 25 whatever the corruption
    assert results['clean']['miou'] == pytest.approx(25.)
    assert results['clean']['iou']['pole'] is None and results['clean']['num_images'] == 3
    assert sorted(results['cells']) == ['fog/1', 'fog/2', 'gaussian_noise/1', 'gaussian_noise/2']
    assert results['summary'] == {'clean_miou': pytest.approx(25.), 'mean_corrupted_miou': pytest.approx(25.),
                                  'ratio_to_clean': pytest.approx(1.), 'cells': 4,
                                  'per_corruption': {'fog': pytest.approx(25.), 'gaussian_noise': pytest.approx(25.)}}
    assert json.loads(out.read_text())['summary'] == results['summary']
    calls = model.calls
    again = evaluate_segmentation(model, 'road', root, out, ['fog', 'gaussian_noise', 'contrast'], [1, 2], SETTINGS,
                                  progress=False)
    assert model.calls == calls + 4 and len(again['cells']) == 6  # only the two new contrast cells ran (2 batches)
    with pytest.raises(ResultsMismatchError, match='another model or other settings.*weights_sha256'):
        evaluate_segmentation(Constant(0), 'road', root, out, settings=SETTINGS, progress=False)
    with pytest.raises(ResultsMismatchError, match='size'):
        evaluate_segmentation(model, 'road', root, out, settings=SegEvalSettings(size=(64, 64)), progress=False)
    fresh = evaluate_segmentation(Constant(0), 'road', root, out, settings=SETTINGS, overwrite=True, progress=False)
    assert fresh['cells'] == {} and fresh['clean']['miou'] == pytest.approx(25.)  # sky: 31*32 / (31*64)


def test_tree_and_on_the_fly_give_the_same_numbers(tmp_path):
    root = make_camvid(tmp_path / 'camvid', count=2, size=(32, 64))
    model = nn.Sequential(nn.Conv2d(3, 11, 3, padding=1))
    fly = evaluate_segmentation(model, 'm', root, tmp_path / 'a.json', ['shot_noise'], [3], SETTINGS, progress=False)
    tree = evaluate_segmentation(model, 'm', root, tmp_path / 'b.json', ['shot_noise'], [3], SETTINGS,
                                 camvid_c=tmp_path / 'camvid-c', progress=False)
    assert fly['cells'] == tree['cells'] and fly['cells']['shot_noise/3']['miou'] != fly['clean']['miou']
    assert (tmp_path / 'camvid-c' / 'shot_noise' / '3' / 'img_000.png').is_file()


def test_bad_input_fails_before_any_work(tmp_path):
    root = make_camvid(tmp_path / 'camvid', count=1)
    with pytest.raises(ValueError, match='nearest valid size is 32x64'):
        evaluate_segmentation(Constant(3), 'm', root, tmp_path / 'r.json', settings=SegEvalSettings(size=(30, 64)))
    assert not (tmp_path / 'r.json').exists()
    bad = nn.Conv2d(3, 5, 1)
    with pytest.raises(ValueError, match='predicts 5 classes; CamVid has 11'):
        evaluate_segmentation(bad, 'm', root, tmp_path / 'r.json', settings=SETTINGS, progress=False)
