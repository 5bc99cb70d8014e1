"""A small STL training loop built from timm parts: `train(TrainConfig) -> TrainResult`.

It trains one stage with the same `build_task` and `build_data` as the train.py launcher (`python -m fan_stl.train`),
on timm's utilities: `create_dataset` / `create_loader` (prefetcher or not), `create_optimizer_v2`,
`create_scheduler_v2`, `init_distributed_device` (DDP under `torchrun`), `NativeScaler` (fp16), `ModelEmaV3` and
`CheckpointSaver` (last, best and numbered checkpoints, replaced atomically: `fan_stl.training.checkpoints`, which
also reads a file to resume from with `weights_only=True` and refuses one that is not a whole training checkpoint).
Stage `tl` trains a token labeler, `stl` a student with a frozen teacher, `plain` the baseline with the same recipe.

Defaults follow the official STL recipe (NVlabs/STL scripts, FAN-T size): AdamW lr 2e-3, weight decay 0.05, cosine
per epoch with 5 warm-up epochs from 1e-6 and 10 cooldown epochs at min lr 1e-6 AFTER `epochs` (as timm counts
them: a run trains `epochs + cooldown_epochs` epochs, so `epochs=1` trains 11; `cooldown_epochs=0` trains `epochs`),
batch 128 per process, drop path 0.05, RandAugment m9 mstd0.5 with increasing ops, random erasing 0.3 (pixel),
Mixup 0.8 / CutMix 1.0 (batch mode, switch 0.5), label smoothing 0.1, EMA 0.99992 updated every step, best checkpoint
chosen on the EMA's class-head top-1, fp16 AMP with a grad scaler on GPU, seed 42. Differences from it:

* `aa` caps RandAugment at magnitude 9 (`-mmax9`): the official string crashes with Pillow >= 13;
* `epochs` defaults to 1 epoch of a short run unless set (official 350; with the 10 cooldown epochs 11 epochs are
  trained), `workers` to 4 (official 16);
* AMP is off on CPU (`amp=None`: on when CUDA is used), the prefetcher likewise (`prefetcher=None`);
* the teacher runs under the student's autocast (officially too) but in bfloat16 when `amp_dtype='bfloat16'`;
* ModelEmaV3 replaces ModelEmaV2 (same update rule without warm-up; `ema_warmup=True` adds timm's warm-up);
* the validation crop follows the model's pretrained config (1.0 for FAN, as officially).
"""
import argparse
import copy
import math
import os
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ContextManager, Dict, List, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm import tqdm

import timm
from timm.data import create_dataset, create_loader, resolve_data_config
from timm.models import clean_state_dict
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import CheckpointSaver, ModelEmaV3, NativeScaler, accuracy, init_distributed_device, random_seed

from ..stl.config import STLConfig
from ..stl.data import STLData, build_data
from ..stl.eval_rule import scored_with
from ..stl.task import build_task
from ..utils.amp import amp_dtype, amp_name
from ..utils.lock import output_lock
from .checkpoints import AtomicCheckpointSaver, read_resume_checkpoint, restore_training_state
from .data_checks import check_image_folders, check_run_lengths

__all__ = ['SAFE_RAND_AUGMENT', 'TrainConfig', 'TrainResult', 'train', 'evaluate']

# timm's PosterizeIncreasing asks Pillow for 0 bits at magnitude 10, which Pillow >= 13 rejects: cap the magnitude at 9
SAFE_RAND_AUGMENT = 'rand-m9-mstd0.5-inc1-mmax9'


@dataclass
class TrainConfig:
    """ One training run (see the module docstring for the defaults); `stl` holds every STL option. """
    data_dir: str
    model: str = 'fan_t_hybrid_tl'
    model_kwargs: Dict[str, Any] = field(default_factory=dict)  # extra create_model kwargs, e.g. depth
    stl: STLConfig = field(default_factory=lambda: STLConfig(stage='tl'))
    num_classes: Optional[int] = None  # default: the classes found in the training split
    img_size: int = 224
    scale: Tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop area range
    batch_size: int = 128
    epochs: int = 1
    cooldown_epochs: int = 10  # trained after `epochs` at min_lr: a run trains epochs + cooldown_epochs epochs
    max_steps_per_epoch: Optional[int] = None
    samples_per_class: Optional[int] = None  # keep the first n training images of each class (quick runs)
    val_samples_per_class: Optional[int] = None
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 5
    warmup_lr: float = 1e-6
    min_lr: float = 1e-6
    drop_path: float = 0.05
    aa: Optional[str] = SAFE_RAND_AUGMENT
    reprob: float = 0.3
    remode: str = 'pixel'
    mixup: float = 0.8
    cutmix: float = 1.0
    smoothing: float = 0.1
    amp: Optional[bool] = None  # None: on when training on CUDA
    amp_dtype: str = 'float16'
    ema_decay: float = 0.99992  # 0 disables the EMA
    ema_warmup: bool = False
    grad_accum_steps: int = 1
    seed: int = 42
    workers: int = 4
    prefetcher: Optional[bool] = None  # None: on when training on CUDA
    device: Optional[str] = None
    output_dir: Optional[str] = None
    checkpoint_hist: int = 3
    resume: Optional[str] = None
    progress: bool = True

    @classmethod
    def from_options(cls, **options: Any) -> 'TrainConfig':
        """ A config from one flat set of options: `STLConfig` field names go to `stl`, the rest to this class. """
        stl_names = {f.name for f in fields(STLConfig)}
        stl = {k: options.pop(k) for k in list(options) if k in stl_names}
        return cls(stl=STLConfig(**{'stage': 'tl', **stl}), **options)

    def to_dict(self) -> Dict[str, Any]:
        """ Plain values for checkpoints and logs (the STL options under `stl`). """
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.pop('stl')
        return {**copy.deepcopy(values), 'stl': self.stl.to_dict()}


@dataclass
class TrainResult:
    """ `model`: the weights of the best epoch, from the EMA when it is on (the official teacher and the weights the
    official numbers report); `final_model`: the raw weights after the last step. Per-epoch `history` (train_loss,
    val_top1, val_top1_ema), per-step `step_losses`, the best epoch and the last / best checkpoint paths. """
    model: nn.Module
    final_model: nn.Module
    history: List[Dict[str, float]] = field(default_factory=list)
    step_losses: List[float] = field(default_factory=list)
    best_epoch: Optional[int] = None
    checkpoint: Optional[str] = None
    best_checkpoint: Optional[str] = None


def _autocast(enabled: bool, dtype: str, device: torch.device) -> Callable[[], ContextManager]:
    if not enabled:
        return nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=amp_dtype(dtype))


def _dataset(cfg: TrainConfig, split: str, per_class: Optional[int], is_training: bool):
    dataset = create_dataset('', root=cfg.data_dir, split=split, is_training=is_training)
    if per_class is not None:
        seen: Dict[int, int] = {}
        kept = []
        for path, target in dataset.reader.samples:
            seen[target] = seen.get(target, 0) + 1
            if seen[target] <= per_class:
                kept.append((path, target))
        dataset.reader.samples = kept
    return dataset


def _loaders(cfg: TrainConfig, data: STLData, model: nn.Module, num_classes: int, device: torch.device,
             world_size: int, prefetcher: bool):
    data_config = resolve_data_config({'input_size': (3, cfg.img_size, cfg.img_size)}, model=model)
    data.check_input(data_config['input_size'])
    train_set = data.dataset(_dataset(cfg, 'train', cfg.samples_per_class, is_training=True))
    mixer = data.mixer(prefetcher, mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, label_smoothing=cfg.smoothing,
                       num_classes=num_classes)
    common = dict(mean=data_config['mean'], std=data_config['std'], num_workers=cfg.workers,
                  distributed=world_size > 1, use_prefetcher=prefetcher, device=device)
    train_loader = create_loader(
        train_set, input_size=data_config['input_size'], batch_size=cfg.batch_size, is_training=True,
        scale=cfg.scale, re_prob=cfg.reprob, re_mode=cfg.remode, re_split=data.re_split, auto_augment=cfg.aa,
        interpolation='random', collate_fn=mixer if prefetcher else None, num_aug_splits=cfg.stl.aug_splits, **common)
    train_loader = data.loader(train_loader, cfg.batch_size, world_size, prefetcher)
    val_loader = create_loader(
        _dataset(cfg, 'val', cfg.val_samples_per_class, is_training=False), input_size=data_config['input_size'],
        batch_size=cfg.batch_size, interpolation=data_config['interpolation'], crop_pct=data_config['crop_pct'],
        **common)
    return train_loader, val_loader, None if prefetcher else mixer


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, prefetcher: bool = False,
             eval_rule: Optional[str] = None) -> float:
    """ Top-1 (%) of the model's eval-mode output over the loader (summed over DDP ranks); a token-head model scored
    by `eval_rule` (`fan_stl.stl.eval_rule`; None: its own rule), its own rule restored afterwards. """
    model.eval()
    correct = total = torch.zeros((), device=device)
    with scored_with(model, eval_rule) if eval_rule else nullcontext():
        for input, target in loader:
            if not prefetcher:
                input, target = input.to(device), target.to(device)
            correct = correct + accuracy(model(input), target, topk=(1,))[0] * target.shape[0] / 100.
            total = total + target.shape[0]
    if dist.is_initialized():
        dist.all_reduce(correct)
        dist.all_reduce(total)
    return (100. * correct / total.clamp(min=1)).item()


def _setup_device(cfg: TrainConfig) -> Tuple[torch.device, argparse.Namespace]:
    """ timm's `init_distributed_device` (torchrun DDP: nccl on GPU, gloo on CPU). """
    requested = cfg.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    args = argparse.Namespace(device=requested, dist_backend=None if requested.startswith('cuda') else 'gloo')
    return init_distributed_device(args), args


def train(cfg: TrainConfig, on_epoch: Optional[Callable[[Dict[str, float]], None]] = None) -> TrainResult:
    """ Train one stage (see the module docstring) for `cfg.epochs + cfg.cooldown_epochs` epochs: the cosine schedule
    runs `epochs` epochs, then `cooldown_epochs` more at `min_lr` follow (timm's scheduler and train.py count them the
    same way; the default `cooldown_epochs=10` is the official recipe's, so `epochs=1` trains 11 epochs: set
    `cooldown_epochs=0` to train exactly `epochs`). The progress output states the count.

    `on_epoch(record)` is called after every epoch with that epoch's `history` record (epoch, train_loss, val_top1,
    val_top1_ema), e.g. for a progress display. With `output_dir`, the folder is locked for the run
    (`fan_stl.utils.lock`: a second run into it is refused). `resume` continues a training checkpoint from the epoch
    after it, with its optimizer, grad scaler and EMA states; one that is not a whole training checkpoint is refused
    (`fan_stl.training.checkpoints`). Resumed into the folder that holds it, the checkpoint history and best metric
    continue too (a worse epoch never replaces `model_best.pth.tar`, and `TrainResult.model` / `best_epoch` may be an
    epoch from before the resume); resumed into another folder, they start afresh there. """
    check_run_lengths(cfg.epochs, cfg.grad_accum_steps)
    if cfg.cooldown_epochs < 0:
        raise ValueError(f'cooldown_epochs must be 0 or more; got {cfg.cooldown_epochs}.')
    classes = check_image_folders(cfg.data_dir, 'train', 'val')
    device, dist_args = _setup_device(cfg)
    rank = dist_args.rank
    use_amp = device.type == 'cuda' if cfg.amp is None else cfg.amp
    scaled = use_amp and amp_name(cfg.amp_dtype) == 'float16'  # fp16 needs the grad scaler; bf16 does not
    checkpoint = read_resume_checkpoint(cfg.resume, NativeScaler.state_dict_key if scaled else None,
                                        ema=bool(cfg.ema_decay)) if cfg.resume else None
    with output_lock(cfg.output_dir) if cfg.output_dir and rank == 0 else nullcontext():
        return _train(cfg, on_epoch, classes, device, dist_args, use_amp, scaled, checkpoint)


def _train(cfg: TrainConfig, on_epoch, classes, device, dist_args, use_amp, scaled, checkpoint) -> TrainResult:
    rank, world_size = dist_args.rank, dist_args.world_size
    random_seed(cfg.seed, rank)
    data = build_data(cfg.stl)
    data.check_num_classes(cfg.num_classes, classes, cfg.data_dir)
    num_classes = cfg.num_classes or len(classes) or len(_dataset(cfg, 'train', None, True).reader.class_to_idx)
    prefetcher = device.type == 'cuda' if cfg.prefetcher is None else cfg.prefetcher
    autocast = _autocast(use_amp, cfg.amp_dtype, device)
    model = timm.create_model(
        cfg.model, num_classes=num_classes, drop_path_rate=cfg.drop_path, **cfg.model_kwargs).to(device)
    task = build_task(cfg.stl, model, smoothing=cfg.smoothing, seed=cfg.seed,
                      rank=rank, device=device, autocast=autocast, model_name=cfg.model)
    train_loader, val_loader, mixup_fn = _loaders(cfg, data, model, num_classes, device, world_size, prefetcher)
    optimizer = create_optimizer_v2(model, 'adamw', lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_scaler = NativeScaler(device=device.type) if scaled else None
    steps = min(len(train_loader), cfg.max_steps_per_epoch or len(train_loader))
    updates_per_epoch = math.ceil(steps / cfg.grad_accum_steps)
    scheduler, total_epochs = create_scheduler_v2(
        optimizer, 'cosine', num_epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs, warmup_lr=cfg.warmup_lr,
        min_lr=cfg.min_lr, cooldown_epochs=cfg.cooldown_epochs, updates_per_epoch=updates_per_epoch)
    start_epoch = 0
    ema = ModelEmaV3(model, decay=cfg.ema_decay, use_warmup=cfg.ema_warmup) if cfg.ema_decay else None
    if checkpoint is not None:
        start_epoch = restore_training_state(checkpoint, cfg.resume, model, optimizer, loss_scaler,
                                             ema.module if ema is not None else None)
        if start_epoch >= total_epochs:
            raise ValueError(
                f'{cfg.resume} finished epoch {start_epoch - 1}, the last of a run of {total_epochs} epochs '
                f'(epochs={cfg.epochs} + cooldown_epochs={cfg.cooldown_epochs}): nothing is left to train. Raise '
                f'epochs to continue training.')
    if world_size > 1:
        task.prepare_distributed(device_ids=[device] if device.type == 'cuda' else None)
    saver = None
    result = TrainResult(model=model, final_model=model)
    best_metric, best_state = None, None
    if cfg.output_dir and rank == 0:
        os.makedirs(cfg.output_dir, exist_ok=True)
        saver = AtomicCheckpointSaver(
            model=model, optimizer=optimizer, args=argparse.Namespace(**cfg.to_dict()), model_ema=ema,
            amp_scaler=loss_scaler, checkpoint_dir=cfg.output_dir, recovery_dir=cfg.output_dir,
            max_history=cfg.checkpoint_hist)
        if checkpoint is not None and _same_folder(cfg.resume, cfg.output_dir) and 'saver' in checkpoint:
            saver.load_state_dict(checkpoint['saver'])
            best_metric, result.best_epoch, best_state = _stored_best(saver, ema is not None)
    if cfg.progress and rank == 0:
        cooldown = f' + {cfg.cooldown_epochs} cooldown epochs at min_lr {cfg.min_lr:g}' if cfg.cooldown_epochs else ''
        resumed = f', resuming at epoch {start_epoch}' if start_epoch else ''
        print(f'training {total_epochs} epochs: {cfg.epochs} (cosine schedule){cooldown}{resumed}', flush=True)
    for epoch in range(start_epoch, total_epochs):
        if hasattr(train_loader.sampler, 'set_epoch'):
            train_loader.sampler.set_epoch(epoch)
        epoch_losses = _train_epoch(cfg, task, optimizer, loss_scaler, scheduler, ema, train_loader, mixup_fn,
                                    autocast, device, prefetcher, epoch, steps, updates_per_epoch, rank)
        scheduler.step(epoch + 1)
        record = {'epoch': epoch, 'train_loss': sum(epoch_losses) / len(epoch_losses),
                  'val_top1': evaluate(model, val_loader, device, prefetcher, cfg.stl.eval_rule)}
        if ema is not None:
            record['val_top1_ema'] = evaluate(ema.module, val_loader, device, prefetcher, cfg.stl.eval_rule)
        result.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        result.step_losses.extend(epoch_losses)
        metric = record['val_top1_ema' if ema is not None else 'val_top1']
        if best_metric is None or metric > best_metric:
            best_metric, result.best_epoch = metric, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in (ema.module if ema else model).state_dict().items()}
        if saver is not None:
            saver.save_checkpoint(epoch, metric=metric)
            result.checkpoint = os.path.join(cfg.output_dir, 'last.pth.tar')
            result.best_checkpoint = os.path.join(cfg.output_dir, 'model_best.pth.tar')
    if best_state is not None:
        result.model = copy.deepcopy(model)
        result.model.load_state_dict(best_state)
    return result


def _same_folder(file: str, folder: str) -> bool:
    return os.path.realpath(os.path.dirname(os.path.abspath(file))) == os.path.realpath(folder)


def _stored_best(saver: CheckpointSaver, use_ema: bool) -> Tuple[Optional[float], Optional[int], Optional[dict]]:
    """ The best metric, epoch and weights (the EMA's when on) of a resumed run, from its `model_best.pth.tar`;
    nothing when that file is gone or is of another epoch than the restored history names. """
    path = os.path.join(saver.checkpoint_dir, 'model_best.pth.tar')
    if saver.best_epoch is None or not os.path.isfile(path):
        return None, None, None
    best = read_resume_checkpoint(path, ema=use_ema)
    if best['epoch'] != saver.best_epoch:
        return None, None, None
    state = clean_state_dict(best['state_dict_ema' if use_ema else 'state_dict'])
    return saver.best_metric, saver.best_epoch, state


def _train_epoch(cfg, task, optimizer, loss_scaler, scheduler, ema, loader, mixup_fn, autocast, device, prefetcher,
                 epoch, steps, updates_per_epoch, rank) -> List[float]:
    task.train()
    losses = []
    model = task.trainable_module
    bar = tqdm(loader, total=steps, desc=f'{cfg.stl.stage} epoch {epoch}', disable=not cfg.progress or rank)
    for step, (input, target) in enumerate(bar):
        if step >= steps:
            break
        if not prefetcher:
            input, target = input.to(device), target.to(device)
            if mixup_fn is not None:
                input, target = mixup_fn(input, target)
        need_update = (step + 1) % cfg.grad_accum_steps == 0 or step + 1 == steps
        with autocast():
            loss = task(input, target)['loss']
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f'non-finite training loss {loss.item()} at epoch {epoch} step {step}; lower the lr, check the data, '
                f'or use amp_dtype="bfloat16".')
        scaled = loss / cfg.grad_accum_steps
        if loss_scaler is not None:
            loss_scaler(scaled, optimizer, parameters=model.parameters(), need_update=need_update)
        else:
            scaled.backward()
            if need_update:
                optimizer.step()
        if need_update:
            optimizer.zero_grad()
            num_updates = epoch * updates_per_epoch + (step + cfg.grad_accum_steps) // cfg.grad_accum_steps
            if ema is not None:
                ema.update(model, step=num_updates)
            scheduler.step_update(num_updates)
        losses.append(loss.item())
        bar.set_postfix(loss=f'{loss.item():.4f}')
    return losses
