"""`python -m fan_stl corrupt SRC DST`: the ImageNet-C style corrupted copy of an ImageFolder (resumable).

Only argparse and the stdlib-only name lists load at import; the corruption code loads when the command runs.
"""
import argparse
import sys
from typing import List

from fan_stl.robustness.names import (
    ALL_CORRUPTIONS, EXTRA_CORRUPTIONS, IMAGE_FORMAT_NAMES, SEVERITIES, STANDARD_CORRUPTIONS,
)

CORRUPTION_GROUPS = {'all': ALL_CORRUPTIONS, 'standard': STANDARD_CORRUPTIONS, 'extra': EXTRA_CORRUPTIONS}


def expand_corruptions(names: List[str]) -> List[str]:
    """ Corruption names with the groups 'all', 'standard' (the 15 of mCE) and 'extra' (the other 4) expanded. """
    chosen = [c for name in names for c in CORRUPTION_GROUPS.get(name, (name,))]
    return list(dict.fromkeys(chosen))


BACKEND_NAMES = ('torch', 'imagecorruptions')  # as fan_stl.robustness.corrupt.BACKENDS, without importing numpy


def add_corruption_arguments(parser: argparse.ArgumentParser, default_corruptions: List[str],
                             default_backend: str = 'imagecorruptions') -> None:
    """ The options that choose which corrupted images are made (shared by `corrupt` and `eval --corrupt-on-the-fly`).
    """
    parser.add_argument('--corruptions', nargs='+', default=default_corruptions, metavar='NAME',
                        help=f'corruption names or the groups all / standard / extra (default: all); names: '
                             f'{", ".join(ALL_CORRUPTIONS)}')
    parser.add_argument('--severities', nargs='+', type=int, default=list(SEVERITIES), metavar='S',
                        help='severities 1-5 (default: all)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random corruptions (default 0)')
    parser.add_argument('--format', choices=list(IMAGE_FORMAT_NAMES), default='jpg',
                        help='image format of the corrupted copies (default jpg, quality 85, as ImageNet-C; png: '
                             'lossless)')
    parser.add_argument('--corruption-backend', choices=BACKEND_NAMES, default=default_backend,
                        help=f'torch: batched torch corruptions (CPU or GPU, fast; own random draws); '
                             f'imagecorruptions: the reference functions, one image at a time (default '
                             f'{default_backend}). Their images and scores are not interchangeable.')


def run(args: argparse.Namespace) -> int:
    from fan_stl.robustness.corrupt import corrupt_folder
    try:
        result = corrupt_folder(
            args.src, args.dst, corruptions=expand_corruptions(args.corruptions), severities=args.severities,
            workers=args.workers, seed=args.seed, image_format=args.format, backend=args.corruption_backend,
            device=args.device, batch_size=args.batch_size, layout='tree' if args.tree else 'imagefolder')
    except (ValueError, OSError, ImportError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{result.images} source images: wrote {result.written} corrupted files, {result.skipped} already there '
          f'-> {args.dst}')
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'corrupt', help='make an ImageNet-C style corrupted copy of an ImageFolder or any image tree',
        description='Writes DST/<corruption>/<severity>/<class>/<image> for the 15 standard + 4 extra ImageNet-C '
                    'corruptions, and DST/fan_stl_corruptions.json (seed, format, source fingerprint, versions). '
                    'Deterministic per image and seed; rerunning resumes; another --seed / --format / source into '
                    'the same DST is refused. `eval --corrupt-on-the-fly` makes the same images without the copies. '
                    'Needs the optional extra: pip install -e ".[robustness]" in the fan_stl checkout.')
    parser.add_argument('src', help='ImageFolder to corrupt (<src>/<class>/<image>), or any tree of images with --tree')
    parser.add_argument('dst', help='output folder (ImageNet-C layout)')
    add_corruption_arguments(parser, ['all'])
    parser.add_argument('--tree', action='store_true',
                        help='take every image under SRC at any depth (Cityscapes, COCO, CamVid trees), written to '
                             'DST/<corruption>/<severity>/<relative path>; images keep their size, so dense labels '
                             'of the clean set still fit (use --format png for lossless copies)')
    parser.add_argument('--workers', type=int, default=1, help='parallel processes of the imagecorruptions backend '
                                                               '(default 1)')
    parser.add_argument('--device', help='device of the torch backend (default cpu; e.g. cuda)')
    parser.add_argument('--batch-size', type=int, default=32, help='same-size images per torch batch (default 32)')
    parser.set_defaults(func=run)
