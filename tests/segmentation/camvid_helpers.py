"""Small CamVid-layout trees for the segmentation tests, and where the real CamVid lies (skip when absent)."""
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
from PIL import Image

from tests.conftest import CHECKOUT

CAMVID = CHECKOUT.parent / 'shared' / 'data' / 'camvid'


def real_camvid() -> Path:
    if not (CAMVID / 'test').is_dir():
        pytest.skip(f'needs the real CamVid (test/, testannot/) at {CAMVID} (../shared/data/camvid beside the '
                    'checkout)')
    return CAMVID


def make_camvid(root: Path, split: str = 'test', count: int = 3, size: Sequence[int] = (40, 56),
                seed: int = 0) -> Path:
    """ `count` random JPEG images and their masks (values 0-11, void included) under root/<split>, <split>annot. """
    rng = np.random.default_rng(seed)
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / f'{split}annot').mkdir(parents=True, exist_ok=True)
    height, width = size
    for i in range(count):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / split / f'img_{i:03d}.jpg', quality=95)
        mask = rng.integers(0, 12, (height, width), dtype=np.uint8)
        Image.fromarray(mask).save(root / f'{split}annot' / f'img_{i:03d}.png')
    return root
