"""The `eval` options of the sets beyond clean / ImageNet-C / -A / -R, and the reports that cover every set.

Standard library only at import (the parser is built for `--help`); the robustness modules load when the command runs.
"""
import argparse
from pathlib import Path
from typing import Any, Dict, List, Optional

SET_OPTIONS = ('corruption_set', 'real', 'imagenet_v2', 'sketch', 'ar_clean', 'cue_conflict', 'occlusion',
               'imagenet_p')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sets = parser.add_argument_group('more sets (see README "How the numbers are computed")')
    sets.add_argument('--corruption-set', action='append', type=Path, metavar='DIR', default=[],
                      help='another corrupted folder in ImageNet-C\'s layout: ImageNet-C-bar or ImageNet-3DCC '
                           '(recognised by its names, reported as its own block); repeatable')
    sets.add_argument('--protocol', choices=('standard', 'robustbench'), default='standard',
                      help='robustbench: score clean and corruption sets on RobustBench\'s fixed 5,000-image subset '
                           'with its preprocessing, and write <label>.model_info.json')
    sets.add_argument('--subset-list', type=Path, metavar='FILE',
                      help='the subset list for --protocol robustbench (default: RobustBench\'s, shipped)')
    sets.add_argument('--allow-missing', action='store_true',
                      help='score the subset images present when the folder lacks some (default: refuse)')
    sets.add_argument('--real', type=Path, metavar='DIR', help='ImageNet val folder scored with the ReaL labels')
    sets.add_argument('--real-labels', type=Path, metavar='FILE', help='real.json (default: the copy timm ships)')
    sets.add_argument('--imagenet-v2', action='append', type=Path, metavar='DIR', default=[],
                      help='an ImageNetV2 folder (imagenetv2-<variant>-format-val); repeatable for the 3 variants')
    sets.add_argument('--sketch', type=Path, metavar='DIR', help='ImageNet-Sketch folder (1000 wnid folders)')
    sets.add_argument('--ar-clean', action='store_true',
                      help='also score --data restricted to the ImageNet-A and -R classes (timm\'s "-clean" rows)')
    sets.add_argument('--cue-conflict', type=Path, metavar='DIR',
                      help='cue-conflict stimuli <category>/<shape><n>-<texture><m>.png: shape bias')
    sets.add_argument('--occlusion', nargs='*', type=float, metavar='RATIO',
                      help='accuracy of --data with this share of 16 px patches dropped (default 0 0.1 ... 0.9)')
    sets.add_argument('--imagenet-p', type=Path, metavar='DIR',
                      help='ImageNet-P frames <perturbation>/<class>/<sequence>/<frame>: flip rate, top-5 distance')


def requested(args: argparse.Namespace) -> bool:
    return any(getattr(args, name) not in (None, False, []) for name in SET_OPTIONS)


def extra_sets(args: argparse.Namespace) -> Optional[Any]:
    """ The `ExtraSets` the options ask for (None when none). """
    from fan_stl.robustness.occlusion import DEFAULT_RATIOS
    from fan_stl.robustness.robustbench import SubsetProtocol
    from fan_stl.robustness.sets import ExtraSets

    if args.protocol == 'standard' and (args.subset_list or args.allow_missing):
        raise ValueError('--subset-list and --allow-missing belong to --protocol robustbench')
    if args.protocol == 'robustbench' and args.corrupt_on_the_fly:
        raise ValueError('--protocol robustbench scores the released ImageNet-C / -3DCC files: give --imagenet-c DIR '
                         '(and --corruption-set DIR), not --corrupt-on-the-fly')
    if args.protocol == 'robustbench' and args.alexnet_normalise:
        raise ValueError('--alexnet-normalise applies AlexNet\'s full ImageNet-C errors, which do not normalise '
                         'RobustBench\'s 5,000-image subset; pass --baseline with AlexNet results on the subset')
    if not requested(args) and args.protocol == 'standard':
        return None
    protocol = SubsetProtocol.from_file(args.subset_list, args.allow_missing) if args.protocol != 'standard' else None
    occlusion = None if args.occlusion is None else (args.occlusion or DEFAULT_RATIOS)
    return ExtraSets(args.corruption_set, protocol, args.real, args.real_labels, args.imagenet_v2, args.sketch,
                     args.ar_clean, args.cue_conflict, occlusion, args.seed, args.imagenet_p)


def corruption_baseline(results: Dict[str, Any], where: str) -> Optional[Any]:
    """ The baseline's corruption errors (`evaluate.baseline_from_results`), or None when it has ImageNet-P numbers
    and no corruption cells (it then normalises mFR / mT5D only). """
    from fan_stl.robustness.evaluate import baseline_from_results
    from fan_stl.robustness.families import FAMILIES

    if results.get('imagenet_p') and not any(results.get(key, {}).get('cells') for key in FAMILIES):
        return None
    return baseline_from_results(results, where)


def write_reports(results: List[Dict[str, Any]], args: argparse.Namespace) -> List[Path]:
    """ The combined markdown table, timm's CSVs, the charts and (RobustBench protocol) model_info JSONs. """
    from fan_stl.robustness.combined import combined_table
    from fan_stl.robustness.imagenet_p import apply_baseline
    from fan_stl.robustness.results_csv import write_timm_csvs
    from fan_stl.robustness.robustbench import model_info, validate_model_info
    from fan_stl.utils.atomic import write_json_atomic, write_text_atomic

    out = Path(args.out)
    if args.baseline is not None:  # the baseline's results come first
        for r in results:
            apply_baseline(r, results[0])
    table = combined_table(results)
    print('\n' + table)
    written = [write_text_atomic(out / 'results.md', table + '\n')] + write_timm_csvs(results, out)
    if args.protocol == 'robustbench':
        for r in results:
            info = model_info(r)
            validate_model_info(info)
            written.append(write_json_atomic(out / f'{r["model"]}.model_info.json', info))
    try:
        from fan_stl.robustness.charts import write_charts
        written += write_charts(results, out)
    except ImportError as e:
        print(f'note: no charts: {e}')
    return written
