"""TokenTargets.blend: the one consumer of a MixRecord, in sparse and dense form."""
import pytest
import torch

from fan_stl.stl.mix_record import MixRecord
from fan_stl.stl.targets import TokenTargets

B, N, K = 3, 4, 5


def _record():
    return MixRecord(own=torch.rand(B, N), partner=torch.tensor([2, 0, 1]), lam=torch.rand(B))


@pytest.mark.parametrize('form', ['index', 'topk', 'dense'])
def test_blend_is_the_per_token_ownership_formula(form):
    indices = torch.randint(0, K, (B, N, 2))
    weights = torch.softmax(torch.randn(B, N, 2), -1)
    targets = {
        'index': TokenTargets(K, indices=indices[..., 0], smoothing=0.1),
        'topk': TokenTargets(K, indices=indices, weights=weights, smoothing=0.1),
        'dense': TokenTargets(K, probs=torch.softmax(torch.randn(B, N, K), -1), smoothing=0.1),
    }[form]
    record = _record()
    t = targets.dense()
    own = record.own[..., None]
    expected = own * t + (1 - own) * t[record.partner]
    torch.testing.assert_close(targets.blend(record).dense(), expected)
    if form != 'dense':  # sparse targets stay sparse
        assert targets.blend(record).probs is None


def test_identity_record_changes_nothing_and_bad_shapes_are_named():
    targets = TokenTargets(K, indices=torch.randint(0, K, (B, N)))
    torch.testing.assert_close(targets.blend(MixRecord.identity(B, N)).dense(), targets.dense())
    with pytest.raises(ValueError, match='token stride'):
        targets.blend(MixRecord.identity(B, N + 1))


def test_record_constructors():
    lam = torch.tensor([0.25, 1.0, 0.5])
    mixup = MixRecord.from_mixup(lam, torch.tensor([2, 1, 0]), tokens=N)
    assert torch.equal(mixup.own, lam[:, None].expand(B, N)) and torch.equal(mixup.lam, lam)
    mask = torch.ones(B, 32, 32)
    mask[0, :16, :8] = 0  # half of token (0, 0) is the partner's
    cut = MixRecord.from_pixel_mask(mask, torch.tensor([2, 1, 0]), stride=16)
    assert cut.shape == (B, 4) and cut.own[0, 0] == 0.5 and cut.own[0, 1:].eq(1).all()
    assert cut.lam[0] == 1 - 128 / 1024
