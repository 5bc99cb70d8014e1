"""Token labels against known object masks (`fan_stl.demo.token_maps`): coverage, the object / background shares, the
token logits of a real token-head model, and the figure."""
import re

import numpy as np
import pytest
import torch
from PIL import Image

import timm
from fan_stl.demo.synthetic import class_folder_names, val_samples_with_masks
from fan_stl.demo.token_maps import (
    format_localisation, has_token_head, image_contrast, localisation, representative_rows, token_cover, token_logits)


def _sample(mask: np.ndarray, label: int) -> tuple:
    return Image.new('RGB', mask.shape[::-1]), mask, label


def test_token_cover_is_the_covered_share_of_each_token():
    mask = np.zeros((32, 32), dtype=bool)
    mask[:16, :16] = True  # token (0, 0) fully covered
    mask[16:24, 16:] = True  # token (1, 1) half covered
    assert token_cover([mask], (2, 2))[0].tolist() == [[1.0, 0.0], [0.0, 0.5]]


def test_localisation_counts_object_and_background_tokens_separately():
    mask = np.zeros((32, 32), dtype=bool)
    mask[:16, :] = True  # top row of tokens: object; bottom row: background
    logits = torch.zeros(1, 2, 2, 3)
    logits[0, 0, 0, 2] = logits[0, 0, 1, 1] = 1.  # object tokens: one says class 2 (right), one class 1
    logits[0, 1, :, 0] = 1.  # background tokens: class 0
    assert localisation(logits, [_sample(mask, 2)]) == {'object': 50.0, 'background': 0.0}
    assert localisation(logits, [_sample(mask, 0)]) == {'object': 0.0, 'background': 100.0}
    text = format_localisation({'tl': {'object': 50.0, 'background': 0.0}})
    assert 'tl  on the object  50.0%' in text


def test_token_logits_are_the_models_token_head_on_the_grid():
    model = timm.create_model('fan_t_hybrid_tl', num_classes=6, depth=1, stem_depths=(1, 1)).eval()
    assert has_token_head(model) and not has_token_head(timm.create_model('resnet10t', num_classes=6))
    samples = val_samples_with_masks(1, size=32)
    logits = token_logits(model, samples, batch_size=4)
    assert logits.shape == (len(samples), 2, 2, 6)
    x = torch.stack([torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.).permute(2, 0, 1)
                     for im, _, _ in samples])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # the model's data config (ImageNet)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        _, expected = model.forward_dense((x - mean) / std)
    torch.testing.assert_close(logits.flatten(1, 2), expected)


def test_figure_is_written_atomically(tmp_path):
    pytest.importorskip('matplotlib', reason='needs the robustness extra: pip install -e ".[robustness]"')
    from fan_stl.demo.token_maps import plot_token_maps
    samples = val_samples_with_masks(1, size=32)[:2]
    logits = {'tl': torch.randn(2, 2, 2, 6), 'stl': torch.randn(2, 2, 2, 6)}
    path = plot_token_maps(logits, samples, class_folder_names(), tmp_path / 'maps.png')
    assert path.read_bytes()[:4] == b'\x89PNG' and [p.name for p in tmp_path.iterdir()] == ['maps.png']


def test_contrast_is_the_class_probability_on_the_object_minus_on_the_background():
    mask = np.zeros((32, 32), dtype=bool)
    mask[:16, :] = True  # top row of tokens: object; bottom row: background
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 0, :, 1] = 10.  # object tokens: class 1 at ~1.0
    samples = [_sample(mask, 1)]
    contrast = image_contrast({'a': logits, 'b': torch.zeros(1, 2, 2, 2)}, samples)  # b: 0.5 everywhere
    assert contrast.tolist() == pytest.approx([((1 - 0.5) + 0.) / 2], abs=1e-4)  # the mean over the two models
    no_background = np.ones((32, 32), dtype=bool)
    assert torch.isnan(image_contrast({'a': logits}, [_sample(no_background, 1)])).all()


def test_rows_are_a_spread_of_quantiles_weakest_first_not_the_best_cases():
    contrast = torch.tensor([0.9, float('nan'), 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0, 1.0, -0.1])
    rows = representative_rows(contrast, 4)
    # 12 measured images sorted: -0.1 0.0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0; quantiles 1/8, 3/8, 5/8, 7/8
    # of 12 are the sorted positions 1, 4, 7, 10
    assert contrast[rows].tolist() == pytest.approx([0.0, 0.3, 0.6, 0.9])
    assert representative_rows(torch.tensor([0.2, 0.1]), 6) == [1, 0]  # fewer images than rows: each once


def test_figure_rows_and_caption_say_how_they_were_picked(tmp_path, monkeypatch):
    """ the rows were the first image of each class (1 of 6 showed the object brighter); now they are the
    contrast quantiles, and the figure says so. """
    pytest.importorskip('matplotlib', reason='needs the robustness extra: pip install -e ".[robustness]"')
    from fan_stl.demo import token_maps
    from fan_stl.robustness import report
    samples = val_samples_with_masks(3, size=64)  # 4 x 4 tokens: most images have object and background tokens
    logits = {'tl': torch.randn(len(samples), 4, 4, 6), 'stl': torch.randn(len(samples), 4, 4, 6)}
    contrast = image_contrast(logits, samples)
    drawn = {}

    def keep(fig, path):
        drawn.update(caption=fig._suptitle.get_text(), labels=[ax.get_ylabel() for ax in fig.axes[::3]],
                     titles=[ax.get_title() for ax in fig.axes if ax.get_title()])
        return save(fig, path)

    save = report.save_figure
    monkeypatch.setattr(report, 'save_figure', keep)
    token_maps.plot_token_maps(logits, samples, class_folder_names(), tmp_path / 'maps.png', rows=6)
    picked = representative_rows(contrast, 6)
    assert drawn['labels'] == [f'{class_folder_names()[samples[i][2]]}\ncontrast {float(contrast[i]):+.2f}'
                               for i in picked]
    measured = int((~torch.isnan(contrast)).sum())
    assert measured > 6
    assert f'Rows: 6 of {measured} validation images at evenly spaced quantiles of the contrast' in drawn['caption']
    assert 'not picked by eye' in drawn['caption'] and 'mean over tl, stl' in drawn['caption']
    assert len(drawn['titles']) == 12 and all(re.match(r'(tl|stl): object \d\.\d\d, bg (\d\.\d\d|nan)$', t)
                                              for t in drawn['titles'])
