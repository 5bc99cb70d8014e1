"""timm's results CSV format, one file per set, so rows can be pasted next to timm's `results/results-*.csv`.

Columns as timm's `validate.py` writes them: model, img_size, top1, top1_err, top5, top5_err, param_count (millions),
crop_pct, interpolation; rows sorted by top-1, best first. File names follow timm's where the set is one of its
tables (`results-imagenet-real.csv`, `results-imagenetv2-matched-frequency.csv`, `results-sketch.csv`,
`results-imagenet-a.csv`, `results-imagenet-a-clean.csv`, ...); the clean folder's file is `results-clean.csv`, since
it need not be ImageNet val.
"""
import csv
import io
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

from ..utils.atomic import write_text_atomic

TIMM_COLUMNS = ('model', 'img_size', 'top1', 'top1_err', 'top5', 'top5_err', 'param_count', 'crop_pct',
                'interpolation')
SET_FILES = {
    'clean': 'results-clean.csv',
    'imagenet_real': 'results-imagenet-real.csv',
    'imagenetv2_matched_frequency': 'results-imagenetv2-matched-frequency.csv',
    'imagenetv2_threshold07': 'results-imagenetv2-threshold0.7.csv',
    'imagenetv2_top_images': 'results-imagenetv2-top-images.csv',
    'sketch': 'results-sketch.csv',
    'imagenet_a': 'results-imagenet-a.csv',
    'imagenet_a_clean': 'results-imagenet-a-clean.csv',
    'imagenet_r': 'results-imagenet-r.csv',
    'imagenet_r_clean': 'results-imagenet-r-clean.csv',
}


def timm_row(results: Mapping[str, Any], key: str) -> Dict[str, str]:
    """ One row of timm's format for set `key` of a results dict. """
    section, config = results[key], results['identity'].get('data_config', {})
    params = results.get('param_count')
    return {
        'model': results['model'], 'img_size': str(config.get('input_size', [0, 0])[-1]),
        'top1': f'{section["top1"]:.3f}', 'top1_err': f'{100 - section["top1"]:.3f}',
        'top5': f'{section["top5"]:.3f}', 'top5_err': f'{100 - section["top5"]:.3f}',
        'param_count': '' if params is None else f'{params / 1e6:.2f}',
        'crop_pct': f'{config.get("crop_pct", 1.0):.3f}', 'interpolation': str(config.get('interpolation', ''))}


def write_timm_csvs(results_list: Sequence[Mapping[str, Any]], out_dir: Path) -> List[Path]:
    """ One timm-format CSV per set that any model has, written atomically; the paths written. """
    written = []
    for key, name in SET_FILES.items():
        rows = [timm_row(r, key) for r in results_list if 'top1' in r.get(key, {})]
        if not rows:
            continue
        rows.sort(key=lambda row: -float(row['top1']))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=TIMM_COLUMNS, lineterminator='\n')
        writer.writeheader()
        writer.writerows(rows)
        written.append(write_text_atomic(Path(out_dir) / name, text.getvalue()))
    return written
