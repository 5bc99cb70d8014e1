"""FAN as a dense-prediction backbone: the stride 4 / 8 / 16 / 32 pyramid of `forward_intermediates` and
`features_only`, for every registered variant.

The contract of timm's own `tests/test_models.py` (`test_model_forward_features`, `..._intermediates_features`,
`..._intermediates`) is restated here: the full-size architectures run on the meta device (shapes only, no compute),
the tiny ones for real (values, no NaN, final features equal to `forward_features`, grad checkpointing identical).
"""
import math

import pytest
import torch
import torch.nn.functional as F

import timm
from fan_stl.models.fan import FEATURE_STRIDES, pyramid_blocks

ALL = timm.list_models('fan_*')
TINY = [n for n in ALL if n.startswith(('fan_tiny', 'fan_t_'))]
SIZE = (64, 96)  # small, not square, a multiple of 32


def _meta(name: str, **kwargs):
    with torch.device('meta'):
        return timm.create_model(name, **kwargs).eval()


def _check_maps(maps, channels, reductions, size=SIZE, real=True) -> None:
    """ timm's feature contract: one map per level, the level's channels, at most ceil(size / reduction) + 1. """
    assert len(maps) == len(channels) == len(reductions) >= 3
    for m, c, r in zip(maps, channels, reductions):
        assert m.shape[:2] == (1, c)
        assert m.shape[2] <= math.ceil(size[0] / r) + 1 and m.shape[3] <= math.ceil(size[1] / r) + 1
        if real:
            assert not torch.isnan(m).any()


def test_every_variant_is_covered():
    assert len(ALL) == 24 and len(TINY) == 6


@pytest.mark.parametrize('name', ALL)
def test_features_only_pyramid_for_every_variant(name):
    model = _meta(name, features_only=True)
    source = _meta(name)
    hybrid = source.pretrained_cfg['first_conv'].startswith('patch_embed.backbone')
    D = source.embed_dim
    assert model.feature_info.reduction() == list(FEATURE_STRIDES)
    assert model.feature_info.channels() == ([128, 256, D, D] if hybrid else [D] * 4)
    assert source.feature_blocks == pyramid_blocks(len(source.blocks), hybrid)
    maps = model(torch.empty(1, 3, *SIZE, device='meta'))
    assert [tuple(m.shape[2:]) for m in maps] == [(SIZE[0] // s, SIZE[1] // s) for s in FEATURE_STRIDES]
    _check_maps(maps, model.feature_info.channels(), model.feature_info.reduction(), real=False)


@pytest.mark.parametrize('name', ALL)
def test_forward_intermediates_contract_for_every_variant(name):
    model = _meta(name)
    info = timm.models.FeatureInfo(model.feature_info, len(model.feature_info))
    final, maps = model.forward_intermediates(torch.empty(1, 3, *SIZE, device='meta'))
    _check_maps(maps, info.channels(), info.reduction(), real=False)
    assert final.shape == (1, 1 + SIZE[0] * SIZE[1] // 256, model.embed_dim)


@pytest.mark.parametrize('feature_cls', [None, 'getter'])
@pytest.mark.parametrize('name', TINY)
def test_features_only_runs_for_real(name, feature_cls):
    kwargs = dict(feature_cls=feature_cls) if feature_cls else {}
    model = timm.create_model(name, features_only=True, **kwargs).eval()
    with torch.no_grad():
        maps = model(torch.randn(1, 3, *SIZE))
    _check_maps(maps, model.feature_info.channels(), model.feature_info.reduction())


@pytest.mark.parametrize('name', TINY)
def test_forward_intermediates_final_equals_forward_features(name):
    model = timm.create_model(name).eval()
    x = torch.randn(1, 3, *SIZE)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x))
        _check_maps(maps, [f['num_chs'] for f in model.feature_info], [f['reduction'] for f in model.feature_info])
        model.set_grad_checkpointing()
        final_ckpt, _ = model.forward_intermediates(x)
    torch.testing.assert_close(final_ckpt, final, rtol=1e-4, atol=1e-5)


def _block_maps(model, x):
    """ The output of every FAN block as a (B, C, H, W) map, taken with forward hooks. """
    outs = []
    hooks = [blk.register_forward_hook(lambda mod, args, out: outs.append(out)) for blk in model.blocks]
    model.forward_features(x)
    for h in hooks:
        h.remove()
    B, _, H, W = x.shape
    return [o.transpose(1, 2).reshape(B, -1, H // 16, W // 16) for o in outs]


def test_hybrid_pyramid_is_the_stages_then_the_last_block_and_its_max_pool():
    model = timm.create_model('fan_tiny_8_p4_hybrid', depth=3).eval()
    x = torch.randn(1, 3, *SIZE)
    with torch.no_grad():
        maps = model.forward_intermediates(x, intermediates_only=True)
        blocks = _block_maps(model, x)
        stage0 = model.patch_embed.backbone.stages[0](model.patch_embed.backbone.stem(x))
    torch.testing.assert_close(maps[0], stage0)
    torch.testing.assert_close(maps[2], blocks[-1])
    torch.testing.assert_close(maps[3], F.max_pool2d(blocks[-1], 2))


def test_vit_pyramid_resamples_the_blocks_ending_each_quarter():
    model = timm.create_model('fan_tiny_12_p16_224', depth=8).eval()
    assert model.feature_blocks == (1, 3, 5, 7)
    x = torch.randn(1, 3, *SIZE)
    with torch.no_grad():
        maps = model.forward_intermediates(x, intermediates_only=True)
        blocks = _block_maps(model, x)
    torch.testing.assert_close(maps[0], F.interpolate(blocks[1], scale_factor=4, mode='bilinear'))
    torch.testing.assert_close(maps[1], F.interpolate(blocks[3], scale_factor=2, mode='bilinear'))
    torch.testing.assert_close(maps[2], blocks[5])
    torch.testing.assert_close(maps[3], F.max_pool2d(blocks[7], 2))


@pytest.mark.parametrize('depth,expected', [(1, (0, 0, 0, 0)), (3, (0, 0, 1, 2)), (12, (2, 5, 8, 11)),
                                            (18, (3, 8, 12, 17)), (24, (5, 11, 17, 23))])
def test_vit_pyramid_blocks(depth, expected):
    assert pyramid_blocks(depth, hybrid=False) == expected
    assert pyramid_blocks(depth, hybrid=True) == (None, None, depth - 1, depth - 1)


@pytest.mark.parametrize('name', ['fan_tiny_8_p4_hybrid', 'fan_tiny_12_p16_224'])
def test_norm_nlc_stop_early_and_selected_indices(name):
    model = timm.create_model(name, depth=4).eval()
    x = torch.randn(1, 3, *SIZE)
    with torch.no_grad():
        every = model.forward_intermediates(x, norm=True, intermediates_only=True)
        early = model.forward_intermediates(x, indices=[0, 2], norm=True, stop_early=True, intermediates_only=True)
        nlc = model.forward_intermediates(x, indices=1, norm=True, output_fmt='NLC', intermediates_only=True)
    torch.testing.assert_close(early[0], every[0])
    torch.testing.assert_close(early[1], every[2])
    assert nlc[0].shape == (1, SIZE[0] * SIZE[1] // 32 ** 2, model.embed_dim)
    torch.testing.assert_close(nlc[0], every[3].flatten(2).transpose(1, 2))


@pytest.mark.parametrize('name,indices,blocks_left', [
    ('fan_tiny_8_p4_hybrid', (0, 1), 0),  # the ConvNeXt stages alone: every FAN block goes
    ('fan_tiny_8_p4_hybrid', (1, 2), 4),
    ('fan_tiny_12_p16_224', (0,), 1),  # the stride-4 level of a depth-4 ViT comes from block 0
])
def test_features_only_prunes_what_the_levels_do_not_need(name, indices, blocks_left):
    torch.manual_seed(0)
    full = timm.create_model(name, depth=4).eval()
    torch.manual_seed(0)  # the same initial weights: pruning happens after init
    model = timm.create_model(name, depth=4, features_only=True, out_indices=indices).eval()
    assert len(model.model.blocks) == blocks_left
    assert model.feature_info.reduction() == [FEATURE_STRIDES[i] for i in indices]
    x = torch.randn(1, 3, *SIZE)
    with torch.no_grad():
        expected = full.forward_intermediates(x, indices=list(indices), intermediates_only=True)
        for got, want in zip(model(x), expected):
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize('out_indices', [(0, 4), (-5,), 5])
def test_out_indices_outside_the_pyramid_get_timm_error(out_indices):
    with pytest.raises(AssertionError, match='out of range'):
        _meta('fan_tiny_8_p4_hybrid', features_only=True, out_indices=out_indices)


def test_odd_token_grid_gives_a_ceil_sized_stride_32_level():
    model = timm.create_model('fan_tiny_8_p4_hybrid', depth=1, features_only=True).eval()
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 48, 80))  # 3 x 5 tokens
    assert tuple(maps[3].shape[2:]) == (2, 3)
