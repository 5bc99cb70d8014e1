"""`python -m fan_stl label`: its options, the annotator's teacher messages, a run printing its storage per image."""
import pytest

from fan_stl.cli import main
from tests.maps_helpers import image_folder, sharp_checkpoint


def test_teacher_errors_are_the_annotator_sources(tmp_path, capsys):
    data = image_folder(tmp_path / 'data', per_class=1)
    assert main(['label', str(data), '--teacher', 'no_such_cnn', '--out', str(tmp_path / 'maps')]) == 1
    assert 'neither an existing checkpoint file nor a registered timm model' in capsys.readouterr().err
    checkpoint = sharp_checkpoint(tmp_path / 'r.pth', 'resnet10t')
    assert main(['label', str(data), '--teacher', str(checkpoint), '--out', str(tmp_path / 'maps')]) == 1
    assert 'needs its architecture: pass --teacher-model' in capsys.readouterr().err


def test_label_writes_maps_and_reports_their_size(tmp_path, capsys):
    data = image_folder(tmp_path / 'data', per_class=1)
    checkpoint = sharp_checkpoint(tmp_path / 'r.pth', 'resnet10t')
    argv = ['label', str(data), '--teacher', str(checkpoint), '--teacher-model', 'resnet10t', '--out',
            str(tmp_path / 'maps'), '--img-size', '64', '--grid', '3', '--topk', '2', '--workers', '0', '--no-progress']
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert '3 images: top-2 maps on a 3x3 grid' in out and 'KiB per image; 1 shard(s) written, 0 already there' in out
    assert main(argv) == 0 and '0 shard(s) written, 1 already there' in capsys.readouterr().out


def test_bad_option_values_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(['label', 'data', '--teacher', 'x', '--out', 'o', '--topk', '0'])
    assert 'must be at least 1' in capsys.readouterr().err
