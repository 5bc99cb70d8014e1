"""`eval --checkpoint` of a FAN model loads through `fan_stl.weights.checkpoint.load_checkpoint`: its messages (wrong
architecture with the fitting one named, truncated or missing file), each one `error:` line that names CLI flags."""
import timm
import torch

from fan_stl.cli import main
from fan_stl.commands.evaluate import create_model


def _eval(checkpoint, tmp_path, capsys, model='fan_t_hybrid_stl'):
    code = main(['eval', model, '--num-classes', '2', '--checkpoint', str(checkpoint), '--data', str(tmp_path),
                 '--out', str(tmp_path / 'out'), '--img-size', '32', '--workers', '0'])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith('error:')]
    assert code == 1 and len(lines) == 1 and lines[0].strip() != 'error:', err
    return err


def test_a_fan_checkpoint_of_another_architecture_names_the_fitting_one(tmp_path, capsys):
    path = tmp_path / 'tiny.pth'
    torch.save(timm.create_model('fan_tiny_8_p4_hybrid', num_classes=2).state_dict(), path)
    err = _eval(path, tmp_path, capsys)
    assert 'does not fit fan_t_hybrid_stl' in err and 'fan_tiny_8_p4_hybrid (--num-classes 2)' in err
    assert '(num_classes=' not in err  # the CLI's message spells the fix as a flag
    assert 'size mismatch' not in err


def test_a_truncated_and_a_missing_checkpoint_are_named(tmp_path, capsys):
    path = tmp_path / 'cut.pth'
    torch.save(timm.create_model('fan_t_hybrid_stl', num_classes=2).state_dict(), path)
    path.write_bytes(path.read_bytes()[:4096])
    assert 'is truncated' in _eval(path, tmp_path, capsys)
    assert 'does not exist or is not a file' in _eval(tmp_path / 'absent.pth', tmp_path, capsys)


def test_a_fitting_fan_checkpoint_is_what_gets_evaluated(tmp_path):
    trained = timm.create_model('fan_t_hybrid_stl', num_classes=2)
    path = tmp_path / 'fits.pth'
    torch.save({'state_dict': trained.state_dict()}, path)  # a training dict: its weights are picked
    loaded = create_model('fan_t_hybrid_stl', pretrained=False, checkpoint=str(path), num_classes=2)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in trained.state_dict().items())


def test_a_head_mismatch_of_a_fan_checkpoint_names_num_classes(tmp_path, capsys):
    path = tmp_path / 'two.pth'
    torch.save(timm.create_model('fan_t_hybrid_stl', num_classes=3).state_dict(), path)
    err = _eval(path, tmp_path, capsys)
    assert 'has a 3-class head' in err and 'pass --num-classes 3' in err
