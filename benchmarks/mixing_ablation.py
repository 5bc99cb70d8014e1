"""Mixing and token-label ablation on real photographs (Imagenette): which of the seeds' methods helps, at one budget.

Arms (`ABLATION_ARMS`; one model and one recipe for all, every arm trained for each seed by `fan_stl.demo.experiment`):
    baseline     fan_tiny_8_p4_hybrid, cross-entropy on timm's Mixup 0.8 / CutMix 1.0 (switch 0.5)
    stl          fan_t_hybrid_stl taught by the `tl` arm (the paper's STL), Mixup / CutMix (`mix_method=mixup_cutmix`)
    maskmix      as stl with MaskMix (MixPro's grid mask) on every batch instead of Mixup / CutMix
                 (`mix_method=maskmix`, the reversed-batch pairing)
    mixpro       as stl with MixPro's recipe as released: MaskMix on half the batches, timm's Mixup 0.8 / CutMix 1.0
                 (switch 0.5, smoothing 0.1) on the rest (`mix_method=mixpro`), random-permutation pairing
                 (`mix_pairing=perm`), PAL off, as in every configuration MixPro ships (MixPro's PAL-on variant has
                 no exact counterpart here: see the README's "Mixing and token labels")
    maskmix_pal  as maskmix (every batch, reversed-batch pairing) with this project's progressive attention labeling
                 (`attention_relabel=pal`: alpha detached, label-smoothed targets), NOT MixPro's recipe
    mixtoken     as stl with LV-ViT's MixToken (`mix_method=mixtoken`)
    annotator    fan_t_hybrid_stl taught by a CNN token annotator (`label_source=annotator`): the `cnn` arm's
                 resnet10t applied densely, its score map resized to the student's token grid
and the two teachers, trained in the same run on the same data and budget and reported with the rest:
    tl           fan_t_hybrid_tl, STL stage 1 (the FAN token labeler of the stl / maskmix / mixtoken arms)
    cnn          resnet10t from random initialisation (no pretrained weights: nothing is downloaded), the annotator
The mixing arms are STL students (token labels from the same `tl` teacher) that differ from `stl` only in their
mixing options, so each row isolates one method; `baseline` is the plain reference every mCE is relative to.
The mixing options are `STLConfig` fields (`mix_method`, `attention_relabel`): an arm whose option the installed
`STLConfig` does not know is refused with one line saying so, and the other arms run.

Clean top-1 on the first val images of each class; corruption error per corruption (mean over severities 1-5) on a
corrupted copy of them; mCE relative to that seed's baseline (baseline = 100); mean ± std over seeds.

Modes:
    python benchmarks/mixing_ablation.py --gpu    one GPU, 128 px, whole training split, 5 epochs per arm, bf16, no
                                                  EMA, the official recipe at the linear-rule lr (as reproduce_small's
                                                  --gpu-fast), 2 seeds, 20 val images per class x 15 corruptions x 5
                                                  severities: sized to about 8 minutes on one H100-class GPU (an
                                                  estimate from reproduce_small's gpu-fast budget, not measured)
    python benchmarks/mixing_ablation.py --cpu    two idle CPU cores, about 30 minutes (estimated from the step time
                                                  of its models, not a full run): 64 px, 120 training images per
                                                  class, 10 epochs, the demo's reduced FAN (2 blocks), 2 seeds, 10 val
                                                  images per class x 5 corruptions x 5 severities. TOO SMALL TO
                                                  SEPARATE THE METHODS: differences between arms are within the
                                                  seed-to-seed spread; it checks the pipeline on real images
    python benchmarks/mixing_ablation.py --smoke  about a minute of CPU: tiny everything, one seed, one corruption
                                                  (tests); synthetic shapes when no Imagenette is found
Data: `--data` (an ImageFolder root with train/ and val/); by default the first of reproduce_small's DATA_CANDIDATES
that exists. The table (mean ± std over seeds), a per-seed table and two charts (clean top-1 and mCE per arm;
corruption error per corruption) are written to the output folder; `--json FILE` writes every number; `--record`
appends the command, arms, recipe, machine, wall time, tables and charts to benchmarks/RESULTS.md.
"""
import argparse
import datetime
import json
import shutil
import sys
import time
from dataclasses import fields
from pathlib import Path
from statistics import mean, stdev
from typing import Dict, List, Optional, Sequence

import timm
import torch

import fan_stl
from fan_stl.demo.arms import ArmTable, teacher_of
from fan_stl.demo.experiment import ArmResult, ExperimentConfig, format_comparison, run_experiment
from fan_stl.demo.recipe import DEMO_RECIPE
from fan_stl.demo.synthetic import make_shapes_dataset
from fan_stl.robustness import STANDARD_CORRUPTIONS
from fan_stl.stl.config import STAGES, STLConfig
from fan_stl.stl.maskmix import mixpro_grid_cell
from fan_stl.training.engine import TrainConfig
from fan_stl.utils.atomic import append_text_atomic, atomic_path, write_text_atomic
from fan_stl.utils.machine import machine_description, versions_line
from reproduce_small import GPU_RECIPE, add_run_options, find_data, per_seed_table, shown_path  # sibling script

RESULTS = Path(__file__).with_name('RESULTS.md')
STUDENT = 'fan_t_hybrid_stl'
ANNOTATOR_CNN = 'resnet10t'
ABLATION_ARMS: ArmTable = {  # teachers before their students (the training order)
    'baseline': dict(stage='plain', model='fan_tiny_8_p4_hybrid'),
    'tl': dict(stage='tl', model='fan_t_hybrid_tl'),
    'cnn': dict(stage='plain', model=ANNOTATOR_CNN, model_kwargs={}),
    'stl': dict(stage='stl', model=STUDENT, mix_method='mixup_cutmix'),
    'maskmix': dict(stage='stl', model=STUDENT, mix_method='maskmix'),
    'mixpro': dict(stage='stl', model=STUDENT, mix_method='mixpro', mix_pairing='perm', mixpro_p_maskmix=0.5,
                   attention_relabel='none'),
    'maskmix_pal': dict(stage='stl', model=STUDENT, mix_method='maskmix', attention_relabel='pal'),
    'mixtoken': dict(stage='stl', model=STUDENT, mix_method='mixtoken'),
    'annotator': dict(stage='stl', model=STUDENT, label_source='annotator', teacher_arm='cnn'),
}
TEACHER_ARMS = ('tl', 'cnn')
MIXING = dict(mixup=0.8, cutmix=1.0)  # every arm mixes (the CPU mode too: it is what is compared)


def maskmix_grid(img_size: int) -> dict:
    """ MixPro's 4 x 4 MaskMix grid at `img_size` (128 px: 2-token cells, 64 px: 1-token cells; the smoke mode's 32 px
    allows 2 x 2 at most); the default 4-token cell would cover a 64 px image whole. """
    return dict(maskmix_cell=mixpro_grid_cell(img_size))


MODES: Dict[str, Dict] = {
    # reproduce_small's gpu-fast recipe, 8 trainings per seed of 5 epochs
    'gpu': dict(train=dict(GPU_RECIPE, **maskmix_grid(GPU_RECIPE['img_size']), epochs=5, warmup_epochs=1,
                           cooldown_epochs=0, ema_decay=0., workers=12, prefetcher=True),
                eval_per_class=20, seeds=(0, 1), workers=16, eval_batch_size=256, corruptions=STANDARD_CORRUPTIONS),
    # 16 trainings of 10 epochs over 1200 images at 64 px (375 steps each, past the ~200 steps this FAN sits at
    # chance from scratch; the demo's lr, see fan_stl.demo.recipe) + 16 x 2.6k evaluated images; validation on 10
    # per class
    'cpu': dict(train=dict(DEMO_RECIPE, **MIXING, **maskmix_grid(64), img_size=64, batch_size=32, epochs=10, lr=2e-4,
                           samples_per_class=120, val_samples_per_class=10),
                eval_per_class=10, seeds=(0, 1), workers=2, eval_batch_size=64,
                corruptions=('gaussian_noise', 'defocus_blur', 'contrast', 'jpeg_compression', 'pixelate')),
    'smoke': dict(train=dict(DEMO_RECIPE, **MIXING, **maskmix_grid(32),
                             model_kwargs=dict(depth=1, stem_depths=(1, 1)), img_size=32, batch_size=4, epochs=1,
                             lr=5e-4, samples_per_class=1, val_samples_per_class=1),
                  eval_per_class=1, seeds=(0,), workers=1, eval_batch_size=16, corruptions=('gaussian_noise',)),
}
TOO_SMALL = {
    'cpu': 'The --cpu mode is TOO SMALL TO SEPARATE THE METHODS (1200 images, 10 epochs at 64 px): differences between '
           'arms are within the seed-to-seed spread. It checks the pipeline on real images; use --gpu to compare.',
    'smoke': 'The --smoke mode is a pipeline check only: its numbers mean nothing.',
}


def unknown_option(arm: str, table: ArmTable = ABLATION_ARMS) -> Optional[str]:
    """ Why the installed `STLConfig` cannot run `arm` (an option it has no field or no such choice for); None if
    it can. Every option of an arm that is not a `TrainConfig` field is an `STLConfig` field. """
    train_fields = {f.name for f in fields(TrainConfig)} | {'teacher_arm'}
    options = {k: v for k, v in table[arm].items() if k not in train_fields}
    known = {f.name for f in fields(STLConfig)}
    missing = [k for k in options if k not in known]
    if missing:
        return f'STLConfig has no option {", ".join(missing)} in this installation'
    try:
        STLConfig(**options, teacher='teacher' if STAGES[options['stage']].needs_teacher else None)
    except ValueError as e:
        return str(e)
    return None


def select_arms(requested: Optional[Sequence[str]], table: ArmTable = ABLATION_ARMS) -> List[str]:
    """ The arms to run: the requested ones (all by default) that the installed STLConfig knows, with their
    teachers; one line on stderr per refused arm. An explicitly requested arm that is refused is an error. """
    arms = list(requested or table)
    unknown = [a for a in arms if a not in table]
    if unknown:
        raise ValueError(f'unknown arm(s) {", ".join(unknown)}; choose from {", ".join(table)}')
    kept = []
    for arm in arms:
        why = unknown_option(arm, table)
        if why is None:
            kept.append(arm)
            continue
        line = f'arm {arm} refused: {why} (its options: {table[arm]}); it runs once the installed fan_stl has them'
        if requested:
            raise ValueError(line)
        print(line, file=sys.stderr)
    teachers = [teacher_of(a, table) for a in kept]
    return [a for a in table if a in kept or a in teachers or a == 'baseline']


def plot_summary(results: Sequence[ArmResult], path: Path, title: str) -> None:
    """ Clean top-1 and mCE vs baseline per arm (mean over seeds, std as error bars), written atomically. """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    arms = list(dict.fromkeys(r.arm for r in results))
    fig, axes = plt.subplots(1, 2, figsize=(max(8., 1.3 * len(arms) + 3.), 4.), constrained_layout=True)
    for ax, (metric, label) in zip(axes, (('clean_top1', 'clean top-1 (%) ↑'), ('mce_vs_baseline',
                                                                                  'mCE vs baseline (= 100) ↓'))):
        values = [[getattr(r, metric) for r in results if r.arm == arm] for arm in arms]
        colours = ['tab:gray' if arm in TEACHER_ARMS else 'tab:blue' for arm in arms]
        ax.bar(arms, [mean(v) for v in values], yerr=[stdev(v) if len(v) > 1 else 0. for v in values],
               color=colours, capsize=3)
        ax.set_ylabel(label)
        ax.tick_params(axis='x', rotation=40)
        if metric == 'mce_vs_baseline':
            ax.axhline(100., color='black', linewidth=0.8)
    fig.suptitle(title + ' (grey: the teachers)')
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format='png')
    finally:
        plt.close(fig)


def record(args: argparse.Namespace, cfg: ExperimentConfig, refused: Sequence[str], tables: str, seconds: float,
           charts: Sequence[Path]) -> None:
    kept = []
    for chart in charts:
        kept.append(RESULTS.parent / 'results' / f'mixing_ablation_{args.mode}_{chart.name}')
        kept[-1].parent.mkdir(exist_ok=True)
        shutil.copyfile(chart, kept[-1])
    links = ', '.join(f'[{p.relative_to(RESULTS.parent)}]({p.relative_to(RESULTS.parent)})' for p in kept)
    text = (
        f'\n## mixing_ablation.py ({args.mode}) — {datetime.date.today().isoformat()}\n\n'
        f'- command: `python benchmarks/{" ".join([Path(__file__).name] + sys.argv[1:])}`\n'
        f'- data: {shown_path(cfg.data_dir)} ({cfg.eval_per_class} val images per class evaluated clean and '
        f'corrupted)\n'
        f'- seeds: {list(cfg.seeds)}; arms: {list(cfg.arms)}'
        + (f'; refused (options unknown to this STLConfig): {list(refused)}' if refused else '') +
        f'\n- annotator teacher: {ANNOTATOR_CNN} trained from random initialisation in this run (arm cnn), same data '
        f'and budget\n- recipe: {cfg.train}\n'
        f'- corruptions: {list(cfg.corruptions)} x severities {list(cfg.severities)}\n'
        f'- machine: {machine_description()}; {versions_line(torch, timm, fan_stl)}\n'
        f'- wall time: {seconds / 60:.1f} min; charts: {links}\n'
        + (f'- note: {TOO_SMALL[args.mode]}\n' if args.mode in TOO_SMALL else '') + '\n')
    append_text_atomic(RESULTS, text + tables + '\n')


def ablation_parser(doc: str, out: str, arms_help: str) -> argparse.ArgumentParser:
    """ The command line of an ablation script (this one and its siblings): data, output folder, mode, arms, seeds
    and the run options of reproduce_small.py. """
    parser = argparse.ArgumentParser(description=doc.split('\n')[0])
    parser.add_argument('--data', type=Path, help='ImageFolder root with train/ and val/ (default: Imagenette found '
                                                  'as benchmarks/reproduce_small.py finds it)')
    parser.add_argument('--out', type=Path, default=Path(out))
    modes = parser.add_mutually_exclusive_group(required=True)
    for mode in MODES:
        modes.add_argument(f'--{mode}', dest='mode', action='store_const', const=mode, help=f'the {mode} mode')
    parser.add_argument('--arms', nargs='+', metavar='ARM', help=arms_help)
    parser.add_argument('--seeds', type=int, nargs='+', help='default: the mode\'s (0 1; smoke: 0)')
    add_run_options(parser)
    return parser


def experiment_config(args: argparse.Namespace, data: Path, arms: List[str], table: ArmTable) -> ExperimentConfig:
    """ The experiment of an ablation script's parsed command line (its mode's recipe; AMP and the prefetcher off
    without CUDA). """
    mode = MODES[args.mode]
    train = dict(mode['train'], **({'epochs': args.epochs} if args.epochs else {}))
    if not torch.cuda.is_available():
        train.update(amp=False, prefetcher=False)
    return ExperimentConfig(
        data_dir=str(data), out_dir=str(args.out / args.mode), arms=arms, seeds=tuple(args.seeds or mode['seeds']),
        train=train, corruptions=mode['corruptions'], eval_per_class=mode['eval_per_class'],
        eval_batch_size=mode['eval_batch_size'], workers=mode['workers'], progress=not args.quiet, arm_table=table)


def build_parser() -> argparse.ArgumentParser:
    return ablation_parser(__doc__, 'output/mixing_ablation',
                           f'default: all of {", ".join(ABLATION_ARMS)} that the installed STLConfig knows')


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    data = args.data or find_data()
    if data is None and args.mode == 'smoke':
        data = make_shapes_dataset(args.out / 'synthetic', train_per_class=1, val_per_class=1, size=32)
        print(f'no Imagenette found: the smoke run uses synthetic shapes at {data}', file=sys.stderr)
    if data is None:
        parser.error('no Imagenette found (see benchmarks/reproduce_small.py for where it is looked for and how to '
                     'download it); pass --data with an ImageFolder root (train/ and val/)')
    if not (data / 'train').is_dir() or not (data / 'val').is_dir():
        parser.error(f'{data} needs train/ and val/ folders: pass --data with an ImageFolder root')
    try:
        arms = select_arms(args.arms)
    except ValueError as e:
        parser.error(str(e))
    refused = [a for a in (args.arms or ABLATION_ARMS) if a not in arms]
    if args.mode == 'gpu' and not torch.cuda.is_available():
        print('warning: the gpu mode is sized for a GPU and none is visible; this will be slow', file=sys.stderr)
    cfg = experiment_config(args, data, arms, ABLATION_ARMS)
    print(f'arms: {", ".join(arms)}; the annotator arm\'s teacher is {ANNOTATOR_CNN} trained from random '
          f'initialisation in this run on the same data and budget (arm cnn)', file=sys.stderr)
    start = time.perf_counter()
    results = run_experiment(cfg)
    seconds = time.perf_counter() - start
    charts = [Path(cfg.out_dir) / 'clean_and_mce.png', Path(cfg.out_dir) / 'corruption_errors.png']
    plot_summary(results, charts[0], f'Mixing ablation ({args.mode}, {len(cfg.seeds)} seed(s))')
    tables = format_comparison(results) + '\n\nPer seed:\n\n' + per_seed_table(results)
    print(tables)
    print(f'wall time {seconds:.0f} s; charts: {", ".join(str(c) for c in charts)}')
    if args.mode in TOO_SMALL:
        print(TOO_SMALL[args.mode])
    if args.json:
        write_text_atomic(args.json, json.dumps({
            'mode': args.mode, 'data': str(data), 'seconds': seconds, 'machine': machine_description(), 'arms': arms,
            'refused': refused, 'arm_options': {a: ABLATION_ARMS[a] for a in arms}, 'recipe': cfg.train,
            'corruptions': list(cfg.corruptions), 'eval_per_class': cfg.eval_per_class, 'tables': tables,
            'results': [dict(arm=r.arm, seed=r.seed, clean_top1=r.clean_top1, mce_vs_baseline=r.mce_vs_baseline,
                             corruption_error=mean(r.corruption_errors.values()), train_seconds=r.train_seconds)
                        for r in results]}, indent=1, default=str))
    if args.record:
        record(args, cfg, refused, tables, seconds, charts)
        print(f'appended to {RESULTS}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
