"""`python -m fan_stl list`: the registered FAN models with parameters, GMACs, token head and pretrained tags, with
where each tag's weights can be had now (cached here, or which download it needs), one row at a time. No network
request is made: the caches are looked up on this machine."""
import argparse
import fnmatch
import sys
from typing import Iterable

from ._args import image_size

HEADER = f"{'model':<28} {'params (M)':>10} {'GMACs':>7}  {'token head':<10} pretrained tags (where they are now)"
FOOTER = ('* default tag (pretrained=True without a tag). cached: loads with no request.\n'
          "needs network: the Hub copy once published, else the authors' file. "
          'Offline (HF_HUB_OFFLINE=1 / FAN_STL_OFFLINE=1): cached copies only.')


def model_summary(name: str, img_size: int = 224) -> dict:
    """ Parameters, GMACs at `img_size` and token-head flag of a registered model, computed on the meta device. """
    import timm
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fan_stl.weights.sources import weight_availability  # registers the models and their weights

    model = timm.create_model(name, device='meta').eval()
    tags = [n.split('.', 1)[1] for n in timm.list_pretrained(name + '.*')]
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, model.in_chans, img_size, img_size, device='meta'))
    return {
        'model': name,
        'params_m': sum(p.numel() for p in model.parameters()) / 1e6,
        'gmacs': counter.get_total_flops() / 2e9,
        'token_head': getattr(model, 'aux_head', None) is not None,
        'pretrained_tags': [tag + ('*' if tag == model.pretrained_cfg.get('tag') else '') for tag in tags],
        'availability': [weight_availability(f'{name}.{tag}') for tag in tags],
    }


def format_row(r: dict) -> str:
    return (f"{r['model']:<28} {r['params_m']:>10.2f} {r['gmacs']:>7.2f}  {'yes' if r['token_head'] else 'no':<10} "
            f"{', '.join(f'{t} ({a})' for t, a in zip(r['pretrained_tags'], r['availability'])) or '-'}")


def format_table(rows: Iterable[dict]) -> str:
    lines = [HEADER, '-' * len(HEADER), *(format_row(r) for r in rows), FOOTER]
    return '\n'.join(lines)


def run(args: argparse.Namespace) -> int:
    import timm

    import fan_stl.weights  # noqa: F401  (registers the models and their weights)

    names = [n for n in timm.list_models('fan*') if fnmatch.fnmatch(n, args.filter)]
    if not names:
        print(f'No FAN model matches {args.filter!r}; try `python -m fan_stl list` without a filter.', file=sys.stderr)
        return 1
    print(HEADER, '-' * len(HEADER), sep='\n', flush=True)
    for name in names:  # each row costs a meta-device forward: print it as soon as it is known
        print(format_row(model_summary(name, args.img_size)), flush=True)
    print(FOOTER)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'list', help='list FAN models (params, GMACs, token head, weights)',
        description='Lists the registered FAN / STL models with their parameters, GMACs at --img-size, token head and '
                    'pretrained tags with where each can be had now (cached here, or which download it needs; no '
                    'network request is made), one row as soon as it is computed.')
    parser.add_argument('filter', nargs='?', default='*', help="fnmatch pattern, e.g. 'fan_*_stl' (default: all)")
    parser.add_argument('--img-size', type=image_size, default=224,
                        help='input size for the GMACs column, a multiple of 16 (default 224)')
    parser.set_defaults(func=run)
