"""The FAN blocks against naive reference implementations written from the formulas of the official models.

The production modules compute the same maths without the official code's redundant work (fused reductions, SDPA,
no per-head copies); each test here restates one formula in its plainest, loop-level form and compares.
"""
import math

import pytest
import torch
import torch.nn.functional as F

import timm
from fan_stl.models.fan import (
    ChannelProcessing,
    DWConv,
    FANBlock,
    TokenMixing,
    UnbiasedLayerNorm2d,
)


def _randomise(module: torch.nn.Module) -> None:
    """ Move every float parameter and buffer away from its init so no term is trivially 0 or 1. """
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith('running_var'):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            else:
                tensor.add_(0.3 * torch.randn_like(tensor))


def reference_channel_processing(cp: ChannelProcessing, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """ Per sample, head and channel: softmax over tokens, mean over the head's channels, sigmoid x temperature. """
    B, N, C = x.shape
    h = cp.num_heads
    d = C // h
    mlp = cp.mlp_v
    z = mlp.fc1(x)
    grid = z.transpose(1, 2).reshape(B, -1, H, W).contiguous()
    conv = mlp.dwconv.conv2(mlp.dwconv.bn(F.gelu(mlp.dwconv.conv1(grid))))  # conv -> GELU -> BN -> conv
    z = z + mlp.gamma * conv.flatten(2).transpose(1, 2)
    v = F.layer_norm(mlp.fc2(z), (C,), cp.norm_v.weight, cp.norm_v.bias, eps=1e-5)
    q = cp.q(x)
    out = torch.empty_like(v)
    for b in range(B):
        for head in range(h):
            cols = slice(head * d, (head + 1) * d)
            k_bar = torch.softmax(x[b, :, cols], dim=0).mean(dim=1)  # (N,)
            q_soft = torch.softmax(q[b, :, cols], dim=0)  # (N, d)
            scores = (q_soft * k_bar[:, None]).sum(dim=0)  # (d,)
            attn = torch.sigmoid(scores) * cp.temperature[head, 0, 0]
            out[b, :, cols] = v[b, :, cols] * attn
    return out


def reference_token_mixing(tm: TokenMixing, x: torch.Tensor) -> torch.Tensor:
    B, N, C = x.shape
    h, d = tm.num_heads, C // tm.num_heads
    q = tm.q(x)
    kv = tm.kv(x)
    k, v = kv[..., :C], kv[..., C:]  # rows [0:C] of kv.weight are K, rows [C:2C] are V
    out = torch.empty_like(x)
    for head in range(h):
        cols = slice(head * d, (head + 1) * d)
        attn = torch.softmax(q[..., cols] @ k[..., cols].transpose(1, 2) / math.sqrt(d), dim=-1)
        out[..., cols] = attn @ v[..., cols]
    return tm.proj(out)


def test_channel_processing_matches_reference():
    cp = ChannelProcessing(48, num_heads=4).eval()
    _randomise(cp)
    x = torch.randn(2, 6 * 5, 48)
    torch.testing.assert_close(cp(x, 6, 5), reference_channel_processing(cp, x, 6, 5), atol=1e-5, rtol=1e-5)


def test_token_mixing_matches_reference_fused_and_unfused():
    tm = TokenMixing(48, num_heads=4).eval()
    _randomise(tm)
    x = torch.randn(2, 20, 48)
    expected = reference_token_mixing(tm, x)
    torch.testing.assert_close(tm(x), expected, atol=1e-5, rtol=1e-5)
    tm.fused_attn = not tm.fused_attn
    torch.testing.assert_close(tm(x), expected, atol=1e-5, rtol=1e-5)


def test_dwconv_applies_gelu_before_batchnorm():
    dw = DWConv(8).eval()
    _randomise(dw)
    x = torch.randn(2, 12, 8)
    grid = x.transpose(1, 2).reshape(2, 8, 3, 4)
    expected = dw.conv2(dw.bn(F.gelu(dw.conv1(grid)))).flatten(2).transpose(1, 2)
    swapped = dw.conv2(F.gelu(dw.bn(dw.conv1(grid)))).flatten(2).transpose(1, 2)
    torch.testing.assert_close(dw(x, 3, 4), expected)
    assert not torch.allclose(dw(x, 3, 4), swapped, atol=1e-4)


def test_fan_block_is_prenorm_with_layer_scale():
    blk = FANBlock(48, num_heads=4).eval()
    _randomise(blk)
    x = torch.randn(2, 16, 48)
    normed = F.layer_norm(x, (48,), blk.norm1.weight, blk.norm1.bias, 1e-6)
    y = x + blk.gamma1 * reference_token_mixing(blk.attn, normed)
    y = y + blk.gamma2 * reference_channel_processing(
        blk.mlp, F.layer_norm(y, (48,), blk.norm2.weight, blk.norm2.bias, 1e-6), 4, 4)
    torch.testing.assert_close(blk(x, 4, 4), y, atol=1e-5, rtol=1e-5)


def test_unbiased_layernorm2d_matches_var_mean_formula():
    norm = UnbiasedLayerNorm2d(16)
    _randomise(norm)
    x = torch.randn(2, 16, 5, 7) * 3 + 1
    var, mean = torch.var_mean(x, dim=1, keepdim=True)  # unbiased, as the official non-contiguous path
    expected = (x - mean) * torch.rsqrt(var + norm.eps) * norm.weight[:, None, None] + norm.bias[:, None, None]
    torch.testing.assert_close(norm(x), expected, atol=1e-5, rtol=1e-5)
    biased = F.layer_norm(x.permute(0, 2, 3, 1), (16,), norm.weight, norm.bias, norm.eps).permute(0, 3, 1, 2)
    assert (norm(x) - biased).abs().max() > 1e-3  # the quirk is real, not a rounding difference


def reference_fourier_encoding(H: int, W: int, hidden: int = 32) -> torch.Tensor:
    """ (2 * hidden, H, W): [sin e0, cos e1, sin e2, ...] of y then x, positions i / (last + 1e-6) * 2 pi. """
    def encode(pos: torch.Tensor) -> torch.Tensor:
        k = torch.arange(hidden)
        e = pos[:, None] / 10000 ** (2 * (k // 2) / hidden)
        return torch.where(k % 2 == 0, e.sin(), e.cos())
    ys = encode(torch.arange(1, H + 1) / (H + 1e-6) * 2 * math.pi)  # (H, hidden)
    xs = encode(torch.arange(1, W + 1) / (W + 1e-6) * 2 * math.pi)  # (W, hidden)
    return torch.cat([ys[:, None, :].expand(H, W, hidden), xs[None, :, :].expand(H, W, hidden)], -1).permute(2, 0, 1)


def test_positional_encoding_matches_formula():
    model = timm.create_model('fan_tiny_12_p16_224', depth=1).eval()
    proj = model.pos_embed.token_projection
    expected = F.conv2d(reference_fourier_encoding(3, 5)[None].float(), proj.weight, proj.bias)
    torch.testing.assert_close(model.pos_embed(1, 3, 5), expected, atol=1e-5, rtol=1e-5)


def reference_class_attention_block(blk, x: torch.Tensor) -> torch.Tensor:
    """ XCiT wiring with tokens_norm: patch tokens get + gamma1 * norm1(x), then are doubled after norm2. """
    ln = lambda t, n: F.layer_norm(t, t.shape[-1:], n.weight, n.bias, 1e-6)  # noqa: E731
    xn = ln(x, blk.norm1)
    attn = blk.attn
    B, N, C = x.shape
    h, d = attn.num_heads, C // attn.num_heads
    q = attn.q(xn[:, :1]).reshape(B, 1, h, d).transpose(1, 2)
    k = attn.k(xn).reshape(B, N, h, d).transpose(1, 2)
    v = attn.v(xn).reshape(B, N, h, d).transpose(1, 2)
    cls = (torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1) @ v).transpose(1, 2).reshape(B, 1, C)
    x = x + blk.gamma1 * torch.cat([attn.proj(cls), xn[:, 1:]], dim=1)
    x = ln(x, blk.norm2)
    return torch.cat([x[:, :1] + blk.gamma2 * blk.mlp(x[:, :1]), 2 * x[:, 1:]], dim=1)


def test_class_attention_blocks_keep_the_patch_token_wiring():
    model = timm.create_model('fan_tiny_12_p16_224', depth=1).eval()
    blk = model.cls_attn_blocks[0]
    _randomise(blk)
    x = torch.randn(2, 10, 192)
    torch.testing.assert_close(blk(x), reference_class_attention_block(blk, x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('name', ['fan_tiny_12_p16_224', 'fan_t_hybrid_stl'])
def test_whole_model_matches_composition_of_references(name):
    """ forward = norm(CA blocks(cat(cls, FAN blocks(embed + pos)))) with the class token appended last. """
    model = timm.create_model(name, depth=2, num_classes=7).eval()
    _randomise(model)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        feat = model.patch_embed(x)
        H, W = feat.shape[-2:]
        pos = F.conv2d(reference_fourier_encoding(H, W)[None].float(), model.pos_embed.token_projection.weight,
                       model.pos_embed.token_projection.bias)
        t = (feat + pos).flatten(2).transpose(1, 2)
        for blk in model.blocks:
            t = blk(t, H, W)
        t = torch.cat([model.cls_token.expand(2, -1, -1), t], dim=1)
        for blk in model.cls_attn_blocks:
            t = reference_class_attention_block(blk, t)
        t = F.layer_norm(t, (192,), model.norm.weight, model.norm.bias, 1e-6)
        cls_logits = model.head(t[:, 0])
        expected = cls_logits
        if model.aux_head is not None:
            expected = cls_logits + 0.5 * model.aux_head(t[:, 1:]).max(dim=1).values
        torch.testing.assert_close(model(x), expected, atol=1e-4, rtol=1e-4)
