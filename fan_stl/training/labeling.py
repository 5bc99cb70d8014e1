"""The labelling run: a teacher's dense top-k label maps for every image of a training set, computed once.

`label_dataset(LabelConfig(data_dir, teacher, out))` (the `python -m fan_stl label` command) writes the maps folder
of `fan_stl.stl.map_store`. The teacher is any classifier the `annotator` label source accepts (a FAN token labeler
checkpoint with its `--teacher-model`, a timm name with a pretrained tag, `pretrained` with `--teacher-model`),
loaded and checked with the same functions and messages, and it must predict the dataset's classes. Each image is
resized whole to `img_size` x `img_size` (default: the teacher's input size; the maps cover the full image) and
normalised with the teacher's mean / std; the teacher's score map at its own resolution (FAN: its 16-pixel token
grid; a CNN: its last feature map), optionally resized to `grid` x `grid` on logits, is stored as the top-k classes
(int16) and their log-probabilities (fp16).

Resumable: the run's identity (dataset fingerprint, teacher sha256, settings) is written first to `labeling.json`;
a rerun with other settings into the same folder is refused naming the differing fields; finished shards (written
atomically, tagged with the run and their rows) are never recomputed or rewritten; `index.json` is written last.
Under `torchrun` each rank labels the shards `s` with `s % world_size == rank` and rank 0 writes the index once all
ranks are done (gloo on CPU, nccl on GPU). One progress bar (rank 0) shows images/s and the ETA; batches run on the
GPU when there is one.
"""
import contextlib
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Subset
from torchvision import transforms as T
from tqdm import tqdm

import safetensors
import timm
from timm.data import create_dataset, resolve_data_config

import fan_stl
from ..stl.annotator import load_annotator, resolve_annotator
from ..stl.map_store import (
    FILES_NAME, FORMAT_VERSION, INDEX_NAME, dataset_files, fingerprint, shard_name, sha256_file,
)
from ..utils.atomic import TEMP_GLOB, atomic_path, write_json_atomic, write_text_atomic
from ..utils.lock import output_lock
from ..utils.machine import software_versions
from ..utils.run_identity import refuse_other_run

__all__ = ['LabelConfig', 'LabelResult', 'label_dataset', 'weights_sha256']

IDENTITY_NAME = 'labeling.json'
_INTERPOLATIONS = {'bilinear': T.InterpolationMode.BILINEAR, 'bicubic': T.InterpolationMode.BICUBIC,
                   'nearest': T.InterpolationMode.NEAREST}


@dataclass
class LabelConfig:
    """ One labelling run (see the module docstring). """
    data_dir: str
    teacher: str
    out: str
    teacher_model: Optional[str] = None
    split: str = 'train'
    num_classes: Optional[int] = None  # default: the class folders found
    img_size: Optional[int] = None  # default: the teacher's input size
    grid: Optional[int] = None  # default: the teacher's own score-map resolution
    topk: int = 5
    interpolation: Optional[str] = None  # default: the teacher's
    batch_size: int = 32
    shard_size: int = 1024
    workers: int = 2
    device: Optional[str] = None
    progress: bool = True


@dataclass
class LabelResult:
    index: Dict
    written: List[str]  # shards computed by this rank in this run
    skipped: List[str]  # shards of this rank found finished
    images_per_second: float = 0.  # this rank's labelling rate over the shards it wrote (teacher loading excluded)


def weights_sha256(model: torch.nn.Module) -> str:
    """ sha256 of a model's state dict (names, dtypes, shapes and bytes, in name order). """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f'{name}:{tensor.dtype}:{tuple(tensor.shape)}'.encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b'')
    return digest.hexdigest()


def _distributed(device: torch.device):
    """ `(rank, world_size)`; starts the process group under torchrun. """
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def _shard_finished(path: Path, run: str, start: int, count: int) -> bool:
    if not path.is_file():
        return False
    try:
        with safe_open(path, 'pt') as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError):
        return False
    return meta.get('run') == run and meta.get('start') == str(start) and meta.get('count') == str(count)


def _score_maps(annotator, images: torch.Tensor, grid: Optional[int]) -> torch.Tensor:
    with torch.no_grad():
        _, scores = annotator.score_map(images)
    scores = scores.float()
    if grid is not None and tuple(scores.shape[-2:]) != (grid, grid):
        scores = F.interpolate(scores, size=(grid, grid), mode='bilinear', align_corners=False)
    return scores


def label_dataset(cfg: LabelConfig, on_shard: Optional[Callable[[str], None]] = None) -> LabelResult:
    """ Write (or finish) the maps folder `cfg.out` (see the module docstring); `on_shard(name)` runs after each shard
    this rank writes. """
    device = torch.device(cfg.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if device.type == 'cuda' and device.index is None:  # under torchrun: this rank's GPU
        device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', '0')))
        torch.cuda.set_device(device)
    rank, world_size = _distributed(device)
    with output_lock(cfg.out) if rank == 0 else contextlib.nullcontext():  # one labelling run per folder
        return _label_dataset(cfg, on_shard, device, rank, world_size)


def _label_dataset(cfg: LabelConfig, on_shard: Optional[Callable[[str], None]], device: torch.device, rank: int,
                   world_size: int) -> LabelResult:
    dataset = create_dataset('', root=cfg.data_dir, split=cfg.split, is_training=False)
    files, classes, root = dataset_files(dataset)
    if not files:
        raise ValueError(f'{cfg.data_dir} (split {cfg.split!r}) holds no images to label.')
    num_classes = cfg.num_classes or len(classes)
    resolve_annotator(cfg.teacher, cfg.teacher_model)  # the annotator source's checks and messages
    annotator = load_annotator(cfg.teacher, cfg.teacher_model, num_classes, device=device)
    if num_classes > torch.iinfo(torch.int16).max:
        raise ValueError(f'Label maps store classes as int16: at most {torch.iinfo(torch.int16).max} classes; the '
                         f'teacher has {num_classes}.')
    topk = min(cfg.topk, num_classes)  # k = the class count stores every class
    data_config = resolve_data_config({}, model=annotator.model)
    img_size = cfg.img_size or data_config['input_size'][-1]
    interpolation = cfg.interpolation or data_config['interpolation']
    dataset.transform = T.Compose([
        T.Resize((img_size, img_size), interpolation=_INTERPOLATIONS.get(interpolation, T.InterpolationMode.BICUBIC)),
        T.ToTensor(), T.Normalize(data_config['mean'], data_config['std'])])
    probe = _score_maps(annotator, dataset[0][0][None].to(device), cfg.grid)
    identity = {
        'format_version': FORMAT_VERSION,
        'fingerprint': fingerprint(files, classes),
        'num_images': len(files),
        'classes': classes,
        'data': os.path.abspath(root),
        'teacher': {'spec': cfg.teacher, 'model': cfg.teacher_model, 'kind': annotator.kind,
                    'num_classes': num_classes, 'sha256': weights_sha256(annotator.model)},
        'settings': {'img_size': img_size, 'grid': list(probe.shape[-2:]), 'topk': topk,
                     'interpolation': interpolation, 'mean': list(data_config['mean']),
                     'std': list(data_config['std']), 'shard_size': cfg.shard_size},
    }
    run = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(TEMP_GLOB):  # what a killed run left half-written
            stale.unlink(missing_ok=True)
        stored = out / IDENTITY_NAME
        if stored.is_file():
            refuse_other_run(json.loads(stored.read_text(encoding='utf-8')), identity,
                             f'{out} holds label maps of another labelling run',
                             'use another --out, or the same data, teacher and options to resume it')
        else:
            write_json_atomic(stored, identity)
            write_text_atomic(out / FILES_NAME, '\n'.join(files) + '\n')
    if world_size > 1:
        dist.barrier()

    shards = [(n, n * cfg.shard_size, min(cfg.shard_size, len(files) - n * cfg.shard_size))
              for n in range(math.ceil(len(files) / cfg.shard_size))]
    mine = [s for s in shards if s[0] % world_size == rank]
    todo = [s for s in mine if not _shard_finished(out / shard_name(s[0]), run, s[1], s[2])]
    result = LabelResult(index={}, written=[], skipped=[shard_name(s[0]) for s in mine if s not in todo])
    bar = tqdm(total=sum(s[2] for s in mine), initial=sum(s[2] for s in mine if s not in todo), unit='img',
               desc=f'label {out.name}' + (f' (rank 0 of {world_size})' if world_size > 1 else ''),
               disable=not cfg.progress or rank != 0)
    started = time.perf_counter()
    for number, start, count in todo:
        loader = DataLoader(Subset(dataset, range(start, start + count)), batch_size=cfg.batch_size,
                            num_workers=cfg.workers, pin_memory=device.type == 'cuda')
        indices, log_probs = [], []
        for images, _ in loader:
            log_p = _score_maps(annotator, images.to(device, non_blocking=True), cfg.grid).log_softmax(1)
            values, classes_at = log_p.topk(topk, dim=1)
            indices.append(classes_at.to(torch.int16).cpu())
            log_probs.append(values.half().cpu())
            bar.update(images.shape[0])
        name = shard_name(number)
        with atomic_path(out / name) as tmp:
            save_file({'indices': torch.cat(indices).contiguous(), 'log_probs': torch.cat(log_probs).contiguous()},
                      str(tmp), metadata={'run': run, 'start': str(start), 'count': str(count)})
        result.written.append(name)
        if on_shard is not None:
            on_shard(name)
    bar.close()
    if todo:
        result.images_per_second = sum(s[2] for s in todo) / (time.perf_counter() - started)
    if world_size > 1:
        dist.barrier()
    if rank == 0:
        missing = [shard_name(n) for n, start, count in shards
                   if not _shard_finished(out / shard_name(n), run, start, count)]
        if missing:
            raise RuntimeError(f'{len(missing)} shard(s) of {out} are not finished ({", ".join(missing[:5])}); run '
                               f'the same command again to finish them.')
        index = {**identity, 'run': run, 'versions': software_versions(torch, timm, safetensors, fan_stl),
                 'shards': [{'name': shard_name(n), 'start': start, 'count': count,
                             'bytes': (out / shard_name(n)).stat().st_size, 'sha256': sha256_file(out / shard_name(n))}
                            for n, start, count in shards]}
        write_json_atomic(out / INDEX_NAME, index)
        result.index = index
    if world_size > 1:
        dist.barrier()
        result.index = json.loads((out / INDEX_NAME).read_text(encoding='utf-8'))
    return result
