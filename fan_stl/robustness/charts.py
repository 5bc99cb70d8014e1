"""Charts of the extra sets (matplotlib, the robustness extra): per-family corruption errors, the occlusion curve and
the per-category shape bias, one PNG each, written atomically.
"""
from pathlib import Path
from typing import Any, List, Mapping, Sequence

from ..utils.extras import install_hint
from .cue_conflict import CATEGORIES
from .families import FAMILIES
from .report import save_figure


def _pyplot() -> Any:
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f'the charts need matplotlib: {install_hint("robustness")}') from None
    return plt


def plot_family_errors(results_list: Sequence[Mapping[str, Any]], key: str, path: Path) -> Path:
    """ Grouped bars: per-corruption top-1 error (mean over severities) of family `key`, one colour per model. """
    plt = _pyplot()
    family = FAMILIES[key]
    errors = {r['model']: r[key]['summary']['corruption_errors'] for r in results_list if r.get(key, {}).get('summary')}
    names = [c for c in family.names if any(c in e for e in errors.values())]
    fig, ax = plt.subplots(figsize=(max(8.0, 0.6 * len(names) * max(1, len(errors) / 2)), 4.5))
    width = 0.8 / max(1, len(errors))
    for i, (model, values) in enumerate(errors.items()):
        ax.bar([j + (i - (len(errors) - 1) / 2) * width for j in range(len(names))],
               [values.get(c, float('nan')) for c in names], width, label=model)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha='right')
    ax.set_ylabel('top-1 error (%), mean over severities')
    ax.set_title(f'{family.title}: error per corruption')
    ax.legend(fontsize='small')
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_occlusion(results_list: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """ Top-1 accuracy against the share of 16 px patches dropped, one line per model (area in the legend). """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for r in results_list:
        summary = r.get('occlusion', {}).get('summary')
        if summary:
            ax.plot([100 * r for r in summary['ratios']], summary['accuracy'], marker='o',
                    label=f'{r["model"]} (area {summary["area"]:.1f})')
    ax.set_xlabel('patches dropped (%)')
    ax.set_ylabel('top-1 accuracy (%)')
    ax.set_title('Occlusion: random 16 px patch drop')
    ax.legend(fontsize='small')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_shape_bias(results_list: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """ Per-category shape bias (fraction of shape decisions), one marker per model and category, as model-vs-human's
    shape-bias plot: categories down, shape bias left (texture, 0) to right (shape, 1). """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 6.0))
    for r in results_list:
        cue = r.get('cue_conflict')
        if cue:
            points = [(v, i) for i, c in enumerate(CATEGORIES) if (v := cue['per_category'].get(c)) is not None]
            overall = cue['shape_bias']
            ax.scatter([p[0] for p in points], [p[1] for p in points],
                       label=f'{r["model"]} ({"-" if overall is None else f"{overall:.2f}"})')
            if overall is not None:
                ax.axvline(overall, linestyle='--', alpha=0.4)
    ax.set_yticks(range(len(CATEGORIES)))
    ax.set_yticklabels(CATEGORIES)
    ax.set_xlim(-0.05, 1.05)
    ax.set_xlabel('fraction of shape decisions (0: texture, 1: shape)')
    ax.set_title('Shape bias per category (overall in the legend)')
    ax.legend(fontsize='small')
    ax.grid(axis='x', alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def write_charts(results_list: Sequence[Mapping[str, Any]], out_dir: Path) -> List[Path]:
    """ Every chart the results support (the ImageNet-C chart is `report.plot_corruption_errors`'). """
    out_dir, written = Path(out_dir), []
    for key in FAMILIES:
        if key != 'imagenet_c' and any(r.get(key, {}).get('summary') for r in results_list):
            written.append(plot_family_errors(results_list, key, out_dir / f'{key}_errors.png'))
    if any(r.get('occlusion', {}).get('summary') for r in results_list):
        written.append(plot_occlusion(results_list, out_dir / 'occlusion.png'))
    if any(r.get('cue_conflict') for r in results_list):
        written.append(plot_shape_bias(results_list, out_dir / 'shape_bias.png'))
    return written
