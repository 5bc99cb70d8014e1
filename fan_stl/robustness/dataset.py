"""The evaluation dataset: images of an ImageFolder, each either scored or reported unreadable - never replaced.

timm's `ImageDataset` answers a read error by returning the next image instead, so a broken file silently counts
another image twice. `ScoredImages` instead returns a placeholder with a problem text; the evaluator leaves it out of
the accuracy and counts it (or stops on the first one with `strict`). With `corruption` set it applies an
`OnTheFlyCorruption` to each image after reading it, so a corruption cell needs no copy on disk; `post_transform`
changes the input tensor of each image (by index), e.g. to occlude patches.
"""
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

import torch
from PIL import Image
from torch.utils.data import Dataset

from .corrupt import OnTheFlyCorruption
from .images import read_rgb

UNREADABLE = 'unreadable'
FATAL = 'fatal'


class ScoredImages(Dataset):
    """ Items `(image tensor, target, index, problem)`; `problem` is '' or starts with UNREADABLE / FATAL. """

    def __init__(
            self,
            samples: Sequence[Tuple[Path, int]],
            transform: Callable[[Image.Image], torch.Tensor],
            input_size: Sequence[int],
            corruption: Optional[OnTheFlyCorruption] = None,
            post_transform: Optional[Callable[[torch.Tensor, int], torch.Tensor]] = None,
    ):
        self.samples = list(samples)
        self.transform = transform
        self.input_size = tuple(input_size)
        self.corruption = corruption
        self.post_transform = post_transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int, int, str]:
        path, target = self.samples[index]
        placeholder = torch.zeros(self.input_size)
        try:
            image = read_rgb(path)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            return placeholder, target, index, f'{UNREADABLE}: {path}: {e}'
        if self.corruption is not None:
            try:
                image = self.corruption(image, path)
            except ValueError as e:  # e.g. an image too small for the corruptions: a setup error, not a bad file
                return placeholder, target, index, f'{FATAL}: {e}'
        tensor = self.transform(image)
        if self.post_transform is not None:
            tensor = self.post_transform(tensor, index)
        return tensor, target, index, ''
