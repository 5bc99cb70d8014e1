"""TokenLabelLoss against hand-computed references for both stages, hard/soft image targets and token target forms;
soft targets off the simplex refused, ignored class targets left out (an all-ignored batch: zero, not nan)."""
import math

import pytest
import torch

from fan_stl.stl.loss import IGNORE_INDEX, TokenLabelLoss
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


def test_soft_image_targets_off_the_simplex_are_refused(outputs):
    cls, tok = outputs
    y = torch.softmax(torch.randn(B, K), -1)
    TokenLabelLoss()((cls, tok), y)
    with pytest.raises(ValueError, match=r'Soft image targets must be probabilities .*negative entry'):
        TokenLabelLoss()((cls, tok), y - y.roll(1, dims=1))  # rows sum to 0 with negative entries
    with pytest.raises(ValueError, match=r'summing to'):
        TokenLabelLoss()((cls, tok), y * 3)


@pytest.mark.parametrize('student', [False, True])
def test_all_ignored_batch_contributes_zero_loss_with_a_warning(outputs, student):
    cls, tok = (t.clone().requires_grad_() for t in outputs)
    ignored = torch.full((B,), IGNORE_INDEX)
    tokens = TokenTargets(K, indices=torch.zeros(B, N, dtype=torch.long)) if student else None
    with pytest.warns(UserWarning, match='ignore index -100: it contributes zero loss'):
        loss = TokenLabelLoss()((cls, tok), TokenLabelTarget(ignored, tokens))
    dense_only = tokens.cross_entropy(tok) if student else 0.
    assert torch.isfinite(loss) and float(loss) == pytest.approx(float(dense_only))
    loss.backward()
    assert torch.equal(cls.grad, torch.zeros_like(cls))
    half = torch.tensor([IGNORE_INDEX, 2])
    partial = TokenLabelLoss(dense_weight=0.001)((cls, tok), TokenLabelTarget(half))
    assert float(partial) == pytest.approx(_sce(cls[1].tolist(), _smoothed(2, 0.)) + 0.001 * _sce(
        [sum(tok[1, n, c].item() for n in range(N)) / N for c in range(K)], _smoothed(2, 0.)), rel=1e-5)
