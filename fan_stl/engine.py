"""A small STL training loop built from timm parts: `train(TrainConfig) -> TrainResult`.

It drives the same pieces as the train.py launcher (`fan_stl.train`): the paired clean-teacher data, the STL mixing
callbacks, the teacher token labeler inside `TokenLabelTask`, and `TokenLabelLoss`; with timm's `create_loader`
(prefetcher or not), `create_optimizer_v2`, `create_scheduler_v2`, `ModelEmaV3`, autocast, gradient accumulation,
checkpoints (train.py's keys: `state_dict`, `state_dict_ema`, `optimizer`, `epoch`) and DDP under `torchrun` (gloo on
CPU, nccl on GPU). Stage `tl` trains a token labeler on image labels; stage `stl` a student with a frozen teacher;
stage `plain` is the baseline: cross-entropy on the (mixed, smoothed) image label with the same recipe, any model.
"""
import math
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ContextManager, Dict, List, Optional, Tuple, Union

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

import timm
from timm.data import FastCollateMixup, Mixup, create_dataset, create_loader, resolve_data_config
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.task import ClassificationTask
from timm.utils import ModelEmaV3, accuracy, random_seed

from .data import PairedViewDataset
from .loss import TokenLabelLoss
from .mixing import TokenLabelCollateMixup, TokenLabelMixup
from .task import TokenLabelTask
from .token_labels import TeacherTokenLabeler, load_teacher

__all__ = ['TrainConfig', 'TrainResult', 'train', 'build_stl_parts']

STAGES = ('plain', 'tl', 'stl')
# timm's PosterizeIncreasing asks Pillow for 0 bits at magnitude 10, which Pillow >= 13 rejects: cap the magnitude at 9
SAFE_RAND_AUGMENT = 'rand-m9-mstd0.5-inc1-mmax9'


@dataclass
class TrainConfig:
    """ One training run; defaults follow the official STL recipe (spec section 4) except size and length. """
    data_dir: str
    model: str = 'fan_t_hybrid_tl'
    model_kwargs: Dict[str, Any] = field(default_factory=dict)  # extra create_model kwargs, e.g. depth
    stage: str = 'tl'
    teacher: Optional[Union[str, nn.Module]] = None  # stl: checkpoint path, model name or a module
    teacher_model: Optional[str] = None  # architecture of a checkpoint teacher (default: the student's)
    num_classes: Optional[int] = None  # default: the classes found in the training split
    img_size: int = 224
    scale: Tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop area range
    batch_size: int = 128
    epochs: int = 1
    max_steps_per_epoch: Optional[int] = None
    samples_per_class: Optional[int] = None  # keep the first n training images of each class (quick runs)
    val_samples_per_class: Optional[int] = None
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 0
    warmup_lr: float = 1e-6
    min_lr: float = 1e-6
    drop_path: float = 0.05
    aa: Optional[str] = SAFE_RAND_AUGMENT  # official: 'rand-m9-mstd0.5-inc1' (crashes with Pillow >= 13)
    reprob: float = 0.3
    remode: str = 'pixel'
    mixup: float = 0.8
    cutmix: float = 1.0
    smoothing: float = 0.1
    cls_weight: float = 1.
    dense_weight: float = 1.
    token_label_mode: str = 'gumbel'
    token_label_smoothing: float = 0.1
    follow_mixing: bool = False
    amp: bool = False
    amp_dtype: str = 'bfloat16'
    ema_decay: float = 0.  # 0 disables the EMA (official: 0.99992)
    grad_accum_steps: int = 1
    seed: int = 42
    workers: int = 0
    prefetcher: bool = False
    device: Optional[str] = None
    output_dir: Optional[str] = None
    resume: Optional[str] = None
    progress: bool = True


@dataclass
class TrainResult:
    """ Per-epoch `history` (train_loss, val_top1, val_top1_ema), per-step `step_losses`, last checkpoint path. """
    model: nn.Module
    history: List[Dict[str, float]] = field(default_factory=list)
    step_losses: List[float] = field(default_factory=list)
    checkpoint: Optional[str] = None


def _distributed() -> Tuple[int, int]:
    """ `(rank, world_size)`, initialising the process group when launched by torchrun. """
    world_size = int(os.environ.get('WORLD_SIZE', 1))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend='nccl' if torch.cuda.is_available() else 'gloo')
    return (dist.get_rank(), world_size) if world_size > 1 else (0, 1)


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device:
        return torch.device(cfg.device)
    if torch.cuda.is_available():
        return torch.device('cuda', int(os.environ.get('LOCAL_RANK', 0)))
    return torch.device('cpu')


def _autocast(cfg: TrainConfig, device: torch.device) -> Callable[[], ContextManager]:
    if not cfg.amp:
        return nullcontext
    dtype = getattr(torch, cfg.amp_dtype)
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


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


def build_stl_parts(
        cfg: TrainConfig,
        model: nn.Module,
        num_classes: int,
        device: torch.device,
        rank: int = 0,
) -> Tuple[nn.Module, Optional[TeacherTokenLabeler]]:
    """ `(task, labeler)` of a stage: a `ClassificationTask` with soft-target CE (plain) or the token-labeling loss
    (tl), or a `TokenLabelTask` with its teacher labeler (stl). """
    if cfg.stage == 'plain':
        mixing = cfg.mixup > 0 or cfg.cutmix > 0
        criterion = SoftTargetCrossEntropy() if mixing else LabelSmoothingCrossEntropy(cfg.smoothing)
        return ClassificationTask(model=model, criterion=criterion, device=device, verbose=False), None
    criterion = TokenLabelLoss(cfg.cls_weight, cfg.dense_weight, label_smoothing=cfg.smoothing)
    model.set_token_label_training(True)
    if cfg.stage == 'tl':
        return ClassificationTask(model=model, criterion=criterion, device=device, verbose=False), None
    if cfg.teacher is None:
        raise ValueError('Stage stl needs a teacher: a stage-1 checkpoint, a `*_tl` model name or a module.')
    teacher = cfg.teacher if isinstance(cfg.teacher, nn.Module) else load_teacher(
        cfg.teacher, model_name=cfg.teacher_model or cfg.model, num_classes=num_classes, device=device)
    labeler = TeacherTokenLabeler(
        teacher.to(device), mode=cfg.token_label_mode, smoothing=cfg.token_label_smoothing, seed=cfg.seed, rank=rank,
        autocast=_autocast(cfg, device))
    if labeler.num_classes != num_classes:
        raise ValueError(
            f'The teacher predicts {labeler.num_classes} classes but the student is trained on {num_classes}; '
            f'use a teacher trained on the same classes.')
    return TokenLabelTask(model=model, criterion=criterion, labeler=labeler, device=device, verbose=False), labeler


def _loaders(cfg: TrainConfig, model: nn.Module, num_classes: int, device: torch.device, distributed: bool):
    data_config = resolve_data_config({'input_size': (3, cfg.img_size, cfg.img_size)}, model=model)
    train_set = _dataset(cfg, 'train', cfg.samples_per_class, is_training=True)
    mix_args = dict(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, label_smoothing=cfg.smoothing,
                    num_classes=num_classes)
    mixing = cfg.mixup > 0 or cfg.cutmix > 0
    collate_fn = mixup_fn = None
    if cfg.stage == 'stl':
        train_set = PairedViewDataset(train_set)
        if cfg.prefetcher:
            collate_fn = TokenLabelCollateMixup(follow_mixing=cfg.follow_mixing, **mix_args)
        else:
            mixup_fn = TokenLabelMixup(follow_mixing=cfg.follow_mixing, **mix_args)
    elif mixing:
        collate_fn, mixup_fn = (FastCollateMixup(**mix_args), None) if cfg.prefetcher else (None, Mixup(**mix_args))
    common = dict(mean=data_config['mean'], std=data_config['std'], num_workers=cfg.workers,
                  distributed=distributed, use_prefetcher=cfg.prefetcher, device=device)
    train_loader = create_loader(
        train_set, input_size=data_config['input_size'], batch_size=cfg.batch_size, is_training=True,
        scale=cfg.scale, re_prob=cfg.reprob, re_mode=cfg.remode, re_split=cfg.stage == 'stl', auto_augment=cfg.aa,
        interpolation='random', collate_fn=collate_fn, **common)
    val_loader = create_loader(
        _dataset(cfg, 'val', cfg.val_samples_per_class, is_training=False), input_size=data_config['input_size'],
        batch_size=cfg.batch_size, interpolation=data_config['interpolation'], crop_pct=data_config['crop_pct'],
        **common)
    return train_loader, val_loader, mixup_fn


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, prefetcher: bool = False) -> float:
    """ Top-1 (%) of the model's eval-mode output over the loader (summed over DDP ranks). """
    model.eval()
    correct = total = torch.zeros((), device=device)
    for input, target in loader:
        if not prefetcher:
            input, target = input.to(device), target.to(device)
        correct = correct + accuracy(model(input), target, topk=(1,))[0] * target.shape[0] / 100.
        total = total + target.shape[0]
    if dist.is_initialized():
        dist.all_reduce(correct)
        dist.all_reduce(total)
    return (100. * correct / total.clamp(min=1)).item()


def _save(path: str, epoch: int, model: nn.Module, ema: Optional[ModelEmaV3], optimizer, cfg: TrainConfig) -> None:
    state = {'epoch': epoch, 'arch': cfg.model, 'state_dict': model.state_dict(), 'optimizer': optimizer.state_dict(),
             'config': {k: v for k, v in asdict(cfg).items() if not isinstance(v, nn.Module)}}
    if ema is not None:
        state['state_dict_ema'] = ema.module.state_dict()
    torch.save(state, path)


def train(cfg: TrainConfig) -> TrainResult:
    """ Train one stage (see the module docstring); returns the trained (unwrapped) model and its history. """
    if cfg.stage not in STAGES:
        raise ValueError(f'Unknown stage {cfg.stage!r}; choose one of {STAGES}.')
    rank, world_size = _distributed()
    device = _device(cfg)
    random_seed(cfg.seed, rank)
    num_classes = cfg.num_classes or len(_dataset(cfg, 'train', None, True).reader.class_to_idx)
    model = timm.create_model(
        cfg.model, num_classes=num_classes, drop_path_rate=cfg.drop_path, **cfg.model_kwargs).to(device)
    task, _ = build_stl_parts(cfg, model, num_classes, device, rank)
    train_loader, val_loader, mixup_fn = _loaders(cfg, model, num_classes, device, world_size > 1)
    optimizer = create_optimizer_v2(model, 'adamw', lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = min(len(train_loader), cfg.max_steps_per_epoch or len(train_loader))
    updates_per_epoch = math.ceil(steps / cfg.grad_accum_steps)
    scheduler, _ = create_scheduler_v2(
        optimizer, 'cosine', num_epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs, warmup_lr=cfg.warmup_lr,
        min_lr=cfg.min_lr, cooldown_epochs=0, updates_per_epoch=updates_per_epoch)
    start_epoch = 0
    if cfg.resume:
        checkpoint = torch.load(cfg.resume, map_location=device, weights_only=False)
        model.load_state_dict(checkpoint['state_dict'])
        optimizer.load_state_dict(checkpoint['optimizer'])
        start_epoch = checkpoint['epoch'] + 1
    ema = ModelEmaV3(model, decay=cfg.ema_decay) if cfg.ema_decay else None
    if ema is not None and cfg.resume and 'state_dict_ema' in checkpoint:
        ema.module.load_state_dict(checkpoint['state_dict_ema'])
    if world_size > 1:
        task.prepare_distributed(device_ids=[device] if device.type == 'cuda' else None)
    autocast = _autocast(cfg, device)
    scaler = torch.amp.GradScaler(device.type) if cfg.amp and cfg.amp_dtype == 'float16' else None
    result = TrainResult(model=model)
    if cfg.output_dir and rank == 0:
        os.makedirs(cfg.output_dir, exist_ok=True)

    for epoch in range(start_epoch, cfg.epochs):
        if hasattr(train_loader.sampler, 'set_epoch'):
            train_loader.sampler.set_epoch(epoch)
        task.train()
        epoch_losses = []
        bar = tqdm(train_loader, total=steps, desc=f'{cfg.stage} epoch {epoch}', disable=not cfg.progress or rank)
        for step, (input, target) in enumerate(bar):
            if step >= steps:
                break
            if not cfg.prefetcher:
                input, target = input.to(device), target.to(device)
                if mixup_fn is not None:
                    input, target = mixup_fn(input, target)
            with autocast():
                loss = task(input, target)['loss']
            (scaler.scale(loss / cfg.grad_accum_steps) if scaler else loss / cfg.grad_accum_steps).backward()
            if (step + 1) % cfg.grad_accum_steps == 0 or step + 1 == steps:
                if scaler:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                optimizer.zero_grad()
                num_updates = epoch * updates_per_epoch + (step + 1 + cfg.grad_accum_steps - 1) // cfg.grad_accum_steps
                if ema is not None:
                    ema.update(model, step=num_updates)
                scheduler.step_update(num_updates)
            epoch_losses.append(loss.item())
            bar.set_postfix(loss=f'{loss.item():.4f}')
        scheduler.step(epoch + 1)
        record = {'epoch': epoch, 'train_loss': sum(epoch_losses) / max(1, len(epoch_losses)),
                  'val_top1': evaluate(model, val_loader, device, cfg.prefetcher)}
        if ema is not None:
            record['val_top1_ema'] = evaluate(ema.module, val_loader, device, cfg.prefetcher)
        result.history.append(record)
        result.step_losses.extend(epoch_losses)
        if cfg.output_dir and rank == 0:
            result.checkpoint = os.path.join(cfg.output_dir, 'last.pth.tar')
            _save(result.checkpoint, epoch, model, ema, optimizer, cfg)
    return result
