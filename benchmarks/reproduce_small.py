"""Small-scale test of the STL paper's claim on real photographs (Imagenette).

Claim: the STL student beats a plain baseline of the same architecture on clean accuracy and on corruption
robustness. Arms, same recipe and epoch budget, for each seed (`fan_stl.demo.experiment`):
    baseline  fan_tiny_8_p4_hybrid, cross-entropy + the standard mixing recipe
    tl        fan_t_hybrid_tl (STL stage 1)
    stl       fan_t_hybrid_stl taught by that seed's tl (STL stage 2)
    [stl_follow, with --with-follow: token targets that follow the mixing]
Clean top-1 on the validation split; corruption error per corruption on a corrupted copy of the validation images
made by the corruption tool; mCE relative to the baseline (baseline = 100).

Learning rate: the official STL-T recipe uses lr 2e-3 for a global batch of 1024 (128 per GPU x 8 GPUs). This
script runs one process, so it scales the lr linearly to its own batch: lr = 2e-3 x batch / 1024 (batch 128 ->
2.5e-4). The GPU modes otherwise follow the official recipe (RandAugment, Mixup 0.8 / CutMix 1.0, label
smoothing 0.1, random erasing 0.3, drop-path 0.05, AdamW wd 0.05, cosine, warm-up) except: a far smaller epoch
budget; bf16 autocast instead of fp16 with a gradient scaler; 128 px; and the EMA: `full` keeps the official 10
cooldown epochs (60 + 10 trained) with EMA decay 0.999 instead of 0.99992, and evaluates each arm (and teaches the
student) with the EMA weights of its best epoch by EMA validation top-1; `gpu-fast` has no cooldown and no EMA, and
uses the weights of each arm's best epoch by validation top-1.

Modes:
    python benchmarks/reproduce_small.py               GPU, 128 px, whole training split, 60 epochs + 10
                                                       cooldown, EMA 0.999, 15 corruptions x 5 severities on all
                                                       val images
    python benchmarks/reproduce_small.py --gpu-fast    GPU, sized to about 5 minutes on one H100/H200: 10 epochs,
                                                       no EMA, bf16, loader workers + GPU prefetcher, 20 val images
                                                       per class under 15 corruptions x 5 severities
    python benchmarks/reproduce_small.py --cpu-reduced CPU, 64 px, 150 images per class, the demo's reduced model
                                                       and lighter recipe (no RandAugment / mixing), about 15
                                                       minutes on two cores: a pipeline check, not the recipe
    python benchmarks/reproduce_small.py --smoke       seconds on a CPU: tiny everything (tests and gpu_check.py)
Data: `--data` (an ImageFolder root with train/ and val/); by default the first of DATA_CANDIDATES that exists.
Get Imagenette (fast.ai, about 100 MB) into the git-ignored .data/ folder with
    mkdir -p .data && curl -L https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz | tar xz -C .data
The table (mean ± std over seeds) and a per-seed table are printed; `--json FILE` writes every number; `--record`
appends the command, seeds, recipe, machine, wall time, both tables and the chart to benchmarks/RESULTS.md.
"""
import argparse
import os
import datetime
import json
import shutil
import sys
import time
from pathlib import Path
from statistics import mean
from typing import Dict, List, Optional, Sequence

import timm
import torch

import fan_stl
from fan_stl.demo.experiment import ExperimentConfig, format_comparison, run_experiment
from fan_stl.demo.recipe import DEMO_RECIPE
from fan_stl.robustness import STANDARD_CORRUPTIONS
from fan_stl.utils.atomic import append_text_atomic, write_text_atomic
from fan_stl.utils.machine import machine_description, versions_line

REPO = Path(__file__).resolve().parents[1]
DATA_CANDIDATES = (
    REPO / '.data' / 'imagenette-128',  # where gpu_check.py's carry folder puts it on a GPU machine
    REPO / '.data' / 'imagenette2-160',  # the fast.ai download (see the module docstring)
    REPO.parent / 'shared' / 'data' / 'imagenette-128',  # the project's shared workspace
)
RESULTS = Path(__file__).with_name('RESULTS.md')
OFFICIAL_LR, OFFICIAL_GLOBAL_BATCH = 2e-3, 1024  # STL-T (spec 4.2): 128 per GPU x 8 GPUs


def linear_lr(batch_size: int) -> float:
    """ The official STL-T lr scaled linearly to a global batch of `batch_size`. """
    return OFFICIAL_LR * batch_size / OFFICIAL_GLOBAL_BATCH


GPU_RECIPE = dict(img_size=128, batch_size=128, lr=linear_lr(128), drop_path=0.05, amp=True, amp_dtype='bfloat16')
MODES: Dict[str, Dict] = {
    # 128 px (8 x 8 tokens), the whole training split, the official STL-T recipe at the linear-rule lr
    'full': dict(train=dict(GPU_RECIPE, epochs=60, warmup_epochs=5, ema_decay=0.999, workers=8),
                 eval_per_class=None, seeds=(0, 1), workers=16, eval_batch_size=256),
    # the same recipe sized to about 5 minutes on one H100/H200 (an estimate until a GPU run records
    # it): 6 trainings of 10 epochs, no EMA, the prefetcher normalises on the GPU; 20 val images per class
    'gpu-fast': dict(train=dict(GPU_RECIPE, epochs=10, warmup_epochs=1, cooldown_epochs=0, ema_decay=0., workers=12,
                                 prefetcher=True),
                     eval_per_class=20, seeds=(0, 1), workers=16, eval_batch_size=256),
    # CPU run: 64 px (4 x 4 tokens), 150 training images per class, the demo's reduced model and recipe (no
    # RandAugment, no Mixup / CutMix: from scratch on CPU nothing is learnt with them in this budget)
    'cpu-reduced': dict(train=dict(DEMO_RECIPE, img_size=64, batch_size=32, epochs=12, lr=5e-4,
                                   samples_per_class=150),
                        eval_per_class=10, seeds=(0, 1), workers=2, eval_batch_size=64),
    # a pipeline check in seconds: 32 px, one FAN block, 1 image per class, one epoch, one seed, two corruptions
    'smoke': dict(train=dict(DEMO_RECIPE, model_kwargs=dict(depth=1, stem_depths=(1, 1)), img_size=32,
                             batch_size=4, epochs=1, lr=5e-4, samples_per_class=1, val_samples_per_class=1),
                  eval_per_class=1, seeds=(0,), workers=1, eval_batch_size=16,
                  corruptions=('gaussian_noise', 'contrast')),
}


def find_data() -> Optional[Path]:
    return next((path for path in DATA_CANDIDATES if (path / 'train').is_dir()), None)


def shown_path(path) -> str:
    """ `path` as a record shows it: relative to the checkout (e.g. `../shared/data/...`), never this machine's
    absolute path. """
    return os.path.relpath(Path(path).resolve(), RESULTS.parent.parent)


def per_seed_table(results: Sequence) -> str:
    """ One row per arm and seed: clean top-1, mean corruption error, mCE vs that seed's baseline, training time. """
    lines = ['| arm | seed | clean top-1 (%) | corruption error (%) | mCE vs baseline | train s |',
             '|---|---|---|---|---|---|']
    lines += [f'| {r.arm} | {r.seed} | {r.clean_top1:.2f} | {mean(r.corruption_errors.values()):.2f} | '
              f'{r.mce_vs_baseline:.2f} | {r.train_seconds:.0f} |' for r in results]
    return '\n'.join(lines)


def record(args: argparse.Namespace, cfg: ExperimentConfig, tables: str, seconds: float, chart: Path) -> None:
    kept = RESULTS.parent / 'results' / f'reproduce_small_{args.mode}.png'
    kept.parent.mkdir(exist_ok=True)
    shutil.copyfile(chart, kept)
    evaluated = 'all' if cfg.eval_per_class is None else cfg.eval_per_class
    chart_link = kept.relative_to(RESULTS.parent)
    header = (
        f'\n## reproduce_small.py ({args.mode}) — {datetime.date.today().isoformat()}\n\n'
        f'- command: `python benchmarks/{" ".join([Path(__file__).name] + sys.argv[1:])}`\n'
        f'- data: {shown_path(cfg.data_dir)} (train split for training, {evaluated}'
        f' val images per class for clean and corrupted evaluation)\n'
        f'- seeds: {list(cfg.seeds)}; arms: {list(cfg.arms)}; recipe: {cfg.train}\n'
        f'- lr: {cfg.train["lr"]:g}' + (f' (official 2e-3 at global batch 1024, scaled linearly to batch '
                                        f'{cfg.train["batch_size"]})' if args.mode in ('full', 'gpu-fast') else '') +
        f'\n- corruptions: {len(cfg.corruptions)} x severities {list(cfg.severities)}\n'
        f'- machine: {machine_description()}; {versions_line(torch, timm, fan_stl)}\n'
        f'- wall time: {seconds / 60:.1f} min; chart: [{chart_link}]({chart_link})\n\n')
    append_text_atomic(RESULTS, header + tables + '\n')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', type=Path, help='ImageFolder root with train/ and val/ '
                        f'(default: the first that exists of {", ".join(str(p) for p in DATA_CANDIDATES)})')
    parser.add_argument('--out', type=Path, default=Path('output/reproduce_small'))
    modes = parser.add_mutually_exclusive_group()
    for mode in ('gpu-fast', 'cpu-reduced', 'smoke'):
        modes.add_argument(f'--{mode}', dest='mode', action='store_const', const=mode, help=f'the {mode} mode')
    parser.add_argument('--seeds', type=int, nargs='+', help='default: 0 1')
    parser.add_argument('--with-follow', action='store_true', help='add the stl_follow arm (beyond the paper)')
    add_run_options(parser)
    return parser


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """ The options every comparison script here shares (this one and mixing_ablation.py). """
    parser.add_argument('--epochs', type=int, help='override the mode\'s epoch budget (same for every arm)')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    parser.add_argument('--json', type=Path, metavar='FILE', help='write every number (per arm and seed) to FILE')
    parser.add_argument('--record', action='store_true', help='append the results to benchmarks/RESULTS.md')


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.mode = args.mode or 'full'
    data = args.data or find_data()
    if data is None:
        parser.error('no Imagenette found at ' + ', '.join(str(p) for p in DATA_CANDIDATES) + '; download it with '
                     '`mkdir -p .data && curl -L https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz | '
                     'tar xz -C .data` or pass --data with an ImageFolder root (train/ and val/)')
    if not (data / 'train').is_dir() or not (data / 'val').is_dir():
        parser.error(f'{data} needs train/ and val/ folders: pass --data with an ImageFolder root')
    mode = MODES[args.mode]
    train = dict(mode['train'], **({'epochs': args.epochs} if args.epochs else {}))
    if args.mode in ('full', 'gpu-fast') and not torch.cuda.is_available():
        print(f'warning: the {args.mode} mode is sized for a GPU and none is visible; this will be slow',
              file=sys.stderr)
    if not torch.cuda.is_available():
        train.update(amp=False, prefetcher=False)
    arms = ['baseline', 'tl', 'stl'] + (['stl_follow'] if args.with_follow else [])
    cfg = ExperimentConfig(
        data_dir=str(data), out_dir=str(args.out / args.mode), arms=arms, seeds=tuple(args.seeds or mode['seeds']),
        train=train, corruptions=mode.get('corruptions', STANDARD_CORRUPTIONS),
        eval_per_class=mode['eval_per_class'], eval_batch_size=mode['eval_batch_size'], workers=mode['workers'],
        progress=not args.quiet)
    start = time.perf_counter()
    results = run_experiment(cfg)
    seconds = time.perf_counter() - start
    tables = format_comparison(results) + '\n\nPer seed:\n\n' + per_seed_table(results)
    print(tables)
    print(f'wall time {seconds:.0f} s')
    if args.json:
        write_text_atomic(args.json, json.dumps({
            'mode': args.mode, 'data': str(data), 'seconds': seconds, 'machine': machine_description(),
            'recipe': {k: v for k, v in cfg.train.items()}, 'severities': list(cfg.severities),
            'corruptions': list(cfg.corruptions), 'eval_per_class': cfg.eval_per_class, 'tables': tables,
            'results': [dict(arm=r.arm, seed=r.seed, clean_top1=r.clean_top1, mce_vs_baseline=r.mce_vs_baseline,
                             corruption_error=mean(r.corruption_errors.values()), train_seconds=r.train_seconds)
                        for r in results]}, indent=1, default=str))
    if args.record:
        record(args, cfg, tables, seconds, Path(cfg.out_dir) / 'corruption_errors.png')
        print(f'appended to {RESULTS}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
