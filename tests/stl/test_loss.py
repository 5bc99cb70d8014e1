"""TokenLabelLoss against hand-computed references for both stages, hard/soft image targets and token target forms."""
import math

import pytest
import torch

from fan_stl.stl.loss import TokenLabelLoss
from fan_stl.stl.targets import TokenLabelTarget, TokenTargets

B, N, K = 2, 3, 4


def _sce(logits, target):
    """ Reference soft cross-entropy of one row, written out with math. """
    log_z = math.log(sum(math.exp(v) for v in logits))
    return sum(-t * (v - log_z) for v, t in zip(logits, target))


def _smoothed(index, smoothing, k=K):
    return [(1 - smoothing) * (c == index) + smoothing / k for c in range(k)]


@pytest.fixture
def outputs():
    torch.manual_seed(1)
    return torch.randn(B, K) * 2, torch.randn(B, N, K) * 2


def test_labeler_stage_soft_targets(outputs):
    cls, tok = outputs
    y = torch.softmax(torch.randn(B, K), -1)
    loss = TokenLabelLoss(cls_weight=0.7, dense_weight=1.3)((cls, tok), y)
    ref = 0.0
    for b in range(B):
        mean_tok = [sum(tok[b, n, c].item() for n in range(N)) / N for c in range(K)]
        ref += 0.7 * _sce(cls[b].tolist(), y[b].tolist()) + 1.3 * _sce(mean_tok, y[b].tolist())
    assert loss.item() == pytest.approx(ref / B, rel=1e-5)


def test_labeler_stage_hard_targets_with_smoothing(outputs):
    cls, tok = outputs
    y = torch.tensor([3, 0])
    loss = TokenLabelLoss(label_smoothing=0.1)((cls, tok), TokenLabelTarget(y))
    ref = 0.0
    for b in range(B):
        mean_tok = [sum(tok[b, n, c].item() for n in range(N)) / N for c in range(K)]
        t = _smoothed(y[b].item(), 0.1)
        ref += _sce(cls[b].tolist(), t) + _sce(mean_tok, t)
    assert loss.item() == pytest.approx(ref / B, rel=1e-5)


@pytest.mark.parametrize('hard', [True, False])
def test_student_stage_index_tokens(outputs, hard):
    cls, tok = outputs
    y = torch.tensor([1, 2]) if hard else torch.softmax(torch.randn(B, K), -1)
    idx = torch.tensor([[0, 3, 3], [2, 1, 0]])
    target = TokenLabelTarget(y, TokenTargets(K, indices=idx, smoothing=0.1))
    loss = TokenLabelLoss(cls_weight=0.5, dense_weight=2.0)((cls, tok), target)
    cls_ref = sum(_sce(cls[b].tolist(), _smoothed(y[b].item(), 0.) if hard else y[b].tolist()) for b in range(B)) / B
    dense_ref = sum(_sce(tok[b, n].tolist(), _smoothed(idx[b, n].item(), 0.1)) for b in range(B) for n in range(N))
    assert loss.item() == pytest.approx(0.5 * cls_ref + 2.0 * dense_ref / (B * N), rel=1e-5)


def test_student_stage_topk_and_dense_tokens_agree_with_reference(outputs):
    cls, tok = outputs
    y = torch.softmax(torch.randn(B, K), -1)
    idx = torch.tensor([[[0, 2], [3, 1], [1, 0]], [[2, 3], [0, 1], [3, 2]]])
    w = torch.softmax(torch.randn(B, N, 2), -1)
    sparse = TokenTargets(K, indices=idx, weights=w, smoothing=0.2)
    dense = TokenTargets(K, probs=sparse.dense(), smoothing=0.)
    ref_dense = 0.0
    for b in range(B):
        for n in range(N):
            t = [0.2 / K + 0.8 * sum(w[b, n, j].item() for j in range(2) if idx[b, n, j] == c) for c in range(K)]
            ref_dense += _sce(tok[b, n].tolist(), t)
    ref = sum(_sce(cls[b].tolist(), y[b].tolist()) for b in range(B)) / B + ref_dense / (B * N)
    loss_fn = TokenLabelLoss()
    assert loss_fn((cls, tok), TokenLabelTarget(y, sparse)).item() == pytest.approx(ref, rel=1e-5)
    assert loss_fn((cls, tok), TokenLabelTarget(y, dense)).item() == pytest.approx(ref, rel=1e-5)


def test_fp32_under_autocast(outputs):
    cls, tok = outputs
    y = torch.tensor([1, 2])
    target = TokenLabelTarget(y, TokenTargets(K, indices=torch.zeros(B, N, dtype=torch.long)))
    ref = TokenLabelLoss()((cls, tok), target)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = TokenLabelLoss()((cls.bfloat16(), tok.bfloat16()), target)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(ref.item(), rel=2e-2)


def test_clear_errors(outputs):
    cls, tok = outputs
    with pytest.raises(TypeError, match='set_token_label_training'):
        TokenLabelLoss()(cls, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='do not match the token targets'):
        TokenLabelLoss()((cls, tok), TokenLabelTarget(torch.tensor([0, 1]), TokenTargets(K, indices=torch.zeros(
            B, N + 1, dtype=torch.long))))
    with pytest.raises(ValueError, match='num_classes'):
        TokenLabelLoss()((cls, tok), torch.rand(B, K + 1))
    with pytest.raises(ValueError, match='positive sum'):
        TokenLabelLoss(cls_weight=0., dense_weight=0.)
