"""How faithful fan_stl's torch corruptions are to imagecorruptions, per corruption, on the same images.

    python benchmarks/corruption_agreement.py --images 200 --record
    python benchmarks/corruption_agreement.py --accuracy TORCH.json REFERENCE.json [REFERENCE_SEED1.json] --record

The first form measures `fan_stl.robustness.corruption_agreement` on `--images` Imagenette-128 validation
photographs resized to `--size` (224) px, every severity: for the corruptions without randomness the mean absolute
difference of the two 8-bit outputs (grey levels; 1 = 1/255), for the random ones the statistics of the
perturbation (corrupted - clean) on both sides: std, mean |.| and the share of its power above half Nyquist
(averaged over the severities; the largest relative difference of a severity is given too). Motion blur's kernel
and frost's textures are also compared at the reference's own draw (same angle, same texture and crop).

The second form compares `eval --corrupt-on-the-fly` results files of one model on the same images: the torch
backend's, the imagecorruptions backend's and, optionally, the imagecorruptions backend's at another `--seed`
(how much a cell moves with the random draw alone): top-1 per cell, the largest and mean difference per
corruption. `--record` appends the table, command and versions to benchmarks/RESULTS.md.
"""
import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fan_stl.robustness.corruption_agreement import (  # noqa: E402
    EXACT, frost_with_texture, load_images, measure, motion_blur_at_angle, spatter_with_noise,
)
from fan_stl.robustness.names import ALL_CORRUPTIONS  # noqa: E402
from fan_stl.utils.atomic import append_text_atomic  # noqa: E402

from corruption_speed import DEFAULT_DATA, versions  # noqa: E402
from throughput import RESULTS  # noqa: E402

MOTION_ANGLES = (-40.0, -12.5, 0.0, 25.0, 44.0)


def agreement_table(images: np.ndarray, corruptions: List[str], severities: List[int], seed: int) -> str:
    lines = ['| corruption | kind | mean abs diff (grey levels, mean / max over severities) | perturbation std: '
             'reference / torch | mean abs: reference / torch | high-freq share: reference / torch | largest '
             'relative diff (std, mean abs) |', '|---|---|---|---|---|---|---|']
    for corruption in corruptions:
        cells = [measure(images, corruption, s, seed) for s in severities]
        diffs = [c.mean_abs_diff for c in cells]

        def pair(key: str, fmt: str = '.2f') -> str:
            ref = np.mean([c.reference_stats[key] for c in cells])
            ours = np.mean([c.torch_stats[key] for c in cells])
            return f'{ref:{fmt}} / {ours:{fmt}}'
        worst = max(abs(c.reference_stats[k] - c.torch_stats[k]) / max(abs(c.reference_stats[k]), 1e-9)
                    for c in cells for k in ('std', 'mean_abs'))
        lines.append(f'| {corruption} | {cells[0].kind} | {np.mean(diffs):.3f} / {max(diffs):.3f} | {pair("std")} | '
                     f'{pair("mean_abs")} | {pair("high_freq_share", ".3f")} | {100 * worst:.1f}% |')
        print(lines[-1], flush=True)
    extra, few = [], f'{min(16, len(images))} images'
    if 'motion_blur' in corruptions:
        motion = [motion_blur_at_angle(images[:16], s, a) for s in severities for a in MOTION_ANGLES]
        extra.append(f'- motion blur at the same angle ({", ".join(map(str, MOTION_ANGLES))} degrees, {few}): '
                     f'mean abs diff {np.mean(motion):.3f} grey levels (max {max(motion):.3f})')
    if 'frost' in corruptions:
        frost = [frost_with_texture(images[:16], s, seed=s) for s in severities]
        extra.append(f'- frost with the reference\'s texture and crop ({few}): mean abs diff '
                     f'{np.mean(frost):.3f} grey levels (max {max(frost):.3f})')
    if 'spatter' in corruptions:
        spatter = [spatter_with_noise(images[:16], s, seed=s) for s in severities]
        extra.append(f'- spatter with the reference\'s liquid noise ({few}): mean abs diff {np.mean(spatter):.3f} '
                     f'grey levels (max {max(spatter):.3f})')
    return '\n'.join(lines) + ('\n\n' + '\n'.join(extra) if extra else '')


def _cells(path: Path, backend: str) -> Dict[str, Dict[str, Dict[str, float]]]:
    section = json.loads(Path(path).read_text())['imagenet_c']
    found = section.get('on_the_fly', {}).get('backend')
    if found != backend:
        raise ValueError(f'{path} holds results of the {found} backend, not {backend}: give the torch file first, then '
                         f'the imagecorruptions file(s)')
    return section['cells']


def accuracy_table(torch_file: Path, reference_file: Path, other_seed_file: Optional[Path] = None) -> str:
    """ Top-1 per cell of the torch backend against the reference; with `other_seed_file` (the reference at another
    --seed) also the reference against itself: how much a cell moves with the random draw alone. """
    ours, ref = _cells(torch_file, 'torch'), _cells(reference_file, 'imagecorruptions')
    other = _cells(other_seed_file, 'imagecorruptions') if other_seed_file else None
    header = '| corruption | top-1 torch (mean over severities) | top-1 imagecorruptions | ' \
             'torch - reference: largest ' \
             'cell / mean |' + (' reference, other seed - reference: largest cell / mean |' if other else '')
    lines = [header, '|---|---|---|---|' + ('---|' if other else '')]
    diffs: Dict[str, List[float]] = {'torch': [], 'seed': []}

    def column(cells: Dict[str, Dict[str, float]], corruption: str, key: str) -> str:
        found = [cells[corruption][s]['top1'] - ref[corruption][s]['top1'] for s in sorted(ref[corruption])]
        diffs[key] += found
        return f'{max(found, key=abs):+.1f} / {np.mean(found):+.2f}'

    for corruption in ALL_CORRUPTIONS:
        if corruption not in ours or corruption not in ref:
            continue
        mean = [np.mean([cells[corruption][s]['top1'] for s in sorted(ref[corruption])]) for cells in (ours, ref)]
        lines.append(f'| {corruption} | {mean[0]:.1f} | {mean[1]:.1f} | {column(ours, corruption, "torch")} |' +
                     (f' {column(other, corruption, "seed")} |' if other else ''))
    images = next(iter(next(iter(ref.values())).values()))['num_images']

    def summary(key: str) -> str:
        values = np.array(diffs[key])
        return (f'{max(values, key=abs):+.1f} / {values.mean():+.2f} (mean abs {np.abs(values).mean():.2f}, '
                f'{(np.abs(values) <= 1.0 + 1e-9).mean() * 100:.0f}% of cells within 1 point)')
    lines.append(f'| **all cells** ({images} images; one image = {100 / images:.2f} points) | | | {summary("torch")} |'
                 + (f' {summary("seed")} |' if other else ''))
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', type=Path, default=DEFAULT_DATA, help='folder of images (any tree)')
    parser.add_argument('--images', type=int, default=200)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--corruptions', nargs='+', default=list(ALL_CORRUPTIONS), choices=list(ALL_CORRUPTIONS))
    parser.add_argument('--severities', nargs='+', type=int, default=[1, 2, 3, 4, 5], choices=[1, 2, 3, 4, 5])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--accuracy', nargs='+', type=Path, metavar='JSON',
                        help='compare eval results files instead: the torch backend\'s, the imagecorruptions '
                             'backend\'s, and optionally the imagecorruptions backend\'s at another --seed')
    parser.add_argument('--record', action='store_true', help='append the table to benchmarks/RESULTS.md')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    command = f'python benchmarks/corruption_agreement.py {" ".join(argv if argv is not None else sys.argv[1:])}'
    if args.accuracy:
        if len(args.accuracy) not in (2, 3):
            print('error: --accuracy takes 2 or 3 results files (torch, imagecorruptions[, imagecorruptions at '
                  'another seed])', file=sys.stderr)
            return 2
        table = accuracy_table(*args.accuracy)
        title = 'accuracy per cell, torch vs imagecorruptions backend'
        facts = f'- command: `{command}`\n- versions: {versions()}\n'
    else:
        if not args.data.is_dir():
            print(f'error: no images at {args.data}; pass --data FOLDER', file=sys.stderr)
            return 2
        images = load_images(args.data, args.images, args.size)
        table = agreement_table(images, args.corruptions, args.severities, args.seed)
        title = 'agreement with imagecorruptions'
        facts = (f'- command: `{command}`\n- images: {args.images} Imagenette-128 validation photographs resized to '
                 f'{args.size} px; severities {args.severities}; seed {args.seed}; exact kinds: {", ".join(EXACT)}\n'
                 f'- load average {"/".join(f"{v:.1f}" for v in os.getloadavg())}; versions: {versions()}\n')
    print(table)
    if args.record:
        append_text_atomic(RESULTS, f'\n## corruption_agreement.py: {title} — {datetime.date.today().isoformat()}\n\n'
                               f'{facts}\n{table}\n')
        print(f'recorded in {RESULTS}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
