"""Present results files: terminal tables, CSV files and a per-corruption bar chart (matplotlib, optional extra).

mCE values normalised by different references (AlexNet on ImageNet-C, or a baseline model) never share a column:
each normaliser gets its own `mCE vs <name>` / `rel. mCE vs <name>` pair. Per-corruption errors are shown for any
set of cells present (with the severities they average when not all five); mCE only for complete sets.
"""
import csv
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..utils.atomic import atomic_path
from ..utils.extras import install_hint
from .metrics import ALL_CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES

HEADERS = {
    # summary-row key -> table header
    'model': 'model',
    'clean_images': 'images',
    'clean_top1': 'clean top-1',
    'clean_top5': 'clean top-5',
    'mean_corruption_accuracy': 'C-acc (15)',
    'extra_mean_corruption_accuracy': 'extra acc (4)',
    'imagenet_a_top1': 'IN-A top-1',
    'imagenet_r_top1': 'IN-R top-1',
}
ALL_FIVE = list(SEVERITIES)


def _summary(results: Mapping[str, Any]) -> Mapping[str, Any]:
    return results.get('imagenet_c', {}).get('summary', {})


def summary_row(results: Mapping[str, Any]) -> Dict[str, Any]:
    """ One flat row of headline numbers (None where not evaluated) from a results dict; mCE keys name the
    normaliser (`mce_vs_AlexNet`, `relative_mce_vs_<baseline model>`). """
    summary = _summary(results)
    row = {
        'model': results['model'],
        'clean_images': results.get('clean', {}).get('num_images'),
        'clean_top1': results.get('clean', {}).get('top1'),
        'clean_top5': results.get('clean', {}).get('top5'),
        'mean_corruption_accuracy': summary.get('mean_corruption_accuracy'),
        'extra_mean_corruption_accuracy': summary.get('extra_mean_corruption_accuracy'),
        'imagenet_a_top1': results.get('imagenet_a', {}).get('top1'),
        'imagenet_r_top1': results.get('imagenet_r', {}).get('top1'),
    }
    if summary.get('baseline'):
        row[f'mce_vs_{summary["baseline"]}'] = summary.get('mce')
        row[f'relative_mce_vs_{summary["baseline"]}'] = summary.get('relative_mce')
    return row


def _columns(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    """ Fixed columns with one mCE pair per normaliser (in order of appearance) after the clean ones. """
    normalised = list(dict.fromkeys(k for r in rows for k in r if k.startswith(('mce_vs_', 'relative_mce_vs_'))))
    fixed = list(HEADERS)
    return fixed[:4] + normalised + fixed[4:]


def _header(key: str) -> str:
    if key.startswith('mce_vs_'):
        return 'mCE vs ' + key[len('mce_vs_'):]
    if key.startswith('relative_mce_vs_'):
        return 'rel. mCE vs ' + key[len('relative_mce_vs_'):]
    return HEADERS[key]


def _cell(value: Any) -> str:
    if value is None:
        return '-'
    return f'{value:.2f}' if isinstance(value, float) else str(value)


def _format_rows(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    texts = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in texts)) for i, h in enumerate(header)]

    def line(values: Sequence[str]) -> str:  # first column left-aligned, numbers right-aligned
        return '  '.join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))
    return [line(header), '-' * len(line(header))] + [line(r) for r in texts]


def _severities(summary: Mapping[str, Any], corruption: str) -> List[int]:
    """ Severities averaged in `summary`'s error of `corruption` (files of fan_stl 0.1.0 held complete ones only). """
    return summary.get('severities', {}).get(corruption, ALL_FIVE)


def _shared_severities(summaries: Sequence[Mapping[str, Any]], corruptions: Sequence[str]) -> Dict[str, List[int]]:
    """ Per corruption, the severities of the first model that has it (the row label's). """
    return {c: next(_severities(s, c) for s in summaries if c in s.get('corruption_errors', {})) for c in corruptions}


def corruption_label(corruption: str, severities: Sequence[int]) -> str:
    """ `fog`, `saturate*` (extra corruption) or `fog [sev 2,3]` when not all five severities are averaged. """
    label = corruption + ('*' if corruption in EXTRA_CORRUPTIONS else '')
    return label if list(severities) == ALL_FIVE else f'{label} [sev {",".join(map(str, severities))}]'


def _normalisation_note(rows: Sequence[Mapping[str, Any]], corrupted: bool, notes: bool) -> str:
    """ What the mCE columns are normalised by, or why there is none (`corrupted`: any corruption was evaluated;
    `notes`: notes follow the tables). """
    names = [k[len('mce_vs_'):] for k in _columns(rows) if k.startswith('mce_vs_')]
    if not corrupted:
        return 'no mCE: no corrupted images were evaluated (add --imagenet-c DIR or --corrupt-on-the-fly).'
    if not names:
        return 'no mCE column: no normaliser applies' + (' (see the notes below).' if notes else
                                                          ' (pass --baseline MODEL or --alexnet-normalise).')
    parts = [('AlexNet\'s published ImageNet-C errors (comparable with papers only on ImageNet-C itself)'
              if n == 'AlexNet' else f'the corruption errors of {n}, evaluated on the same images (= 100)')
             for n in names]
    return 'mCE vs X: 15 standard corruptions normalised by ' + '; '.join(parts) + '; lower is better.'


def _unreadable_notes(results: Mapping[str, Any]) -> List[str]:
    notes = []
    sections = [(k, results[k]) for k in ('clean', 'imagenet_a', 'imagenet_r') if k in results]
    sections += [(f'{c}/{s}', cell) for c, by_s in results.get('imagenet_c', {}).get('cells', {}).items()
                 for s, cell in by_s.items()]
    for where, section in sections:
        if section.get('unreadable'):
            notes.append(f'{where}: {section["unreadable"]} unreadable image(s) left out, {section["num_images"]} '
                         f'scored (e.g. {section["unreadable_files"][0]})')
    return notes


def format_tables(results_list: Sequence[Mapping[str, Any]]) -> str:
    """ A headline table (one row per model) and, when corruptions were run, corruption errors per model. """
    rows = [summary_row(r) for r in results_list]
    columns = _columns(rows)
    lines = _format_rows([_header(k) for k in columns], [[r.get(k) for k in columns] for r in rows])
    summaries = [_summary(r) for r in results_list]
    errors = [s.get('corruption_errors', {}) for s in summaries]
    corruptions = [c for c in ALL_CORRUPTIONS if any(c in e for e in errors)]
    notes = [f'{r["model"]}: {n}' for r, s in zip(results_list, summaries) for n in s.get('notes', [])]
    notes += [f'{r["model"]}: {n}' for r in results_list for n in _unreadable_notes(r)]
    lines += ['', 'accuracies and errors in %; images: clean images scored. ' +
              _normalisation_note(rows, bool(corruptions), bool(notes))]
    if corruptions:
        lines += ['C-acc (15): mean top-1 accuracy over the 15 standard corruptions x 5 severities (higher is better; '
                  'the FAN/STL READMEs\' "IN-C" is a mean accuracy of unstated scope, so not necessarily this '
                  'number); extra: the 4 held-out corruptions, never in mCE.']
        severities = _shared_severities(summaries, corruptions)
        lines += ['', 'top-1 error per corruption, mean over the severities (* = extra corruption):']
        table = []
        for c in corruptions:
            values = []
            for s in summaries:
                value = s.get('corruption_errors', {}).get(c)
                own = _severities(s, c)
                values.append(value if value is None or own == severities[c]
                              else f'{value:.2f} [sev {",".join(map(str, own))}]')
            table.append([corruption_label(c, severities[c])] + values)
        lines += _format_rows(['corruption'] + [r['model'] for r in rows], table)
    return '\n'.join(lines + ([''] + notes if notes else []))


def write_csvs(results_list: Sequence[Mapping[str, Any]], out_dir: Path) -> List[Path]:
    """ `summary.csv` (one row per model) and `cells.csv` (one row per model x benchmark x cell) in `out_dir`,
    each written atomically. """
    out_dir = Path(out_dir)
    summary_path, cells_path = out_dir / 'summary.csv', out_dir / 'cells.csv'
    rows = [summary_row(r) for r in results_list]
    with atomic_path(summary_path) as tmp, open(tmp, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=_columns(rows))
        writer.writeheader()
        writer.writerows(rows)
    with atomic_path(cells_path) as tmp, open(tmp, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['model', 'benchmark', 'corruption', 'severity', 'top1', 'top5', 'top1_error', 'num_images',
                         'unreadable'])
        for r in results_list:
            for key in ('clean', 'imagenet_a', 'imagenet_r'):
                if key in r:
                    writer.writerow([r['model'], key, '', '', r[key]['top1'], r[key]['top5'], 100 - r[key]['top1'],
                                     r[key]['num_images'], r[key].get('unreadable', '')])
            for corruption, severities in r.get('imagenet_c', {}).get('cells', {}).items():
                for severity, cell in sorted(severities.items()):
                    writer.writerow([r['model'], 'imagenet_c', corruption, severity, cell['top1'], cell['top5'],
                                     100 - cell['top1'], cell['num_images'], cell.get('unreadable', '')])
    return [summary_path, cells_path]


def _legend_label(model: str, summary: Mapping[str, Any]) -> str:
    if summary.get('mce') is None:
        return model
    return f'{model} (mCE {summary["mce"]:.1f} vs {summary["baseline"]})'


def plot_corruption_errors(
        results_by_model: Mapping[str, Mapping[str, Any]],
        path: Path,
        title: Optional[str] = None,
) -> Path:
    """ Grouped bar chart of per-corruption top-1 error (mean over the severities present) for each model, with each
    model's mCE and its normaliser in the legend; writes a PNG to `path`. """
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            f'the corruption chart needs matplotlib: {install_hint("robustness")}') from None
    summaries = {model: _summary(r) for model, r in results_by_model.items()}
    errors = {model: s.get('corruption_errors', {}) for model, s in summaries.items()}
    corruptions = [c for c in ALL_CORRUPTIONS if any(c in e for e in errors.values())]
    if not corruptions:
        raise ValueError('no model has a corruption cell to plot; evaluate ImageNet-C or corruptions on the fly first')
    severities = _shared_severities(list(summaries.values()), corruptions)
    width = 0.8 / len(errors)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.6 * len(corruptions) * max(1, len(errors) / 2)), 4.5))
    for i, (model, model_errors) in enumerate(errors.items()):
        xs = [j + (i - (len(errors) - 1) / 2) * width for j in range(len(corruptions))]
        ax.bar(xs, [model_errors.get(c, float('nan')) for c in corruptions], width,
               label=_legend_label(model, summaries[model]))
    ax.set_xticks(range(len(corruptions)))
    ax.set_xticklabels([corruption_label(c, severities[c]) for c in corruptions], rotation=45, ha='right')
    ax.set_ylabel('top-1 error (%), mean over severities')
    ax.set_title(title or 'Corruption error per corruption (* = extra, not in mCE)')
    top = max((e for model_errors in errors.values() for e in model_errors.values()), default=100.0)
    ax.set_ylim(0, 1.05 * top)
    # beside the axes, one model per line: inside them, long labels ran over the bars and the y-axis label
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1), borderaxespad=0, fontsize='small')
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: Any, path: Path, dpi: int = 120) -> Path:
    """ Write a matplotlib figure to `path` (PNG) atomically, then close it. """
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format='png', bbox_inches='tight')  # all of it: legends beside the axes too
    finally:
        plt.close(fig)
    return Path(path)
