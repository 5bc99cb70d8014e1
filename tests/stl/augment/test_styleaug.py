"""StyleAug: the authors' network architecture (parameter names, shapes), the weights path, the offline message.

The authors' transformer weights cannot be downloaded here (no network beyond PyPI), so these tests use a randomly
initialised network of the same architecture, written in the authors' checkpoint format.
"""
import pytest
import torch

from fan_stl.stl.augment import styleaug
from fan_stl.stl.augment.styleaug import StyleAugment, StyleTransformer, convert_styleaug_weights
from fan_stl.weights.files import PretrainedWeightsError

# a few of the authors' checkpoint keys (philipjackson/style-augmentation, styleaug/ghiasi.py) and their shapes
AUTHORS_KEYS = {'layers.0.conv.weight': (32, 3, 9, 9), 'layers.3.fc_gamma2.weight': (128, 100),
                'layers.8.fc_beta.bias': (64,), 'layers.10.conv.weight': (3, 32, 9, 9)}


def _authors_files(tmp_path):
    torch.manual_seed(0)
    transformer = tmp_path / 'checkpoint_transformer.pth'
    embeddings = tmp_path / 'checkpoint_embeddings.pth'
    torch.save({'state_dict_ghiasi': StyleTransformer().state_dict()}, transformer)
    a = torch.randn(100, 100)
    torch.save({'imagenet_embedding_mean': torch.randn(100).double(), 'pbn_embedding_mean': torch.randn(100),
                'pbn_embedding_covariance': (a @ a.T / 100).double()}, embeddings)
    return str(transformer), str(embeddings)


def test_architecture_has_the_authors_parameters():
    state = StyleTransformer().state_dict()
    assert {k: tuple(state[k].shape) for k in AUTHORS_KEYS} == AUTHORS_KEYS
    assert sum(v.numel() for v in state.values()) == 1954593


def test_converted_weights_load_and_restyle(tmp_path, monkeypatch):
    out = convert_styleaug_weights(*_authors_files(tmp_path), out=str(tmp_path / 'styleaug.safetensors'))
    network, stats = styleaug.load_styleaug_weights(str(out))
    method = StyleAugment(network, stats, alpha=0.5)
    torch.testing.assert_close(method.A @ method.A.T, stats['pbn_embedding_covariance'].float(), atol=1e-4, rtol=1e-4)
    images = torch.rand(2, 3, 32, 32)
    restyled = method.transform(images)
    assert restyled.shape == images.shape and 0 <= restyled.min() and restyled.max() <= 1
    assert not torch.allclose(restyled, images, atol=0.05)
    out.write_bytes(out.read_bytes()[:-8] + b'tampered')
    with pytest.raises(PretrainedWeightsError, match='sha256'):
        styleaug.load_styleaug_weights(str(out))


def test_offline_without_weights_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(styleaug, 'styleaug_cache_file', lambda: tmp_path / 'none.safetensors')
    monkeypatch.setenv('FAN_STL_OFFLINE', '1')
    with pytest.raises(PretrainedWeightsError, match='FAN_STL_OFFLINE=1.*checkpoint_transformer.pth'):
        styleaug.load_styleaug_weights()


def test_online_path_downloads_and_converts_once(tmp_path, monkeypatch):
    cache = tmp_path / 'cache' / 'styleaug.safetensors'
    monkeypatch.setattr(styleaug, 'styleaug_cache_file', lambda: cache)
    monkeypatch.delenv('FAN_STL_OFFLINE', raising=False)
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    monkeypatch.setattr(styleaug, 'offline', lambda: False)
    calls = []
    monkeypatch.setattr(styleaug, '_download_authors_files', lambda: calls.append(1) or _authors_files(tmp_path))
    styleaug.load_styleaug_weights()
    styleaug.load_styleaug_weights()
    assert cache.is_file() and len(calls) == 1
