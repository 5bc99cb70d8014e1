"""FAN model family: registry names, the official state-dict contract, the output contract and timm's model API."""
import argparse
from typing import Dict, List, Tuple

import pytest
import torch

import timm
from fan_stl.models.fan import FAN, checkpoint_filter_fn

# (embed_dim, heads, depth, stem) per architecture, and the parameter counts of the official models (spec §7.3)
ARCHS = {
    'fan_tiny_12_p16_224': (192, 4, 12, None, 7_319_920),
    'fan_small_12_p16_224': (384, 8, 12, None, 28_345_336),
    'fan_base_18_p16_224': (448, 8, 18, None, 54_350_320),
    'fan_large_24_p16_224': (480, 10, 24, None, 80_574_100),
    'fan_tiny_8_p4_hybrid': (192, 8, 8, (3, 3), 7_467_240),
    'fan_small_12_p4_hybrid': (384, 8, 10, (3, 3), 26_117_944),
    'fan_base_16_p4_hybrid': (448, 8, 16, (3, 3), 50_475_048),
    'fan_large_16_p4_hybrid': (480, 10, 22, (3, 5), 76_855_140),
}
TOKEN_PARAMS = {'tiny_8': 7_660_240, 'small_12': 26_502_944, 'base_16': 50_924_048, 'large_16': 77_336_140}
SHORT = {'t': 'tiny_8', 's': 'small_12', 'b': 'base_16', 'l': 'large_16'}
TOKEN_ARCHS = {
    **{f'fan_{size}_p4_hybrid_{kind}': size for size in SHORT.values() for kind in ('tl', 'stl')},
    **{f'fan_{short}_hybrid_{kind}': size for short, size in SHORT.items() for kind in ('tl', 'stl')},
}


def official_keys(embed_dim: int, heads: int, depth: int, stem, token_head: bool, K: int = 1000) -> Dict[str, Tuple]:
    """ The official state-dict keys and shapes, in order, as listed in the spec (§7.3). """
    D = embed_dim
    keys: Dict[str, Tuple] = {'cls_token': (1, 1, D)}
    bn = lambda p, w: {f'{p}.weight': (w,), f'{p}.bias': (w,), f'{p}.running_mean': (w,),  # noqa: E731
                       f'{p}.running_var': (w,), f'{p}.num_batches_tracked': ()}
    if stem is None:
        widths = (3, D // 8, D // 4, D // 2, D)
        for i in range(4):
            keys[f'patch_embed.proj.{2 * i}.0.weight'] = (widths[i + 1], widths[i], 3, 3)
            keys.update(bn(f'patch_embed.proj.{2 * i}.1', widths[i + 1]))
    else:
        p = 'patch_embed.backbone.'
        keys.update({p + 'stem.0.weight': (128, 3, 4, 4), p + 'stem.0.bias': (128,),
                     p + 'stem.1.weight': (128,), p + 'stem.1.bias': (128,)})
        for s, (C, n) in enumerate(zip((128, 256), stem)):
            if s == 1:
                keys.update({p + 'stages.1.downsample.0.weight': (128,), p + 'stages.1.downsample.0.bias': (128,),
                             p + 'stages.1.downsample.1.weight': (256, 128, 2, 2),
                             p + 'stages.1.downsample.1.bias': (256,)})
            for j in range(n):
                b = f'{p}stages.{s}.blocks.{j}.'
                keys.update({b + 'gamma': (C,), b + 'conv_dw.weight': (C, 1, 7, 7), b + 'conv_dw.bias': (C,),
                             b + 'norm.weight': (C,), b + 'norm.bias': (C,), b + 'mlp.fc1.weight': (4 * C, C, 1, 1),
                             b + 'mlp.fc1.bias': (4 * C,), b + 'mlp.fc2.weight': (C, 4 * C, 1, 1),
                             b + 'mlp.fc2.bias': (C,)})
        keys.update({'patch_embed.proj.weight': (D, 256, 2, 2), 'patch_embed.proj.bias': (D,)})
    keys.update({'pos_embed.token_projection.weight': (D, 64, 1, 1), 'pos_embed.token_projection.bias': (D,)})
    for i in range(depth):
        b = f'blocks.{i}.'
        keys.update({
            b + 'gamma1': (D,), b + 'gamma2': (D,), b + 'norm1.weight': (D,), b + 'norm1.bias': (D,),
            b + 'attn.q.weight': (D, D), b + 'attn.q.bias': (D,), b + 'attn.kv.weight': (2 * D, D),
            b + 'attn.kv.bias': (2 * D,), b + 'attn.proj.weight': (D, D), b + 'attn.proj.bias': (D,),
            b + 'norm2.weight': (D,), b + 'norm2.bias': (D,), b + 'mlp.temperature': (heads, 1, 1),
            b + 'mlp.mlp_v.gamma': (4 * D,), b + 'mlp.mlp_v.fc1.weight': (4 * D, D), b + 'mlp.mlp_v.fc1.bias': (4 * D,),
            b + 'mlp.mlp_v.dwconv.conv1.weight': (4 * D, 1, 3, 3), b + 'mlp.mlp_v.dwconv.conv1.bias': (4 * D,),
            **bn(b + 'mlp.mlp_v.dwconv.bn', 4 * D),
            b + 'mlp.mlp_v.dwconv.conv2.weight': (4 * D, 1, 3, 3), b + 'mlp.mlp_v.dwconv.conv2.bias': (4 * D,),
            b + 'mlp.mlp_v.fc2.weight': (D, 4 * D), b + 'mlp.mlp_v.fc2.bias': (D,), b + 'mlp.norm_v.weight': (D,),
            b + 'mlp.norm_v.bias': (D,), b + 'mlp.q.weight': (D, D), b + 'mlp.q.bias': (D,),
        })
    for i in range(2):
        b = f'cls_attn_blocks.{i}.'
        keys.update({b + 'gamma1': (D,), b + 'gamma2': (D,), b + 'norm1.weight': (D,), b + 'norm1.bias': (D,)})
        for proj in 'qkv':
            keys.update({f'{b}attn.{proj}.weight': (D, D), f'{b}attn.{proj}.bias': (D,)})
        keys.update({b + 'attn.proj.weight': (D, D), b + 'attn.proj.bias': (D,), b + 'norm2.weight': (D,),
                     b + 'norm2.bias': (D,), b + 'mlp.fc1.weight': (4 * D, D), b + 'mlp.fc1.bias': (4 * D,),
                     b + 'mlp.fc2.weight': (D, 4 * D), b + 'mlp.fc2.bias': (D,)})
    keys.update({'norm.weight': (D,), 'norm.bias': (D,), 'head.weight': (K, D), 'head.bias': (K,)})
    if token_head:
        keys.update({'aux_head.weight': (K, D), 'aux_head.bias': (K,)})
    return keys


def _state_shapes(model: torch.nn.Module) -> List[Tuple[str, Tuple]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


@pytest.mark.parametrize('name', list(ARCHS))
def test_plain_architectures_match_official_contract(name):
    D, h, L, stem, params = ARCHS[name]
    model = timm.create_model(name, device='meta')
    assert sum(p.numel() for p in model.parameters()) == params
    assert _state_shapes(model) == list(official_keys(D, h, L, stem, token_head=False).items())


@pytest.mark.parametrize('name', list(TOKEN_ARCHS))
def test_token_architectures_match_official_contract(name):
    hybrid = f'fan_{TOKEN_ARCHS[name]}_p4_hybrid'
    D, h, L, stem, _ = ARCHS[hybrid]
    model = timm.create_model(name, device='meta')
    assert sum(p.numel() for p in model.parameters()) == TOKEN_PARAMS[TOKEN_ARCHS[name]]
    assert _state_shapes(model) == list(official_keys(D, h, L, stem, token_head=True).items())


def test_registry_lists_every_name_and_resolves_official_token_names():
    names = set(timm.list_models('fan*'))
    assert set(ARCHS) | set(TOKEN_ARCHS) <= names
    assert timm.list_modules().count('fan') == 1
    with pytest.warns(UserWarning, match='deprecated'):
        model = timm.create_model('fan_tiny_8_p4_hybrid_token', device='meta')
    assert model.aux_head is not None and len(model.blocks) == 8


def _tiny(name: str = 'fan_t_hybrid_stl', **kwargs) -> FAN:
    return timm.create_model(name, depth=2, **{'num_classes': 10, **kwargs})


def _official_checkpoint(model: FAN, path, training_dict: bool, prefix: str = '') -> None:
    state = {prefix + k: v.clone() for k, v in model.state_dict().items()}
    if training_dict:
        state = {'epoch': 3, 'arch': 'fan', 'state_dict': {k: torch.zeros_like(v) for k, v in state.items()},
                 'state_dict_ema': state, 'args': argparse.Namespace(lr=1e-3), 'version': 2}
    torch.save(state, path)


@pytest.mark.parametrize('name', ['fan_tiny_12_p16_224', 'fan_tiny_8_p4_hybrid', 'fan_t_hybrid_stl'])
@pytest.mark.parametrize('training_dict,prefix', [(False, ''), (True, 'module.'), (False, '_orig_mod.')])
def test_official_format_checkpoint_loads_strictly_and_reproduces_outputs(tmp_path, name, training_dict, prefix):
    source = _tiny(name).eval()
    path = tmp_path / 'official.pth.tar'
    _official_checkpoint(source, path, training_dict, prefix)
    loaded = timm.create_model(name, depth=2, num_classes=10, pretrained=True,
                               pretrained_cfg_overlay=dict(file=str(path), num_classes=10)).eval()
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(loaded(x), source(x), rtol=0, atol=0)


def test_token_checkpoint_loads_into_plain_hybrid_without_aux_head():
    token_model = _tiny('fan_t_hybrid_tl').eval()
    plain = _tiny('fan_tiny_8_p4_hybrid').eval()
    plain.load_state_dict(checkpoint_filter_fn({'model': token_model.state_dict()}, plain), strict=True)
    token_model.fuse_token_logits = False
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(plain(x), token_model(x))


def test_fused_qkv_class_attention_checkpoint_is_split():
    model = _tiny('fan_tiny_12_p16_224')
    state = dict(model.state_dict())
    for i in range(2):
        p = f'cls_attn_blocks.{i}.attn.'
        for part in ('weight', 'bias'):
            state[p + 'qkv.' + part] = torch.cat([state.pop(f'{p}{n}.{part}') for n in 'qkv'])
    model.load_state_dict(checkpoint_filter_fn(state, model), strict=True)


# --- output contract of the token-head models -------------------------------------------------------------------

def test_token_model_forward_fuses_cls_and_max_token_logits_in_both_modes():
    model = _tiny()
    x = torch.randn(2, 3, 64, 64)
    for train in (True, False):
        model.train(train)
        torch.manual_seed(1)
        cls_logits, token_logits = model.forward_dense(x)
        assert token_logits.shape == (2, 16, 10)
        torch.manual_seed(1)
        out = model(x)
        torch.testing.assert_close(out, cls_logits + 0.5 * token_logits.max(dim=1).values)
    model.fuse_token_logits = False
    model.eval()
    torch.testing.assert_close(model(x), model.forward_dense(x)[0])


def test_token_label_training_flag_returns_pair_only_in_train_mode():
    model = _tiny()
    model.set_token_label_training(True)
    x = torch.randn(2, 3, 64, 64)
    out = model.train()(x)
    assert isinstance(out, tuple) and out[0].shape == (2, 10) and out[1].shape == (2, 16, 10)
    assert isinstance(model.eval()(x), torch.Tensor)
    model.set_token_label_training(False)
    assert isinstance(model.train()(x), torch.Tensor)


def test_models_without_token_head_refuse_token_apis_clearly():
    model = _tiny('fan_tiny_8_p4_hybrid')
    with pytest.raises(ValueError, match='token-head model'):
        model.set_token_label_training(True)
    with pytest.raises(ValueError, match='token-head model'):
        model.forward_dense(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize('size', [(64, 64), (96, 160), (48, 32)])
def test_any_input_divisible_by_token_stride_works(size):
    model = _tiny().eval()
    cls_logits, token_logits = model.forward_dense(torch.randn(1, 3, *size))
    assert token_logits.shape[1] == (size[0] // 16) * (size[1] // 16)


@pytest.mark.parametrize('size', [(65, 64), (64, 100), (8, 8)])
def test_other_input_sizes_get_a_clear_error(size):
    with pytest.raises(ValueError, match='multiples of the token stride 16'):
        _tiny()(torch.randn(1, 3, *size))


# --- timm model API -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['fan_small_12_p16_224', 'fan_small_12_p4_hybrid', 'fan_l_hybrid_stl'])
def test_pretrained_cfg_follows_timm_conventions(name):
    model = timm.create_model(name, device='meta')
    cfg = model.pretrained_cfg
    assert cfg['input_size'] == (3, 224, 224) and cfg['crop_pct'] == 1.0 and cfg['interpolation'] == 'bicubic'
    assert cfg['mean'] == timm.data.IMAGENET_DEFAULT_MEAN and cfg['std'] == timm.data.IMAGENET_DEFAULT_STD
    state = model.state_dict()
    assert cfg['first_conv'] + '.weight' in state
    classifiers = cfg['classifier'] if isinstance(cfg['classifier'], (tuple, list)) else (cfg['classifier'],)
    assert classifiers == (('head', 'aux_head') if model.aux_head is not None else ('head',))
    assert all(c + '.weight' in state for c in classifiers)


def test_forward_head_pre_logits_and_pooling():
    model = _tiny().eval()
    x = torch.randn(2, 3, 64, 64)
    tokens = model.forward_features(x)
    assert tokens.shape == (2, 17, 192)
    assert model.forward_head(tokens, pre_logits=True).shape == (2, 192)
    model.reset_classifier(0)
    assert model(x).shape == (2, 192)
    model.reset_classifier(0, global_pool='')
    assert model(x).shape == (2, 17, 192)
    model.reset_classifier(5, global_pool='avg')
    assert model(x).shape == (2, 5)


def test_reset_classifier_rebuilds_both_heads_keeping_device_dtype_and_mode():
    model = _tiny().to(torch.bfloat16).train()
    model.reset_classifier(3)
    for head in (model.get_classifier(), model.aux_head):
        assert head.out_features == 3 and head.weight.dtype == torch.bfloat16 and head.training
    model.eval().reset_classifier(4, global_pool=None)
    assert not model.aux_head.training and model.global_pool == 'token'


@pytest.mark.parametrize('name', ['fan_t_hybrid_stl', 'fan_tiny_12_p16_224'])
def test_grad_checkpointing_gives_identical_outputs_and_grads(name):
    model = _tiny(name, drop_path_rate=0.).train()
    x = torch.randn(2, 3, 64, 64)
    ref = model(x)
    ref.sum().backward()
    ref_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.set_grad_checkpointing(True)
    out = model(x)
    out.sum().backward()
    torch.testing.assert_close(out, ref)
    for p, g in zip(model.parameters(), ref_grads):
        torch.testing.assert_close(p.grad, g)


def test_every_parameter_gets_a_gradient_in_training():
    model = _tiny()
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_group_matcher_and_no_weight_decay_match_real_parameters():
    model = _tiny()
    groups = timm.models.group_parameters(model, model.group_matcher())
    assert len(groups) > 1
    names = {n for n, _ in model.named_parameters()}
    assert all(n in names for n in model.no_weight_decay())


def test_in_chans_num_classes_and_unknown_kwargs():
    model = _tiny('fan_tiny_8_p4_hybrid', in_chans=1, num_classes=0)
    assert model.in_chans == 1 and model(torch.randn(1, 1, 32, 32)).shape == (1, 192)
    with pytest.raises(TypeError):
        timm.create_model('fan_tiny_8_p4_hybrid', not_an_argument=1)


def test_build_on_meta_device_and_in_bfloat16():
    meta = timm.create_model('fan_l_hybrid_stl', device='meta')
    assert all(p.device.type == 'meta' for p in meta.parameters())
    bf16 = _tiny(dtype=torch.bfloat16).eval()
    assert all(p.dtype == torch.bfloat16 for p in bf16.parameters())
    assert bf16(torch.randn(1, 3, 32, 32, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_forward_writes_no_module_state():
    model = _tiny().eval()
    before = {name: dict(vars(m)) for name, m in model.named_modules()}
    model(torch.randn(1, 3, 64, 64))
    after = {name: dict(vars(m)) for name, m in model.named_modules()}
    assert before.keys() == after.keys()
    for name in before:
        assert before[name].keys() == after[name].keys(), name
        for key, value in before[name].items():
            if not isinstance(value, (dict, torch.Tensor)):
                assert after[name][key] == value, f'{name}.{key} changed during forward'


def test_channels_last_and_autocast():
    model = _tiny().eval()
    x = torch.randn(2, 3, 64, 64)
    ref = model(x)
    torch.testing.assert_close(
        model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last)), ref,
        atol=1e-5, rtol=1e-5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.bfloat16
    assert torch.nn.functional.cosine_similarity(out.float().flatten(), ref.flatten(), dim=0) > 0.99
