"""`LabelSource`: what a source of STL token labels is and answers (the `LABEL_SOURCES` entries of
`fan_stl.stl.teacher`), and the per-rank seed of the sources' random streams.

A source is asked, by registry and never by name:

* `check_teacher(config)`: refuse, before any work, a `--teacher` (or other source setting) it cannot use;
* `uses_teacher`: whether stage stl needs `--teacher` with it (a source reading stored labels does not);
* `training_set(dataset, config)`: the training set of stage stl: the online sources pair each image with a clean
  teacher view (`PairedViewDataset`); a stored-label source wraps it to record the crop each image gets;
* `teacher_view`: whether batches are paired teacher/student views (random erasing must spare the teacher split);
* `source(config, student_model, num_classes, device, image_smoothing, seed, rank, autocast)`: the labeler the task
  calls (`labeler(teacher_images) -> TokenTargets`, or, with `reads_crops = True` on the labeler,
  `labeler(crops, grid) -> TokenTargets`, see `fan_stl.stl.crop_record`).
"""
from typing import Callable, ContextManager, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from .student_source import StudentSource
from .targets import TokenTargets
from .views import PairedViewDataset

__all__ = ['LabelSource', 'rank_seed']


def rank_seed(seed: int, rank: int, stream: int = 0) -> int:
    """ A 63-bit seed for random stream `stream` of DDP rank `rank`, derived from the run seed. """
    return int(np.random.SeedSequence([seed, rank, stream]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class LabelSource:
    """ Where token labels come from (see the module docstring). """

    uses_teacher = True
    teacher_view = True

    def check_teacher(self, config) -> None:
        """ Refuse, before any work, a `config.teacher` name or path this source cannot load, naming the fix. """

    def training_set(self, dataset: Dataset, config) -> Dataset:
        """ The stage-stl training set: a clean teacher view beside each student view (the student's read from
        `--student-data-dir` when set). """
        copies = config.student_data_dir
        return PairedViewDataset(dataset, StudentSource(dataset, copies) if copies else None)

    def __call__(self, config, student_model: str, num_classes: int, device: torch.device, image_smoothing: float,
                 seed: int, rank: int, autocast: Optional[Callable[[], ContextManager]]
                 ) -> Callable[[torch.Tensor], TokenTargets]:
        """ The labeler: teacher-view images `(B, C, H, W)` -> `TokenTargets (B, N, K)`. """
        raise NotImplementedError
