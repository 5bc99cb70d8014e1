"""`python -m fan_stl publish [--only PATTERN] [--dry-run]`: the authors' weights to `fan-stl/*` Hub repos."""
import argparse
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from fan_stl.weights.files import PretrainedWeightsError
    from fan_stl.weights.publish import check_verify_folder, publish_weight, select_weights

    try:
        check_verify_folder(args.verify_imagenet)  # before any download or conversion
        weights = select_weights(args.only)
        print(f'{"Dry run: " if args.dry_run else ""}{len(weights)} released weight(s) -> {args.work_dir}')
        for weight in weights:
            record = publish_weight(weight, Path(args.work_dir), dry_run=args.dry_run, private=args.private,
                                    verify_imagenet=args.verify_imagenet, limit=args.limit)
            print(record.line(), flush=True)
    except PretrainedWeightsError as e:
        print(f'error: {e.cli_message}', file=sys.stderr)
        return 1
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive integer')
    return int(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'publish', help="(maintainers) convert the authors' released weights and push them to fan-stl/* on the Hub",
        description="For every released weight (or --only a pattern): fetch the original from the authors' source, "
                    'convert it, verify it (strict load, finite forward, bit-identical reload, parameter count), '
                    "write the card with the authors' numbers, licence and the original's sha256, and push exactly "
                    'the files written to fan-stl/<architecture>.<tag>. Repos whose card records the same sha256 '
                    'are skipped, so a rerun resumes. Needs network and a Hub token (hf auth login / HF_TOKEN) with '
                    'write access to the fan-stl organisation.')
    parser.add_argument('--only', metavar='PATTERN', help="glob over architecture.tag, e.g. 'fan_*_hybrid_stl.*'")
    parser.add_argument('--dry-run', action='store_true', help='do everything but the push')
    parser.add_argument('--work-dir', default='fan_stl_publish', help='where the repo folders are written')
    parser.add_argument('--private', action='store_true', help='create the Hub repos as private')
    parser.add_argument('--verify-imagenet', metavar='DIR', type=Path,
                        help="ImageNet val ImageFolder: print each weight's measured top-1 beside the reported one")
    parser.add_argument('--limit', type=_positive, metavar='N',
                        help='with --verify-imagenet: an even subset of N images')
    parser.set_defaults(func=run)
