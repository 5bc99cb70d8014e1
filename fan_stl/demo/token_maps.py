"""Where the token heads put the class: STL's token labels measured against known object masks.

On the generated shapes set (`fan_stl.demo.synthetic`) the pixels that decide an image's class are known, so what STL is
about (per-token labels that follow the object) can be measured instead of inferred from accuracy: for each
token-head model, the share of object tokens (at least half covered by the shape) and of background tokens (not
touched by it) whose top class is the image's class, and a figure of each model's per-token probability of that
class over one validation image per class. Used by `fan_stl.demo.experiment` when it generated its data (`python -m
fan_stl demo`).
"""
from pathlib import Path
from typing import Dict, Mapping, Sequence, Tuple

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


def plot_token_maps(
        logits_by_model: Mapping[str, torch.Tensor],
        samples: Sequence[Sample],
        class_names: Sequence[str],
        path: Path,
) -> Path:
    """ One row per sample: the image with the object's outline, then each model's per-token probability of the
    image's class; written to `path` (PNG) atomically. """
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f'the token-label figure needs matplotlib: {install_hint("robustness")}') from None
    from ..robustness.report import save_figure

    names = list(logits_by_model)
    probs = {name: [logits[row].softmax(-1)[..., label].numpy() for row, (_, _, label) in enumerate(samples)]
             for name, logits in logits_by_model.items()}
    top = max(float(p.max()) for rows in probs.values() for p in rows)  # one colour scale for every panel
    fig, axes = plt.subplots(len(samples), 1 + len(names), figsize=(1.9 * (1 + len(names)), 1.9 * len(samples)),
                             squeeze=False)
    for row, (image, mask, label) in enumerate(samples):
        axes[row, 0].imshow(image)
        axes[row, 0].contour(mask, levels=[0.5], colors='white', linewidths=1)
        axes[row, 0].set_ylabel(class_names[label], fontsize='small')
        for col, name in enumerate(names, start=1):
            axes[row, col].imshow(image, alpha=0.35)
            axes[row, col].imshow(probs[name][row], cmap='magma', vmin=0, vmax=top, alpha=0.75, interpolation='nearest',
                                  extent=(-0.5, image.width - 0.5, image.height - 0.5, -0.5))
            axes[row, col].contour(mask, levels=[0.5], colors='cyan', linewidths=0.8)
            if row == 0:
                axes[row, col].set_title(name, fontsize='small')
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f'per-token probability of the image\'s class (black 0 to bright {top:.2f}; outline = the object)',
                 fontsize='small')
    fig.tight_layout()
    return save_figure(fig, path)
