"""The conversion tool: safe reading, strict load with clear errors, Hub folder output, round trip, push failures."""
import collections
import json

import pytest
import torch
from huggingface_hub import constants as hf_constants

import timm

from fan_stl.cli import main
from fan_stl.convert import ConversionError, convert_checkpoint, load_checkpoint_file, push_to_hub
from fan_stl.hub import WeightsMismatchError

from .weights_helpers import add_to_hf_cache, logits, offline_hub, random_model, save_official  # noqa: F401


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
    assert config['architecture'] == name and config['pretrained_cfg']['crop_pct'] == 1.0
    add_to_hf_cache(offline_hub, repo, out)
    model = timm.create_model(name, pretrained=True).eval()
    torch.testing.assert_close(logits(model), logits(source), rtol=0, atol=0)


def test_model_card_content(tmp_path):
    out = tmp_path / 'card'
    convert_checkpoint(save_official(random_model('fan_t_hybrid_stl'), tmp_path / 'w.pth'), 'fan_t_hybrid_stl.in1k',
                       out, img_size=64)
    card = (out / 'README.md').read_text()
    assert 'license: cc-by-nc-sa-4.0' in card and 'library_name: timm' in card
    usage = card[card.index('## Model Usage'):]
    assert usage.split('\n')[2].startswith('import fan_stl')
    assert "hf-hub:fan-stl/fan_t_hybrid_stl.in1k" in usage
    assert 'ImageNet-1k: 79.9' in card and 'ImageNet-A: 23.7' in card and 'not mCE' in card
    assert '@inproceedings{zhao2023fully' in card and 'cls_logits + 0.5' in card


def test_ema_preferred_and_no_ema_flag(tmp_path):
    source = random_model('fan_tiny_12_p16_224')
    path = save_official(source, tmp_path / 'w.pth.tar')
    ema, picked = load_checkpoint_file(path)
    assert picked == 'state_dict_ema' and torch.equal(ema['blocks.0.attn.q.weight'], source.blocks[0].attn.q.weight)
    raw, picked = load_checkpoint_file(path, use_ema=False)
    assert picked == 'state_dict' and 'module.blocks.0.attn.q.weight' in raw
    torch.save({'state_dict_ema': source.state_dict()}, tmp_path / 'ema_only.pth')
    with pytest.raises(ConversionError, match='only state_dict_ema.*drop --no-ema'):
        load_checkpoint_file(tmp_path / 'ema_only.pth', use_ema=False)


def test_refuses_pickled_code(tmp_path):
    torch.save({'state_dict': collections.OrderedDict(w=torch.zeros(1)), 'extra': NotATensor()}, tmp_path / 'x.pth')
    with pytest.raises(ConversionError, match='pickled Python objects .* not executed'):
        load_checkpoint_file(tmp_path / 'x.pth')


@pytest.mark.parametrize('content, match', [
    (None, 'does not exist'),
    (b'\x00' * 64, 'truncated or corrupt'),
])
def test_missing_or_corrupt_checkpoint(tmp_path, content, match):
    path = tmp_path / 'w.pth.tar'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConversionError, match=match):
        load_checkpoint_file(path)


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
