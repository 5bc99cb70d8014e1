"""Run timm's stock train.py with STL.

    python -m fan_stl.train --timm-train train.py [STL options] -- [train.py options]

train.py is not part of the timm wheel: take it from timm's repository at the tag of your installed timm
(`git clone -b v$(python -c "import timm; print(timm.__version__)") \
https://github.com/huggingface/pytorch-image-models`).
The launcher loads that file unmodified as a module, replaces a few names in its namespace, and calls its `main()`:

* `ClassificationTask` -> the model gets `set_token_label_training(True)` and the loss becomes `TokenLabelLoss`
  (stage `tl`), or a `TokenLabelTask` that labels the clean teacher view with a per-rank frozen teacher (stage `stl`);
* stage `stl` only: `create_dataset` wraps the training split in `PairedViewDataset`; `Mixup` / `FastCollateMixup`
  become the STL mixers; `--resplit` is forced so the prefetcher's random erasing spares the teacher split.

Everything else (AMP, EMA, gradient accumulation, resume, torchrun DDP, validation, checkpoints) is train.py's own.
Needs the Task-based train.py (timm >= 1.0.24); older scripts and `legacy_train.py` are rejected with a clear error.
"""
import argparse
import functools
import importlib.util
import os
import sys
from types import ModuleType
from typing import List, Optional

import torch.distributed as dist

import timm

import fan_stl  # noqa: F401  (registers the models for train.py's create_model)
from .data import PairedViewDataset
from .loss import TokenLabelLoss
from .mixing import TokenLabelCollateMixup, TokenLabelMixup
from .task import TokenLabelTask
from .token_labels import TOKEN_LABEL_MODES, TeacherTokenLabeler, load_teacher

__all__ = ['build_parser', 'load_timm_train', 'install', 'main']

REQUIRED_NAMES = ('main', '_parse_args', 'create_dataset', 'ClassificationTask', 'Mixup', 'FastCollateMixup')
UNSUPPORTED_OPTIONS = {
    'aug_splits': 'augmentation splits (--aug-splits)', 'jsd_loss': 'the JSD loss (--jsd-loss)',
    'bce_loss': 'the BCE loss (--bce-loss)', 'kd_model_name': 'knowledge distillation (--kd-model-name)',
    'naflex_loader': 'the NaFlex loader (--naflex-loader)', 'train_img_sizes': 'scheduled sizes (--train-img-sizes)',
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m fan_stl.train',
        description='Train FAN-TL (stage tl) or an STL student (stage stl) with timm\'s unmodified train.py. '
                    'Options after `--` go to train.py.')
    parser.add_argument('--timm-train', required=True, metavar='PATH',
                        help='timm\'s train.py, from the repository tag matching your installed timm')
    parser.add_argument('--stage', required=True, choices=('tl', 'stl'),
                        help='tl: token labeler on image labels; stl: student with teacher token labels')
    parser.add_argument('--teacher', metavar='NAME_OR_CHECKPOINT',
                        help='stl: stage-1 checkpoint (its EMA weights are used) or a pretrained *_tl model name')
    parser.add_argument('--teacher-model', metavar='NAME',
                        help='architecture of a checkpoint teacher (default: train.py\'s --model)')
    parser.add_argument('--cls-weight', type=float, default=1., help='class-head loss weight (default 1.0)')
    parser.add_argument('--dense-weight', type=float, default=1., help='token-head loss weight (default 1.0)')
    parser.add_argument('--token-label-mode', default='gumbel', choices=TOKEN_LABEL_MODES,
                        help='how teacher token logits become targets (default: gumbel, as the paper)')
    parser.add_argument('--token-label-smoothing', type=float, default=0.1, help='token label smoothing (0.1)')
    parser.add_argument('--token-label-temperature', type=float, default=1., help='teacher softmax temperature')
    parser.add_argument('--token-label-topk', type=int, default=5, help='classes per token in topk mode')
    parser.add_argument('--follow-mixing', action='store_true',
                        help='token targets follow CutMix (grid-snapped box) and Mixup; beyond the paper')
    return parser


def load_timm_train(path: str) -> ModuleType:
    """ Load timm's train.py as a module (without running it) and check it has the names the launcher patches. """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'timm train.py not found at {path!r}. It is not in the timm wheel: take train.py from '
            f'https://github.com/huggingface/pytorch-image-models at tag v{timm.__version__}.')
    spec = importlib.util.spec_from_file_location('timm_train', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [name for name in REQUIRED_NAMES if not hasattr(module, name)]
    if missing:
        raise RuntimeError(
            f'{path} is not a supported train.py: it lacks {", ".join(missing)}. The launcher needs the Task-based '
            f'train.py of timm >= 1.0.24 (not legacy_train.py); use train.py from the tag of your installed timm '
            f'(v{timm.__version__}), or fan_stl.engine.train for a self-contained loop.')
    return module


def _check_train_args(args: argparse.Namespace) -> None:
    used = [what for name, what in UNSUPPORTED_OPTIONS.items() if getattr(args, name, None)]
    if used:
        raise ValueError(f'STL training does not support {", ".join(used)}; drop these train.py options.')
    if getattr(args, 'mixup_mode', 'batch') == 'half':
        raise ValueError("--mixup-mode half is not supported by STL mixing; use batch (the official setting).")


def install(module: ModuleType, stl: argparse.Namespace) -> None:
    """ Patch a loaded train.py module for stage `stl.stage` (see the module docstring). """
    train_args: dict = {}
    original_parse_args = module._parse_args
    original_task = module.ClassificationTask
    original_create_dataset = module.create_dataset

    @functools.wraps(original_parse_args)
    def parse_args():
        args, args_text = original_parse_args()
        _check_train_args(args)
        if stl.stage == 'stl':
            args.resplit = True  # prefetcher random erasing spares the first (teacher) split
        train_args['args'] = args
        return args, args_text

    def make_task(model, criterion=None, device=None, dtype=None, verbose=True, **kwargs):
        args = train_args['args']
        model.set_token_label_training(True)
        criterion = TokenLabelLoss(stl.cls_weight, stl.dense_weight, label_smoothing=args.smoothing)
        if stl.stage == 'tl':
            return original_task(model=model, criterion=criterion, device=device, dtype=dtype, verbose=verbose)
        teacher = load_teacher(
            stl.teacher, model_name=stl.teacher_model or args.model, num_classes=args.num_classes, device=device)
        rank = dist.get_rank() if dist.is_initialized() else 0
        labeler = TeacherTokenLabeler(
            teacher, mode=stl.token_label_mode, smoothing=stl.token_label_smoothing,
            temperature=stl.token_label_temperature, topk=stl.token_label_topk, seed=args.seed, rank=rank)
        return TokenLabelTask(model=model, criterion=criterion, labeler=labeler, device=device, dtype=dtype,
                              verbose=verbose)

    @functools.wraps(original_create_dataset)
    def create_dataset(*args, is_training: bool = False, **kwargs):
        dataset = original_create_dataset(*args, is_training=is_training, **kwargs)
        return PairedViewDataset(dataset) if is_training else dataset

    module._parse_args = parse_args
    module.ClassificationTask = make_task
    if stl.stage == 'stl':
        module.create_dataset = create_dataset
        module.Mixup = functools.partial(TokenLabelMixup, follow_mixing=stl.follow_mixing)
        module.FastCollateMixup = functools.partial(TokenLabelCollateMixup, follow_mixing=stl.follow_mixing)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index('--') if '--' in argv else len(argv)
    parser = build_parser()
    stl = parser.parse_args(argv[:split])
    if stl.stage == 'stl' and not stl.teacher:
        parser.error('--stage stl needs --teacher (a stage-1 checkpoint or a pretrained *_tl model name).')
    if stl.stage == 'tl' and stl.teacher:
        parser.error('--teacher is only used by --stage stl; stage tl learns from image labels alone.')
    if stl.teacher and not (os.path.isfile(stl.teacher) or timm.is_model(stl.teacher.split('.')[0])):
        parser.error(f'--teacher {stl.teacher!r} is neither a file nor a registered model name.')
    try:
        module = load_timm_train(stl.timm_train)
    except (FileNotFoundError, RuntimeError) as e:
        parser.error(str(e))
    install(module, stl)
    sys.argv = [stl.timm_train] + argv[split + 1:]
    module.main()
    return 0


if __name__ == '__main__':
    sys.exit(main())
