"""The FAN training hooks: MixToken after the patch embedding (`token_mix`) and the class attention (`return_attn`)."""
import numpy as np
import pytest
import torch

import timm


def _tiny(name: str = 'fan_t_hybrid_stl', **kwargs) -> torch.nn.Module:
    return timm.create_model(name, depth=1, num_classes=6, **kwargs)


@pytest.mark.parametrize('name', ['fan_t_hybrid_stl', 'fan_tiny_12_p16_224'])
def test_return_attn_keeps_the_output_and_gives_a_softmax_row(name):
    model = _tiny(name).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        out, attn = model(x, return_attn=True)
        torch.testing.assert_close(out, model(x))
    assert attn.shape == (2, 24) and not attn.requires_grad
    assert (attn > 0).all() and (attn.sum(-1) < 1).all() and (attn.sum(-1) > 0.5).all()


def test_return_attn_is_the_attention_the_last_class_block_uses():
    """ With one head, the class token's output of the last class-attention block is `proj(a @ v)` for the returned
    patch attention `a` plus the class column `1 - sum(a)`. """
    model = timm.create_model('fan_tiny_12_p16_224', depth=1, num_classes=6, embed_dim=64, num_heads=1).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _, attn = model(x, return_attn=True)
        tokens = model.patch_embed(x)
        H, W = tokens.shape[-2:]
        tokens = model.blocks[0](model._tokens(tokens, H, W), H, W)
        tokens = torch.cat((model.cls_token.expand(2, -1, -1), tokens), dim=1)
        tokens = model.cls_attn_blocks[0](tokens)
        last = model.cls_attn_blocks[-1]
        normed = last.norm1(tokens)
        full = torch.cat([1 - attn.sum(-1, keepdim=True), attn], dim=-1)[:, None]
        expected = last.attn.proj(full @ last.attn.v(normed))
        torch.testing.assert_close(last.attn(normed), expected, rtol=1e-4, atol=1e-5)


def test_hooks_survive_torchscript():
    model = _tiny().eval()
    x = torch.randn(2, 3, 64, 64)
    scripted = torch.jit.script(model)
    own, partner = torch.rand(2, 16), torch.tensor([1, 0])
    out, attn = scripted(x, (own, partner), True)
    ref_out, ref_attn = model(x, token_mix=(own, partner), return_attn=True)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(attn, ref_attn)


@pytest.mark.slow
def test_token_mix_and_attention_compile_fullgraph_with_gradients():
    from fan_stl.stl.mixtoken import MixToken, record_args
    torch._dynamo.reset()
    np.random.seed(0)
    model = _tiny().train()
    model.set_token_label_training(True)
    compiled = torch.compile(model, fullgraph=True, backend='aot_eager')
    x = torch.randn(2, 3, 64, 64)
    record = MixToken(alpha=0.5)(2, (4, 4))
    (cls_logits, token_logits), attn = compiled(x, token_mix=record_args(record), return_attn=True)
    (ref_cls, ref_tokens), ref_attn = model(x, token_mix=record_args(record), return_attn=True)
    torch.testing.assert_close(attn, ref_attn)
    torch.testing.assert_close(cls_logits, ref_cls)
    (cls_logits.logsumexp(-1).mean() + token_logits.logsumexp(-1).mean()).backward()
    assert all(p.grad is not None for p in model.parameters())
