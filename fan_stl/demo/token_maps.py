"""Where the token heads put the class: STL's token labels measured against known object masks.

On the generated shapes set (`fan_stl.demo.synthetic`) the pixels that decide an image's class are known, so what STL is
about (per-token labels that follow the object) can be measured instead of inferred from accuracy: for each
token-head model, the share of object tokens (at least half covered by the shape) and of background tokens (not
touched by it) whose top class is the image's class, and a figure of each model's per-token probability of that
class over a few validation images. The figure's rows are not picked by eye: they are the images at evenly spaced
quantiles of the measured object-minus-background contrast (`image_contrast`), from the weakest to the strongest, and
the figure says so. Used by `fan_stl.demo.experiment` when it generated its data (`python -m fan_stl demo`).
"""
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from timm.data import resolve_data_config

from ..utils.extras import install_hint

OBJECT_COVER = 0.5  # a token is on the object when at least this share of its pixels is
Sample = Tuple[Image.Image, np.ndarray, int]  # image, object mask (bool, H x W), class index


def has_token_head(model: nn.Module) -> bool:
    """ Whether `model` is a FAN token labeler / STL student (it has per-token logits to measure). """
    return getattr(model, 'aux_head', None) is not None


@torch.no_grad()
def token_logits(model: nn.Module, samples: Sequence[Sample], batch_size: int = 64) -> torch.Tensor:
    """ `(B, h, w, K)`: the token head's logits for images at their own size (normalised as the model was trained). """
    config = resolve_data_config({}, model=model)
    mean = torch.tensor(config['mean']).view(1, 3, 1, 1)
    std = torch.tensor(config['std']).view(1, 3, 1, 1)
    device = next(model.parameters()).device
    model.eval()
    out = []
    for start in range(0, len(samples), batch_size):
        x = torch.stack([torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.).permute(2, 0, 1)
                         for image, _, _ in samples[start:start + batch_size]])
        _, logits = model.forward_dense(((x - mean) / std).to(device))
        h = round((logits.shape[1] * x.shape[2] / x.shape[3]) ** 0.5)
        out.append(logits.float().cpu().view(x.shape[0], h, logits.shape[1] // h, -1))
    return torch.cat(out)


def token_cover(masks: Sequence[np.ndarray], grid: Tuple[int, int]) -> torch.Tensor:
    """ `(B, h, w)`: the share of each token's pixels that the object covers. """
    m = torch.from_numpy(np.stack(masks)).float()
    h, w = grid
    return m.view(len(masks), h, m.shape[1] // h, w, m.shape[2] // w).mean(dim=(2, 4))


def localisation(logits: torch.Tensor, samples: Sequence[Sample]) -> Dict[str, float]:
    """ `{'object': %, 'background': %}`: tokens whose top class is the image's class, on the object and off it. """
    labels = torch.tensor([label for _, _, label in samples]).view(-1, 1, 1)
    hits = (logits.argmax(-1) == labels).float()
    cover = token_cover([mask for _, mask, _ in samples], tuple(hits.shape[1:]))
    on, off = cover >= OBJECT_COVER, cover == 0
    return {'object': 100. * hits[on].mean().item() if on.any() else float('nan'),
            'background': 100. * hits[off].mean().item() if off.any() else float('nan')}


def format_localisation(scores: Mapping[str, Mapping[str, float]]) -> str:
    """ One line per token-head model: its object and background token shares. """
    width = max(len(arm) for arm in scores)
    lines = ['token labels: share of tokens whose top class is the image\'s class (object tokens: at least half '
             'covered by the shape; background: not touched by it)']
    lines += [f'  {arm.ljust(width)}  on the object {s["object"]:5.1f}%   on the background {s["background"]:5.1f}%'
              for arm, s in scores.items()]
    return '\n'.join(lines)


def class_probabilities(logits: torch.Tensor, samples: Sequence[Sample]) -> torch.Tensor:
    """ `(B, h, w)`: each token's probability of its image's class. """
    labels = torch.tensor([label for _, _, label in samples])
    return logits.float().softmax(-1)[torch.arange(len(samples)), ..., labels]


def image_contrast(logits_by_model: Mapping[str, torch.Tensor], samples: Sequence[Sample]) -> torch.Tensor:
    """ `(B,)`: per image, the mean over the models of (mean probability of the image's class on its object tokens
    minus that on its background tokens), as `localisation` splits them; NaN for an image lacking either kind. """
    first = next(iter(logits_by_model.values()))
    cover = token_cover([mask for _, mask, _ in samples], tuple(first.shape[1:3])).flatten(1)
    on, off = (cover >= OBJECT_COVER).float(), (cover == 0).float()
    contrasts = []
    for logits in logits_by_model.values():
        probs = class_probabilities(logits, samples).flatten(1)
        contrasts.append((probs * on).sum(1) / on.sum(1) - (probs * off).sum(1) / off.sum(1))  # 0 / 0 -> NaN
    return torch.stack(contrasts).mean(0)


def representative_rows(contrast: torch.Tensor, rows: int) -> List[int]:
    """ Indices of the images at the quantiles (k + 1/2) / `rows` of `contrast` (NaN left out), weakest first: a
    spread that stands for the whole set, not its best cases. When no image has a contrast (token grids too coarse
    for background tokens), the first `rows` images. """
    measured = [i for i in contrast.argsort().tolist() if not torch.isnan(contrast[i])]
    if not measured:
        return list(range(min(rows, len(contrast))))
    picks = [measured[min(len(measured) - 1, int((k + 0.5) * len(measured) / rows))] for k in range(rows)]
    return list(dict.fromkeys(picks))  # fewer images than rows: each once


def _mean(values: np.ndarray, where: np.ndarray) -> float:
    return float(values[where].mean()) if where.any() else float('nan')


def plot_token_maps(
        logits_by_model: Mapping[str, torch.Tensor],
        samples: Sequence[Sample],
        class_names: Sequence[str],
        path: Path,
        rows: int = 6,
) -> Path:
    """ Draw `rows` images of `samples`, picked by `representative_rows` of their `image_contrast`: each with the
    object's outline, then each model's per-token probability of the image's class, titled with that image's mean
    probability on the object and on the background; a caption on the figure says what it shows and how the rows
    were picked. Written to `path` (PNG) atomically. """
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f'the token-label figure needs matplotlib: {install_hint("robustness")}') from None
    from ..robustness.report import save_figure

    names = list(logits_by_model)
    contrast = image_contrast(logits_by_model, samples)
    picked = representative_rows(contrast, rows)
    probs = {name: class_probabilities(logits, samples)[picked].numpy() for name, logits in logits_by_model.items()}
    cover = token_cover([samples[i][1] for i in picked], tuple(next(iter(probs.values())).shape[1:]))
    on, off = (cover >= OBJECT_COVER).numpy(), (cover == 0).numpy()
    top = max(float(p.max()) for p in probs.values())  # one colour scale for every panel
    fig, axes = plt.subplots(len(picked), 1 + len(names), figsize=(2.1 * (1 + len(names)), 2.0 * len(picked) + 1.3),
                             squeeze=False)
    for row, index in enumerate(picked):
        image, mask, label = samples[index]
        axes[row, 0].imshow(image)
        axes[row, 0].contour(mask, levels=[0.5], colors='white', linewidths=1)
        axes[row, 0].set_ylabel(f'{class_names[label]}\ncontrast {float(contrast[index]):+.2f}', fontsize='small')
        for col, name in enumerate(names, start=1):
            p = probs[name][row]
            axes[row, col].imshow(image, alpha=0.35)
            axes[row, col].imshow(p, cmap='magma', vmin=0, vmax=top, alpha=0.75, interpolation='nearest',
                                  extent=(-0.5, image.width - 0.5, image.height - 0.5, -0.5))
            axes[row, col].contour(mask, levels=[0.5], colors='cyan', linewidths=0.8)
            axes[row, col].set_title(f'{name}: object {_mean(p, on[row]):.2f}, bg {_mean(p, off[row]):.2f}',
                                     fontsize='x-small')
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    measured = int((~torch.isnan(contrast)).sum())
    rows_text = (f'Rows: {len(picked)} of {measured} validation images at evenly spaced quantiles of the contrast '
                 f'(mean probability on object tokens\nminus on background tokens, mean over {", ".join(names)}), '
                 'weakest first; not picked by eye.' if measured else
                 f'Rows: the first {len(picked)} validation images (no image has background tokens at this token '
                 'grid,\nso no contrast to pick by).')
    fig.suptitle(f'Per-token probability of the image\'s class (black 0 to bright {top:.2f}); outline = the object.\n'
                 f'{rows_text} Titles: that image\'s means (nan: no such tokens).', fontsize='small')
    fig.tight_layout()
    return save_figure(fig, path)
