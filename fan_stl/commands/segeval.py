"""`python -m fan_stl segeval CHECKPOINT --data CAMVID --out DIR`: clean and CamVid-C mIoU of a segmentation model.

Only argparse and the stdlib-only name lists load at import; torch, smp and the evaluation load when the command runs.
"""
import argparse
import sys
from pathlib import Path

from fan_stl.commands._args import positive_int
from fan_stl.commands.corrupt import BACKEND_NAMES, CORRUPTION_GROUPS, expand_corruptions
from fan_stl.robustness.names import ALL_CORRUPTIONS, IMAGE_FORMAT_NAMES, SEVERITIES


def run(args: argparse.Namespace) -> int:
    from fan_stl.robustness.evaluate import ResultsMismatchError
    from fan_stl.segmentation.evaluate import SegEvalSettings, evaluate_segmentation, format_summary
    from fan_stl.segmentation.models import load_segmenter
    from fan_stl.segmentation.report import write_chart, write_csv

    corruptions = [] if args.clean_only else expand_corruptions(args.corruptions)
    unknown = [c for c in corruptions if c not in ALL_CORRUPTIONS]
    if unknown:
        print(f'error: unknown corruptions {unknown}; names: {", ".join(ALL_CORRUPTIONS)} or the groups '
              f'{", ".join(CORRUPTION_GROUPS)}', file=sys.stderr)
        return 2
    try:
        loaded = load_segmenter(args.checkpoint)
        name = args.name or Path(args.checkpoint).stem
        settings = SegEvalSettings(
            size=tuple(args.size), split=args.split, batch_size=args.batch_size, workers=args.workers,
            device=args.device, limit=args.limit, seed=args.seed, image_format=args.format,
            backend=args.corruption_backend)
        out = Path(args.out)
        results = evaluate_segmentation(
            loaded['model'], name, args.data, out / f'{name}.json', corruptions, args.severities, settings,
            camvid_c=args.camvid_c, source={'checkpoint': str(Path(args.checkpoint).resolve())},
            overwrite=args.overwrite)
        written = [out / f'{name}.json', write_csv(results, out / f'{name}.csv')]
        if results['cells']:
            try:
                written.append(write_chart(results, out / f'{name}.png'))
            except ImportError as e:
                print(f'note: no chart ({e})', file=sys.stderr)
    except (ValueError, OSError, ImportError, ResultsMismatchError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(format_summary(results))
    print('wrote ' + ', '.join(str(p) for p in written))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'segeval', help='clean and CamVid-C mIoU of a segmentation model (resumable)',
        description='Evaluates a segmentation checkpoint (written by fan_stl.segmentation.save_segmenter or '
                    'benchmarks/segmentation.py --save) on a CamVid split and on its corrupted copies (CamVid-C: '
                    'the ImageNet-C corruptions, labels untouched): clean mIoU, mIoU per corruption x severity, mean '
                    'corrupted mIoU and its ratio to clean, as OUT/NAME.json, .csv and .png. A rerun resumes; '
                    'results of another model or settings are refused. Needs the extras seg and robustness: '
                    'pip install -e ".[seg,robustness]" in the fan_stl checkout.')
    parser.add_argument('checkpoint', help='segmentation checkpoint (.pth)')
    parser.add_argument('--data', required=True, help='CamVid folder (<split>/ images, <split>annot/ masks)')
    parser.add_argument('--out', required=True, help='output folder for NAME.json / .csv / .png')
    parser.add_argument('--name', help='result name (default: the checkpoint file name)')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='test', help='default test')
    parser.add_argument('--size', nargs=2, type=positive_int, default=[352, 480], metavar=('H', 'W'),
                        help='input height and width, multiples of 32 (default 352 480)')
    parser.add_argument('--corruptions', nargs='+', default=['standard'], metavar='NAME',
                        help='corruption names or the groups all / standard / extra (default: standard, the 15 of '
                             'ImageNet-C)')
    parser.add_argument('--severities', nargs='+', type=int, choices=list(SEVERITIES), default=list(SEVERITIES),
                        metavar='S', help='severities 1-5 (default: all)')
    parser.add_argument('--clean-only', action='store_true', help='no corruptions')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random corruptions (default 0)')
    parser.add_argument('--format', choices=list(IMAGE_FORMAT_NAMES), default='png',
                        help='format of the corrupted images (default png: lossless; jpg: quality 85)')
    parser.add_argument('--corruption-backend', choices=BACKEND_NAMES, default='torch',
                        help='torch (default: batched torch corruptions, as eval --corrupt-on-the-fly) or '
                             'imagecorruptions (the reference functions, slower); their images are not the same')
    parser.add_argument('--camvid-c', help='CamVid-C folder to read, its missing files written first '
                                           '(default: corrupt on the fly, the same images)')
    parser.add_argument('--batch-size', type=positive_int, default=4)
    parser.add_argument('--workers', type=int, default=0, help='data loader processes (default 0)')
    parser.add_argument('--limit', type=positive_int, help='first N images only (a quick check)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda (default cpu)')
    parser.add_argument('--overwrite', action='store_true', help='discard stored results in OUT/NAME.json')
    parser.set_defaults(func=run)
