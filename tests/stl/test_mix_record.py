import pytest
import torch

from fan_stl.stl.mix_record import MixRecord


def test_pack_unpack_round_trip():
    soft = torch.softmax(torch.randn(4, 7), -1)
    record = MixRecord(own=torch.rand(4, 16), partner=torch.tensor([3, 2, 1, 0]), lam=torch.rand(4))
    packed = record.pack(soft)
    assert packed.shape == (4, 7 + 2 + 2 * 16)
    soft2, back = MixRecord.unpack(packed, num_classes=7)
    torch.testing.assert_close(soft2, soft)
    torch.testing.assert_close(back.own, record.own)
    torch.testing.assert_close(back.lam, record.lam)
    assert torch.equal(back.partner, record.partner)


def test_identity():
    record = MixRecord.identity(3, 5)
    assert record.is_identity and record.shape == (3, 5)
    assert not MixRecord(own=torch.zeros(3, 5), partner=torch.arange(3), lam=torch.ones(3)).is_identity


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match='partner and .lam'):
        MixRecord(own=torch.ones(2, 4), partner=torch.arange(3), lam=torch.ones(2))
    with pytest.raises(ValueError, match='num-classes'):
        MixRecord.unpack(torch.zeros(2, 5), num_classes=5)
