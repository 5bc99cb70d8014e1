"""`python -m fan_stl demo`: the whole STL story on a small image set, on CPU, in a few minutes.

With no `--data` it generates its own image set (textured shapes on clutter, `fan_stl.demo.synthetic`), then trains a
reduced FAN-T-Hybrid baseline, a token labeler and an STL student under one recipe, evaluates them on clean and
corrupted validation images, prints the comparison, and writes the weights (safetensors + timm config.json) and a
chart. Needs the robustness extra for the corruptions and the chart.
"""
import argparse
import sys
import time
from pathlib import Path
from typing import Optional

from ..demo.arms import ARMS, check_arms
from ..utils.extras import install_hint, missing_modules
from ..utils.lock import OutputFolderLocked
from ._args import image_size, positive_int


def check_args(args: argparse.Namespace) -> Optional[str]:
    """ What is wrong with the demo's arguments or environment, in one line, before any work; None if nothing. """
    try:
        check_arms(args.arms)
    except ValueError as e:
        return f'--arms: {e}'
    if args.data is not None:
        missing = [split for split in ('train', 'val') if not (Path(args.data) / split).is_dir()]
        if missing:
            return (f'--data {args.data} has no {" or ".join(s + "/" for s in missing)} folder: give an ImageFolder '
                    f'root with train/<class>/ and val/<class>/, or leave --data out to generate the shapes set')
    missing = missing_modules('robustness')
    if missing:
        return (f'the demo corrupts images and draws a chart, which needs {", ".join(missing)}: '
                f'{install_hint("robustness")}')
    return None


def run(args: argparse.Namespace) -> int:
    problem = check_args(args)
    if problem:
        print(f'python -m fan_stl demo: error: {problem}', file=sys.stderr)
        return 2
    from ..demo.experiment import TOKEN_FIGURE, ExperimentConfig, OutputFolderError, format_comparison, run_experiment
    from ..demo.recipe import DEMO_RECIPE
    from ..demo.synthetic import VAL_PER_CLASS
    from ..demo.token_maps import format_localisation
    from ..utils.machine import machine_description

    start = time.perf_counter()
    out = Path(args.out)
    data = out / 'data' if args.data is None else Path(args.data)
    cfg = ExperimentConfig(
        data_dir=str(data),
        out_dir=str(out),
        generate=None if args.data else dict(train_per_class=args.train_per_class, val_per_class=VAL_PER_CLASS,
                                             size=args.img_size, seed=args.seed),
        overwrite=args.overwrite,
        arms=args.arms,
        seeds=(args.seed,),
        train=dict(DEMO_RECIPE, img_size=args.img_size, batch_size=args.batch_size, epochs=args.epochs, lr=args.lr),
        eval_per_class=args.eval_per_class,
        workers=args.workers,
        progress=not args.quiet,
    )
    try:
        results = run_experiment(cfg)
    except (OutputFolderError, OutputFolderLocked) as e:
        print(f'python -m fan_stl demo: error: {e}', file=sys.stderr)
        return 2
    print(f'\nSTL demo on {data} ({machine_description()}, {time.perf_counter() - start:.0f} s)\n')
    print(format_comparison(results))
    print('\nclean top-1: higher is better; corruption error and mCE vs baseline (baseline = 100): lower is better.')
    token_labels = {r.arm: r.token_labels for r in results if r.token_labels}
    if token_labels:
        print('\n' + format_localisation(token_labels))
    print(f'\nweights (model.safetensors + timm config.json): {out / "weights"}/<arm>-seed{args.seed}/')
    print(f'chart: {out / "corruption_errors.png"}   per-model results: {out / "results"}/')
    if token_labels:
        print(f'token labels over one validation image per class: {out / TOKEN_FIGURE}')
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'demo', help='train a baseline, a token labeler and an STL student and compare their robustness (CPU, minutes)',
        description=__doc__.split('\n\n')[1] + f' Install: {install_hint("robustness")}.')
    parser.add_argument('--data', help='ImageFolder root with train/ and val/ (default: generate the shapes set)')
    parser.add_argument('--out', default='fan_stl_demo',
                        help='output folder (default: ./fan_stl_demo); a rerun with the same settings resumes there')
    parser.add_argument('--arms', nargs='+', default=['baseline', 'tl', 'stl'], choices=list(ARMS), metavar='ARM',
                        help=f'what to train, from {", ".join(ARMS)} (default: baseline tl stl; baseline is required, '
                             f'stl needs tl; stl_follow = token targets follow mixing)')
    parser.add_argument('--epochs', type=positive_int, default=14)
    parser.add_argument('--img-size', type=image_size, default=64, help='a multiple of 16 (default 64: 4 x 4 tokens)')
    parser.add_argument('--batch-size', type=positive_int, default=32)
    parser.add_argument('--lr', type=float, default=2e-4)
    parser.add_argument('--train-per-class', type=positive_int, default=120, help='generated training images per class')
    parser.add_argument('--eval-per-class', type=positive_int, default=10,
                        help='validation images per class that are corrupted and evaluated (default 10)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workers', type=positive_int, default=2, help='processes for corrupting images (default 2)')
    parser.add_argument('--overwrite', action='store_true',
                        help='discard the outputs of an earlier run with other settings in --out (default: resume a '
                             'run with the same settings, refuse another one)')
    parser.add_argument('--quiet', action='store_true', help='no progress display')
    parser.set_defaults(func=run)
