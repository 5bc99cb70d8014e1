"""Data-folder guards both training drivers run before training: each turns a silent failure or a bare timm assertion
into an error that names the problem and the fix (the stage's own data checks are `fan_stl.stl.data.STLData`'s).

* `check_run_lengths`: `epochs` and `grad_accum_steps` must be positive;
* `check_image_folders`: the data folder exists and, for an ImageFolder layout, the train and validation splits have
  the same class folders, none empty (timm maps the classes of each split separately: an empty or missing folder
  shifts the labels of every later class and validation is scored against the wrong classes).
"""
import os
from pathlib import Path
from typing import List, Optional

from ..robustness.layouts import list_classes

__all__ = ['check_run_lengths', 'check_image_folders']


def check_run_lengths(epochs: int, grad_accum_steps: int = 1) -> None:
    if epochs is None or epochs < 1:
        raise ValueError(f'epochs must be at least 1; got {epochs}. Set --epochs (or TrainConfig.epochs) to the '
                         f'number of epochs to train.')
    if grad_accum_steps is None or grad_accum_steps < 1:
        raise ValueError(f'grad_accum_steps must be at least 1; got {grad_accum_steps} (1 = no accumulation).')


def _split_dir(root: Path, split: str) -> Optional[Path]:
    """ The folder timm's ImageFolder dataset reads for `split` (timm also accepts 'validation' for 'val'). """
    names = [split] + (['validation', 'valid', 'eval', 'evaluation'] if split in ('val', 'validation') else [])
    return next((root / n for n in names if (root / n).is_dir()), None)


def check_image_folders(data_dir: str, train_split: str = 'train', val_split: Optional[str] = 'val') -> List[str]:
    """ The training classes, after checking the folders (see the module docstring). Non-folder datasets (tar, HF,
    TFDS, WDS) are checked only for the data path when it is local. """
    if not data_dir or not os.path.exists(data_dir):
        raise FileNotFoundError(
            f'data folder {data_dir!r} does not exist. Pass --data-dir (TrainConfig.data_dir) pointing at an '
            f'ImageFolder root with {train_split}/<class>/<image> and {val_split}/<class>/<image>.')
    root = Path(data_dir)
    train_dir = _split_dir(root, train_split)
    if train_dir is None:
        return []
    train = list_classes(train_dir, what='training')
    val_dir = _split_dir(root, val_split) if val_split else None
    if val_dir is not None:
        val = list_classes(val_dir, what='validation')
        if val != train:
            only_train, only_val = sorted(set(train) - set(val)), sorted(set(val) - set(train))
            raise ValueError(
                f'the training ({train_dir}) and validation ({val_dir}) class folders differ: only in training '
                f'{only_train[:5]}, only in validation {only_val[:5]} ({len(train)} vs {len(val)} classes). timm '
                f'numbers each split\'s classes separately, so every label after the first difference would be '
                f'shifted; give both splits the same class folders.')
    return train
