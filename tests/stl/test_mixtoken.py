"""MixToken: the token-grid record, un-mixing, the FAN model hook and the pixel-space (patch-snapped) form."""
import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

import timm
from fan_stl.stl.mix_record import MixRecord
from fan_stl.stl.mixing import STLMixup
from fan_stl.stl.mixtoken import (MixToken, PatchCutMix as PatchCutMixMethod, lvvit_token_box, record_args,
                                unmix_tokens, unmixed_record)

K = 6


def PatchCutMix(pairing='flip', **kwargs):
    """ The patch_cutmix method in timm's Mixup slot of a plain (unpaired) batch. """
    return STLMixup(method=PatchCutMixMethod(pairing=pairing), paired=False, **kwargs)


def _until_mixed(draw):
    """ Redraw until the box is not empty (a small Beta draw can give a zero-size box, i.e. no mixing). """
    for _ in range(100):
        result = draw()
        record = result if isinstance(result, MixRecord) else MixRecord.unpack(result[1], K)[1]
        if record.lam[0] < 1:
            return result
    raise AssertionError('no mixed batch in 100 draws')


@pytest.mark.parametrize('pairing', ['flip', 'perm'])
def test_record_lam_is_the_exact_token_area(pairing):
    np.random.seed(0)
    for _ in range(20):
        record = MixToken(pairing=pairing)(5, (4, 6))
        mixed = (record.own == 0).float().sum(dim=1)
        assert (mixed == mixed[0]).all()  # one box per batch
        torch.testing.assert_close(record.lam, 1 - mixed / 24)
        assert sorted(record.partner.tolist()) == list(range(5))


def test_unmixing_restores_each_images_token_predictions_with_an_identity_model():
    np.random.seed(1)
    torch.manual_seed(1)
    tokens = torch.randn(6, 3, 4, 4)  # an identity "model": its token predictions are its (mixed) input tokens
    for pairing in ('flip', 'perm'):
        record = _until_mixed(lambda: MixToken(pairing=pairing)(6, (4, 4)))
        from fan_stl.models.fan import mix_token_map
        predictions = mix_token_map(tokens, *record_args(record)).flatten(2).transpose(1, 2)
        assert record.lam[0] < 1 and not torch.equal(predictions, tokens.flatten(2).transpose(1, 2))
        restored = unmix_tokens(predictions, record)
        assert torch.equal(restored, tokens.flatten(2).transpose(1, 2))
        assert unmixed_record(record).own.eq(1).all() and torch.equal(unmixed_record(record).lam, record.lam)


def test_unmixed_loss_equals_the_loss_with_targets_following_the_record():
    torch.manual_seed(2)
    np.random.seed(2)
    record = _until_mixed(lambda: MixToken(pairing='perm')(5, (3, 3)))
    predictions = torch.randn(5, 9, K).log_softmax(-1)
    targets = torch.softmax(torch.randn(5, 9, K), -1)
    own = record.own[..., None]
    following = own * targets + (1 - own) * targets[record.partner]
    loss_following = -(following * predictions).sum(-1).mean()
    loss_unmixed = -(targets * unmix_tokens(predictions, record)).sum(-1).mean()
    torch.testing.assert_close(loss_following, loss_unmixed)


def test_unmixing_refuses_records_it_cannot_invert():
    mixup = MixRecord(own=torch.full((2, 4), 0.3), partner=torch.tensor([1, 0]), lam=torch.full((2,), 0.3))
    with pytest.raises(ValueError, match='whole tokens'):
        unmix_tokens(torch.zeros(2, 4, K), mixup)
    own = torch.tensor([[0., 1, 1, 1], [1, 0, 1, 1]])
    with pytest.raises(ValueError, match='same mixed region'):
        unmix_tokens(torch.zeros(2, 4, K), MixRecord(own=own, partner=torch.tensor([1, 0]), lam=torch.ones(2)))


def _plain_patchify_fan() -> nn.Module:
    """ A FAN token model whose patch embedding is one non-overlapping Conv2d(kernel=stride=16). """
    model = timm.create_model('fan_tiny_12_p16_224', depth=2, num_classes=K, aux_head=True)
    model.patch_embed = nn.Conv2d(3, model.embed_dim, kernel_size=16, stride=16)
    return model.train()


def test_pixel_space_and_token_space_mixtoken_agree_on_a_plain_patchify_model():
    torch.manual_seed(3)
    np.random.seed(3)
    model = _plain_patchify_fan()
    x = torch.randn(4, 3, 64, 96)
    mixed, packed = _until_mixed(lambda: PatchCutMix(pairing='perm', num_classes=K)(x, torch.arange(4)))
    _, record = MixRecord.unpack(packed, K)
    assert record.lam[0] < 1
    pixel = model.forward_dense(mixed)
    token = model.forward_dense(x, token_mix=record_args(record))
    for a, b in zip(pixel, token):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_pixel_space_and_token_space_patch_embeddings_agree_on_a_timm_vit():
    torch.manual_seed(4)
    np.random.seed(4)
    vit = timm.create_model('vit_tiny_patch16_224', img_size=64, depth=1, num_classes=K, dynamic_img_size=True)
    x = torch.randn(3, 3, 64, 64)
    mixed, packed = _until_mixed(lambda: PatchCutMix(pairing='flip', num_classes=K)(x, torch.arange(3)))
    _, record = MixRecord.unpack(packed, K)
    embed = vit.patch_embed(x)  # (B, h, w, C) with dynamic_img_size
    own = record.own.view(3, 4, 4, 1)
    token_mixed = embed * own + embed[record.partner] * (1 - own)
    torch.testing.assert_close(vit.patch_embed(mixed), token_mixed, rtol=0, atol=0)
    vit.eval()
    features = vit.norm(vit.blocks(vit.norm_pre(vit._pos_embed(token_mixed))))
    torch.testing.assert_close(vit.forward_head(features), vit(mixed))


def test_fan_overlapping_stems_are_not_pixel_equivalent():
    torch.manual_seed(5)
    np.random.seed(5)
    model = timm.create_model('fan_tiny_12_p16_224', depth=1, num_classes=K, aux_head=True).eval()
    x = torch.randn(2, 3, 64, 64)
    mixed, packed = _until_mixed(lambda: PatchCutMix(num_classes=K)(x, torch.arange(2)))
    _, record = MixRecord.unpack(packed, K)
    with torch.no_grad():
        assert not torch.allclose(model.forward_dense(mixed)[1], model.forward_dense(x, record_args(record))[1])


@pytest.mark.parametrize('name', ['fan_t_hybrid', 'fan_tiny_12_p16_224'])
def test_token_mix_in_the_model_mixes_after_the_embedding_and_survives_ema_copies(name):
    torch.manual_seed(6)
    model = timm.create_model(name.replace('fan_t_hybrid', 'fan_tiny_8_p4_hybrid'), depth=1, num_classes=K,
                              aux_head=True).eval()
    x = torch.randn(2, 3, 64, 64)
    identity = MixRecord.identity(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x, token_mix=record_args(identity)), model(x))
        own = torch.zeros(2, 16)  # every token the partner's: the batch swapped after the embedding
        swapped = model.forward_dense(x, token_mix=(own, torch.tensor([1, 0])))
        torch.testing.assert_close(swapped[0], model.forward_dense(x.flip(0))[0])
        ema = timm.utils.ModelEmaV3(model, decay=0.5)
        torch.testing.assert_close(ema.module.forward_dense(x, token_mix=(own, torch.tensor([1, 0])))[0], swapped[0])
        copy.deepcopy(model)
    with pytest.raises(ValueError, match='token grid'):
        model(x, token_mix=(torch.ones(2, 9), torch.arange(2)))



def test_box_is_lvvits_on_a_14x14_grid_not_timms_one_token_longer():
    np.random.seed(0)
    method, draws = MixToken(), 20000
    shares = [(b - t) * (r - l) / 196 for t, b, l, r in (method.box((14, 14)) for _ in range(draws))]
    assert abs(np.mean(shares) - 0.271) < 0.006  # timm's rand_bbox: 0.297
    assert 0.015 < np.mean(np.equal(shares, 0.)) < 0.027  # "nothing mixed": 2.1 % (timm's: 0.5 %)
    np.random.seed(1)
    for lam in (0.1, 0.5, 0.87):
        for grid in ((14, 14), (7, 9)):
            cut = int(grid[0] * np.sqrt(1 - lam))
            top, bottom, left, right = lvvit_token_box(grid, lam)
            assert bottom - top <= 2 * (cut // 2) and 0 <= top <= bottom <= grid[0]


def test_patch_cutmix_pastes_lvvits_box():
    np.random.seed(0)
    slot = SimpleNamespace(token_stride=16, mix_prob=1.)
    shares = [1. - float(PatchCutMixMethod().draw(slot, 1, 224, 224)[1]) for _ in range(5000)]
    assert abs(np.mean(shares) - 0.271) < 0.01  # the pixel box is the token box: LV-ViT's, not timm's (0.297)
