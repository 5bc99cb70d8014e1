"""What `eval` prints and draws (`fan_stl.robustness.report`): notes that exist when promised, and a chart whose
legend covers neither the bars nor the y-axis label."""
import pytest

from fan_stl.robustness import report
from fan_stl.robustness.report import format_tables, plot_corruption_errors


def _clean_only(model: str) -> dict:
    return {'model': model, 'clean': {'top1': 50.0, 'top5': 100.0, 'num_images': 4}}


def _corrupted(model: str, notes=(), mce=None) -> dict:
    summary = {'corruption_errors': {'gaussian_noise': 80.0, 'fog': 70.0}, 'notes': list(notes)}
    if mce is not None:
        summary.update(mce=mce, baseline='local-dir-baseline-seed0')
    return {**_clean_only(model), 'imagenet_c': {'summary': summary}}


def test_a_clean_only_report_promises_no_notes_and_explains_the_missing_mce():
    text = format_tables([_clean_only('a'), _clean_only('b')])
    assert 'see the notes below' not in text and 'C-acc (15): mean' not in text
    assert 'no mCE: no corrupted images were evaluated (add --imagenet-c DIR or --corrupt-on-the-fly)' in text


def test_notes_below_are_promised_only_when_printed():
    with_notes = format_tables([_corrupted('a', notes=['no mCE: the folder is not ImageNet-C'])])
    assert '(see the notes below).' in with_notes and with_notes.endswith('a: no mCE: the folder is not ImageNet-C')
    without = format_tables([_corrupted('a')])
    assert 'see the notes below' not in without and '(pass --baseline MODEL or --alexnet-normalise)' in without


def test_the_chart_legend_sits_beside_the_axes_inside_the_picture(tmp_path, monkeypatch):
    pytest.importorskip('matplotlib', reason='needs the robustness extra: pip install -e ".[robustness]"')
    drawn = {}

    def measure(fig, path):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        drawn.update(legend=ax.get_legend().get_window_extent(renderer), axes=ax.get_window_extent(renderer),
                     ylabel=ax.yaxis.label.get_window_extent(renderer), figure=fig.get_tightbbox(renderer),
                     dpi=fig.dpi)
        return save(fig, path)

    save = report.save_figure
    monkeypatch.setattr(report, 'save_figure', measure)
    # few corruptions and long labels: the case where the legend used to run over the y-axis label
    results = {m: _corrupted(m, mce=97.3) for m in ('local-dir-baseline-seed0', 'local-dir-tl-seed0', 'local-dir-stl')}
    path = plot_corruption_errors(results, tmp_path / 'chart.png')
    legend, axes, ylabel = drawn['legend'], drawn['axes'], drawn['ylabel']
    assert not legend.overlaps(ylabel) and not legend.overlaps(axes) and legend.x0 >= axes.x1
    figure = drawn['figure']  # in inches: what savefig(bbox_inches='tight') keeps
    assert legend.x1 / drawn['dpi'] <= figure.x1 + 1e-6 and legend.x0 / drawn['dpi'] >= figure.x0 - 1e-6
    assert path.read_bytes()[:4] == b'\x89PNG'
