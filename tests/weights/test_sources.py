"""Pretrained weights: registry entries, the order of sources and every loading path, offline."""
import functools
import hashlib
import http.server
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants as hf_constants
from safetensors.torch import save_file

import timm
from timm.models import get_pretrained_cfg, save_for_hf

from fan_stl.weights import checkpoint, drive, released, sources
from fan_stl.weights.files import PretrainedWeightsError, UnsafeCheckpointError, WeightsMismatchError

from .helpers import (  # noqa: F401
    add_to_hf_cache, fake_drive, logits, not_published, offline_hub, random_model, save_official, unsafe_pickle)

VIT, HYBRID, TOKEN = 'fan_tiny_12_p16_224', 'fan_tiny_8_p4_hybrid', 'fan_t_hybrid_stl'


def _hub_folder(model: torch.nn.Module, path: Path) -> Path:
    save_for_hf(model, path, safe_serialization=True)
    return path


# --- registry ---------------------------------------------------------------------------------------------------

def test_list_pretrained_lists_every_released_weight():
    expected = {name for w in released.RELEASED_WEIGHTS for name in (w.name, *w.aliases)}
    assert set(timm.list_pretrained('fan*')) == expected
    assert len(expected) == 10 + 2 * 8  # 10 FAN files, 8 STL files under long and short names


@pytest.mark.parametrize('arch, tag', [
    ('fan_tiny_12_p16_224', 'in1k'), ('fan_small_12_p16_224', 'in1k'), ('fan_base_18_p16_224', 'in1k'),
    ('fan_tiny_8_p4_hybrid', 'in1k'), ('fan_small_12_p4_hybrid', 'in1k'),
    ('fan_base_16_p4_hybrid', 'in22k_ft_in1k'), ('fan_large_16_p4_hybrid', 'in22k_ft_in1k'),
    ('fan_l_hybrid_stl', 'in1k'), ('fan_large_16_p4_hybrid_tl', 'in1k'),
])
def test_default_tag_is_best_in1k_weight_at_224(arch, tag):
    cfg = get_pretrained_cfg(arch)
    assert cfg.tag == tag and cfg.input_size == (3, 224, 224)


def test_cfgs_follow_timm_conventions_and_licences():
    for name in timm.list_pretrained('fan*'):
        cfg = get_pretrained_cfg(name)
        weight = released.released_weight(name)
        assert (cfg.crop_pct, cfg.interpolation) == (1.0, 'bicubic')
        assert cfg.hf_hub_id == f'fan-stl/{weight.name}'
        assert cfg.input_size[-1] == (384 if name.endswith('_384') else 224)
        if weight.is_stl:
            assert cfg.license == 'cc-by-nc-sa-4.0' and cfg.paper_ids == 'arXiv:2401.03844' and not cfg.url
            assert cfg.classifier == ('head', 'aux_head')
        else:
            assert cfg.url.startswith(released.FAN_RELEASE_URL) and cfg.url.endswith('.pth.tar')
            assert cfg.paper_ids == 'arXiv:2204.12451'
    assert not timm.list_pretrained('fan_large_24_p16_224*')  # empty link in the authors' README


# --- order of sources -------------------------------------------------------------------------------------------

def _source(name, overlay=None, cache_dir=None):
    arch, tag = name.split('.')
    cfg = timm.models.resolve_pretrained_cfg(arch, tag, overlay).to_dict()
    return sources.resolve_weight_source(arch, cfg, cache_dir)


def test_source_order(offline_hub, tmp_path, monkeypatch):
    fan, stl = 'fan_tiny_12_p16_224.in1k', 'fan_t_hybrid_stl.in1k'
    assert _source(fan).kind == 'url'  # Hub copy neither online nor cached: the authors' release
    stl_source = _source(stl)  # no URL: the authors' Google Drive
    assert (stl_source.kind, stl_source.location) == ('gdrive', released.released_weight(stl).original)
    assert _source(fan, dict(file='w.pth')).kind == 'file'
    assert _source(fan, dict(state_dict={'a': torch.zeros(1)}, file='w.pth')).kind == 'state_dict'
    assert _source(fan, dict(source='hf-hub', hf_hub_id='me/x')).location == 'me/x'
    add_to_hf_cache(offline_hub, 'fan-stl/fan_tiny_12_p16_224.in1k', _hub_folder(random_model(VIT), tmp_path / 'x'))
    assert _source(fan).kind == 'hf-hub'  # a cached copy is preferred to downloading from the URL
    add_to_hf_cache(offline_hub, 'fan-stl/fan_t_hybrid_stl.in1k', _hub_folder(random_model(TOKEN), tmp_path / 'y'))
    assert _source(stl).kind == 'hf-hub'  # ... and to the authors' Drive, with no code edit in between
    with pytest.raises(PretrainedWeightsError, match='No pretrained weights are released for fan_large_24_p16_224'):
        timm.create_model('fan_large_24_p16_224', pretrained=True)


def test_published_hub_copy_takes_over_without_code_edit(offline_hub, fake_drive, tmp_path, monkeypatch):
    """ Online, the Hub copy is downloaded once it is published; before that the authors' file loads; no code edit.
    Offline, nothing is asked of the Hub at all. """
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    published, calls = {}, []

    def download(repo, cache_dir=None):
        calls.append(repo)
        if repo not in published:
            not_published(repo)
        return add_to_hf_cache(offline_hub, repo, published[repo]) / 'model.safetensors'

    monkeypatch.setattr(sources, 'download_from_hub', download)
    authors, hub_copy = random_model(TOKEN), random_model(TOKEN)
    fake_drive.files[released.released_weight('fan_t_hybrid_stl.in1k').drive_id] = save_official(
        authors, tmp_path / 'authors.pth.tar')
    torch.testing.assert_close(logits(timm.create_model(TOKEN, pretrained=True).eval()), logits(authors))
    assert calls == ['fan-stl/fan_t_hybrid_stl.in1k'] and len(fake_drive.calls) == 1
    for path in drive.authors_cache_dir().iterdir():  # a fresh machine: nothing of the authors' is cached
        path.unlink()
    published['fan-stl/fan_t_hybrid_stl.in1k'] = _hub_folder(hub_copy, tmp_path / 'hub')  # a maintainer publishes
    torch.testing.assert_close(logits(timm.create_model(TOKEN, pretrained=True).eval()), logits(hub_copy))
    assert len(calls) == 2 and len(fake_drive.calls) == 1
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', True)
    calls.clear()
    assert _source('fan_tiny_12_p16_224.in1k').kind == 'url' and not calls  # offline: no request at all


def test_cached_copy_loads_without_any_network_request(offline_hub, tmp_path, monkeypatch):
    """ with a cached Hub copy, `create_model(name, pretrained=True)` opens no connection at all, online. """
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    monkeypatch.delenv('FAN_STL_OFFLINE', raising=False)
    source = random_model(TOKEN)
    add_to_hf_cache(offline_hub, 'fan-stl/fan_t_hybrid_stl.in1k', _hub_folder(source, tmp_path / 'x'))
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError('network use in a test that must need none')

    monkeypatch.setattr(socket, 'getaddrinfo', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    model = timm.create_model(TOKEN, pretrained=True).eval()
    assert not attempts
    torch.testing.assert_close(logits(model), logits(source), rtol=0, atol=0)


def test_offline_switches_forbid_every_source(offline_hub, fake_drive, monkeypatch):
    """ offline (HF_HUB_OFFLINE=1, or the project's FAN_STL_OFFLINE=1) nothing is requested from the Hub, the
    authors' GitHub release or their Drive; one message says what was looked for. """
    downloads = []
    monkeypatch.setattr(torch.hub, 'download_url_to_file', lambda *a, **k: downloads.append(a))
    monkeypatch.setattr(sources, 'download_from_hub', lambda *a, **k: downloads.append(a))
    for hf_offline, project_offline, switch in ((True, '', 'HF_HUB_OFFLINE=1'), (False, '1', 'FAN_STL_OFFLINE=1')):
        monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', hf_offline)
        monkeypatch.setenv('FAN_STL_OFFLINE', project_offline)
        with pytest.raises(PretrainedWeightsError) as info:
            timm.create_model(VIT, pretrained=True)  # a FAN weight with an authors' GitHub URL
        message = str(info.value)
        assert 'not cached' in message and switch in message and 'fan_vit_tiny.pth.tar' in message
        with pytest.raises(PretrainedWeightsError, match=f'not cached.*{switch}'):
            timm.create_model(TOKEN, pretrained=True)  # an STL weight on the authors' Drive
        with pytest.raises(PretrainedWeightsError, match=f'not in the local Hugging Face cache and {switch}'):
            sources.create_pretrained('hf-hub:fan-stl/fan_t_hybrid_stl.in1k')
    assert not downloads and not fake_drive.calls


def test_hf_hub_name_without_network_one_message_one_attempt(offline_hub, monkeypatch):
    """ online mode, no network: an `hf-hub:` name (or an annotator's pretrained weights) is one message after
    one connection attempt, not huggingface_hub's LocalEntryNotFoundError after five retries per file. """
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.delenv('FAN_STL_OFFLINE', raising=False)
    attempts = []

    def unreachable(*args, **kwargs):
        attempts.append(args)
        raise OSError('[Errno -2] Name or service not known')

    monkeypatch.setattr(socket, 'create_connection', unreachable)
    monkeypatch.setattr(socket, 'getaddrinfo', unreachable)
    for name in ('hf-hub:someone/absent', 'resnet18.a1_in1k'):
        attempts.clear()
        start = time.perf_counter()
        with pytest.raises(PretrainedWeightsError, match='not in the local Hugging Face cache and the Hub cannot be '
                                                         'reached') as info:
            sources.create_pretrained(name)
        assert len(attempts) == 1 and time.perf_counter() - start < 20
        assert info.value.__cause__ is None


# --- loading paths ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', [VIT, TOKEN])
def test_pretrained_true_from_fake_hf_cache(offline_hub, tmp_path, name):
    source = random_model(name)
    repo = get_pretrained_cfg(name).hf_hub_id
    add_to_hf_cache(offline_hub, repo, _hub_folder(source, tmp_path / 'export'))
    # an unreachable URL proves the cached Hub copy is what loads
    model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(url='http://127.0.0.1:9/x.pth')).eval()
    torch.testing.assert_close(logits(model), logits(source), rtol=0, atol=0)


def test_hf_hub_and_local_dir_names(offline_hub, tmp_path):
    source = random_model(HYBRID)
    folder = _hub_folder(source, tmp_path / 'export')
    add_to_hf_cache(offline_hub, 'someone/my_fan', folder)
    for name in ('hf-hub:someone/my_fan', f'local-dir:{folder}'):
        model = timm.create_model(name, pretrained=True).eval()
        torch.testing.assert_close(logits(model), logits(source), rtol=0, atol=0)


@pytest.mark.parametrize('training_dict', [False, True], ids=['flat', 'training_dict'])
def test_official_file_overlay(tmp_path, training_dict):
    source = random_model(TOKEN)
    path = save_official(source, tmp_path / 'fan_t_stl.pth.tar', training_dict)
    model = timm.create_model(TOKEN, pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    torch.testing.assert_close(logits(model), logits(source), rtol=0, atol=0)


@pytest.fixture
def loopback_server(tmp_path):
    """ Serve `tmp_path / 'www'` on 127.0.0.1 from a thread; yields the base URL and stops the server afterwards. """
    root = tmp_path / 'www'
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}/'
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_release_url_converted_on_load(offline_hub, loopback_server, monkeypatch):
    """ With no Hub copy, the authors' direct URL is used and the training dict converted by checkpoint_filter_fn. """
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.setattr(sources, 'download_from_hub', not_published)
    root, base_url = loopback_server
    source = random_model(VIT)
    save_official(source, root / 'fan_vit_tiny.pth.tar')
    model = timm.create_model(VIT, pretrained=True, pretrained_cfg_overlay=dict(url=base_url + 'fan_vit_tiny.pth.tar'))
    torch.testing.assert_close(logits(model.eval()), logits(source), rtol=0, atol=0)
    assert model.pretrained_cfg.get('hf_hub_id') is None  # the source actually used is recorded


# --- fine-tuning --------------------------------------------------------------------------------------------------

def test_num_classes_drops_head_and_aux_head_only(tmp_path):
    source = random_model(TOKEN)
    path = save_official(source, tmp_path / 'w.pth.tar', training_dict=False)
    model = timm.create_model(TOKEN, pretrained=True, num_classes=37, pretrained_cfg_overlay=dict(file=str(path)))
    loaded, original = model.state_dict(), source.state_dict()
    assert set(loaded) == set(original)
    assert loaded['head.weight'].shape == loaded['aux_head.weight'].shape == (37, 192)
    differing = {k for k in original if not torch.equal(loaded[k], original[k])}
    assert differing == {'head.weight', 'head.bias', 'aux_head.weight', 'aux_head.bias'}


def test_in_chans_1_adapts_first_conv(tmp_path):
    source = random_model(HYBRID)
    path = save_official(source, tmp_path / 'w.pth.tar', training_dict=False)
    model = timm.create_model(HYBRID, pretrained=True, in_chans=1, pretrained_cfg_overlay=dict(file=str(path)))
    conv = 'patch_embed.backbone.stem.0.weight'
    torch.testing.assert_close(model.state_dict()[conv], source.state_dict()[conv].sum(1, keepdim=True))
    assert torch.equal(model.state_dict()['blocks.0.attn.q.weight'], source.state_dict()['blocks.0.attn.q.weight'])


def test_features_only_loads_backbone(tmp_path):
    source = random_model(HYBRID)
    path = save_official(source, tmp_path / 'w.pth.tar')
    features = timm.create_model(
        HYBRID, features_only=True, pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = source.forward_intermediates(x, intermediates_only=True)  # the whole 4-level pyramid
        got = features(x)
    assert len(got) == 4
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=0, atol=0)


# --- failures: one clear message each ---------------------------------------------------------------------------

def test_offline_with_nothing_cached_one_clear_message(offline_hub, fake_drive):
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsError) as info:
        timm.create_model(TOKEN, pretrained=True)
    message = str(info.value)
    assert time.perf_counter() - start < 30 and not fake_drive.calls  # a retry storm took ~50 s; load-tolerant bound
    assert 'not cached' in message and 'HF_HUB_OFFLINE=1' in message and 'drive.google.com' in message
    assert 'pretrained_cfg_overlay=dict(file=PATH)' in message and '--checkpoint PATH' in info.value.cli_message
    assert 'hf download' not in message  # no advice to fetch a repo that may not exist
    assert info.value.__suppress_context__ or info.value.__cause__ is None  # no chained traceback


@pytest.fixture
def unreachable_hub(monkeypatch):
    """ Online mode with no network: the one check that the Hub answers fails at once; the list records each. """
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    attempts = []

    def unreachable():
        attempts.append('huggingface.co')
        return 'huggingface.co:443: [Errno -2] Name or service not known'

    monkeypatch.setattr(sources, 'hub_unreachable', unreachable)
    return attempts


def test_no_network_gives_up_fast_with_one_message(offline_hub, fake_drive, unreachable_hub):
    """ Online mode but no network: the Hub check and the Drive download fail once each, quickly, one message. """
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsError) as info:
        timm.create_model(TOKEN, pretrained=True)
    assert len(unreachable_hub) == 1 and len(fake_drive.calls) == 1  # one try each, no retries
    assert time.perf_counter() - start < 30  # a retry storm took ~50 s; load-tolerant bound
    assert "Downloading fan_t_hybrid_stl.in1k from the authors' Google Drive" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_cached_hub_copy_without_network_loads_at_once(offline_hub, unreachable_hub, tmp_path, monkeypatch):
    """ Online mode, no network, a cached Hub copy: it is read directly, without huggingface_hub's retries. """
    source = random_model(TOKEN)
    snapshot = add_to_hf_cache(offline_hub, 'fan-stl/fan_t_hybrid_stl.in1k', _hub_folder(source, tmp_path / 'x'))
    def no_download(*args, **kwargs):
        raise AssertionError('the Hub must not be asked again')

    monkeypatch.setattr(timm.models._hub, 'hf_hub_download', no_download)
    model = timm.create_model(TOKEN, pretrained=True).eval()
    assert model.pretrained_cfg['file'] == str(snapshot / 'model.safetensors') and not unreachable_hub
    torch.testing.assert_close(logits(model), logits(source), rtol=0, atol=0)


# --- the authors' Google Drive -------------------------------------------------------------------------------------

def test_drive_first_load_converts_and_caches_then_reads_safetensors_only(offline_hub, fake_drive, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.setattr(sources, 'download_from_hub', not_published)  # not published
    source = random_model(TOKEN)
    weight = released.released_weight('fan_t_hybrid_stl.in1k')
    original = save_official(source, tmp_path / 'fan_t_stl.pth.tar')
    fake_drive.files[weight.drive_id] = original
    first = timm.create_model(TOKEN, pretrained=True).eval()
    torch.testing.assert_close(logits(first), logits(source), rtol=0, atol=0)
    assert fake_drive.calls[0]['quiet'] is False  # gdown shows its progress bar
    cached = sorted(drive.authors_cache_dir().iterdir())
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    name = f'fan_t_hybrid_stl.in1k.gdrive-{weight.drive_id}.sha256-{digest}.safetensors'
    assert [p.name for p in cached] == [name, name + '.sha256']  # the copy, and the record of its own sha256
    assert cached[1].read_text().strip() == hashlib.sha256(cached[0].read_bytes()).hexdigest()
    assert first.pretrained_cfg['file'] == str(cached[0])

    def no_pickle(*args, **kwargs):
        raise AssertionError('a later load must not unpickle anything')

    monkeypatch.setattr(torch, 'load', no_pickle)
    second = timm.create_model('fan_tiny_8_p4_hybrid_stl', pretrained=True).eval()  # long name, same weight
    assert len(fake_drive.calls) == 1
    torch.testing.assert_close(logits(second), logits(source), rtol=0, atol=0)


@pytest.mark.parametrize('page, named', [
    (b'<!DOCTYPE html><html><title>Google Drive - Quota exceeded</title>Too many users have viewed or downloaded '
     b'this file recently.</html>', 'quota page'),
    (b'<html><body>Sign in - Google Accounts</body></html>', 'web page'),
])
def test_drive_html_instead_of_weights_named(offline_hub, fake_drive, tmp_path, monkeypatch, page, named):
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.setattr(sources, 'download_from_hub', not_published)
    (tmp_path / 'page.html').write_bytes(page)
    fake_drive.files[released.released_weight('fan_t_hybrid_stl.in1k').drive_id] = tmp_path / 'page.html'
    with pytest.raises(PretrainedWeightsError) as info:
        timm.create_model(TOKEN, pretrained=True)
    message = str(info.value)
    assert f'Google Drive sent' in message and named in message and 'instead of the weights' in message
    assert 'by hand' in message and 'pretrained_cfg_overlay=dict(file=PATH)' in message
    assert not list(drive.authors_cache_dir().glob('*.safetensors'))  # nothing cached, no partial file left


def test_drive_quota_error_from_gdown_named(offline_hub, fake_drive, monkeypatch):
    import gdown
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.setattr(sources, 'download_from_hub', not_published)

    def quota(**kwargs):
        raise gdown.exceptions.FileURLRetrievalError('Cannot retrieve the public link of the file. You may need to '
                                                     "change the permission to 'Anyone with the link', or have had "
                                                     'many accesses.')

    monkeypatch.setattr(gdown, 'download', quota)
    with pytest.raises(PretrainedWeightsError, match=r"(?s)Google Drive .* failed \(FileURLRetrievalError: .*many "
                                                     r'accesses.*by hand'):
        timm.create_model(TOKEN, pretrained=True)


def test_truncated_checkpoint_file(tmp_path):
    path = save_official(random_model(VIT), tmp_path / 'w.pth.tar')
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(PretrainedWeightsError, match='truncated or corrupt'):
        timm.create_model(VIT, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))


def test_corrupt_file_in_hf_cache_named(offline_hub, tmp_path):
    folder = tmp_path / 'export'
    folder.mkdir()
    save_file({'x': torch.zeros(4)}, folder / 'model.safetensors')
    (folder / 'model.safetensors').write_bytes((folder / 'model.safetensors').read_bytes()[:-8])
    snapshot = add_to_hf_cache(offline_hub, 'fan-stl/fan_t_hybrid_stl.in1k', folder)
    with pytest.raises(PretrainedWeightsError) as info:
        timm.create_model(TOKEN, pretrained=True)
    assert 'truncated or corrupt' in str(info.value) and str(snapshot / 'model.safetensors') in str(info.value)


def test_checkpoint_of_another_architecture_suggests_the_right_one(tmp_path):
    path = save_official(random_model(VIT), tmp_path / 'w.pth.tar')
    with pytest.raises(WeightsMismatchError) as info:
        timm.create_model(HYBRID, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    message = str(info.value)
    assert 'does not fit fan_tiny_8_p4_hybrid' in message and 'missing keys' in message
    assert 'The checkpoint fits: fan_tiny_12_p16_224.' in message


def test_unknown_tag():
    with pytest.raises(PretrainedWeightsError, match=r"Unknown pretrained tag 'in21k' .* fan_tiny_12_p16_224\.in1k"):
        timm.create_model('fan_tiny_12_p16_224.in21k', pretrained=True)


def test_token_checkpoint_into_plain_hybrid_drops_aux_head(tmp_path):
    source = random_model(TOKEN)
    path = save_official(source, tmp_path / 'w.pth.tar')
    model = timm.create_model(HYBRID, pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    expected = {k: v for k, v in source.state_dict().items() if not k.startswith('aux_head.')}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())


# --- loading never misleads: one test per kind of bad file -----------------------------------------------------------

def test_pickle_that_runs_code_is_reported_unsafe_and_not_run(tmp_path):
    path, marker = unsafe_pickle(tmp_path)
    with pytest.raises(UnsafeCheckpointError) as info:
        timm.create_model(VIT, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    message = str(info.value)
    assert 'holds code / unsupported global' in message and 'system' in message and 'not executed' in message
    assert 'truncated' not in message and 'corrupt' not in message
    assert not marker.exists()


def test_hf_hub_and_local_dir_failures_are_package_errors(offline_hub, tmp_path):
    folder = _hub_folder(random_model(VIT), tmp_path / 'no_weights')
    (folder / 'model.safetensors').unlink()
    with pytest.raises(PretrainedWeightsError, match='holds no weight file'):
        timm.create_model(f'local-dir:{folder}', pretrained=True)
    add_to_hf_cache(offline_hub, 'someone/cut', folder)
    with pytest.raises(PretrainedWeightsError, match='not in the local Hugging Face cache'):
        timm.create_model('hf-hub:someone/cut', pretrained=True)


def test_file_with_its_own_num_classes_keeps_the_heads(tmp_path):
    source = random_model(TOKEN, num_classes=7)
    path = save_official(source, tmp_path / 'tuned.pth.tar')
    model = timm.create_model(TOKEN, pretrained=True, num_classes=7, pretrained_cfg_overlay=dict(file=str(path)))
    torch.testing.assert_close(logits(model.eval()), logits(source), rtol=0, atol=0)
    assert model.pretrained_cfg['num_classes'] == 7


def _nan_model(name):
    model = random_model(name)
    with torch.no_grad():
        model.blocks[0].attn.q.weight[0, 0] = float('nan')
    return model


def test_non_finite_weights_refused_on_every_path(offline_hub, tmp_path):
    source = _nan_model(VIT)
    path = save_official(source, tmp_path / 'nan.pth.tar')
    folder = _hub_folder(source, tmp_path / 'nan_folder')
    add_to_hf_cache(offline_hub, 'fan-stl/fan_tiny_12_p16_224.in1k', folder)
    for kwargs in (dict(model_name=VIT, pretrained_cfg_overlay=dict(file=str(path))),
                   dict(model_name=VIT, pretrained_cfg_overlay=dict(state_dict=source.state_dict())),
                   dict(model_name=f'local-dir:{folder}'),
                   dict(model_name=VIT)):  # the cached Hub copy
        with pytest.raises(PretrainedWeightsError, match=r'NaN / Inf values in 1 tensors \(blocks.0.attn.q.weight'):
            timm.create_model(pretrained=True, **kwargs)


@pytest.mark.parametrize('content, match', [
    ([torch.zeros(2)], 'holds a list, not a state dict'),
    ({'a': 1, 'b': 'x'}, r"entries \['a', 'b'\] are not tensors"),
])
def test_file_that_is_not_a_state_dict(tmp_path, content, match):
    torch.save(content, tmp_path / 'w.pth')
    with pytest.raises(PretrainedWeightsError, match=match):
        timm.create_model(VIT, pretrained=True, pretrained_cfg_overlay=dict(file=str(tmp_path / 'w.pth')))


def test_missing_file():
    with pytest.raises(PretrainedWeightsError, match='nowhere.pth does not exist'):
        timm.create_model(VIT, pretrained=True, pretrained_cfg_overlay=dict(file='nowhere.pth'))


def test_load_checkpoint_gives_the_messages_of_file_overlay(tmp_path):
    """ What token-label teachers and `eval --checkpoint` use for an already built model. """
    model = random_model(HYBRID)
    wrong = save_official(random_model(VIT), tmp_path / 'vit.pth.tar')
    with pytest.raises(WeightsMismatchError, match='The checkpoint fits: fan_tiny_12_p16_224.'):
        checkpoint.load_checkpoint(model, wrong)
    cut = save_official(random_model(HYBRID), tmp_path / 'cut.pth.tar')
    cut.write_bytes(cut.read_bytes()[:1000])
    with pytest.raises(PretrainedWeightsError, match='truncated or corrupt'):
        checkpoint.load_checkpoint(model, cut)
    with pytest.raises(PretrainedWeightsError, match='missing.pth does not exist'):
        checkpoint.load_checkpoint(model, tmp_path / 'missing.pth')
    source = random_model(HYBRID)
    checkpoint.load_checkpoint(model, save_official(source, tmp_path / 'ok.pth.tar'))
    torch.testing.assert_close(logits(model), logits(source), rtol=0, atol=0)
