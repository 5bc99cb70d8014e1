"""build_task: one stage builder; token targets ignore the MixRecord unless follow_mixing is on."""
import pytest
import timm
import torch
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

from fan_stl.stl.config import STLConfig
from fan_stl.stl.mix_record import MixRecord
from fan_stl.stl.task import STLTask, build_task
from fan_stl.stl.views import pair_views

SMALL = dict(num_classes=3, depth=1, stem_depths=(1, 1))


def _model(name):
    return timm.create_model(name, **SMALL)


def test_plain_and_tl_stages():
    plain = build_task(STLConfig(stage='plain'), timm.create_model('fan_tiny_8_p4_hybrid', **SMALL), smoothing=0.1)
    assert isinstance(plain, STLTask) and isinstance(plain.criterion, SoftTargetCrossEntropy)
    x, labels = torch.rand(2, 3, 32, 32), torch.tensor([0, 2])
    out = plain(x, labels)  # class indices: the label-smoothing cross-entropy
    torch.testing.assert_close(out['loss'], LabelSmoothingCrossEntropy(0.1)(out['output'], labels))
    model = _model('fan_t_hybrid_tl')
    tl = build_task(STLConfig(stage='tl'), model)
    assert isinstance(tl, STLTask) and tl.labeler is None and tl.token_mixer is None and tl.relabel is None
    assert model.fuse_token_logits  # the eval rule is the drivers' (fan_stl.stl.eval_rule), not the task's
    out = tl(torch.rand(2, 3, 32, 32), torch.tensor([0, 2]))
    assert out['loss'].ndim == 0 and tl.steps == 1
    with pytest.raises(ValueError, match='token-head model'):
        build_task(STLConfig(stage='tl'), timm.create_model('resnet18', num_classes=3))


@pytest.mark.parametrize('follow', [False, True])
def test_stl_token_targets_follow_the_record_only_when_asked(follow):
    teacher = _model('fan_t_hybrid_tl')
    config = STLConfig(stage='stl', teacher=teacher, token_label_mode='soft', follow_mixing=follow)
    task = build_task(config, _model('fan_t_hybrid_stl'), smoothing=0.2)
    assert task.labeler.smoothing == 0.2  # token smoothing follows --smoothing
    seen = []
    task.criterion.register_forward_pre_hook(lambda module, args: seen.append(args[1]))
    teacher_view = torch.rand(2, 3, 32, 32)
    record = MixRecord(own=torch.tensor([[1., 0., .5, 1.], [0., 0., 1., 1.]]), partner=torch.tensor([1, 0]),
                       lam=torch.tensor([.6, .5]))
    soft = torch.softmax(torch.randn(2, 3), -1)
    task(pair_views(teacher_view, torch.rand(2, 3, 32, 32)), record.pack(soft))
    clean = task.labeler(teacher_view)
    expected = clean.blend(record) if follow else clean
    torch.testing.assert_close(seen[0].tokens.dense(), expected.dense())
    torch.testing.assert_close(seen[0].cls, record.class_target(soft))  # the packed soft columns are own targets


def test_teacher_with_other_classes_is_refused():
    teacher = timm.create_model('fan_t_hybrid_tl', **{**SMALL, 'num_classes': 5})
    with pytest.raises(ValueError, match='same classes'):
        build_task(STLConfig(stage='stl', teacher=teacher), _model('fan_t_hybrid_stl'))


def test_class_target_crop_takes_the_label_sources_crop_prediction_as_each_samples_own_target():
    teacher = _model('fan_t_hybrid_tl').eval()
    config = STLConfig(stage='stl', teacher=teacher, token_label_mode='soft', class_target='crop')
    task = build_task(config, _model('fan_t_hybrid_stl'), smoothing=0.1)
    seen = []
    task.criterion.register_forward_pre_hook(lambda module, args: seen.append(args[1]))
    teacher_view = torch.rand(2, 3, 32, 32)
    record = MixRecord(own=torch.tensor([[1., 0., .5, 1.], [0., 0., 1., 1.]]), partner=torch.tensor([1, 0]),
                       lam=torch.tensor([.6, .5]))
    task(pair_views(teacher_view, torch.rand(2, 3, 32, 32)), record.pack(torch.eye(3)[[0, 2]]))
    with torch.no_grad():
        crop = teacher.forward_dense(teacher_view)[0].softmax(-1)
    crop = 0.9 * crop + 0.1 / 3  # smoothed as the token labels
    torch.testing.assert_close(seen[0].cls, record.class_target(crop))  # not the image labels 0 and 2
    task(pair_views(teacher_view, torch.rand(2, 3, 32, 32)), torch.tensor([0, 2]))  # unmixed: the crop label alone
    torch.testing.assert_close(seen[1].cls, crop)
    with pytest.raises(ValueError, match='--class-target crop takes the class target from the label source'):
        STLConfig(stage='tl', class_target='crop')
