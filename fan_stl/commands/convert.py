"""`python -m fan_stl convert CHECKPOINT --model NAME --out DIR [--push REPO]`: a checkpoint to a Hub repo folder."""
import argparse
import sys

from ._args import image_size, positive_int


def run(args: argparse.Namespace) -> int:
    from fan_stl.weights.convert import convert_checkpoint, push_to_hub
    from fan_stl.weights.files import PretrainedWeightsError

    try:
        result = convert_checkpoint(
            args.checkpoint, args.model, args.out, use_ema=not args.no_ema, repo_id=args.push,
            img_size=args.img_size, num_classes=args.num_classes, released_tag=args.released,
            overwrite=args.overwrite)
        print(result.summary())
        if args.push:
            commit = push_to_hub(args.out, args.push, args.private, files=result.files)
            print(f'Pushed {", ".join(result.files)} to https://huggingface.co/{args.push}: {commit}')
    except PretrainedWeightsError as e:
        print(f'error: {e.cli_message}', file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'convert', help='convert a FAN / STL checkpoint to safetensors + config.json + model card',
        description='Convert a FAN / STL checkpoint (official or fine-tuned, flat or training dict; no pickled code '
                    'executed), load it strictly, check a forward pass, write model.safetensors, config.json and '
                    "README.md, and optionally push exactly those files to the Hugging Face Hub. The card names the "
                    "authors' weights, licence and numbers only for a released file (sha256 verified); any other "
                    'checkpoint gets a neutral card.')
    parser.add_argument('checkpoint', help='.pth / .pth.tar / .safetensors file')
    parser.add_argument('--model', required=True,
                        help='registered architecture, e.g. fan_l_hybrid_stl (a release tag, if given, must be one '
                             'of its own, e.g. fan_l_hybrid_stl.in1k)')
    parser.add_argument('--out', required=True,
                        help='output folder: new or empty (see --overwrite)')
    parser.add_argument('--overwrite', action='store_true',
                        help='write into an --out folder that already holds files (replaces the weight files)')
    parser.add_argument('--num-classes', type=positive_int, metavar='N',
                        help='classes of a fine-tuned checkpoint (default: 1000)')
    parser.add_argument('--img-size', type=image_size, metavar='PX',
                        help='input size the weights were trained at: config.json and the sanity forward '
                             "(default: the architecture's, 224)")
    parser.add_argument('--released', metavar='TAG',
                        help="assert the file is the authors' release TAG (e.g. in1k); verified by sha256")
    parser.add_argument('--push', metavar='REPO', help='upload the written files to this Hub repo')
    parser.add_argument('--private', action='store_true', help='create the Hub repo as private')
    parser.add_argument('--no-ema', action='store_true', help='convert the raw weights even when EMA weights exist')
    parser.set_defaults(func=run)
