"""Present results files: terminal tables, CSV files and a per-corruption bar chart (matplotlib, optional extra)."""
import csv
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..extras import install_hint
from .metrics import ALL_CORRUPTIONS, EXTRA_CORRUPTIONS

SUMMARY_COLUMNS = (
    # (CSV / dict key, table header)
    ('model', 'model'),
    ('clean_top1', 'clean top-1'),
    ('clean_top5', 'clean top-5'),
    ('mce', 'mCE'),
    ('relative_mce', 'rel. mCE'),
    ('mean_corruption_accuracy', 'IN-C acc (15)'),
    ('extra_mean_corruption_accuracy', 'extra acc (4)'),
    ('imagenet_a_top1', 'IN-A top-1'),
    ('imagenet_r_top1', 'IN-R top-1'),
)


def summary_row(results: Mapping[str, Any]) -> Dict[str, Any]:
    """ One flat row of headline numbers (None where not evaluated) from a results dict. """
    summary = results.get('imagenet_c', {}).get('summary', {})
    return {
        'model': results['model'],
        'clean_top1': results.get('clean', {}).get('top1'),
        'clean_top5': results.get('clean', {}).get('top5'),
        'mce': summary.get('mce'),
        'relative_mce': summary.get('relative_mce'),
        'mce_baseline': summary.get('baseline'),
        'mean_corruption_accuracy': summary.get('mean_corruption_accuracy'),
        'extra_mean_corruption_accuracy': summary.get('extra_mean_corruption_accuracy'),
        'imagenet_a_top1': results.get('imagenet_a', {}).get('top1'),
        'imagenet_r_top1': results.get('imagenet_r', {}).get('top1'),
    }


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


def format_tables(results_list: Sequence[Mapping[str, Any]]) -> str:
    """ A headline table (one row per model) and, when ImageNet-C was run, corruption errors per model. """
    rows = [summary_row(r) for r in results_list]
    baselines = sorted({r['mce_baseline'] for r in rows if r['mce_baseline']})
    lines = _format_rows([h for _, h in SUMMARY_COLUMNS], [[r[k] for k, _ in SUMMARY_COLUMNS] for r in rows])
    errors = [r.get('imagenet_c', {}).get('summary', {}).get('corruption_errors', {}) for r in results_list]
    corruptions = [c for c in ALL_CORRUPTIONS if any(c in e for e in errors)]
    if corruptions:
        lines += [
            '',
            'accuracies and errors in %; mCE and rel. mCE: 15 standard corruptions normalised by '
            f'{" / ".join(baselines)} (= 100; lower is better); IN-C acc: mean accuracy over the same 15 (the FAN/STL '
            'READMEs\' "IN-C"); extra: the 4 held-out corruptions, never in mCE.',
            '',
            'top-1 error per corruption, mean over the severities (* = extra corruption):',
        ]
        header = ['corruption'] + [r['model'] for r in rows]
        table = [[c + ('*' if c in EXTRA_CORRUPTIONS else '')] + [e.get(c) for e in errors] for c in corruptions]
        lines += _format_rows(header, table)
    summaries = [r.get('imagenet_c', {}).get('summary', {}) for r in results_list]
    notes = [f'{r["model"]}: {n}' for r, s in zip(results_list, summaries) for n in s.get('notes', [])]
    return '\n'.join(lines + ([''] + notes if notes else []))


def write_csvs(results_list: Sequence[Mapping[str, Any]], out_dir: Path) -> List[Path]:
    """ `summary.csv` (one row per model) and `cells.csv` (one row per model x benchmark x cell) in `out_dir`. """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path, cells_path = out_dir / 'summary.csv', out_dir / 'cells.csv'
    rows = [summary_row(r) for r in results_list]
    with open(summary_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(cells_path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['model', 'benchmark', 'corruption', 'severity', 'top1', 'top5', 'top1_error', 'num_images'])
        for r in results_list:
            for key in ('clean', 'imagenet_a', 'imagenet_r'):
                if key in r:
                    writer.writerow([r['model'], key, '', '', r[key]['top1'], r[key]['top5'], 100 - r[key]['top1'],
                                     r[key]['num_images']])
            for corruption, severities in r.get('imagenet_c', {}).get('cells', {}).items():
                for severity, cell in sorted(severities.items()):
                    writer.writerow([r['model'], 'imagenet_c', corruption, severity, cell['top1'], cell['top5'],
                                     100 - cell['top1'], cell['num_images']])
    return [summary_path, cells_path]


def plot_corruption_errors(
        results_by_model: Mapping[str, Mapping[str, Any]],
        path: Path,
        title: Optional[str] = None,
) -> Path:
    """ Grouped bar chart of per-corruption top-1 error (severity mean) for each model; writes a PNG to `path`. """
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f'the corruption chart needs matplotlib: {install_hint("robustness")}') from None
    errors = {
        model: r.get('imagenet_c', {}).get('summary', {}).get('corruption_errors', {})
        for model, r in results_by_model.items()}
    corruptions = [c for c in ALL_CORRUPTIONS if any(c in e for e in errors.values())]
    if not corruptions:
        raise ValueError('no model has a complete corruption (all 5 severities) to plot; evaluate ImageNet-C first')
    width = 0.8 / len(errors)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.6 * len(corruptions) * max(1, len(errors) / 2)), 4.5))
    for i, (model, model_errors) in enumerate(errors.items()):
        xs = [j + (i - (len(errors) - 1) / 2) * width for j in range(len(corruptions))]
        ax.bar(xs, [model_errors.get(c, float('nan')) for c in corruptions], width, label=model)
    ax.set_xticks(range(len(corruptions)))
    ax.set_xticklabels([c + ('*' if c in EXTRA_CORRUPTIONS else '') for c in corruptions], rotation=45, ha='right')
    ax.set_ylabel('top-1 error (%), mean over severities')
    ax.set_title(title or 'Corruption error per corruption (* = extra, not in mCE)')
    top = max((e for model_errors in errors.values() for e in model_errors.values()), default=100.0)
    ax.set_ylim(0, 1.25 * top)  # headroom for the legend above the bars
    ax.legend(loc='upper center', ncol=min(len(errors), 3), fontsize='small')
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
