"""The JS consistency term: stage plain's loss equals timm's JsdCrossEntropy; the token part is the hand formula."""
import pytest
import timm
import torch
import torch.nn.functional as F
from timm.loss import JsdCrossEntropy

from fan_stl.stl.config import STLConfig
from fan_stl.stl.consistency import ViewConsistency, js_divergence
from fan_stl.stl.task import build_task


def _hand_js(logits: torch.Tensor, k: int) -> torch.Tensor:
    """ (1/k) sum_v KL(p_v || M), M the clamped mean, averaged over the rows of one split (a loop, by hand). """
    p = logits.softmax(-1).reshape(k, -1, logits.shape[-1])
    m = p.mean(0).clamp(1e-7, 1)
    total = 0.
    for v in range(k):
        for row in range(p.shape[1]):
            total += sum(float(p[v, row, c]) * (float(torch.log(p[v, row, c])) - float(torch.log(m[row, c])))
                         for c in range(p.shape[2]))
    return torch.tensor(total / (k * p.shape[1]))


@pytest.mark.parametrize('k, smoothing', [(2, 0.), (3, 0.1), (4, 0.3)])
def test_plain_stage_loss_equals_timms_jsd_cross_entropy(k, smoothing):
    model = timm.create_model('resnet10t', num_classes=5)
    task = build_task(STLConfig(stage='plain', aug_splits=k, jsd_loss=True), model, smoothing=smoothing)
    task.eval()  # same logits for both
    x, labels = torch.randn(2 * k, 3, 32, 32), torch.randint(0, 5, (2,)).repeat(k)
    out = task(x, labels)
    expected = JsdCrossEntropy(num_splits=k, alpha=12, smoothing=smoothing)(out['output'], labels)
    torch.testing.assert_close(out['loss'], expected, rtol=1e-5, atol=1e-6)


def test_token_part_is_the_hand_formula_and_class_part_timms():
    torch.manual_seed(0)
    cls, tokens = torch.randn(6, 4), torch.randn(6, 5, 4)
    # split-major rows: the 2 images x 5 tokens of each view are the predictions JS averages over
    torch.testing.assert_close(js_divergence(tokens, 3), _hand_js(tokens.reshape(-1, 4), 3), rtol=1e-4, atol=1e-6)
    labels = torch.tensor([1, 3]).repeat(3)
    consistency = ViewConsistency(3, weight=2., tokens=True)
    loss = consistency((cls, tokens), lambda clean: F.cross_entropy(clean[0], labels[:2]))
    expected = JsdCrossEntropy(3, alpha=2., smoothing=0.)(cls, labels) + 2. * js_divergence(tokens, 3)
    torch.testing.assert_close(loss, expected)
    assert js_divergence(torch.randn(2, 7).repeat(3, 1), 3) < 1e-6  # identical views: no divergence


def test_batch_not_divisible_by_the_views_is_a_clear_error():
    task = build_task(STLConfig(stage='plain', aug_splits=3, jsd_loss=True), timm.create_model('resnet10t',
                                                                                                  num_classes=5))
    with pytest.raises(ValueError, match='multiple of 3'):
        task(torch.randn(4, 3, 32, 32), torch.zeros(4, dtype=torch.long))


def test_jsd_options_are_checked():
    with pytest.raises(ValueError, match='--aug-splits 3'):
        STLConfig(stage='tl', jsd_loss=True)
    with pytest.raises(ValueError, match='0 \\(off\\) or >= 2'):
        STLConfig(stage='tl', aug_splits=1)
