"""`python -m fan_stl convert CHECKPOINT --model NAME --out DIR [--push REPO]`: official weights to a Hub repo folder."""
import argparse
import sys

from fan_stl.convert import convert_checkpoint, push_to_hub
from fan_stl.hub import PretrainedWeightsError


def run(args: argparse.Namespace) -> int:
    try:
        result = convert_checkpoint(
            args.checkpoint, args.model, args.out, use_ema=not args.no_ema, repo_id=args.push, img_size=args.img_size)
        print(result.summary())
        if args.push:
            print(f'Pushed to https://huggingface.co/{args.push}: {push_to_hub(args.out, args.push, args.private)}')
    except PretrainedWeightsError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'convert', help='convert an official FAN / STL checkpoint to safetensors + config.json + model card',
        description='Convert an official FAN / STL checkpoint (flat or training dict, no pickled code executed), '
                    'load it strictly, check a forward pass, write model.safetensors, config.json and README.md, '
                    'and optionally push the folder to the Hugging Face Hub.')
    parser.add_argument('checkpoint', help='official .pth / .pth.tar / .safetensors file')
    parser.add_argument('--model', required=True,
                        help='registered architecture, with the tag of the weight, e.g. fan_l_hybrid_stl.in1k')
    parser.add_argument('--out', required=True, help='output folder (created; existing files are overwritten)')
    parser.add_argument('--push', metavar='REPO', help='upload the folder to this Hub repo, e.g. fan-stl/NAME.TAG')
    parser.add_argument('--private', action='store_true', help='create the Hub repo as private')
    parser.add_argument('--no-ema', action='store_true', help='convert the raw weights even when EMA weights exist')
    parser.add_argument('--img-size', type=int, help="input size of the sanity forward (default: the weight's)")
    parser.set_defaults(func=run)
