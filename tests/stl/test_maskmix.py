"""MaskMix, timm Mixup/CutMix and the MixPro schedule as MixRecord producers (the MIX_METHODS entries)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fan_stl.stl.maskmix import MaskMix as MaskMixMethod, MixPro, check_maskmix_grid, mixpro_grid_cell
from fan_stl.stl.mixup_cutmix import MixupCutMix
from fan_stl.stl.mix_record import MixRecord
from fan_stl.stl.mixing import STLCollateMixup, STLMixup

K = 5


def MaskMix(cell_tokens=4, mode='batch', pairing='perm', prob=1., **kwargs):
    """ The maskmix method in timm's Mixup slot of a plain (unpaired) batch. """
    return STLMixup(method=MaskMixMethod(cell_tokens, mode=mode, pairing=pairing), prob=prob, paired=False, **kwargs)


def TimmMixing(**kwargs):
    return STLMixup(method=MixupCutMix(), paired=False, **kwargs)


def _indexed_images(batch: int, height: int, width: int) -> torch.Tensor:
    """ Image b is filled with the value b + 1, so every mixed pixel names its source. """
    return (torch.arange(batch, dtype=torch.float32) + 1).view(batch, 1, 1, 1).expand(batch, 3, height, width).clone()


def _pixel_ownership(mixed: torch.Tensor, record: MixRecord) -> torch.Tensor:
    own_value = (torch.arange(mixed.shape[0], dtype=torch.float32) + 1).view(-1, 1, 1)
    partner_value = (record.partner.float() + 1).view(-1, 1, 1)
    source = mixed[:, 0]
    assert ((source == own_value) | (source == partner_value)).all()
    return (source == own_value).float()


@pytest.mark.parametrize('mode', ['batch', 'elem'])
@pytest.mark.parametrize('k', [1, 2, 3, 4])
def test_maskmix_lam_is_the_exact_covered_fraction(k, mode):
    np.random.seed(k)
    torch.manual_seed(k)
    x = _indexed_images(6, 96, 64)  # 96 is not a multiple of 3 * 16 or 4 * 16: border cells are cropped
    mixed, packed = MaskMix(cell_tokens=k, mode=mode, pairing='flip', num_classes=K)(x, torch.arange(6) % K)
    soft, record = MixRecord.unpack(packed, K)
    own_pixels = _pixel_ownership(mixed, record)
    torch.testing.assert_close(record.lam, own_pixels.mean(dim=(1, 2)))
    torch.testing.assert_close(record.own, F.avg_pool2d(own_pixels[:, None], 16).flatten(1))
    assert ((record.own == 0) | (record.own == 1)).all()  # cells are whole tokens
    cell = 16 * k  # every cell (cropped at the border) is entirely own or entirely the partner's
    highest = F.max_pool2d(own_pixels[:, None], cell, ceil_mode=True)
    lowest = -F.max_pool2d(-own_pixels[:, None], cell, ceil_mode=True)
    assert torch.equal(highest, lowest)
    assert torch.equal(soft.argmax(1), torch.arange(6) % K)  # the packed soft target is each sample's own


def test_maskmix_batch_mode_shares_the_ratio_and_elem_mode_does_not():
    x = _indexed_images(8, 64, 64)  # 4 x 4 cells of one token each
    np.random.seed(0)
    torch.manual_seed(0)
    lams = {mode: MixRecord.unpack(MaskMix(1, mode=mode, num_classes=K)(x, torch.zeros(8).long())[1], K)[1].lam
            for mode in ('batch', 'elem')}
    assert lams['batch'].unique().numel() == 1
    assert lams['elem'].unique().numel() > 1
    assert torch.equal(lams['batch'] * 16, (lams['batch'] * 16).round())  # k / M^2 with M^2 = 16


def test_perm_pairing_and_prob_zero():
    torch.manual_seed(1)
    x = _indexed_images(16, 32, 32)
    _, packed = MaskMix(1, pairing='perm', num_classes=K)(x, torch.zeros(16).long())
    record = MixRecord.unpack(packed, K)[1]
    assert sorted(record.partner.tolist()) == list(range(16)) and not torch.equal(record.partner, torch.arange(16))
    mixed, packed = MaskMix(1, prob=0., num_classes=K)(x, torch.zeros(16).long())
    assert torch.equal(mixed, x) and MixRecord.unpack(packed, K)[1].is_identity


def test_timm_cutmix_owns_the_pixels_outside_the_box_per_token():
    np.random.seed(2)
    x = _indexed_images(4, 64, 96)
    mixing = TimmMixing(cutmix_alpha=1., mixup_alpha=0., num_classes=K, label_smoothing=0.)
    mixed, packed = mixing(x, torch.arange(4))
    soft, record = MixRecord.unpack(packed, K)
    own_pixels = _pixel_ownership(mixed, record)
    torch.testing.assert_close(record.own, F.avg_pool2d(own_pixels[:, None], 16).flatten(1))
    torch.testing.assert_close(record.lam, own_pixels.mean(dim=(1, 2)))
    assert 0 < record.lam[0] < 1


def test_timm_mixup_owns_lam_of_every_token_and_matches_timm_target():
    np.random.seed(3)
    x = torch.rand(4, 3, 32, 32)
    mixing = TimmMixing(mixup_alpha=1., cutmix_alpha=0., num_classes=K, label_smoothing=0.1)
    mixed, packed = mixing(x, torch.arange(4))
    soft, record = MixRecord.unpack(packed, K)
    lam = record.lam[0]
    torch.testing.assert_close(record.own, lam.expand(4, 4))
    torch.testing.assert_close(mixed, x * lam + x.flip(0) * (1 - lam))
    from timm.data.mixup import mixup_target
    torch.testing.assert_close(record.class_target(soft), mixup_target(torch.arange(4), K, lam.item(), 0.1))


def test_mixup_off_and_bad_mode_are_handled():
    for mixing in (TimmMixing(mixup_alpha=1., num_classes=K), MaskMix(num_classes=K)):
        mixing.mixup_enabled = False
        x = torch.rand(2, 3, 32, 32)
        mixed, packed = mixing(x, torch.arange(2))
        assert torch.equal(mixed, x) and MixRecord.unpack(packed, K)[1].is_identity
    with pytest.raises(ValueError, match='--mixup-mode'):
        TimmMixing(mixup_alpha=1., mode='half', num_classes=K)
    with pytest.raises(ValueError, match='maskmix-mode'):
        MaskMix(mode='pixel', num_classes=K)
    for bad in (dict(cell=0), dict(alpha=0.), dict(pairing='random')):
        with pytest.raises(ValueError, match='--maskmix-cell >= 1|--mix-pairing'):
            MaskMixMethod(**bad)
    with pytest.raises(ValueError, match='mixpro-p-maskmix'):
        MixPro(p_maskmix=1.5)
    with pytest.raises(ValueError, match='multiples of the token stride'):
        MaskMix(num_classes=K)(torch.rand(2, 3, 40, 32), torch.arange(2))


def test_collate_variant_mixes_uint8_and_honours_mixup_enabled():
    np.random.seed(4)
    torch.manual_seed(4)
    samples = [(np.full((3, 32, 32), 10 * (b + 1), dtype=np.uint8), b) for b in range(4)]
    collate = STLCollateMixup(method=MaskMixMethod(cell=1, pairing='flip'), paired=False, num_classes=K)
    images, packed = collate(samples)
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 32, 32)
    record = MixRecord.unpack(packed, K)[1]
    own_pixels = (images[:, 0] == (torch.arange(4) * 10 + 10).view(-1, 1, 1).to(torch.uint8)).float()
    torch.testing.assert_close(record.lam, own_pixels.mean(dim=(1, 2)))
    collate.mixup_enabled = False
    images, packed = collate(samples)
    assert MixRecord.unpack(packed, K)[1].is_identity and images[1].eq(20).all()


def test_mixpro_schedule_uses_both_branches():
    np.random.seed(5)
    torch.manual_seed(5)
    schedule = STLMixup(method=MixPro(0.5, MaskMixMethod(cell=1)), mixup_alpha=1., paired=False, num_classes=K)
    x = torch.rand(4, 3, 32, 32)
    kinds = set()
    for _ in range(20):
        record = MixRecord.unpack(schedule(x, torch.arange(4))[1], K)[1]
        constant = bool((record.own == record.own[:, :1]).all())
        kinds.add('mixup' if constant else 'maskmix')
    assert kinds == {'mixup', 'maskmix'}


@pytest.mark.parametrize('cell_tokens, size', [(4, 64), (2, 32), (7, 96)])
def test_a_cell_that_covers_the_image_is_refused_instead_of_never_mixing(cell_tokens, size):
    """ One cell per image: every sample would keep all of it (lam = 1, nothing mixed, silently). """
    with pytest.raises(ValueError, match=rf'one cell covers the whole image\. Use --maskmix-cell {size // 16 - 1} '):
        MaskMix(cell_tokens, num_classes=K)(_indexed_images(4, size, size), torch.zeros(4).long())
    mixed, packed = MaskMix(size // 16 - 1, num_classes=K)(_indexed_images(4, size, size), torch.zeros(4).long())
    assert MixRecord.unpack(packed, K)[1].own.shape[1] == (size // 16) ** 2  # the largest cell allowed works


def test_mixpro_grid_cell_gives_a_four_by_four_grid():
    assert [mixpro_grid_cell(size) for size in (32, 64, 96, 128, 224, 256)] == [1, 1, 2, 2, 4, 4]
    grids = {size: math.ceil(size / (16 * mixpro_grid_cell(size))) for size in (32, 64, 96, 128, 224, 256, 384)}
    assert grids == {32: 2, 64: 4, 96: 3, 128: 4, 224: 4, 256: 4, 384: 4}  # 4 x 4 wherever whole tokens allow it
    for size in (64, 128, 256):
        check_maskmix_grid(size, size, mixpro_grid_cell(size))  # never the refused one-cell grid
