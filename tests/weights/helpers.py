"""Helpers for the offline weight-loading tests: official-format checkpoints and a fake Hugging Face cache."""
import argparse
import shutil
from types import SimpleNamespace
from pathlib import Path
from typing import Dict, List

import pytest
import torch
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import RepositoryNotFoundError

import timm

REVISION = '0123456789abcdef0123456789abcdef01234567'
SMALL = 64  # input size of every forward in these tests


def random_model(name: str, **kwargs) -> torch.nn.Module:
    """ A randomly initialised model with non-trivial BatchNorm statistics, in eval mode. """
    model = timm.create_model(name, **kwargs)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def save_official(model: torch.nn.Module, path: Path, training_dict: bool = True) -> Path:
    """ Save `model` as the authors' scripts do: a training dict (EMA + `module.`-prefixed raw weights + args) or
    flat. """
    state_dict = model.state_dict()
    if training_dict:
        raw = {f'module.{k}': torch.randn_like(v) if v.is_floating_point() else v for k, v in state_dict.items()}
        checkpoint = {
            'epoch': 299, 'arch': 'fan', 'version': 2, 'metric': 80.0,
            'args': argparse.Namespace(model='fan', lr=1e-3),
            'state_dict': raw,  # deliberately different: the EMA weights must be the ones loaded
            'state_dict_ema': state_dict,
        }
    else:
        checkpoint = state_dict
    torch.save(checkpoint, path)
    return path


def add_to_hf_cache(cache_dir: Path, repo_id: str, files_dir: Path) -> Path:
    """ Lay out `files_dir` as the snapshot of `repo_id` in a Hugging Face cache (`refs/main` + `snapshots/REV`). """
    repo_dir = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    (repo_dir / 'refs').mkdir(parents=True, exist_ok=True)
    (repo_dir / 'refs' / 'main').write_text(REVISION)
    snapshot = repo_dir / 'snapshots' / REVISION
    shutil.copytree(files_dir, snapshot, dirs_exist_ok=True)
    return snapshot


def logits(model: torch.nn.Module, seed: int = 0) -> torch.Tensor:
    x = torch.randn(2, model.in_chans, SMALL, SMALL, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(x)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch) -> Path:
    """ An empty HF cache under tmp, offline mode on, and a private torch hub dir: nothing can reach the network. """
    cache = tmp_path / 'hf_cache'
    cache.mkdir()
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', True)
    monkeypatch.setattr(hf_constants, 'HF_HUB_CACHE', str(cache))
    monkeypatch.setenv('HF_HUB_CACHE', str(cache))
    torch_home = tmp_path / 'torch_hub'
    monkeypatch.setattr(torch.hub, '_hub_dir', str(torch_home))
    return cache


def not_published(repo: str, cache_dir=None):
    """ Stands in for `sources.download_from_hub` while no Hub copy is published: the repo does not exist. """
    response = SimpleNamespace(headers={}, request=None, status_code=404)  # what the error reads of an HTTP answer
    raise RepositoryNotFoundError(f'{repo} not found', response=response)


class FakeDrive:
    """ Stands in for `gdown.download`: serves local files by Google Drive id and records every call. """

    def __init__(self):
        self.files: Dict[str, Path] = {}
        self.calls: List[dict] = []

    def download(self, url=None, output=None, quiet=False, id=None, **kwargs):
        self.calls.append(dict(id=id, output=output, quiet=quiet, **kwargs))
        if id not in self.files:
            raise ConnectionError(f'no route to drive.google.com for {id}')
        shutil.copyfile(self.files[id], output)
        return output


@pytest.fixture
def fake_drive(monkeypatch) -> FakeDrive:
    """ Replace gdown's download function by local copies (the tests never reach Google Drive). """
    import gdown
    drive = FakeDrive()
    monkeypatch.setattr(gdown, 'download', drive.download)
    return drive


class RunsCode:
    """ Pickles to a call of os.system that would create a marker file if anything ever unpickled it. """

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f'touch {self.marker}',)


def unsafe_pickle(folder: Path):
    """ A training-dict checkpoint whose pickle runs a shell command; returns (path, marker that must stay absent). """
    marker = Path(folder) / 'MARKER_code_was_executed'
    path = Path(folder) / 'unsafe.pth.tar'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'payload': RunsCode(marker)}, path)
    return path, marker
