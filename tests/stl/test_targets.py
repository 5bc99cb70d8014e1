"""TokenTargets.blend (the one consumer of a MixRecord, sparse and dense), grids checked by position, targets off the
simplex refused."""
import pytest
import timm
import torch

from fan_stl.stl.loss import TokenLabelLoss
from fan_stl.stl.mix_record import MixRecord
from fan_stl.stl.targets import TokenTargets
from fan_stl.stl.task import STLTask
from fan_stl.stl.teacher import TeacherTokenLabeler

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


def test_targets_on_a_transposed_grid_are_refused_by_position_not_count():
    on_8x4 = TokenTargets(K, indices=torch.randint(0, K, (B, 32)), grid=(8, 4))
    assert on_8x4.check_grid((8, 4)) is on_8x4
    with pytest.raises(ValueError, match=r'8 x 4 grid but the student\'s tokens on a 4 x 8 grid .*same count'):
        on_8x4.check_grid((4, 8))
    dense = TokenTargets(K, probs=torch.softmax(torch.randn(B, 8, 4, K), -1))  # (B, H, W, K) gives its grid
    assert dense.grid == (8, 4) and dense.shape == (B, 32, K)
    with pytest.raises(ValueError, match='same count'):
        dense.cross_entropy(torch.randn(B, 4, 8, K))
    assert torch.isfinite(dense.cross_entropy(torch.randn(B, 8, 4, K)))
    with pytest.raises(ValueError, match='holds 12 tokens'):
        TokenTargets(K, indices=torch.zeros(B, 32, dtype=torch.long), grid=(3, 4))
    with pytest.raises(ValueError, match='has 16'):
        TokenTargets(K, indices=torch.zeros(B, 32, dtype=torch.long)).check_grid((4, 4))


def test_targets_off_the_simplex_are_refused():
    probs = torch.softmax(torch.randn(B, N, K), -1)
    TokenTargets(K, probs=probs.half())  # fp16 rounding is within the tolerance
    negative = probs.clone()
    negative[0, 0, :2] = torch.tensor([-0.5, 1.5]) - negative[0, 0, 2:].sum() / 2
    with pytest.raises(ValueError, match=r'Dense token targets must be probabilities .*negative entry.*softmax'):
        TokenTargets(K, probs=negative)
    with pytest.raises(ValueError, match=r'summing to 2'):
        TokenTargets(K, probs=probs * 2)
    with pytest.raises(ValueError, match=r'Sparse token target weights .*Normalise'):
        TokenTargets(K, indices=torch.zeros(B, N, 2, dtype=torch.long), weights=torch.full((B, N, 2), 0.7))
    with pytest.raises(ValueError, match=r'class indices in \[0, 5\)'):
        TokenTargets(K, indices=torch.full((B, N), K))
    blended = TokenTargets(K, indices=torch.randint(0, K, (B, N, 2)), weights=torch.softmax(torch.randn(B, N, 2), -1))
    blended.blend(_record())  # a blend of distributions stays one


class _GridTeacher(torch.nn.Module):
    """ A token-head teacher stand-in: forward_dense gives uniform logits for each stride-16 token. """
    num_classes, aux_head = K, True

    def forward_dense(self, x):
        tokens = (x.shape[-2] // 16) * (x.shape[-1] // 16)
        return torch.zeros(x.shape[0], K), torch.zeros(x.shape[0], tokens, K)


def test_the_teacher_records_its_grid_and_the_task_refuses_a_transposed_one():
    targets = TeacherTokenLabeler(_GridTeacher(), mode='argmax')(torch.zeros(2, 3, 64, 128))
    assert targets.grid == (4, 8)
    student = timm.create_model('fan_t_hybrid_stl', num_classes=K, depth=1)
    student.set_token_label_training(True)
    transposed = lambda images: TokenTargets(K, indices=torch.zeros(images.shape[0], 32, dtype=torch.long),
                                             grid=(8, 4))
    task = STLTask(student, TokenLabelLoss(), labeler=transposed)
    with pytest.raises(ValueError, match='8 x 4 grid but the student\'s tokens on a 4 x 8 grid'):
        task(torch.zeros(2, 6, 64, 128), torch.tensor([0, 1]))
