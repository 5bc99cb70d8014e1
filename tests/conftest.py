"""Shared test set-up: register the models, keep the HF Hub offline, locate the real-image test data.

Tests that need real images take the `imagenette_root` fixture: Imagenette-128 (`train/`, `val/`, 10 classes) found
at `$FAN_STL_TEST_DATA`, else `../shared/data/imagenette-128` beside the checkout; without it they skip and say so
(pytest shows skip reasons by default here: `-rs` in pyproject's addopts).
"""
import os
from pathlib import Path
from typing import Dict

os.environ.setdefault('HF_HUB_OFFLINE', '1')

import pytest  # noqa: E402
import torch  # noqa: E402

import fan_stl  # noqa: E402,F401  (registers the fan_* models before test modules are collected)

DATA_ENV = 'FAN_STL_TEST_DATA'
CHECKOUT = Path(__file__).resolve().parents[1]
SHARED_DATA = CHECKOUT.parent / 'shared' / 'data' / 'imagenette-128'


def checkout_env(**overrides: str) -> Dict[str, str]:
    """ The environment for a child interpreter that must import fan_stl from this checkout, not an installed copy
    (a script run by path or by torchrun has its own folder, not the working directory, on `sys.path`). """
    path = os.pathsep.join(filter(None, [str(CHECKOUT), os.environ.get('PYTHONPATH')]))
    return {**os.environ, **overrides, 'PYTHONPATH': path}


def imagenette_path() -> Path:
    """ Where the real-image tests look: `$FAN_STL_TEST_DATA` when set, else the shared folder beside the checkout. """
    return Path(os.environ[DATA_ENV]) if os.environ.get(DATA_ENV) else SHARED_DATA


@pytest.fixture
def imagenette_root() -> Path:
    """The real-image test set (Imagenette-128 as an ImageFolder with train/ and val/); skip when absent."""
    root = imagenette_path()
    if not (root / 'train').is_dir():
        pytest.skip(f'needs real images: Imagenette-128 (train/, val/) not found at {root}; '
                    f'set {DATA_ENV}=/path/to/imagenette-128 to run it')
    return root


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
