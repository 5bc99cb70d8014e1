"""PAL and TransMix class shares on hand-made attention maps."""
import pytest
import torch

from fan_stl.stl.attention_labels import (PAL, TransMix, attention_own_share, pal_alpha, pal_lam, relabel,
                                         transmix_lam)
from fan_stl.stl.mix_record import MixRecord


def _record() -> MixRecord:
    # 2 samples, 4 tokens: sample 0 owns tokens 0-1, sample 1 owns tokens 0-2; area shares 0.5 and 0.75
    own = torch.tensor([[1., 1., 0., 0.], [1., 1., 1., 0.]])
    return MixRecord(own=own, partner=torch.tensor([1, 0]), lam=torch.tensor([0.5, 0.75]))


def test_attention_own_share_on_hand_made_maps():
    attn = torch.tensor([[0.1, 0.1, 0.4, 0.4], [0.0, 0.0, 0.0, 0.9]])  # rows need not sum to 1
    torch.testing.assert_close(attention_own_share(attn, _record()), torch.tensor([0.2, 0.0]))
    fractional = MixRecord(own=torch.full((1, 4), 0.3), partner=torch.tensor([0]), lam=torch.tensor([0.3]))
    torch.testing.assert_close(attention_own_share(torch.rand(1, 4), fractional), torch.tensor([0.3]))


def test_transmix_averages_area_and_attention():
    attn = torch.tensor([[0.1, 0.1, 0.4, 0.4], [0.0, 0.0, 0.0, 0.9]])
    torch.testing.assert_close(transmix_lam(attn, _record()), torch.tensor([(0.5 + 0.2) / 2, (0.75 + 0.0) / 2]))


def test_pal_with_fixed_and_cosine_alpha():
    record = _record()
    attn = torch.tensor([[0.1, 0.1, 0.4, 0.4], [0.0, 0.0, 0.0, 0.9]])
    torch.testing.assert_close(pal_lam(attn, record, 0.), record.lam)
    torch.testing.assert_close(pal_lam(attn, record, 1.), torch.tensor([0.2, 0.0]))
    soft = torch.eye(3)[:2]  # own targets: class 0 and class 1
    # logits that reproduce the area target exactly: alpha = 1, so lam = lam_attn
    area_target = record.class_target(soft)
    alpha = pal_alpha(area_target.log(), soft, record)
    torch.testing.assert_close(alpha, torch.ones(2))
    # uniform predictions: alpha = cos(target, uniform) = sum(t) / (|t| * sqrt(3))
    alpha = pal_alpha(torch.zeros(2, 3), soft, record)
    expected = 1 / (area_target.norm(dim=1) * 3 ** 0.5)
    torch.testing.assert_close(alpha, expected)
    expected_lam = alpha * torch.tensor([0.2, 0.0]) + (1 - alpha) * record.lam
    torch.testing.assert_close(pal_lam(attn, record, alpha), expected_lam)


def test_pal_alpha_gradient_is_detached_by_default_and_kept_on_request():
    record, soft = _record(), torch.eye(3)[:2]
    logits = torch.randn(2, 3, requires_grad=True)
    assert not pal_alpha(logits, soft, record).requires_grad
    pal_alpha(logits, soft, record, detach=False).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_mixup_records_are_fixed_points_and_relabel_keeps_ownership():
    mixup = MixRecord(own=torch.full((2, 4), 0.7), partner=torch.tensor([1, 0]), lam=torch.full((2,), 0.7))
    attn = torch.rand(2, 4)
    torch.testing.assert_close(transmix_lam(attn, mixup), mixup.lam)
    torch.testing.assert_close(pal_lam(attn, mixup, 0.8), mixup.lam)
    new = relabel(_record(), torch.tensor([0.1, 0.2]))
    assert torch.equal(new.own, _record().own) and torch.equal(new.lam, torch.tensor([0.1, 0.2]))


def test_bad_attention_is_named():
    with pytest.raises(ValueError, match='patch tokens only'):
        attention_own_share(torch.rand(2, 5), _record())
    with pytest.raises(ValueError, match=r'pal_alpha \(--pal-alpha\) must be in \[0, 1\]'):
        PAL(alpha=1.5)


def test_pal_on_a_fan_forward_with_a_maskmix_batch():
    import numpy as np
    import timm
    from fan_stl.stl.maskmix import MaskMix
    from fan_stl.stl.mixing import STLMixup
    np.random.seed(0)
    model = timm.create_model('fan_tiny_12_p16_224', depth=1, num_classes=5).eval()
    mixer = STLMixup(method=MaskMix(cell=1), paired=False, num_classes=5)
    mixed, packed = mixer(torch.randn(4, 3, 64, 64), torch.arange(4))
    soft, record = MixRecord.unpack(packed, 5)
    with torch.no_grad():
        logits, attn = model(mixed, return_attn=True)
    lam = pal_lam(attn, record, pal_alpha(logits, soft, record))
    assert lam.shape == (4,) and ((lam >= 0) & (lam <= 1)).all()
    target = relabel(record, lam).class_target(soft)
    torch.testing.assert_close(target.sum(-1), torch.ones(4))


def _released_transmix_own_share(box, attn: torch.Tensor, size: int = 224) -> torch.Tensor:
    """ The released TransMix rule, written out: the pixel box resized to the token grid by nearest neighbour,
    `lam = (area + attention) / 2` of the partner, returned as the own share `1 - lam`. """
    top, bottom, left, right = box
    inside = torch.zeros(1, 1, size, size)
    inside[..., top:bottom, left:right] = 1.
    side = int(attn.shape[1] ** 0.5)
    token_mask = torch.nn.functional.interpolate(inside, size=(side, side), mode='nearest').flatten(1)
    lam_partner = 0.5 * (inside.mean() + (token_mask * attn).sum(1) / attn.sum(1))
    return 1. - lam_partner


def test_transmix_counts_a_token_by_its_top_left_pixel_on_timms_pixel_boxes():
    import numpy as np
    from timm.data.mixup import cutmix_bbox_and_lam
    np.random.seed(0)
    torch.manual_seed(0)
    gaps = []
    for _ in range(200):
        (top, bottom, left, right), lam = cutmix_bbox_and_lam((1, 3, 224, 224), np.random.beta(1., 1.))
        own = torch.ones(1, 224, 224)
        own[:, top:bottom, left:right] = 0.
        record = MixRecord.from_pixel_mask(own, torch.tensor([0]), stride=16, lam=torch.tensor([lam]))
        attn = torch.rand(1, 196).softmax(-1)
        released = _released_transmix_own_share((top, bottom, left, right), attn)
        torch.testing.assert_close(TransMix()(record, attn, None, None).lam, released.float())
        share = TransMix('pixel_share')(record, attn, None, None).lam
        torch.testing.assert_close(share, 0.5 * (record.lam + (record.own * attn).sum(1) / attn.sum(1)))
        gaps.append(float((share - released).abs()))
    assert sum(gaps) / len(gaps) > 0.005 and max(gaps) > 0.03  # the exact-share rule is the other option


def test_transmix_token_rule_survives_the_packed_target():
    import numpy as np
    from fan_stl.stl.mixing import STLMixup
    from fan_stl.stl.mixup_cutmix import MixupCutMix
    np.random.seed(3)
    mixer = STLMixup(method=MixupCutMix(), paired=False, mixup_alpha=0., cutmix_alpha=1., num_classes=5)
    x = torch.stack([torch.zeros(3, 64, 64), torch.ones(3, 64, 64)])  # sample 0's own pixels stay 0
    cut = 0
    for _ in range(20):
        images, packed = mixer(x.clone(), torch.arange(2))
        _, record = MixRecord.unpack(packed, 5)
        own_pixels = (images[0, 0] == 0).float()
        assert torch.equal(record.corner[0], own_pixels[::16, ::16].flatten())
        cut += int(not torch.equal(record.corner, record.own))
    assert cut > 0  # some boxes cut tokens: corner and own differ there
    with pytest.raises(ValueError, match='transmix-tokens'):
        TransMix('centre')
