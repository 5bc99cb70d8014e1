"""The task's student-only batch slot and its views: the teacher / clean split is never augmented; pixel-moving
methods are refused in stage stl; splits in stage stl are labelled from split 0; soft targets reach the loss."""
import pytest
import timm
import torch

from fan_stl.stl.augment import BATCH_AUGMENTS
from fan_stl.stl.augment.randconv import RandConv
from fan_stl.stl.config import STLConfig
from fan_stl.stl.task import build_task, repeat_rows
from fan_stl.stl.views import pair_views

SMALL = dict(num_classes=3, depth=1, stem_depths=(1, 1))


def _stl(**options):
    teacher = timm.create_model('fan_t_hybrid_tl', **SMALL)
    return build_task(STLConfig(stage='stl', teacher=teacher, token_label_mode='soft', **options),
                      timm.create_model('fan_t_hybrid_stl', **SMALL))


def _spy(task):
    seen = {}
    task.labeler = (lambda labeler: lambda images: seen.setdefault('teacher', images.clone()) is not None and
                    labeler(images))(task.labeler)
    task.trainable_module.register_forward_pre_hook(lambda module, args: seen.setdefault('student', args[0].clone()))
    return seen


def test_stl_slot_augments_the_student_view_only():
    task = _stl(batch_augment='randconv')
    task.train()
    seen = _spy(task)
    teacher_view, student_view = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    task(pair_views(teacher_view, student_view), torch.tensor([0, 2]))
    assert torch.equal(seen['teacher'], teacher_view)
    assert not torch.allclose(seen['student'], student_view, atol=1e-3)


def test_splits_in_stage_stl_label_split_0_and_augment_the_others():
    task = _stl(aug_splits=3, jsd_loss=True, jsd_tokens=True, batch_augment='prime')
    task.train()
    seen = _spy(task)
    views = torch.randn(6, 3, 32, 32)
    loss = task(views, torch.tensor([0, 2]).repeat(3))['loss']
    assert torch.equal(seen['teacher'], views[:2]) and torch.equal(seen['student'][:2], views[:2])
    assert not torch.allclose(seen['student'][2:], views[2:], atol=1e-3)
    assert torch.isfinite(loss)


def test_pixel_moving_method_is_refused_in_stage_stl(monkeypatch):
    class Shift(RandConv):
        moves_pixels = True

    monkeypatch.setitem(BATCH_AUGMENTS, 'shift', Shift)
    with pytest.raises(ValueError, match='moves pixels'):
        STLConfig(stage='stl', teacher=torch.nn.Identity(), batch_augment='shift')
    STLConfig(stage='tl', batch_augment='shift')  # fine where no teacher token labels must line up
    STLConfig(stage='stl', teacher=torch.nn.Identity(), batch_augment='soft_aug')  # soft moves its token targets too


def test_soft_augmentation_softens_the_class_target_in_the_loss():
    task = build_task(STLConfig(stage='plain', batch_augment='soft_aug'), timm.create_model('resnet10t', num_classes=4),
                      smoothing=0.)
    task.train()
    seen = []
    task.criterion.register_forward_pre_hook(lambda module, args: seen.append(args[1]))
    torch.manual_seed(0)
    task(torch.randn(8, 3, 32, 32), torch.tensor([0, 1, 2, 3] * 2))
    assert (seen[0].max(1)[0] < 1).any() and torch.allclose(seen[0].sum(1), torch.ones(8))


def test_repeat_rows_of_token_targets():
    from fan_stl.stl.targets import TokenTargets
    tokens = TokenTargets(3, indices=torch.tensor([[0, 1], [2, 2]]))
    assert torch.equal(repeat_rows(tokens, 3).dense(), tokens.dense().repeat(3, 1, 1))


def test_unregistered_batch_method_and_split_combinations_are_refused():
    with pytest.raises(ValueError, match='is not one of'):
        STLConfig(stage='tl', batch_augment='cutout')
    with pytest.raises(ValueError, match='needs --jsd-loss'):
        STLConfig(stage='tl', aug_splits=2, batch_augment='randconv')
    with pytest.raises(ValueError, match='soften'):
        STLConfig(stage='tl', aug_splits=2, jsd_loss=True, batch_augment='soft_aug')
    with pytest.raises(ValueError, match='mixes tokens'):
        build_task(STLConfig(stage='tl', aug_splits=2, mix_method='mixtoken'),
                   timm.create_model('fan_t_hybrid_tl', **SMALL))
