"""Shared fixtures of the evaluation-set tests: a 1000-way colour model with known predictions, tiny image folders."""
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import torch
from PIL import Image

from fan_stl.robustness.evaluate import EvalSettings

RGB = {'red': (220, 20, 20), 'green': (20, 220, 20), 'blue': (20, 20, 220)}
SETTINGS = EvalSettings(batch_size=4, workers=0, device='cpu', img_size=32, progress=False)


class ColourModel1k(torch.nn.Module):
    """ 1000-way head: logit `indices[c]` is the mean of input channel c; the others fall slowly from -100 with their
    index, so the ranking is known: the dominant colour's class, the two other colours' classes, then 0, 1, 2, ...
    Counts its forward calls. """
    num_classes = 1000

    def __init__(self, indices: Sequence[int] = (0, 1, 2)):
        super().__init__()
        self.indices = list(indices)
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        logits = (-100 - 1e-3 * torch.arange(1000, dtype=x.dtype)).repeat(x.shape[0], 1)
        logits[:, self.indices] = x.mean(dim=(2, 3)) * self.scale
        return logits


def save_colour(path: Path, colour: str, size: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), RGB[colour], dtype=np.uint8)).save(path)
    return path


def make_folder(root: Path, files: Dict[str, str]) -> Path:
    """ `files`: relative path -> colour name. """
    for relative, colour in files.items():
        save_colour(root / relative, colour)
    return root
