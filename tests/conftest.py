"""Shared test set-up: register the models, keep the HF Hub offline, locate the shared image data."""
import os
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')

import pytest  # noqa: E402
import torch  # noqa: E402

import fan_stl  # noqa: E402,F401  (registers the fan_* models before test modules are collected)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / 'imagenette-128'


@pytest.fixture
def imagenette_root() -> Path:
    """The real-image test set beside the checkout (`../shared/data/imagenette-128`); skip when absent."""
    if not (SHARED_DATA / 'train').is_dir():
        pytest.skip(f'real-image test data not found at {SHARED_DATA} (only present beside the project checkout)')
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
