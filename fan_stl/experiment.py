"""The STL story end to end: a plain baseline, a FAN token labeler and an STL student under one recipe, evaluated on
clean and corrupted images, compared by clean accuracy and by corruption error relative to the baseline.

Arms (all FAN-T-Hybrid, sizes set by `model_kwargs`):
    baseline    `fan_tiny_8_p4_hybrid`, cross-entropy on the mixed, smoothed image label
    tl          `fan_t_hybrid_tl`, STL stage 1 (token labeler; its token head is supervised by the image label)
    stl         `fan_t_hybrid_stl`, STL stage 2 taught by the `tl` arm of the same seed (the paper's method)
    stl_follow  as `stl` with token targets that follow CutMix / Mixup (an option beyond the paper)

Used by `python -m fan_stl demo` and `benchmarks/reproduce_small.py`. Every step resumes: finished trainings (their
safetensors), corrupted images and evaluated cells are reused when the same output folder is run again.
"""
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean, stdev
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

import timm
from safetensors.torch import load_file
from timm.models import save_for_hf

from .engine import TrainConfig, train
from .robustness import (
    CorruptionBaseline,
    EvalSettings,
    SEVERITIES,
    corrupt_folder,
    error_grid,
    evaluate_robustness,
    list_classes,
    mce,
    plot_corruption_errors,
)
from .robustness.layouts import is_image

ARMS: Dict[str, Dict[str, Any]] = {
    'baseline': dict(stage='plain', model='fan_tiny_8_p4_hybrid'),
    'tl': dict(stage='tl', model='fan_t_hybrid_tl'),
    'stl': dict(stage='stl', model='fan_t_hybrid_stl'),
    'stl_follow': dict(stage='stl', model='fan_t_hybrid_stl', follow_mixing=True),
}


@dataclass
class ExperimentConfig:
    """ What to train and evaluate; `train` holds `TrainConfig` fields shared by every arm. """
    data_dir: str
    out_dir: str
    arms: Sequence[str] = ('baseline', 'tl', 'stl')
    seeds: Sequence[int] = (0,)
    train: Dict[str, Any] = field(default_factory=dict)
    corruptions: Sequence[str] = ('gaussian_noise', 'defocus_blur', 'contrast', 'jpeg_compression', 'pixelate')
    severities: Sequence[int] = SEVERITIES
    eval_per_class: Optional[int] = None  # evaluate on the first n validation images of each class
    eval_batch_size: int = 64
    workers: int = 2
    progress: bool = True


@dataclass
class ArmResult:
    arm: str
    seed: int
    clean_top1: float
    corruption_errors: Dict[str, float]
    mce_vs_baseline: float
    train_seconds: float
    history: List[Dict[str, float]]


def _check(cfg: ExperimentConfig) -> None:
    unknown = [a for a in cfg.arms if a not in ARMS]
    if unknown:
        raise ValueError(f'unknown arm(s) {unknown}; choose from {list(ARMS)}')
    if 'baseline' not in cfg.arms:
        raise ValueError('the comparison is relative to the baseline: include the "baseline" arm')
    if any(a.startswith('stl') for a in cfg.arms) and 'tl' not in cfg.arms:
        raise ValueError('the STL student needs its teacher: include the "tl" arm')
    for split in ('train', 'val'):
        if not (Path(cfg.data_dir) / split).is_dir():
            raise FileNotFoundError(
                f'{cfg.data_dir} has no {split}/ folder; give an ImageFolder root with train/<class>/ and val/<class>/')


def _eval_images(val_dir: Path, out_dir: Path, per_class: Optional[int]) -> Path:
    """ The validation images evaluated: all of them, or a copy of the first `per_class` of each class. """
    if per_class is None:
        return val_dir
    subset = out_dir / f'val-first{per_class}'
    for name in list_classes(val_dir):
        (subset / name).mkdir(parents=True, exist_ok=True)
        for src in sorted(p for p in (val_dir / name).iterdir() if is_image(p))[:per_class]:
            if not (subset / name / src.name).exists():
                shutil.copy2(src, subset / name / src.name)
    return subset


def _train_arm(
        cfg: ExperimentConfig,
        arm: str,
        seed: int,
        teacher: Optional[nn.Module],
) -> Tuple[nn.Module, List[Dict[str, float]], float]:
    """ `(model, history, seconds)` of one arm, reloaded from its safetensors when that training already finished. """
    folder = Path(cfg.out_dir) / 'weights' / f'{arm}-seed{seed}'
    record = folder / 'history.json'
    overrides = {**cfg.train, **ARMS[arm], 'seed': seed, 'progress': cfg.progress}
    train_cfg = TrainConfig(data_dir=cfg.data_dir, teacher=teacher, **overrides)
    if record.exists():
        saved = json.loads(record.read_text())
        model = timm.create_model(train_cfg.model, num_classes=saved['num_classes'], **train_cfg.model_kwargs)
        model.load_state_dict(load_file(str(folder / 'model.safetensors')))
        return model.eval(), saved['history'], saved['seconds']
    start = time.perf_counter()
    result = train(train_cfg)
    seconds = time.perf_counter() - start
    model = result.model.eval()
    if hasattr(model, 'set_token_label_training'):
        model.set_token_label_training(False)
    from .convert import write_weights_folder  # the one writer with the real input size and classes
    classes = list_classes(Path(cfg.data_dir) / 'train')
    write_weights_folder(
        model, folder, input_size=train_cfg.img_size, model_args=dict(train_cfg.model_kwargs),
        label_names=classes if len(classes) == model.num_classes else None,
        source=f'trained by the fan_stl demo ({arm}, seed {seed})', overwrite=True)
    record.write_text(json.dumps({'num_classes': model.num_classes, 'history': result.history, 'seconds': seconds}))
    return model, result.history, seconds


def run_experiment(cfg: ExperimentConfig) -> List[ArmResult]:
    """ Train every arm for every seed, evaluate it clean and corrupted, and compare it with the baseline. """
    _check(cfg)
    out = Path(cfg.out_dir)
    val = _eval_images(Path(cfg.data_dir) / 'val', out, cfg.eval_per_class)
    val_c = out / 'val-c'
    corrupt_folder(val, val_c, cfg.corruptions, cfg.severities, workers=cfg.workers, progress=cfg.progress)
    settings = EvalSettings(batch_size=cfg.eval_batch_size, img_size=cfg.train.get('img_size'), progress=cfg.progress)
    results: List[ArmResult] = []
    for seed in cfg.seeds:
        trained: Dict[str, nn.Module] = {}
        runs: Dict[str, Tuple[Dict[str, Any], List[Dict[str, float]], float]] = {}
        for arm in sorted(cfg.arms, key=list(ARMS).index):  # the teacher (tl) trains before the students
            teacher = trained['tl'] if ARMS[arm]['stage'] == 'stl' else None
            model, history, seconds = _train_arm(cfg, arm, seed, teacher)
            trained[arm] = model
            evaluated = evaluate_robustness(
                model, f'{arm}-seed{seed}', out / 'results' / f'{arm}-seed{seed}.json', clean=val, imagenet_c=val_c,
                settings=settings, corruptions=cfg.corruptions, source={'weights': f'weights/{arm}-seed{seed}'})
            runs[arm] = evaluated, history, seconds
        base = CorruptionBaseline.from_grid('baseline', error_grid(runs['baseline'][0]['imagenet_c']['cells']))
        for arm, (evaluated, history, seconds) in runs.items():
            results.append(ArmResult(
                arm=arm, seed=seed, clean_top1=evaluated['clean']['top1'],
                corruption_errors=evaluated['imagenet_c']['summary']['corruption_errors'],
                mce_vs_baseline=mce(error_grid(evaluated['imagenet_c']['cells']), base, cfg.corruptions),
                train_seconds=seconds, history=history))
    (out / 'summary.json').write_text(json.dumps([asdict(r) for r in results], indent=1))
    plot_corruption_errors(
        {r.arm: {'imagenet_c': {'summary': {'corruption_errors': _mean_errors(results, r.arm)}}} for r in results},
        out / 'corruption_errors.png', title='Corruption error (%) per corruption, mean over severities and seeds')
    return results


def _mean_errors(results: Sequence[ArmResult], arm: str) -> Dict[str, float]:
    rows = [r.corruption_errors for r in results if r.arm == arm]
    return {c: mean(row[c] for row in rows) for c in rows[0]}


def _mean_std(values: Sequence[float]) -> str:
    return f'{mean(values):.2f}' + (f' ± {stdev(values):.2f}' if len(values) > 1 else '')


def format_comparison(results: Sequence[ArmResult]) -> str:
    """ One row per arm (mean ± std over seeds): clean top-1, mean corruption error and mCE vs baseline (= 100). """
    arms = list(dict.fromkeys(r.arm for r in results))
    corruptions = list(results[0].corruption_errors)
    header = ['arm', 'seeds', 'clean top-1 (%)', 'corruption error (%)', 'mCE vs baseline'] + corruptions
    rows = [header]
    for arm in arms:
        rs = [r for r in results if r.arm == arm]
        errors = _mean_errors(results, arm)
        rows.append([arm, str(len(rs)), _mean_std([r.clean_top1 for r in rs]),
                     _mean_std([mean(r.corruption_errors.values()) for r in rs]),
                     _mean_std([r.mce_vs_baseline for r in rs])] + [f'{errors[c]:.1f}' for c in corruptions])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ['| ' + ' | '.join(cell.ljust(w) for cell, w in zip(row, widths)) + ' |' for row in rows]
    lines.insert(1, '|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    return '\n'.join(lines)


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else f'CPU ({torch.get_num_threads()} threads)'
