"""smp models on fan encoders: build, forward and backward, encoder weights through timm's pretrained=True, the
save / load round trip, and the errors (no smp, unknown architecture, an input the decoder cannot take)."""
import sys

import pytest
import torch

import timm
from fan_stl.segmentation import models as seg_models
from tests.weights.helpers import random_model, save_official

smp = pytest.importorskip('segmentation_models_pytorch', reason='smp tests need the seg extra: pip install -e ".[seg]"')

HYBRID = 'fan_small_12_p4_hybrid'
VIT = 'fan_tiny_12_p16_224'


def _forward_backward(model, size):
    model.train()
    x = torch.randn(2, 3, *size)
    y = model(x)
    assert y.shape == (2, 12, *size)
    y.logsumexp(1).mean().backward()
    grads = [p.grad for n, p in model.named_parameters() if n.startswith('encoder.')]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize('arch', ['Unet', 'Segformer'])
@pytest.mark.parametrize('encoder', [HYBRID, VIT])
def test_smp_builds_runs_and_trains_on_fan_encoders(arch, encoder):
    model = smp.create_model(arch, encoder_name=f'tu-{encoder}', encoder_weights=None, classes=12)
    assert model.encoder.model.feature_info.reduction() == [4, 8, 16, 32]
    _forward_backward(model, (64, 96))


@pytest.mark.slow
@pytest.mark.parametrize('arch', ['Unet', 'Segformer'])
def test_smp_at_camvid_size(arch):
    _forward_backward(seg_models.build_segmenter(arch, HYBRID, 12), (352, 480))


def test_input_sizes_each_model_takes():
    unet, segformer = (seg_models.build_segmenter(arch, 'fan_tiny_8_p4_hybrid', 11).eval()
                       for arch in ('Unet', 'Segformer'))
    assert seg_models.input_multiple(unet) == 16  # smp's Unet resizes; FAN needs its token stride
    assert seg_models.input_multiple(segformer) == 32
    assert seg_models.input_multiple(seg_models.build_segmenter('Unet', 'resnet18', 11)) == 1
    with torch.no_grad():
        assert unet(torch.randn(1, 3, 48, 80)).shape == (1, 11, 48, 80)  # 3 x 5 tokens, stride 32 by ceil
        with pytest.raises(RuntimeError, match=r'divisible by 32.*\(64, 96\)'):
            segformer(torch.randn(1, 3, 48, 80))
        with pytest.raises(ValueError, match='multiples of the token stride 16'):
            unet(torch.randn(1, 3, 40, 80))


def test_encoder_checkpoint_goes_through_timm_pretrained(tmp_path):
    source = random_model('fan_tiny_8_p4_hybrid')
    path = save_official(source, tmp_path / 'fan_t.pth.tar')
    model = seg_models.build_segmenter('Unet', 'fan_tiny_8_p4_hybrid', 11, encoder_checkpoint=path).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = source.forward_intermediates(x, intermediates_only=True)
        got = model.encoder(x)[2:]  # smp puts the input and an empty stride-2 map first
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=0, atol=0)


def test_fan_checkpoint_of_another_class_count_loads(tmp_path):
    source = timm.create_model('fan_t_hybrid_stl', num_classes=10)
    torch.save({'state_dict': source.state_dict(), 'epoch': 3}, tmp_path / 'c10.pth')
    model = seg_models.build_segmenter('Unet', 'fan_t_hybrid_stl', 11, encoder_checkpoint=tmp_path / 'c10.pth')
    torch.testing.assert_close(model.encoder.model.model.blocks[0].attn.q.weight, source.blocks[0].attn.q.weight)


def test_cnn_encoder_checkpoint_loads_too(tmp_path):
    source = timm.create_model('resnet18', num_classes=10)
    torch.save(source.state_dict(), tmp_path / 'r18.pth')
    model = seg_models.build_segmenter('Unet', 'resnet18', 11, encoder_checkpoint=tmp_path / 'r18.pth')
    torch.testing.assert_close(model.encoder.model.conv1.weight, source.conv1.weight)


def test_save_and_load_round_trip(tmp_path):
    model = seg_models.build_segmenter('Unet', 'fan_tiny_8_p4_hybrid', 11).eval()
    seg_models.save_segmenter(model, tmp_path / 'u.pth', 'Unet', 'fan_tiny_8_p4_hybrid', 11, {'epochs': 2})
    loaded = seg_models.load_segmenter(tmp_path / 'u.pth')
    assert loaded['arch'] == 'Unet' and loaded['extra'] == {'epochs': 2}
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded['model'](x), model(x))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] == []


def test_errors_unknown_arch_missing_files_and_foreign_checkpoints(tmp_path):
    with pytest.raises(ValueError, match="'Unetz' is not an smp architecture"):
        seg_models.build_segmenter('Unetz', VIT, 11)
    with pytest.raises(FileNotFoundError, match='encoder checkpoint'):
        seg_models.build_segmenter('Unet', VIT, 11, encoder_checkpoint=tmp_path / 'none.pth')
    torch.save({'state_dict': {}}, tmp_path / 'other.pth')
    with pytest.raises(ValueError, match='not a fan_stl segmentation checkpoint'):
        seg_models.load_segmenter(tmp_path / 'other.pth')


def test_without_smp_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, 'segmentation_models_pytorch', None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[seg\]"'):
        seg_models.build_segmenter('Unet', VIT, 11)
