"""`python -m fan_stl eval`: clean, ImageNet-C, -A and -R accuracy of one or more models, compared in one report."""
import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import timm
import torch

import fan_stl
from fan_stl.robustness.evaluate import AMP_DTYPES, EvalSettings, evaluate_robustness, load_baseline, load_results
from fan_stl.robustness.metrics import ALEXNET
from fan_stl.robustness.report import format_tables, plot_corruption_errors, write_csvs

from .corrupt import expand_corruptions


def create_model(name: str, pretrained: bool, checkpoint: Optional[str], num_classes: Optional[int]) -> torch.nn.Module:
    """ A timm model, optionally with weights from a checkpoint (official FAN/STL files are converted on the fly). """
    kwargs = {} if num_classes is None else {'num_classes': num_classes}
    model = timm.create_model(name, pretrained=pretrained, **kwargs)
    if checkpoint:
        filter_fn = fan_stl.checkpoint_filter_fn if isinstance(model, fan_stl.FAN) else None
        timm.models.load_checkpoint(model, checkpoint, filter_fn=filter_fn)
    return model


def _label(name: str, checkpoint: Optional[str], pretrained: bool) -> str:
    return f'{name}-{Path(checkpoint).stem}' if checkpoint else name + ('' if pretrained else '-random-init')


def _evaluate_all(args: argparse.Namespace) -> List[Dict[str, Any]]:
    checkpoints = args.checkpoint or [None] * len(args.models)
    if len(checkpoints) != len(args.models):
        raise ValueError(f'give one --checkpoint per model ({len(args.models)} models, {len(checkpoints)} checkpoints)')
    settings = EvalSettings(batch_size=args.batch_size, workers=args.workers, amp=args.amp, img_size=args.img_size,
                            **({'device': args.device} if args.device else {}))
    baseline = load_baseline(args.baseline_results) if args.baseline_results else ALEXNET
    results = [load_results(args.baseline_results)] if args.baseline_results else []
    corruptions = expand_corruptions(args.corruptions) if args.corruptions else None
    for name, checkpoint in zip(args.models, checkpoints):
        label = _label(name, checkpoint, args.pretrained)
        print(f'== {label}', file=sys.stderr)
        model = create_model(name, args.pretrained, checkpoint, args.num_classes)
        results.append(evaluate_robustness(
            model, label, Path(args.out) / f'{label}.json', clean=args.data, imagenet_c=args.imagenet_c,
            imagenet_a=args.imagenet_a, imagenet_r=args.imagenet_r, baseline=baseline, settings=settings,
            corruptions=corruptions,
            source={'pretrained': args.pretrained,
                    'checkpoint': str(Path(checkpoint).resolve()) if checkpoint else None}))
    return results


def run(args: argparse.Namespace) -> int:
    if not any((args.data, args.imagenet_c, args.imagenet_a, args.imagenet_r)):
        print('error: nothing to evaluate: give --data and/or --imagenet-c / --imagenet-a / --imagenet-r',
              file=sys.stderr)
        return 2
    try:
        results = _evaluate_all(args)
    except (ValueError, OSError, RuntimeError, ImportError) as e:  # bad folders, heads, checkpoints, model names
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(format_tables(results))
    out = Path(args.out)
    written = write_csvs(results, out)
    if any(r.get('imagenet_c', {}).get('summary', {}).get('corruption_errors') for r in results):
        try:
            written.append(plot_corruption_errors({r['model']: r for r in results}, out / 'corruption_errors.png'))
        except ImportError as e:
            print(f'note: no chart: {e}', file=sys.stderr)
    print('\nwrote ' + ', '.join(str(p) for p in [out / f'{r["model"]}.json' for r in results] + written))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'eval', help='clean / ImageNet-C / -A / -R evaluation with mCE, tables, CSV and a chart',
        description='Evaluates each MODEL and prints one comparison table. Results are kept in OUT/<model>.json and '
                    'a rerun resumes (finished cells are not recomputed). mCE is normalised by AlexNet unless '
                    '--baseline-results names another model\'s results file.')
    parser.add_argument('models', nargs='+', metavar='MODEL', help='timm model name(s), e.g. fan_small_12_p4_hybrid')
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument('--pretrained', action='store_true', help='load the default pretrained weights')
    weights.add_argument('--checkpoint', action='append', metavar='PATH',
                         help='weights file; repeat once per MODEL, in the same order')
    parser.add_argument('--num-classes', type=int, help='classifier size, if not the model default (e.g. 10)')
    parser.add_argument('--data', type=Path, help='clean ImageFolder (e.g. ImageNet val)')
    parser.add_argument('--imagenet-c', type=Path, metavar='DIR', help='<DIR>/<corruption>/<1-5>/<class>/<image>')
    parser.add_argument('--imagenet-a', type=Path, metavar='DIR', help='ImageNet-A folder (200 wnid class folders)')
    parser.add_argument('--imagenet-r', type=Path, metavar='DIR', help='ImageNet-R folder (200 wnid class folders)')
    parser.add_argument('--corruptions', nargs='+', metavar='NAME',
                        help='evaluate only these corruptions (names or all / standard / extra; default: all found)')
    parser.add_argument('--baseline-results', type=Path, metavar='FILE',
                        help='results JSON of a baseline model: mCE relative to it instead of AlexNet')
    parser.add_argument('--out', type=Path, required=True, help='output folder for JSON, CSV and PNG files')
    parser.add_argument('--img-size', type=int, help='square input size (default: the model\'s own)')
    parser.add_argument('--batch-size', type=int, default=64, help='default 64')
    parser.add_argument('--workers', type=int, default=2, help='data-loading processes (default 2)')
    parser.add_argument('--device', help='default: cuda when available, else cpu')
    parser.add_argument('--amp', choices=list(AMP_DTYPES), help='autocast dtype (fp16 needs CUDA)')
    parser.set_defaults(func=run)
