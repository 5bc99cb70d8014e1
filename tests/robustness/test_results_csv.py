"""timm's results CSV: its columns, its number format, best model first."""
import csv

from fan_stl.robustness.results_csv import TIMM_COLUMNS, write_timm_csvs


def _results(name, top1):
    return {'model': name, 'param_count': 5_435_488, 'sketch': {'top1': top1, 'top5': 90.0},
            'identity': {'data_config': {'input_size': [3, 224, 224], 'crop_pct': 0.875, 'interpolation': 'bicubic'}}}


def test_rows_as_timm_writes_them(tmp_path):
    written = write_timm_csvs([_results('a', 50.0), _results('b', 61.23456)], tmp_path)
    assert [p.name for p in written] == ['results-sketch.csv']
    text = written[0].read_text()
    assert text.splitlines()[0] == ','.join(TIMM_COLUMNS)  # timm's results-imagenet.csv header
    rows = list(csv.DictReader(text.splitlines()))
    assert rows[0] == {'model': 'b', 'img_size': '224', 'top1': '61.235', 'top1_err': '38.765', 'top5': '90.000',
                       'top5_err': '10.000', 'param_count': '5.44', 'crop_pct': '0.875', 'interpolation': 'bicubic'}
    assert rows[1]['model'] == 'a'
