"""The converted copies of the authors' Drive files: a changed copy is refused (load and publish), a broken one is
reported where it was and moved aside, never passed off as "not cached"."""
import os

import pytest
import torch
from huggingface_hub import constants as hf_constants
from safetensors.torch import load_file, save_file

import timm

from fan_stl.cli import main
from fan_stl.weights import drive, released, sources
from fan_stl.weights.files import PretrainedWeightsError

from .helpers import fake_drive, logits, not_published, offline_hub, random_model, save_official  # noqa: F401

TOKEN = 'fan_t_hybrid_stl'
WEIGHT = released.released_weight('fan_t_hybrid_stl.in1k')


@pytest.fixture
def cached_copy(offline_hub, fake_drive, monkeypatch, tmp_path):
    """ One first load online from the (fake) Drive: the converted copy is then in the cache. Back offline after. """
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.setattr(sources, 'download_from_hub', not_published)
    source = random_model(TOKEN)
    fake_drive.files[WEIGHT.drive_id] = save_official(source, tmp_path / 'authors.pth.tar')
    timm.create_model(TOKEN, pretrained=True)
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', True)
    (path,) = drive.authors_cache_dir().glob('*.safetensors')
    return path, source


def _tamper(path):
    """ Change 1000 values of head.weight in place, keeping the name and metadata (what the issue did by hand). """
    tensors = load_file(path)
    tensors['head.weight'].view(-1)[:1000] += 1.0
    from safetensors import safe_open
    with safe_open(str(path), framework='pt') as f:
        metadata = f.metadata()
    save_file(tensors, path, metadata=metadata)


def test_unchanged_copy_loads_offline(cached_copy):
    path, source = cached_copy
    model = timm.create_model(TOKEN, pretrained=True).eval()
    assert model.pretrained_cfg['file'] == str(path)
    torch.testing.assert_close(logits(model), logits(source), rtol=0, atol=0)


def test_changed_copy_is_refused_on_load_and_by_publish(cached_copy, tmp_path, capsys):
    path, _ = cached_copy
    _tamper(path)
    with pytest.raises(PretrainedWeightsError) as info:
        timm.create_model(TOKEN, pretrained=True)
    message = str(info.value)
    assert str(path) in message and 'changed after fan_stl wrote it' in message
    assert 'Delete it' in message and 'online' in message
    assert main(['publish', '--only', 'fan_t_hybrid_stl.in1k', '--dry-run', '--work-dir', str(tmp_path / 'w')]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and 'changed after fan_stl wrote it' in err
    assert not (tmp_path / 'w' / 'fan_t_hybrid_stl.in1k' / 'model.safetensors').exists()


@pytest.mark.parametrize('damage', ['truncated', 'misnamed', 'no record'])
def test_broken_copy_is_reported_and_moved_aside(cached_copy, damage):
    path, _ = cached_copy
    if damage == 'truncated':
        path.write_bytes(path.read_bytes()[:100])
        broken = path
    elif damage == 'misnamed':
        broken = path.with_name(path.name.replace('.sha256-', '.sha256-0'))
        os.replace(path, broken)
        os.replace(f'{path}.sha256', f'{broken}.sha256')
    else:
        os.remove(f'{path}.sha256')
        broken = path
    with pytest.warns(UserWarning, match='broken cached copy') as warned:
        with pytest.raises(PretrainedWeightsError) as info:
            timm.create_model(TOKEN, pretrained=True)
    message = str(info.value)
    assert f'a broken cached copy {broken}' in message and f'moved aside to {broken}.broken' in message
    assert str(broken) in str(warned[0].message)
    assert not broken.exists() and os.path.exists(f'{broken}.broken')
    assert drive.cached_authors_copy(WEIGHT) is None  # the broken copy no longer counts


def test_broken_copy_is_replaced_by_a_fresh_download_online(cached_copy, fake_drive, monkeypatch):
    path, source = cached_copy
    path.write_bytes(path.read_bytes()[:100])
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    with pytest.warns(UserWarning, match='broken cached copy'):
        model = timm.create_model(TOKEN, pretrained=True).eval()
    torch.testing.assert_close(logits(model), logits(source), rtol=0, atol=0)
    assert len(fake_drive.calls) == 2 and path.is_file()
