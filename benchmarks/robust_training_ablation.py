"""Robust-training ablation on real photographs (Imagenette): STL with the robust-training augmentations, one budget.

Arms (`ROBUST_ARMS`; one student and one recipe for all, every arm trained for each seed by `fan_stl.demo.experiment`,
the modes, data lookup, arm selection and charts of `mixing_ablation.py`, its sibling):
    baseline       fan_tiny_8_p4_hybrid, cross-entropy, Mixup 0.8 / CutMix 1.0 (the mCE reference, = 100)
    tl             fan_t_hybrid_tl, STL stage 1 (the teacher of every stl arm)
    stl            fan_t_hybrid_stl taught by tl (the paper's STL), Mixup / CutMix
    stl_jsd        as stl with AugMix (photometric, `--aa augmix-m3-w3`), 3 views per image and the JS consistency
                   on class and token predictions (`aug_splits=3, jsd_loss, jsd_tokens`); no Mixup / CutMix (the
                   views of one image cannot be mixed with other images), so it differs from stl in two ways
    stl_pixmix     as stl with PixMix on the student (generated fractals)
    stl_prime      as stl with PRIME (spectral + colour; the diffeomorphism is off in stage stl)
    stl_randconv   as stl with RandConv (RC_mix, kernels 1-7)
    stl_soft       as stl with soft augmentation per token (k = 2)
Shape bias is not measured: the evaluation code for it is not in the package yet.

Clean top-1 on the first val images of each class; corruption error per corruption (mean over severities 1-5) on a
corrupted copy of them; mCE relative to that seed's baseline; mean ± std over seeds.

    python benchmarks/robust_training_ablation.py --gpu     about 10 minutes on one H100-class GPU (estimated from
                                                             the mixing ablation's budget and the step costs of
                                                             stl_step.py --robust; not measured)
    python benchmarks/robust_training_ablation.py --cpu     two idle CPU cores, about 35 minutes (an estimate, not a
                                                             full run: the mixing ablation's 30 minutes for 16
                                                             trainings, plus the JSD arm's 3 views). TOO SMALL TO
                                                             SEPARATE THE METHODS
    python benchmarks/robust_training_ablation.py --smoke   a pipeline check of a minute or two (tests)
`--record` appends the command, arms, recipe, machine, wall time and tables to benchmarks/RESULTS.md.
"""
import argparse
import datetime
import shutil
import sys
import time
from pathlib import Path
from typing import List, Optional

import timm
import torch

import fan_stl
from fan_stl.demo.arms import ArmTable
from fan_stl.demo.experiment import format_comparison, run_experiment
from fan_stl.demo.synthetic import make_shapes_dataset
from fan_stl.utils.atomic import append_text_atomic
from fan_stl.utils.machine import machine_description, versions_line
from mixing_ablation import (  # the sibling script
    TOO_SMALL, ablation_parser, experiment_config, plot_summary, select_arms,
)
from reproduce_small import find_data, per_seed_table, shown_path

RESULTS = Path(__file__).with_name('RESULTS.md')
STUDENT = 'fan_t_hybrid_stl'
ROBUST_ARMS: ArmTable = {  # teachers before their students (the training order)
    'baseline': dict(stage='plain', model='fan_tiny_8_p4_hybrid'),
    'tl': dict(stage='tl', model='fan_t_hybrid_tl'),
    'stl': dict(stage='stl', model=STUDENT),
    'stl_jsd': dict(stage='stl', model=STUDENT, aug_splits=3, jsd_loss=True, jsd_tokens=True, aa='augmix-m3-w3',
                    mixup=0., cutmix=0.),
    'stl_pixmix': dict(stage='stl', model=STUDENT, batch_augment='pixmix'),
    'stl_prime': dict(stage='stl', model=STUDENT, batch_augment='prime'),
    'stl_randconv': dict(stage='stl', model=STUDENT, batch_augment='randconv'),
    'stl_soft': dict(stage='stl', model=STUDENT, batch_augment='soft_aug'),
}


def build_parser() -> argparse.ArgumentParser:
    return ablation_parser(__doc__, 'output/robust_training_ablation', f'default: all of {", ".join(ROBUST_ARMS)}')


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    data = args.data or find_data()
    if data is None and args.mode == 'smoke':
        data = make_shapes_dataset(args.out / 'synthetic', train_per_class=1, val_per_class=1, size=32)
    if data is None or not (data / 'train').is_dir():
        build_parser().error('no Imagenette found: pass --data with an ImageFolder root (train/ and val/)')
    try:
        arms = select_arms(args.arms, ROBUST_ARMS)
    except ValueError as e:
        build_parser().error(str(e))
    cfg = experiment_config(args, data, arms, ROBUST_ARMS)
    start = time.perf_counter()
    results = run_experiment(cfg)
    seconds = time.perf_counter() - start
    chart = Path(cfg.out_dir) / 'clean_and_mce.png'
    plot_summary(results, chart, f'Robust-training ablation ({args.mode}, {len(cfg.seeds)} seed(s))')
    tables = format_comparison(results) + '\n\nPer seed:\n\n' + per_seed_table(results)
    print(tables)
    print(f'wall time {seconds:.0f} s; chart: {chart}')
    if args.mode in TOO_SMALL:
        print(TOO_SMALL[args.mode])
    if args.record:
        kept = RESULTS.parent / 'results' / f'robust_training_ablation_{args.mode}_{chart.name}'
        kept.parent.mkdir(exist_ok=True)
        shutil.copyfile(chart, kept)
        append_text_atomic(RESULTS, (
            f'\n## robust_training_ablation.py ({args.mode}) — {datetime.date.today().isoformat()}\n\n'
            f'- command: `python benchmarks/{" ".join([Path(__file__).name] + sys.argv[1:])}`\n'
            f'- data: {shown_path(cfg.data_dir)} ({cfg.eval_per_class} val images per class, clean and corrupted)\n'
            f'- seeds: {list(cfg.seeds)}; arms: {list(cfg.arms)} (options: see the script\'s ROBUST_ARMS)\n'
            f'- recipe: {cfg.train}\n- corruptions: {list(cfg.corruptions)} x severities {list(cfg.severities)}\n'
            f'- machine: {machine_description()}; {versions_line(torch, timm, fan_stl)}\n'
            f'- wall time: {seconds / 60:.1f} min; chart: [{kept.relative_to(RESULTS.parent)}]'
            f'({kept.relative_to(RESULTS.parent)})\n'
            f'- what it can separate: with {len(cfg.seeds)} seed(s) only differences larger than the seed-to-seed '
            f'spread (none with one seed); stl_jsd '
            f'differs from stl in its mixing too (none); shape bias not measured\n'
            + (f'- note: {TOO_SMALL[args.mode]}\n' if args.mode in TOO_SMALL else '') + '\n' + tables + '\n'))
        print(f'appended to {RESULTS}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
