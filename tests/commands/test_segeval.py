"""`python -m fan_stl segeval` end to end on a small CamVid tree (and a few real test images), and its errors."""
import json

import pytest

from fan_stl.cli import main
from tests.segmentation.camvid_helpers import make_camvid, real_camvid

pytest.importorskip('segmentation_models_pytorch', reason='segeval needs the seg extra: pip install -e ".[seg]"')
pytest.importorskip('imagecorruptions', reason='segeval needs the robustness extra: pip install -e ".[robustness]"')


def _argv(checkpoint, data, out, *extra):
    return ['segeval', str(checkpoint), '--data', str(data), '--out', str(out), '--size', '32', '64',
            '--batch-size', '2', *extra]


@pytest.fixture
def checkpoint(tmp_path):
    from fan_stl.segmentation.models import build_segmenter, save_segmenter
    path = tmp_path / 'unet_fan_t.pth'
    save_segmenter(build_segmenter('Unet', 'fan_tiny_8_p4_hybrid', 11), path, 'Unet', 'fan_tiny_8_p4_hybrid', 11)
    return path


def test_segeval_writes_json_csv_chart_and_resumes(checkpoint, tmp_path, capsys):
    data = make_camvid(tmp_path / 'camvid', count=2, size=(32, 64))
    out = tmp_path / 'out'
    argv = _argv(checkpoint, data, out, '--corruptions', 'fog', '--severities', '1', '3')
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert 'unet_fan_t: clean mIoU' in printed and 'over 2 cells' in printed
    results = json.loads((out / 'unet_fan_t.json').read_text())
    assert sorted(results['cells']) == ['fog/1', 'fog/3'] and results['identity']['size'] == [32, 64]
    assert (out / 'unet_fan_t.csv').read_text().count('\n') == 4
    assert (out / 'unet_fan_t.png').is_file()
    assert main(argv + ['--corruptions', 'fog', 'contrast']) == 0
    assert len(json.loads((out / 'unet_fan_t.json').read_text())['cells']) == 4
    assert main(_argv(checkpoint, data, out, '--clean-only', '--seed', '1')) == 1
    assert 'holds results of another model or other settings' in capsys.readouterr().err


def test_segeval_errors_are_one_line(checkpoint, tmp_path, capsys):
    data = make_camvid(tmp_path / 'camvid', count=1, size=(32, 64))
    assert main(_argv(checkpoint, data, tmp_path / 'o', '--size', '40', '64', '--clean-only')) == 1
    assert 'error: input size 40x64' in capsys.readouterr().err  # Unet on FAN: multiples of 16 -> 40 is refused
    (data / 'testannot' / 'img_000.png').unlink()
    assert main(_argv(checkpoint, data, tmp_path / 'o', '--clean-only')) == 1
    assert 'have no mask' in capsys.readouterr().err
    assert main(_argv(checkpoint, data, tmp_path / 'o', '--corruptions', 'smoke')) == 2
    assert "unknown corruptions ['smoke']" in capsys.readouterr().err
    assert main(_argv(tmp_path / 'none.pth', data, tmp_path / 'o')) == 1
    assert 'does not exist' in capsys.readouterr().err


def test_segeval_on_real_camvid_images(checkpoint, tmp_path, capsys):
    root = real_camvid()
    argv = ['segeval', str(checkpoint), '--data', str(root), '--out', str(tmp_path / 'o'), '--size', '64',
            '96', '--limit', '2', '--corruptions', 'brightness', '--severities', '5']
    assert main(argv) == 0
    results = json.loads((tmp_path / 'o' / 'unet_fan_t.json').read_text())
    assert results['clean']['num_images'] == 2 and 0 <= results['cells']['brightness/5']['miou'] <= 100
