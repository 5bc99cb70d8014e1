"""The summary of a results dict, its CSV table and its chart."""
import csv

import pytest

from fan_stl.segmentation.evaluate import summarize
from fan_stl.segmentation.report import write_chart, write_csv


def test_summary_without_cells_and_the_reports(tmp_path):
    results = {'model': 'm', 'clean': {'miou': 50., 'pixel_accuracy': 80., 'num_images': 3},
               'cells': {'fog/1': {'miou': 40., 'pixel_accuracy': 70., 'num_images': 3},
                         'fog/2': {'miou': 20., 'pixel_accuracy': 60., 'num_images': 3}}}
    assert summarize({'clean': {'miou': 50.}})['mean_corrupted_miou'] is None
    summary = summarize(results)
    assert summary['mean_corrupted_miou'] == 30. and summary['ratio_to_clean'] == pytest.approx(0.6)
    rows = list(csv.reader(write_csv(results, tmp_path / 'r.csv').open()))
    assert rows[1] == ['m', 'clean', '', '50.0000', '80.0000', '3'] and rows[3][:3] == ['m', 'fog', '2']
    pytest.importorskip('matplotlib', reason='the chart needs matplotlib')
    assert write_chart(results, tmp_path / 'r.png').read_bytes()[:4] == b'\x89PNG'
