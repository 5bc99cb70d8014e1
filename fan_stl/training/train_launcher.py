"""Run timm's stock train.py with STL.

    python -m fan_stl.train --timm-train train.py [STL options] -- [train.py options]

train.py is not part of the timm wheel: take it from timm's repository at the tag of your installed timm
(`git clone -b v$(python -c "import timm; print(timm.__version__)") \
https://github.com/huggingface/pytorch-image-models`).
The launcher loads that file unmodified as a module, replaces a few names in its namespace and calls its `main()`:

* `_parse_args`: the data guards (`data_checks`, the class count), unsupported options refused, `--resplit` forced
  when the stage's data need it (stage stl: the prefetcher's random erasing spares the teacher split), and the STL
  options added to `args` (so they are written to `args.yaml` and into every checkpoint, under `stl`);
* `ClassificationTask` -> `build_task(STLConfig, model, ...)` (every stage: mixing methods, PAL and TransMix are
  plain-model methods too), the model scoring by `--eval-rule` in train.py's validation;
* `Mixup` / `FastCollateMixup` -> the stage's `build_data(config).mixer(...)` (every stage; train.py creates them
  only with `--mixup` or `--cutmix` > 0, so the methods drawn in that slot need one of them);
* `create_loader`: the data side's checks (zero steps per epoch, the mixing method's input size) and, in stage stl,
  the re-paired prefetching train loader;
* `create_dataset`: the stage's training set (stage stl: `PairedViewDataset`; with `--aug-splits`, every stage:
  `SplitViewDataset`, so `AugMixDataset` becomes a check that it is that set);
* `--aug-splits` / `--jsd-loss` may be given on either side of `--` (train.py's flags are read into the config; the
  same option set to different values on both sides is an error); the task adds the JS term itself;
* `train_one_epoch`: before the first step, the task train.py hands to its loop must be the one `build_task` made;
  after the first epoch, that task must have run. Otherwise the launcher stops with an error naming the train.py it
  could not patch (never a silent run with timm's plain loss).

Everything else (AMP, EMA, gradient accumulation, resume, torchrun DDP, validation, checkpoints) is train.py's own.
Needs the Task-based train.py of timm >= 1.0.23 (checked against the tagged train.py of 1.0.23 ... 1.0.28 and HEAD).
"""
import argparse
import functools
import sys
from dataclasses import replace
from types import ModuleType
from typing import List, Optional, Union

import torch.distributed as dist
import yaml

import timm

from ..stl.config import STLConfig
from ..stl.data import STLData, build_data
from ..stl.eval_rule import apply_eval_rule
from ..stl.multiview import SplitViewDataset
from ..stl.task import STLTask, build_task
from ..stl.teacher import LABEL_SOURCES
from .data_checks import check_image_folders, check_run_lengths
from .timm_scripts import load_timm_script, split_command_line

__all__ = ['LauncherError', 'build_parser', 'load_timm_train', 'install', 'main']

REQUIRED_NAMES = ('main', '_parse_args', 'train_one_epoch', 'create_dataset', 'create_loader', 'ClassificationTask',
                  'Mixup', 'FastCollateMixup', 'AugMixDataset')
VIEW_OPTIONS = ('aug_splits', 'jsd_loss')  # timm's flags of the multi-view consistency, also STLConfig fields
UNSUPPORTED_OPTIONS = {
    'bce_loss': 'the BCE loss (--bce-loss)', 'kd_model_name': 'knowledge distillation (--kd-model-name)',
    'naflex_loader': 'the NaFlex loader (--naflex-loader)', 'train_img_sizes': 'scheduled sizes (--train-img-sizes)',
}


class LauncherError(RuntimeError):
    """ train.py could not be patched or did not use the patched pieces. """


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m fan_stl.train',
        description='Train FAN-TL (stage tl), an STL student (stage stl) or a plain baseline with timm\'s unmodified '
                    'train.py. Options after `--` go to train.py.')
    parser.add_argument('--timm-train', required=True, metavar='PATH',
                        help='timm\'s train.py, from the repository tag matching your installed timm')
    STLConfig.add_arguments(parser)
    return parser


def load_timm_train(path: str) -> ModuleType:
    """ Load timm's train.py as a module (without running it) and check it has the names the launcher patches. """
    return load_timm_script(
        path, 'train.py', REQUIRED_NAMES, error=LauncherError,
        fix=f'The launcher needs the Task-based train.py of timm >= 1.0.23 (not legacy_train.py); use train.py from '
            f'the tag of your installed timm (v{timm.__version__}), or fan_stl.training.engine.train for a '
            f'self-contained loop.')


def _check_train_args(args: argparse.Namespace, config: STLConfig, data: STLData) -> None:
    used = [what for name, what in UNSUPPORTED_OPTIONS.items() if getattr(args, name, None)]
    if used:
        raise ValueError(f'fan_stl\'s training task (every stage) does not support {", ".join(used)}; drop these '
                         f'train.py options (or run train.py directly for a plain model).')
    check_run_lengths(args.epochs, getattr(args, 'grad_accum_steps', 1))
    mixer_made = args.mixup > 0 or args.cutmix > 0 or getattr(args, 'cutmix_minmax', None) is not None
    if data.needs_mixup_slot and not mixer_made:
        raise ValueError(
            f'--mix-method {config.mix_method} mixes in train.py\'s Mixup slot, which train.py only creates with '
            f'--mixup or --cutmix > 0: add --cutmix 1.0 after `--` (--mix-alpha sets the Beta of its own draws; '
            f'mixpro also uses --mixup / --cutmix on its Mixup / CutMix batches).')
    if not getattr(args, 'dataset', '') or args.dataset.startswith('folder'):
        classes = check_image_folders(args.data_dir, args.train_split, args.val_split)
        data.check_num_classes(args.num_classes, classes, args.data_dir)


def _merge_view_options(args: argparse.Namespace, config: Union[STLConfig, argparse.Namespace]):
    """ `config` (or our parsed options) with train.py's --aug-splits / --jsd-loss (timm's flags) read in, and
    `args` set to the merged values. """
    merged = {}
    for name in VIEW_OPTIONS:
        theirs, ours = getattr(args, name, None), getattr(config, name)
        if theirs and ours and theirs != ours:
            raise ValueError(f'--{name.replace("_", "-")} is {ours} before `--` and {theirs} after it; give it once.')
        merged[name] = ours or theirs or type(ours)()
        setattr(args, name, merged[name])  # train.py builds its views (AugMixDataset, loader splits) from these
    if isinstance(config, STLConfig):
        return replace(config, **merged)
    return argparse.Namespace(**{**vars(config), **merged})


def _with_timm_view_flags(options: argparse.Namespace, script_argv: List[str]) -> argparse.Namespace:
    """ Our options with train.py's --aug-splits / --jsd-loss (given after `--`) read in, so that the config is
    checked whole before train.py starts. """
    timm_flags = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    timm_flags.add_argument('--aug-splits', type=int, default=0)
    timm_flags.add_argument('--jsd-loss', action='store_true')
    theirs, _ = timm_flags.parse_known_args(script_argv)
    return _merge_view_options(theirs, options)


def _guarded(check, *args):
    """ Run a data guard inside train.py (returning its result); its error reaches the command line as a message, not
    a traceback. """
    try:
        return check(*args)
    except (ValueError, FileNotFoundError) as e:
        raise LauncherError(str(e)) from e


class _Installation:
    """ What the patched names saw: the parsed args, the task `build_task` made. """

    def __init__(self, path: str, config: STLConfig):
        self.path = path
        self.config = config
        self.args: Optional[argparse.Namespace] = None
        self.task: Optional[STLTask] = None
        self.epochs_run = 0
        self.data: Optional[STLData] = None

    def not_patched(self, what: str) -> LauncherError:
        return LauncherError(
            f'{self.path}: {what}, so stage {self.config.stage} would train with timm\'s plain loss. This train.py '
            f'builds its task differently from the tagged timm releases the launcher supports (>= 1.0.23); use '
            f'train.py from tag v{timm.__version__} unmodified, or fan_stl.training.engine.train.')


def install(module: ModuleType, config: STLConfig, path: str = 'train.py') -> _Installation:
    """ Patch a loaded train.py module for `config.stage` (see the module docstring). """
    state = _Installation(path, config)
    data = state.data = build_data(config)
    original = {name: getattr(module, name) for name in REQUIRED_NAMES}

    @functools.wraps(original['_parse_args'])
    def parse_args():
        nonlocal config, data
        args, _ = original['_parse_args']()
        config = _guarded(_merge_view_options, args, config)
        data = state.data = build_data(config)
        state.config = config
        _guarded(_check_train_args, args, config, data)
        if data.re_split:
            args.resplit = True  # prefetcher random erasing spares the first (teacher) split
        args.stl = config.to_dict()
        state.args = args
        return args, yaml.safe_dump(args.__dict__, default_flow_style=False)

    def make_task(model, criterion=None, device=None, dtype=None, verbose=True, **kwargs):
        args = state.args
        state.task = build_task(
            config, model, smoothing=args.smoothing, seed=args.seed,
            rank=dist.get_rank() if dist.is_initialized() else 0, device=device, dtype=dtype,
            model_name=args.model, verbose=verbose)
        apply_eval_rule(model, config.eval_rule)  # what train.py's validation scores and chooses the best on
        return state.task

    @functools.wraps(original['create_dataset'])
    def create_dataset(*args, is_training: bool = False, **kwargs):
        dataset = original['create_dataset'](*args, is_training=is_training, **kwargs)
        return _guarded(data.dataset, dataset) if is_training else dataset

    @functools.wraps(original['create_loader'])
    def create_loader(dataset, *args, is_training: bool = False, **kwargs):
        loader = original['create_loader'](dataset, *args, is_training=is_training, **kwargs)
        if is_training:
            world_size = state.args.world_size if state.args is not None else 1
            loader = _guarded(data.loader, loader, kwargs.get('batch_size', 1), world_size,
                              kwargs.get('use_prefetcher', True))
            if kwargs.get('input_size'):
                _guarded(data.check_input, kwargs['input_size'])
        return loader

    @functools.wraps(original['train_one_epoch'])
    def train_one_epoch(*args, **kwargs):
        if state.task is None or kwargs.get('task') is not state.task:
            raise state.not_patched('its training loop does not get the task built by fan_stl (the name '
                                    'ClassificationTask was not used to build it)')
        metrics = original['train_one_epoch'](*args, **kwargs)
        if state.task.steps == 0:
            raise state.not_patched('the STL task never ran during the first epoch')
        if state.task.term_steps and not state.epochs_run:
            print(f'fan_stl task terms in epoch 1: {state.task.term_steps} of {state.task.steps} steps',
                  file=sys.stderr)
        state.epochs_run += 1
        return metrics

    module._parse_args = parse_args
    module.create_loader = create_loader
    module.ClassificationTask = make_task
    module.train_one_epoch = train_one_epoch
    module.Mixup = lambda **mixup_args: state.data.mixer(prefetcher=False, **mixup_args)
    module.FastCollateMixup = lambda **mixup_args: state.data.mixer(prefetcher=True, **mixup_args)

    def augmix_dataset(dataset, num_splits: int = 2):
        if not isinstance(dataset, SplitViewDataset) or dataset.num_splits != num_splits:
            raise state.not_patched('its augmentation-split dataset is not the one fan_stl made')
        return dataset

    module.create_dataset = create_dataset
    module.AugMixDataset = augmix_dataset
    return state


def main(argv: Optional[List[str]] = None) -> int:
    ours, script_argv = split_command_line(argv)
    parser = build_parser()
    options = parser.parse_args(ours)
    try:
        config = STLConfig.from_namespace(_with_timm_view_flags(options, script_argv))
        if config.needs_teacher:
            LABEL_SOURCES[config.label_source].check_teacher(config)
    except ValueError as e:
        parser.error(str(e))
    try:
        module = load_timm_train(options.timm_train)
        install(module, config, options.timm_train)
        sys.argv = [options.timm_train] + script_argv
        module.main()
    except LauncherError as e:
        parser.exit(2, f'{parser.prog}: error: {e}\n')
    return 0
