"""Small-scale test of the STL paper's claim on real photographs (Imagenette-128).

Claim: the STL student beats a plain baseline of the same architecture on clean accuracy and on corruption
robustness. Arms, same recipe and epoch budget, for each seed (`fan_stl.experiment`):
    baseline  fan_tiny_8_p4_hybrid, cross-entropy + the standard mixing recipe
    tl        fan_t_hybrid_tl (STL stage 1)
    stl       fan_t_hybrid_stl taught by that seed's tl (STL stage 2)
    [stl_follow, with --with-follow: token targets that follow the mixing]
Clean top-1 on the validation split; corruption error per corruption on an Imagenette-128-C made by the corruption
tool (the 15 standard corruptions x 5 severities); mCE relative to the baseline (baseline = 100).

GPU (the full run, well under 30 minutes on one H100):
    python benchmarks/reproduce_small.py
CPU reduced mode (64 px, 150 images per class, a reduced model and the demo's lighter recipe; about 15 minutes on two
cores; a sanity check of the pipeline and of the direction of the effect, not a test of the paper's recipe):
    python benchmarks/reproduce_small.py --cpu-reduced
Results (command, seeds, epochs, machine, wall time, the table, the chart) are appended to benchmarks/RESULTS.md.
"""
import argparse
import datetime
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import timm
import torch

import fan_stl
from fan_stl.commands.demo import DEMO_RECIPE
from fan_stl.experiment import ExperimentConfig, device_name, format_comparison, run_experiment
from fan_stl.robustness import STANDARD_CORRUPTIONS

DATA = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'imagenette-128'
RESULTS = Path(__file__).with_name('RESULTS.md')

MODES: Dict[str, Dict] = {
    # 128 px (8 x 8 tokens), the whole training split, the official STL-T recipe (spec 4.2) except the epoch budget
    'full': dict(train=dict(img_size=128, batch_size=128, epochs=60, lr=2e-3, warmup_epochs=5, drop_path=0.05,
                            ema_decay=0.999, amp=True, workers=8),
                 eval_per_class=None, seeds=(0, 1), workers=16),
    # CPU run: 64 px (4 x 4 tokens), 150 training images per class, the demo's reduced model and recipe (no
    # RandAugment, no Mixup / CutMix: from scratch on CPU nothing is learnt with them in this budget)
    'cpu-reduced': dict(train=dict(DEMO_RECIPE, img_size=64, batch_size=32, epochs=12, lr=5e-4,
                                   samples_per_class=150),
                        eval_per_class=10, seeds=(0, 1), workers=2),
}


def record(args: argparse.Namespace, cfg: ExperimentConfig, table: str, seconds: float, chart: Path) -> None:
    kept = RESULTS.parent / 'results' / f'reproduce_small_{args.mode}.png'
    kept.parent.mkdir(exist_ok=True)
    shutil.copyfile(chart, kept)
    evaluated = 'all' if cfg.eval_per_class is None else cfg.eval_per_class
    chart_link = kept.relative_to(RESULTS.parent)
    header = (
        f'\n## reproduce_small.py ({args.mode}) — {datetime.date.today().isoformat()}\n\n'
        f'- command: `python benchmarks/{" ".join([Path(__file__).name] + sys.argv[1:])}`\n'
        f'- data: {cfg.data_dir} (train split for training, {evaluated}'
        f' val images per class for clean and corrupted evaluation)\n'
        f'- seeds: {list(cfg.seeds)}; arms: {list(cfg.arms)}; recipe: {cfg.train}\n'
        f'- corruptions: {len(cfg.corruptions)} standard x severities {list(cfg.severities)}\n'
        f'- machine: {device_name()}; python {platform.python_version()}, torch {torch.__version__}, '
        f'timm {timm.__version__}, fan_stl {fan_stl.__version__}\n'
        f'- wall time: {seconds / 60:.1f} min; chart: [{chart_link}]({chart_link})\n\n')
    with RESULTS.open('a') as f:
        f.write(header + table + '\n')


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', type=Path, default=DATA, help=f'ImageFolder with train/ and val/ (default {DATA})')
    parser.add_argument('--out', type=Path, default=Path('output/reproduce_small'))
    parser.add_argument('--cpu-reduced', dest='mode', action='store_const', const='cpu-reduced', default='full')
    parser.add_argument('--seeds', type=int, nargs='+', help='default: 0 1')
    parser.add_argument('--epochs', type=int, help='override the mode\'s epoch budget (same for every arm)')
    parser.add_argument('--with-follow', action='store_true', help='add the stl_follow arm (beyond the paper)')
    parser.add_argument('--no-record', action='store_true', help='do not append to benchmarks/RESULTS.md')
    args = parser.parse_args(argv)
    if not (args.data / 'train').is_dir():
        parser.error(f'{args.data} has no train/ folder: pass --data with an ImageFolder root (train/ and val/)')
    mode = MODES[args.mode]
    train = dict(mode['train'], **({'epochs': args.epochs} if args.epochs else {}))
    if not torch.cuda.is_available():
        train['amp'] = False
    arms = ['baseline', 'tl', 'stl'] + (['stl_follow'] if args.with_follow else [])
    cfg = ExperimentConfig(
        data_dir=str(args.data), out_dir=str(args.out / args.mode), arms=arms, seeds=tuple(args.seeds or mode['seeds']),
        train=train, corruptions=STANDARD_CORRUPTIONS, eval_per_class=mode['eval_per_class'], workers=mode['workers'])
    start = time.perf_counter()
    results = run_experiment(cfg)
    seconds = time.perf_counter() - start
    table = format_comparison(results)
    print(table)
    if not args.no_record:
        record(args, cfg, table, seconds, Path(cfg.out_dir) / 'corruption_errors.png')
        print(f'appended to {RESULTS}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
