"""Segmentation robustness results as a CSV table and a chart (mIoU against severity, one line per corruption)."""
import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Dict

from fan_stl.utils.extras import install_hint
from fan_stl.robustness.report import save_figure


def write_csv(results: Dict[str, Any], path: Path) -> Path:
    """ One row per setting (clean, then each corruption x severity), written atomically. """
    path = Path(path)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(['model', 'corruption', 'severity', 'miou', 'pixel_accuracy', 'num_images'])
    rows = [('clean', '', results['clean'])] if 'clean' in results else []
    rows += [(*key.split('/'), cell) for key, cell in results.get('cells', {}).items()]
    for corruption, severity, cell in rows:
        writer.writerow([results['model'], corruption, severity, f'{cell["miou"]:.4f}',
                         f'{cell["pixel_accuracy"]:.4f}', cell['num_images']])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'w', newline='') as f:
            f.write(buffer.getvalue())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def write_chart(results: Dict[str, Any], path: Path) -> Path:
    """ mIoU against severity per corruption, the clean mIoU as a dashed line (needs matplotlib). """
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f'the chart needs matplotlib: {install_hint("robustness")}') from None
    by_corruption: Dict[str, Dict[int, float]] = {}
    for key, cell in results.get('cells', {}).items():
        corruption, severity = key.split('/')
        by_corruption.setdefault(corruption, {})[int(severity)] = cell['miou']
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for corruption, cells in sorted(by_corruption.items()):
        severities = sorted(cells)
        ax.plot(severities, [cells[s] for s in severities], marker='o', label=corruption)
    if 'clean' in results:
        ax.axhline(results['clean']['miou'], color='k', linestyle='--', label='clean')
    ax.set_xlabel('severity')
    ax.set_ylabel('mIoU (%)')
    ax.set_title(f'{results["model"]}: CamVid / CamVid-C mIoU')
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return save_figure(fig, path)
