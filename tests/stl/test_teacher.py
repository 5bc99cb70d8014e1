"""Teacher token labels: modes, smoothing, K from the teacher, frozen teacher, per-rank reproducible sampling."""
import pytest
import timm
import torch
import torch.nn as nn

from fan_stl.stl.teacher import TeacherTokenLabeler, load_teacher


class FixedLogitTeacher(nn.Module):
    """ Token logits given by a fixed (N, K) table, whatever the image. """

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer('logits', logits)
        self.num_classes = logits.shape[-1]
        self.aux_head = nn.Identity()

    def forward_dense(self, x):
        tok = self.logits.expand(x.shape[0], -1, -1)
        return tok.mean(1), tok


LOGITS = torch.tensor([[4., 0., 0., 0., 0.], [0., 1., 0.5, 0., 0.], [0., 0., 0., 0., 9.]])
IMAGES = torch.zeros(2, 3, 16, 48)


def test_argmax_with_smoothing_and_k_from_teacher():
    targets = TeacherTokenLabeler(FixedLogitTeacher(LOGITS), mode='argmax', smoothing=0.1)(IMAGES)
    assert targets.num_classes == 5
    expected = torch.full((3, 5), 0.02)
    expected[[0, 1, 2], [0, 1, 4]] += 0.9
    assert torch.allclose(targets.dense(), expected.expand(2, -1, -1))


def test_soft_and_topk():
    soft = TeacherTokenLabeler(FixedLogitTeacher(LOGITS), mode='soft', smoothing=0., temperature=2.)(IMAGES)
    assert torch.allclose(soft.dense()[0], torch.softmax(LOGITS / 2, -1))
    top = TeacherTokenLabeler(FixedLogitTeacher(LOGITS), mode='topk', topk=2, smoothing=0.)(IMAGES)
    assert top.indices.shape == (2, 3, 2)
    assert torch.equal(top.indices[0, 1], torch.tensor([1, 2]))
    assert torch.allclose(top.weights[0, 1], torch.softmax(torch.tensor([1., 0.5]), -1))


def test_gumbel_samples_the_teacher_distribution_reproducibly_per_rank():
    teacher = FixedLogitTeacher(torch.log(torch.tensor([[0.7, 0.2, 0.1]])))
    labeler = TeacherTokenLabeler(teacher, mode='gumbel', smoothing=0., seed=3, rank=0)
    images = torch.zeros(4000, 3, 16, 16)
    draws = labeler(images).indices.flatten()
    freq = torch.bincount(draws, minlength=3).float() / draws.numel()
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.03)
    again = TeacherTokenLabeler(teacher, mode='gumbel', seed=3, rank=0)(images).indices.flatten()
    other_rank = TeacherTokenLabeler(teacher, mode='gumbel', seed=3, rank=1)(images).indices.flatten()
    assert torch.equal(draws, again)
    assert not torch.equal(draws, other_rank)
    assert not torch.equal(draws, labeler(images).indices.flatten())  # a fresh sample every step


def test_real_teacher_frozen_eval_no_grad():
    teacher = timm.create_model('fan_t_hybrid_tl', num_classes=7).train()
    labeler = TeacherTokenLabeler(teacher, mode='argmax')
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    targets = labeler(x)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert targets.shape == (2, 16, 7) and not targets.indices.requires_grad
    expected = teacher.forward_dense(x)[1].argmax(-1)
    assert torch.equal(targets.indices.squeeze(-1), expected)


def test_teacher_without_token_head_is_rejected(tmp_path):
    with pytest.raises(ValueError, match='no per-token head'):
        TeacherTokenLabeler(timm.create_model('fan_tiny_8_p4_hybrid', num_classes=3))
    with pytest.raises(ValueError, match='Unknown token label mode'):
        TeacherTokenLabeler(FixedLogitTeacher(LOGITS), mode='bogus')
    with pytest.raises(ValueError, match='neither an existing checkpoint'):
        load_teacher(str(tmp_path / 'missing.pth'))


def test_load_teacher_from_checkpoint_prefers_ema(tmp_path):
    model = timm.create_model('fan_t_hybrid_tl', num_classes=3)
    ema = timm.create_model('fan_t_hybrid_tl', num_classes=3)
    path = tmp_path / 'tl.pth.tar'
    torch.save({'state_dict': model.state_dict(), 'state_dict_ema': ema.state_dict()}, path)
    teacher = load_teacher(str(path), model_name='fan_t_hybrid_tl', num_classes=3)
    assert torch.equal(teacher.aux_head.weight, ema.aux_head.weight)
    assert not teacher.training


def test_crop_labels_are_the_teachers_class_prediction_smoothed_as_the_tokens():
    tokens, crop = TeacherTokenLabeler(FixedLogitTeacher(LOGITS), mode='argmax', smoothing=0.1, temperature=2.,
                                       crop_labels=True)(IMAGES)
    expected = 0.9 * (LOGITS.mean(0) / 2.).softmax(-1) + 0.1 / 5
    torch.testing.assert_close(crop, expected.expand(2, -1))
    assert tokens.indices.shape[:2] == (2, 3)
    assert not isinstance(TeacherTokenLabeler(FixedLogitTeacher(LOGITS))(IMAGES), tuple)  # the default: tokens only
