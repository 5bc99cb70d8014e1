"""`python -m fan_stl eval`: clean, corruption (ImageNet-C or on the fly), -A and -R accuracy of one or more models,
compared in one report.

Only argparse and the stdlib load at import (so `--help` is quick); torch, timm and the evaluator load when the
command runs.
"""
import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..utils.amp import AMP_NAMES
from . import _evalsets
from .corrupt import add_corruption_arguments, expand_corruptions


def create_model(name: str, pretrained: bool, checkpoint: Optional[str], num_classes: Optional[int]) -> Any:
    """ A timm model, optionally with weights from a checkpoint (official FAN/STL files are converted on the fly). """
    import timm

    from fan_stl.weights import create_pretrained, load_checkpoint

    kwargs = {} if num_classes is None else {'num_classes': num_classes}
    try:
        model = create_pretrained(name, **kwargs) if pretrained else timm.create_model(name, **kwargs)
    except (RuntimeError, OSError) as e:  # timm / Hub / fan_stl.weights errors for weights that cannot be had
        if not pretrained or getattr(e, 'cli_message', str(e)) != str(e):
            raise  # fan_stl's message already names the CLI's flags (printed from `cli_message`)
        raise RuntimeError(f'{e} From the command line: download the weights file and pass it with '
                           f'`--checkpoint PATH` instead of --pretrained.') from None
    if checkpoint:  # the checks and messages of `pretrained_cfg_overlay=dict(file=...)`, for any timm model
        load_checkpoint(model, checkpoint)
    return model


WEIGHT_SUFFIXES = ('.tar', '.pth', '.pt', '.bin', '.ckpt', '.safetensors')


def _safe(text: str) -> str:
    return re.sub(r'[^A-Za-z0-9._-]+', '-', text).strip('-.') or 'model'


def _stem(checkpoint: str) -> str:
    """ `runs/x/model_best.pth.tar` -> `model_best`. """
    name = Path(checkpoint).name
    while Path(name).suffix in WEIGHT_SUFFIXES and Path(name).stem:
        name = Path(name).stem
    return _safe(name)


def model_label(name: str, checkpoint: Optional[str], pretrained: bool) -> str:
    """ A file-name-safe label: `local-dir:/a/b` -> `local-dir-b`, `hf-hub:org/repo` -> `hf-hub-org-repo`. """
    scheme, sep, rest = name.partition(':')
    base = _safe(f'{scheme}-{Path(rest.rstrip("/")).name}' if sep and scheme == 'local-dir' else name)
    if checkpoint:
        return f'{base}-{_stem(checkpoint)}'
    return base if pretrained or sep else f'{base}-random-init'


def unique_labels(names: Sequence[str], checkpoints: Sequence[Optional[str]], pretrained: bool) -> List[str]:
    """ One label per model; same-named checkpoints are told apart by their folder, then by a counter. """
    plain = [model_label(n, c, pretrained) for n, c in zip(names, checkpoints)]
    labels = [model_label(n, None, True) + f'-{_safe(Path(c).resolve().parent.name)}-{_stem(c)}'
              if c and plain.count(label) > 1 else label for n, c, label in zip(names, checkpoints, plain)]
    for i, label in enumerate(labels):
        if labels[:i].count(label):
            labels[i] = f'{label}-{labels[:i].count(label) + 1}'
    return labels


def check_out_folder(out: Path) -> None:
    """ Fail before any work when `--out` cannot be created or written. """
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix='.fan_stl-write-check-')
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OSError(f'cannot write results to --out {out} ({e.strerror or e}); choose a writable folder') from None


def _order_and_baseline(args: argparse.Namespace, labels: List[str]) -> Optional[int]:
    """ Index of the model named by `--baseline` among this command's models (None: a file, or no baseline). """
    if args.baseline is None or Path(args.baseline).is_file():
        return None
    matches = [i for i, (label, name) in enumerate(zip(labels, args.models)) if args.baseline in (label, name)]
    if len(matches) != 1:
        raise ValueError(
            f'--baseline {args.baseline} is neither a results file nor {"exactly one" if matches else "one"} of this '
            f'command\'s models (labels: {", ".join(labels)}); name a label or a results JSON file')
    return matches[0]


def _evaluate_all(args: argparse.Namespace) -> List[Dict[str, Any]]:
    from fan_stl.robustness.evaluate import (
        EvalSettings, OnTheFlySpec, evaluate_robustness, load_results, summarize_results)
    from fan_stl.robustness.metrics import ALEXNET
    from fan_stl.utils.atomic import write_json_atomic

    checkpoints = args.checkpoint or [None] * len(args.models)
    if len(checkpoints) != len(args.models):
        raise ValueError(f'give one --checkpoint per model ({len(args.models)} models, {len(checkpoints)} checkpoints)')
    settings = EvalSettings(batch_size=args.batch_size, workers=args.workers, amp=args.amp, img_size=args.img_size,
                            strict=args.strict, **({'device': args.device} if args.device else {}))
    corruptions = expand_corruptions(args.corruptions) if args.corruptions else None
    on_the_fly = None
    if args.corrupt_on_the_fly:
        on_the_fly = OnTheFlySpec(corruptions or expand_corruptions(['all']), args.severities, args.seed, args.format,
                                  args.corruption_backend)
    extra = _evalsets.extra_sets(args)
    if extra is not None:
        extra.check(args.data, args.imagenet_c)  # every folder, label file and subset list before any model
    labels = unique_labels(args.models, checkpoints, args.pretrained)
    baseline_index = _order_and_baseline(args, labels)
    results: List[Dict[str, Any]] = []
    baseline = ALEXNET if args.alexnet_normalise else None
    if args.baseline is not None and baseline_index is None:
        stored = load_results(Path(args.baseline))
        baseline = _evalsets.corruption_baseline(stored, str(args.baseline))
        results.append(summarize_results(stored, baseline))
    order = sorted(range(len(labels)), key=lambda i: i != baseline_index)  # the baseline model first
    for i in order:
        label, path = labels[i], Path(args.out) / f'{labels[i]}.json'
        print(f'== {label}', file=sys.stderr)
        model = create_model(args.models[i], args.pretrained, checkpoints[i], args.num_classes)
        evaluated = evaluate_robustness(
            model, label, path, clean=args.data, imagenet_c=args.imagenet_c, imagenet_a=args.imagenet_a,
            imagenet_r=args.imagenet_r, baseline=baseline, settings=settings, corruptions=corruptions,
            on_the_fly=on_the_fly, overwrite=args.overwrite, extra=extra,
            source={'model': args.models[i], 'pretrained': args.pretrained, 'num_classes': args.num_classes,
                    'checkpoint': str(Path(checkpoints[i]).resolve()) if checkpoints[i] else None})
        if i == baseline_index:
            baseline = _evalsets.corruption_baseline(evaluated, f'the results of {label}')
            write_json_atomic(path, summarize_results(evaluated, baseline))
        results.append(evaluated)
    return results


def run(args: argparse.Namespace) -> int:
    problem = None
    if not any((args.data, args.imagenet_c, args.imagenet_a, args.imagenet_r)) and not _evalsets.requested(args):
        problem = 'nothing to evaluate: give --data and/or --imagenet-c / --imagenet-a / --imagenet-r'
    elif args.corrupt_on_the_fly and (args.data is None or args.imagenet_c is not None):
        problem = '--corrupt-on-the-fly corrupts the --data folder in the loader: give --data and no --imagenet-c'
    elif args.alexnet_normalise and args.baseline:
        problem = 'choose one mCE normaliser: --alexnet-normalise or --baseline'
    elif (args.baseline or args.alexnet_normalise) and not (args.imagenet_c or args.corrupt_on_the_fly
                                                            or args.corruption_set or args.imagenet_p):
        problem = 'an mCE normaliser needs corruptions: add --imagenet-c DIR or --corrupt-on-the-fly'
    if problem:
        print(f'error: {problem}', file=sys.stderr)
        return 2
    try:
        check_out_folder(Path(args.out))
        results = _evaluate_all(args)
    except (ValueError, OSError, RuntimeError, ImportError) as e:  # bad folders, heads, checkpoints, model names
        print(f'error: {getattr(e, "cli_message", None) or str(e) or type(e).__name__}', file=sys.stderr)
        return 1
    from fan_stl.robustness.report import format_tables, plot_corruption_errors, write_csvs
    print(format_tables(results))
    out = Path(args.out)
    written = write_csvs(results, out) + _evalsets.write_reports(results, args)
    if any(r.get('imagenet_c', {}).get('cells') for r in results):
        try:
            written.append(plot_corruption_errors({r['model']: r for r in results}, out / 'corruption_errors.png'))
        except ImportError as e:
            print(f'note: no chart: {e}', file=sys.stderr)
    print('\nwrote ' + ', '.join(str(p) for p in [out / f'{r["model"]}.json' for r in results] + written))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'eval', help='clean / ImageNet-C / -A / -R evaluation with mCE, tables, CSV and a chart',
        description='Evaluates each MODEL and prints one comparison table. Results are kept in OUT/<label>.json with '
                    'what they measured (weights sha256, model, transform, data file lists); a rerun resumes, and '
                    'results of another model or other data are refused. mCE is normalised by AlexNet only on '
                    'recognisable ImageNet-C (or with --alexnet-normalise); on other corrupted data give --baseline.')
    parser.add_argument('models', nargs='+', metavar='MODEL',
                        help='timm model name(s), e.g. fan_small_12_p4_hybrid, local-dir:DIR, hf-hub:ORG/REPO')
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument('--pretrained', action='store_true', help='load the default pretrained weights')
    weights.add_argument('--checkpoint', action='append', metavar='PATH',
                         help='weights file; repeat once per MODEL, in the same order')
    parser.add_argument('--num-classes', type=int, help='classifier size, if not the model default (e.g. 10)')
    parser.add_argument('--data', type=Path, help='clean ImageFolder (e.g. ImageNet val)')
    parser.add_argument('--imagenet-c', type=Path, metavar='DIR', help='<DIR>/<corruption>/<1-5>/<class>/<image>')
    parser.add_argument('--corrupt-on-the-fly', action='store_true',
                        help='corrupt the --data images during the evaluation, no copies on disk: with the default '
                             '--corruption-backend torch in batches on --device at the model\'s input size; with '
                             'imagecorruptions in the loader, the same images as `corrupt` with --seed / --format '
                             'would write')
    parser.add_argument('--imagenet-a', type=Path, metavar='DIR', help='ImageNet-A folder (200 wnid class folders)')
    parser.add_argument('--imagenet-r', type=Path, metavar='DIR', help='ImageNet-R folder (200 wnid class folders)')
    add_corruption_arguments(parser, None, default_backend='torch')
    _evalsets.add_arguments(parser)
    parser.add_argument('--baseline', metavar='LABEL|FILE',
                        help='mCE relative to this model (= 100): one of this command\'s models (its MODEL name or '
                             'result label) or a results JSON file of an earlier run on the same images')
    parser.add_argument('--alexnet-normalise', action='store_true',
                        help='normalise mCE by AlexNet\'s ImageNet-C errors even if the folder is not recognisably '
                             'ImageNet-C (only comparable with published numbers on ImageNet-C itself)')
    parser.add_argument('--out', type=Path, required=True, help='output folder for JSON, CSV and PNG files')
    parser.add_argument('--overwrite', action='store_true',
                        help='discard stored results in --out that belong to another model or other data')
    parser.add_argument('--strict', action='store_true', help='stop at the first unreadable image (default: count '
                                                              'and report unreadable images, score the rest)')
    parser.add_argument('--img-size', type=int, help='square input size (default: the model\'s own)')
    parser.add_argument('--batch-size', type=int, default=64, help='default 64')
    parser.add_argument('--workers', type=int, default=2, help='data-loading processes (default 2)')
    parser.add_argument('--device', help='default: cuda when available, else cpu')
    parser.add_argument('--amp', choices=list(AMP_NAMES), help='autocast dtype (float16 / fp16 needs CUDA)')
    parser.set_defaults(func=run)
