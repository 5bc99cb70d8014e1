"""Training checkpoints of the engine: written so a reader never sees a missing or partial file, resumed only whole.

`AtomicCheckpointSaver` is timm's `CheckpointSaver` (last, best and numbered checkpoints, its history and best
metric stored in every checkpoint under `saver`) with its file steps made atomic: each checkpoint is written to a
hidden temp file in the output folder (`fan_stl.utils.atomic`), synced and renamed onto `tmp.pth.tar`, then renamed
onto `last.pth.tar`; best and numbered copies are hard links (or copies) made under a temp name and renamed into
place. timm removes the old file before each rename, which leaves a moment with no `last.pth.tar` or
`model_best.pth.tar`; here a reader sees the previous file or the whole new one at every moment, and a run killed
mid-save leaves the previous checkpoints intact.

`read_resume_checkpoint` loads a file to resume from (`weights_only=True`) and refuses, naming the file and the fix,
one that is missing, unreadable (truncated, not a torch file), unsafe to unpickle, or not a training checkpoint:
it must hold the epoch, the model and optimizer states, the run's options (`args`), the grad scaler's state when
one is used and the EMA weights when the EMA is on. `restore_training_state` loads it into the run's objects.
"""
import argparse
import os
import pickle
import shutil
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn
from timm.models import clean_state_dict
from timm.utils import CheckpointSaver

from ..utils.atomic import atomic_path

__all__ = ['AtomicCheckpointSaver', 'read_resume_checkpoint', 'restore_training_state']

RESUME_FIX = ('resume from a checkpoint the engine or timm\'s train.py wrote during training (last.pth.tar, '
              'checkpoint-<epoch>.pth.tar or model_best.pth.tar of the run\'s output folder)')


class AtomicCheckpointSaver(CheckpointSaver):
    """ timm's `CheckpointSaver` whose files are replaced atomically (see the module docstring). """

    def _save(self, save_path, epoch, metric=None):
        with atomic_path(save_path) as tmp:
            super()._save(str(tmp), epoch, metric)

    def _replace(self, src, dst):
        os.replace(src, dst)  # atomic on POSIX; timm unlinks `dst` first, which leaves a moment without it

    def _duplicate(self, src, dst):
        with atomic_path(dst) as tmp:
            os.unlink(tmp)
            try:
                os.link(src, tmp)
            except OSError:  # no hard links on this file system
                shutil.copy2(src, tmp)


def _load(path: str) -> Any:
    if not os.path.isfile(path):
        raise FileNotFoundError(f'resume checkpoint {path} does not exist ({os.path.abspath(path)}); {RESUME_FIX}.')
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):  # checkpoints hold their run's options
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file (RuntimeError, EOFError, IndexError, ...)
        if isinstance(e, pickle.UnpicklingError) and 'weights only' in str(e).lower():
            raise ValueError(
                f'{path} cannot be resumed safely: loading it with weights_only=True was refused (it holds objects '
                f'other than tensors and plain values, which could run code); {RESUME_FIX}. ({e})') from e
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise ValueError(f'{path} is not a readable checkpoint (truncated, still being written, or not a torch file: '
                         f'{type(e).__name__}: {first_line}); {RESUME_FIX}.') from e


def read_resume_checkpoint(path: str, scaler_key: Optional[str] = None, ema: bool = False) -> Dict[str, Any]:
    """ The training checkpoint at `path`, after the checks of the module docstring; `scaler_key` is the grad
    scaler's `state_dict_key` when the run uses one, `ema` whether the run keeps an EMA. """
    checkpoint = _load(path)
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{path} holds a {type(checkpoint).__name__}, not a training checkpoint; {RESUME_FIX}.')
    needed = {'epoch': 'the epoch', 'state_dict': 'the model state', 'optimizer': 'the optimizer state',
              'args': 'the run\'s options'}
    if scaler_key:
        needed[scaler_key] = 'the fp16 grad scaler state (this run uses amp float16)'
    if ema:
        needed['state_dict_ema'] = 'the EMA weights (this run keeps an EMA; set ema_decay=0 to train without one)'
    missing: List[str] = [f'{what} ({key!r})' for key, what in needed.items() if key not in checkpoint]
    if missing:
        kind = ('a plain model state dict (weights only)' if 'state_dict' not in checkpoint and 'epoch' not in
                checkpoint else 'an incomplete training checkpoint')
        raise ValueError(
            f'{path} cannot be resumed: it is {kind}, missing {", ".join(missing)}. Resuming restores the whole '
            f'training state, never restarts it silently; {RESUME_FIX}.')
    return checkpoint


def _load_weights(module: nn.Module, state_dict: Dict[str, Any], path: str, what: str, arch: Any) -> None:
    try:
        module.load_state_dict(clean_state_dict(state_dict))
    except RuntimeError as e:
        raise ValueError(
            f'{path} holds {what} of another architecture ({arch}) than this run\'s model: resume with the same '
            f'model and model_kwargs. ({str(e).splitlines()[0]})') from e


def restore_training_state(checkpoint: Dict[str, Any], path: str, model: nn.Module, optimizer, loss_scaler=None,
                           ema: Optional[nn.Module] = None) -> int:
    """ Load a checkpoint from `read_resume_checkpoint` into the run's model, optimizer, grad scaler and EMA module;
    returns the first epoch to train (the one after the checkpoint's). """
    arch = checkpoint.get('arch', 'unknown')
    _load_weights(model, checkpoint['state_dict'], path, 'weights', arch)
    if ema is not None:
        _load_weights(ema, checkpoint['state_dict_ema'], path, 'EMA weights', arch)
    try:
        optimizer.load_state_dict(checkpoint['optimizer'])
    except ValueError as e:
        raise ValueError(f'{path}: its optimizer state does not fit this run\'s optimizer ({e}); resume with the '
                         f'same model and options.') from e
    if loss_scaler is not None:
        loss_scaler.load_state_dict(checkpoint[loss_scaler.state_dict_key])
    # timm's saver writes version 2 (`epoch` = the finished epoch); older files stored the next epoch
    return checkpoint['epoch'] + 1 if checkpoint.get('version', 1) > 1 else checkpoint['epoch']
