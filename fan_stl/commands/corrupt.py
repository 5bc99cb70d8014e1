"""`python -m fan_stl corrupt SRC DST`: the ImageNet-C style corrupted copy of an ImageFolder (resumable)."""
import argparse
import sys
from typing import List

from fan_stl.robustness.corrupt import IMAGE_FORMATS, corrupt_folder
from fan_stl.robustness.metrics import ALL_CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES, STANDARD_CORRUPTIONS

CORRUPTION_GROUPS = {'all': ALL_CORRUPTIONS, 'standard': STANDARD_CORRUPTIONS, 'extra': EXTRA_CORRUPTIONS}


def expand_corruptions(names: List[str]) -> List[str]:
    """ Corruption names with the groups 'all', 'standard' (the 15 of mCE) and 'extra' (the other 4) expanded. """
    chosen = [c for name in names for c in CORRUPTION_GROUPS.get(name, (name,))]
    return list(dict.fromkeys(chosen))


def run(args: argparse.Namespace) -> int:
    try:
        result = corrupt_folder(
            args.src, args.dst, corruptions=expand_corruptions(args.corruptions), severities=args.severities,
            workers=args.workers, seed=args.seed, image_format=args.format)
    except (ValueError, OSError, ImportError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{result.images} source images: wrote {result.written} corrupted files, {result.skipped} already there '
          f'-> {args.dst}')
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'corrupt', help='make an ImageNet-C style corrupted copy of an ImageFolder',
        description='Writes DST/<corruption>/<severity>/<class>/<image> for the 15 standard + 4 extra ImageNet-C '
                    'corruptions. Deterministic per image and seed; rerunning resumes. Needs the optional extra: '
                    'pip install -e ".[robustness]" in the fan_stl checkout (or: pip install imagecorruptions-imaug).')
    parser.add_argument('src', help='ImageFolder to corrupt (<src>/<class>/<image>)')
    parser.add_argument('dst', help='output folder (ImageNet-C layout)')
    parser.add_argument('--corruptions', nargs='+', default=['all'], metavar='NAME',
                        help=f'corruption names or the groups all / standard / extra (default: all); names: '
                             f'{", ".join(ALL_CORRUPTIONS)}')
    parser.add_argument('--severities', nargs='+', type=int, default=list(SEVERITIES), metavar='S',
                        help='severities 1-5 (default: all)')
    parser.add_argument('--workers', type=int, default=1, help='parallel processes (default 1)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random corruptions (default 0)')
    parser.add_argument('--format', choices=list(IMAGE_FORMATS), default='jpg',
                        help='output format (default jpg, quality 85, as ImageNet-C)')
    parser.set_defaults(func=run)
