"""`python -m fan_stl label DATA --teacher SPEC --out MAPS/`: a teacher's dense top-k label maps for a training set,
computed once (resumable; under torchrun each rank labels its own shards).

Only argparse loads at import; the labelling run (`fan_stl.training.labeling`) loads when the command runs.
"""
import argparse
import sys

from ._args import positive_int


def run(args: argparse.Namespace) -> int:
    from fan_stl.stl.map_store import MapsError
    from fan_stl.training.labeling import LabelConfig, label_dataset
    config = LabelConfig(
        data_dir=args.data, teacher=args.teacher, out=args.out, teacher_model=args.teacher_model, split=args.split,
        num_classes=args.num_classes, img_size=args.img_size, grid=args.grid, topk=args.topk,
        interpolation=args.interpolation, batch_size=args.batch_size, shard_size=args.shard_size,
        workers=args.workers, device=args.device, progress=not args.no_progress)
    try:
        result = label_dataset(config)
    except (ValueError, MapsError, OSError, RuntimeError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if result.index:
        settings = result.index['settings']
        size = sum(s['bytes'] for s in result.index['shards'])
        print(f'{result.index["num_images"]} images: top-{settings["topk"]} maps on a {settings["grid"][0]}x'
              f'{settings["grid"][1]} grid, {size / result.index["num_images"] / 1024:.1f} KiB per image; '
              f'{len(result.written)} shard(s) written, {len(result.skipped)} already there -> {args.out}')
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'label', help='store a teacher\'s dense top-k token label maps for a training set (train with '
                      '--label-source maps)',
        description='Runs the teacher once over every training image (resized whole) and writes its top-k score '
                    'map per image (int16 classes, fp16 log-probabilities) in safetensors shards, with index.json '
                    '(dataset fingerprint, teacher sha256, settings, versions). Rerunning resumes; another '
                    'teacher or setting into the same --out is refused. Under torchrun each rank labels its own '
                    'shards. Train with: --stage stl --label-source maps --label-maps OUT.')
    parser.add_argument('data', help='dataset folder (with a train/ split of class folders, or the class folders)')
    parser.add_argument('--teacher', required=True, metavar='SPEC',
                        help='a FAN token labeler checkpoint (with --teacher-model fan_t_hybrid_tl), a timm '
                             'classifier name with a pretrained tag, "pretrained" with --teacher-model, or a '
                             'classifier checkpoint with --teacher-model (as --label-source annotator)')
    parser.add_argument('--teacher-model', default=None, help='architecture of a checkpoint teacher')
    parser.add_argument('--out', required=True, help='maps folder to write')
    parser.add_argument('--split', default='train', help='split folder to label (default train)')
    parser.add_argument('--num-classes', type=positive_int, default=None,
                        help='classes (default: the class folders); the teacher must predict them')
    parser.add_argument('--img-size', type=positive_int, default=None,
                        help='side the whole image is resized to (default: the teacher\'s input size)')
    parser.add_argument('--grid', type=positive_int, default=None,
                        help='store the map at grid x grid (default: the teacher\'s own score-map resolution)')
    parser.add_argument('--topk', type=positive_int, default=5, help='classes kept per cell (default 5)')
    parser.add_argument('--interpolation', default=None, choices=('bilinear', 'bicubic', 'nearest'),
                        help='resize interpolation (default: the teacher\'s)')
    parser.add_argument('-b', '--batch-size', type=positive_int, default=32)
    parser.add_argument('--shard-size', type=positive_int, default=1024, help='images per shard (default 1024)')
    parser.add_argument('--workers', type=int, default=2, help='data loading processes (default 2)')
    parser.add_argument('--device', default=None, help='default: cuda when available, else cpu')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.set_defaults(func=run)
