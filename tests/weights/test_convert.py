"""The conversion tool: safe reading, strict load with clear errors, honest Hub folder output, round trip, push."""
import collections
import json

import fnmatch
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi
from huggingface_hub import constants as hf_constants

import timm

from fan_stl.weights import released, sources
from fan_stl.cli import main
from fan_stl.weights.convert import ConversionError, convert_checkpoint, push_to_hub
from fan_stl.weights.files import PretrainedWeightsError, UnsafeCheckpointError, WeightsMismatchError, read_checkpoint

from .helpers import (  # noqa: F401
    add_to_hf_cache, fake_drive, logits, not_published, offline_hub, random_model, save_official, unsafe_pickle)


class NotATensor:
    """ A pickled class the safe loader must refuse to instantiate. """


@pytest.mark.parametrize('name', ['fan_tiny_12_p16_224', 'fan_tiny_8_p4_hybrid', 'fan_t_hybrid_stl'])
def test_round_trip_official_checkpoint_to_hub_cache(offline_hub, tmp_path, capsys, name):
    """ random model -> official training dict -> convert -> HF cache layout -> pretrained=True: identical outputs. """
    source = random_model(name)
    checkpoint = save_official(source, tmp_path / 'official.pth.tar')
    repo = timm.models.get_pretrained_cfg(name).hf_hub_id
    out = tmp_path / 'converted'
    assert main(['convert', str(checkpoint), '--model', name, '--out', str(out), '--img-size', '64']) == 0
    report = capsys.readouterr().out
    assert 'Converted state_dict_ema weights' in report and 'sha256' in report and 'max |diff| 0' in report
    assert sorted(p.name for p in out.iterdir()) == ['README.md', 'config.json', 'model.safetensors']
    config = json.loads((out / 'config.json').read_text())
    assert config["architecture"] == name and config["pretrained_cfg"]["crop_pct"] == 1.0
    assert "license" not in config["pretrained_cfg"]  # a random checkpoint: no claim of the authors' release
    add_to_hf_cache(offline_hub, repo, out)
    model = timm.create_model(name, pretrained=True).eval()
    torch.testing.assert_close(logits(model), logits(source), rtol=0, atol=0)


def _cache_release(fake_drive, monkeypatch, path):
    """ Load `path` as the authors' Drive file of fan_t_hybrid_stl.in1k once: its sha256 is then known here. """
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.setattr(sources, 'download_from_hub', not_published)
    fake_drive.files[released.released_weight('fan_t_hybrid_stl.in1k').drive_id] = path
    timm.create_model('fan_t_hybrid_stl', pretrained=True)


def test_model_card_of_a_released_file(offline_hub, fake_drive, monkeypatch, tmp_path):
    original = save_official(random_model('fan_t_hybrid_stl'), tmp_path / 'w.pth')
    _cache_release(fake_drive, monkeypatch, original)
    out = tmp_path / 'card'
    result = convert_checkpoint(original, 'fan_t_hybrid_stl', out, img_size=64)
    assert result.release.name == 'fan_t_hybrid_stl.in1k'
    card = (out / 'README.md').read_text()
    assert 'license: cc-by-nc-sa-4.0' in card and 'library_name: timm' in card and "with the authors' weights" in card
    usage = card[card.index('## Model Usage'):]
    assert usage.split('\n')[2].startswith('import fan_stl')
    assert "hf-hub:fan-stl/fan_t_hybrid_stl.in1k" in usage
    assert 'ImageNet-1k: 79.9' in card and 'ImageNet-A: 23.7' in card and 'not mCE' in card
    assert f'Original file sha256:** {result.source_sha256}' in card
    assert '@inproceedings{zhao2023fully' in card and 'cls_logits + 0.5' in card
    config = json.loads((out / 'config.json').read_text())['pretrained_cfg']
    assert config['tag'] == 'in1k' and config['license'] == 'cc-by-nc-sa-4.0'
    assert config['input_size'] == [3, 224, 224]  # the release's own size, not the sanity-forward size
    # naming the release explicitly verifies it too
    assert convert_checkpoint(original, 'fan_t_hybrid_stl', tmp_path / 'again', img_size=64,
                              released_tag='in1k').release is not None


def test_neutral_card_for_a_file_that_is_not_released(offline_hub, fake_drive, monkeypatch, tmp_path, capsys):
    path = save_official(random_model('fan_t_hybrid_stl'), tmp_path / 'mine.pth')
    out = tmp_path / 'neutral'
    assert main(['convert', str(path), '--model', 'fan_t_hybrid_stl.in1k', '--out', str(out), '--img-size', '64']) == 0
    assert 'not a released file: neutral model card' in capsys.readouterr().out
    card = (out / 'README.md').read_text()
    assert "authors' weights" not in card and 'cc-by-nc-sa' not in card and '79.9' not in card
    assert 'not one of the FAN / STL authors' in card and 'license: other' in card
    config = json.loads((out / 'config.json').read_text())
    assert not {'tag', 'license', 'hf_hub_id', 'url'} & set(config['pretrained_cfg'])
    assert config['pretrained_cfg']['input_size'] == [3, 64, 64]
    # asserting a release that cannot be verified is an error, not a card that claims it
    assert main(['convert', str(path), '--model', 'fan_t_hybrid_stl', '--out', str(tmp_path / 'x'),
                 '--released', 'in1k']) == 1
    assert 'Cannot verify --released in1k' in capsys.readouterr().err
    _cache_release(fake_drive, monkeypatch, save_official(random_model('fan_t_hybrid_stl'), tmp_path / 'real.pth'))
    assert main(['convert', str(path), '--model', 'fan_t_hybrid_stl', '--out', str(tmp_path / 'y'),
                 '--released', 'in1k']) == 1
    assert "not the authors' released fan_t_hybrid_stl.in1k" in capsys.readouterr().err


def test_fine_tuned_checkpoint_num_classes_and_img_size_round_trip(tmp_path, capsys):
    """ A 5-class model trained at 64 px: convert keeps both, and `local-dir:` evaluates it at 64 px. """
    source = random_model('fan_tiny_12_p16_224', num_classes=5)
    path = save_official(source, tmp_path / 'tuned.pth.tar')
    assert main(['convert', str(path), '--model', 'fan_tiny_12_p16_224', '--out', str(tmp_path / 'no')]) == 1
    err = capsys.readouterr().err
    assert err.count('\nerror') == 0 and 'has a 5-class head' in err and 'pass --num-classes 5.' in err
    out = tmp_path / 'tuned'
    assert main(['convert', str(path), '--model', 'fan_tiny_12_p16_224', '--out', str(out),
                 '--num-classes', '5', '--img-size', '64']) == 0
    config = json.loads((out / 'config.json').read_text())
    assert config['num_classes'] == 5 and config['pretrained_cfg']['input_size'] == [3, 64, 64]
    model = timm.create_model(f'local-dir:{out}', pretrained=True).eval()
    assert timm.data.resolve_data_config(model=model)['input_size'] == (3, 64, 64)
    torch.testing.assert_close(logits(model), logits(source), rtol=0, atol=0)


@pytest.mark.parametrize('argv, message', [
    (['--img-size', '50'], 'positive multiple of 16'),
    (['--img-size', 'big'], 'not a whole number'),
    (['--num-classes', '0'], 'must be at least 1'),
])
def test_convert_arguments_validated(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(['convert', 'w.pth', '--model', 'fan_tiny_12_p16_224', '--out', str(tmp_path / 'o'), *argv])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_out_folder_checks(tmp_path, capsys):
    path = save_official(random_model('fan_tiny_12_p16_224'), tmp_path / 'w.pth.tar')
    (tmp_path / 'plain_file').write_text('x')
    args = ['convert', str(path), '--model', 'fan_tiny_12_p16_224', '--img-size', '64', '--out']
    assert main([*args, str(tmp_path / 'plain_file' / 'out')]) == 1
    assert 'plain_file is a file, not a folder' in capsys.readouterr().err
    busy = tmp_path / 'busy'
    busy.mkdir()
    (busy / 'notes.txt').write_text('mine')
    assert main([*args, str(busy)]) == 1
    assert 'already holds notes.txt' in capsys.readouterr().err and not (busy / 'model.safetensors').exists()
    assert main([*args, str(busy), '--overwrite']) == 0
    assert sorted(p.name for p in busy.iterdir()) == ['README.md', 'config.json', 'model.safetensors', 'notes.txt']


def test_push_uploads_only_the_files_convert_wrote(tmp_path, monkeypatch, capsys):
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls['repo'] = repo_id

    def upload_folder(self, repo_id, folder_path, allow_patterns=None, **kwargs):
        calls['uploaded'] = sorted(p.name for p in Path(folder_path).iterdir()
                                   if any(fnmatch.fnmatch(p.name, a) for a in allow_patterns or ['*']))
        return 'https://huggingface.co/me/x/commit/1'

    monkeypatch.setattr(HfApi, 'create_repo', create_repo)
    monkeypatch.setattr(HfApi, 'upload_folder', upload_folder)
    path = save_official(random_model('fan_tiny_12_p16_224'), tmp_path / 'w.pth.tar')
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'secret.txt').write_text('not for the Hub')
    assert main(['convert', str(path), '--model', 'fan_tiny_12_p16_224', '--img-size', '64', '--out', str(out),
                 '--overwrite', '--push', 'me/x']) == 0
    assert calls == {'repo': 'me/x', 'uploaded': ['README.md', 'config.json', 'model.safetensors']}


def test_ema_preferred_and_no_ema_flag(tmp_path):
    source = random_model('fan_tiny_12_p16_224')
    path = save_official(source, tmp_path / 'w.pth.tar')
    ema, picked = read_checkpoint(path)
    assert picked == 'state_dict_ema' and torch.equal(ema['blocks.0.attn.q.weight'], source.blocks[0].attn.q.weight)
    raw, picked = read_checkpoint(path, use_ema=False)
    assert picked == 'state_dict' and 'module.blocks.0.attn.q.weight' in raw
    torch.save({'state_dict_ema': source.state_dict()}, tmp_path / 'ema_only.pth')
    with pytest.raises(PretrainedWeightsError, match='only state_dict_ema.*drop --no-ema'):
        read_checkpoint(tmp_path / 'ema_only.pth', use_ema=False)


def test_refuses_pickled_code(tmp_path):
    torch.save({'state_dict': collections.OrderedDict(w=torch.zeros(1)), 'extra': NotATensor()}, tmp_path / 'x.pth')
    with pytest.raises(UnsafeCheckpointError, match='holds code / unsupported global .*NotATensor; not executed'):
        read_checkpoint(tmp_path / 'x.pth')


def test_pickle_that_runs_code_is_refused_not_run(tmp_path, capsys):
    path, marker = unsafe_pickle(tmp_path)
    with pytest.raises(UnsafeCheckpointError) as info:
        read_checkpoint(path)
    assert 'holds code / unsupported global' in str(info.value) and 'system' in str(info.value)
    assert 'truncated' not in str(info.value) and 'not executed' in str(info.value)
    assert main(['convert', str(path), '--model', 'fan_tiny_12_p16_224', '--out', str(tmp_path / 'o')]) == 1
    assert 'holds code' in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize('content, match', [
    ([torch.zeros(2)], 'holds a list, not a state dict'),
    ({'a': 1, 'b': 'x'}, r"entries \['a', 'b'\] are not tensors"),
    ({'w': torch.tensor([1.0, float('nan')])}, 'NaN / Inf values in 1 tensors'),
])
def test_content_that_is_not_finite_weights(tmp_path, content, match):
    torch.save(content, tmp_path / 'w.pth')
    with pytest.raises(PretrainedWeightsError, match=match):
        read_checkpoint(tmp_path / 'w.pth')


@pytest.mark.parametrize('content, match', [
    (None, 'does not exist'),
    (b'\x00' * 64, 'truncated, corrupt or not a torch checkpoint'),
])
def test_missing_or_corrupt_checkpoint(tmp_path, content, match):
    path = tmp_path / 'w.pth.tar'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PretrainedWeightsError, match=match):
        read_checkpoint(path)


def test_wrong_architecture_lists_keys_and_suggests(tmp_path, capsys):
    checkpoint = save_official(random_model('fan_t_hybrid_stl'), tmp_path / 'w.pth.tar')
    with pytest.raises(WeightsMismatchError) as info:
        convert_checkpoint(checkpoint, 'fan_tiny_12_p16_224', tmp_path / 'out', img_size=64)
    message = str(info.value)
    assert 'missing keys: patch_embed.proj.0.0.weight' in message and 'unexpected keys: patch_embed.backbone' in message
    fits = message.split('The checkpoint fits: ')[1]
    assert 'fan_t_hybrid_stl' in fits and 'fan_tiny_8_p4_hybrid_tl' in fits and 'fan_tiny_8_p4_hybrid' in fits
    assert 'fan_small' not in fits
    assert not (tmp_path / 'out').exists()
    assert main(['convert', str(checkpoint), '--model', 'fan_nope', '--out', str(tmp_path / 'o')]) == 1
    assert "Unknown architecture 'fan_nope'" in capsys.readouterr().err


def test_push_without_network_keeps_output(offline_hub, tmp_path, capsys, monkeypatch):
    checkpoint = save_official(random_model('fan_tiny_12_p16_224'), tmp_path / 'w.pth.tar')
    out = tmp_path / 'out'
    repo = 'fan-stl/fan_tiny_12_p16_224.in1k'
    assert main(['convert', str(checkpoint), '--model', 'fan_tiny_12_p16_224.in1k', '--out', str(out),
                 '--img-size', '64', '--push', repo]) == 1
    assert 'HF_HUB_OFFLINE is set' in capsys.readouterr().err
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(written) == {'README.md', 'config.json', 'model.safetensors'}
    # online mode, but the Hub endpoint is a closed loopback port: a clear "unreachable" error, files untouched
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.setattr(hf_constants, 'ENDPOINT', 'http://127.0.0.1:9')
    monkeypatch.setenv('HF_TOKEN', 'hf_test_token_not_real')
    with pytest.raises(ConversionError, match='the Hub is unreachable .* intact'):
        push_to_hub(out, repo)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == written


def test_writer_used_by_the_demo_records_the_trained_size_and_classes(tmp_path):
    """ A reduced 3-class model trained at 32 px: config.json and the `local-dir:` round trip use 32 px. """
    from fan_stl.weights.convert import write_weights_folder
    source = random_model('fan_t_hybrid_stl', num_classes=3, depth=1, stem_depths=(1, 1))
    out = tmp_path / 'demo-weights'
    files = write_weights_folder(source, out, input_size=32, label_names=['circle', 'square', 'star'],
                                 model_args=dict(depth=1, stem_depths=(1, 1)), source='trained by a test')
    assert sorted(files) == sorted(p.name for p in out.iterdir())  # no temp folder left behind
    config = json.loads((out / 'config.json').read_text())
    assert config['label_names'] == ['circle', 'square', 'star'] and config['num_classes'] == 3
    assert not {'tag', 'license', 'hf_hub_id'} & set(config['pretrained_cfg'])
    card = (out / 'README.md').read_text()
    assert 'trained by a test' in card and "authors' weights" not in card and 'Image size:** 32 x 32' in card
    model = timm.create_model(f'local-dir:{out}', pretrained=True).eval()
    assert timm.data.resolve_data_config(model=model)['input_size'] == (3, 32, 32)
    torch.testing.assert_close(logits(model), logits(source), rtol=0, atol=0)
    with pytest.raises(ConversionError, match='2 class names for a model with 3 classes'):
        write_weights_folder(source, tmp_path / 'bad', label_names=['a', 'b'])


def test_unknown_release_tag_is_refused_with_the_known_ones(tmp_path, capsys):
    """ `--model fan_tiny_8_p4_hybrid.foo` converted and dropped the tag without a word. """
    path = save_official(random_model('fan_tiny_8_p4_hybrid'), tmp_path / 'w.pth.tar')
    out = tmp_path / 'out'
    assert main(['convert', str(path), '--model', 'fan_tiny_8_p4_hybrid.foo', '--out', str(out)]) == 1
    err = capsys.readouterr().err
    assert "Unknown release tag 'foo'" in err and 'fan_tiny_8_p4_hybrid.in1k' in err
    assert not out.exists()
    assert main(['convert', str(path), '--model', 'fan_tiny_8_p4_hybrid.in1k', '--out', str(out), '--img-size',
                 '64']) == 0  # a tag of its own is accepted
