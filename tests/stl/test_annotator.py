"""Any timm classifier as a dense token annotator."""
import pytest
import torch

import timm
from fan_stl.stl import annotator as annotator_module
from fan_stl.stl.annotator import DenseAnnotator
from fan_stl.stl.config import STLConfig
from fan_stl.stl.task import build_task
from fan_stl.stl.teacher import annotator_labeler
from fan_stl.stl.views import pair_views


def test_average_of_the_dense_map_gives_the_cnn_its_own_prediction():
    model = timm.create_model('resnet10t', num_classes=7).eval()
    annotator = DenseAnnotator(model)
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        cls_logits, scores = annotator.score_map(x)
        torch.testing.assert_close(cls_logits, model(x))
        assert annotator.kind == 'pool-linear' and scores.shape == (4, 7, 2, 2)
        torch.testing.assert_close(scores.mean(dim=(2, 3)), cls_logits, rtol=1e-4, atol=1e-5)
        assert torch.equal(scores.mean(dim=(2, 3)).argmax(1), model(x).argmax(1))


def test_map_is_resized_to_the_student_token_grid():
    model = timm.create_model('resnet10t', num_classes=7).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        _, scores = DenseAnnotator(model).score_map(x)  # stride 32: 2 x 3
        _, tokens = DenseAnnotator(model, token_stride=16).forward_dense(x)  # student grid 4 x 6
    assert tokens.shape == (2, 24, 7)
    expected = torch.nn.functional.interpolate(scores, size=(4, 6), mode='bilinear', align_corners=False)
    torch.testing.assert_close(tokens, expected.flatten(2).transpose(1, 2))


@pytest.mark.parametrize('name, kind', [('convnext_atto', 'pool-norm-linear'),
                                        ('vit_tiny_patch16_224', 'token-linear'),
                                        ('fan_t_hybrid_tl', 'token-head')])
def test_other_supported_heads(name, kind):
    kwargs = {'img_size': 64, 'depth': 1} if name.startswith('vit') else {'depth': 1} if name.startswith('fan') else {}
    model = timm.create_model(name, num_classes=7, **kwargs).eval()
    annotator = DenseAnnotator(model)
    with torch.no_grad():
        _, tokens = annotator.forward_dense(torch.randn(2, 3, 64, 64))
    assert annotator.kind == kind and tokens.shape == (2, 16, 7) and torch.isfinite(tokens).all()


def test_norm_head_dense_map_is_the_head_at_each_location():
    model = timm.create_model('convnext_atto', num_classes=7).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        _, scores = DenseAnnotator(model).score_map(x)
        one = features[:, :, 1:2, 0:1]  # the head on a 1x1 map is the dense map at that location
        torch.testing.assert_close(scores[:, :, 1, 0], model.forward_head(one))


def test_heads_without_a_dense_form_are_refused_by_name():
    model = timm.create_model('mobilenetv3_small_050', num_classes=7).eval()  # conv_head after the pooling
    with pytest.raises(ValueError, match='pool-linear, pool-norm-linear, token-linear, token-head'):
        DenseAnnotator(model).forward_dense(torch.randn(1, 3, 64, 64))
    model = timm.create_model('resnet10t', num_classes=7, global_pool='catavgmax')
    with pytest.raises(ValueError, match='catavgmax'):
        DenseAnnotator(model)


def test_annotator_behind_the_fan_labeler():
    model = timm.create_model('resnet10t', num_classes=7)
    labeler = annotator_labeler(model, mode='argmax', smoothing=0.)
    x = torch.randn(2, 3, 64, 64)
    targets = labeler(x)
    with torch.no_grad():
        _, tokens = DenseAnnotator(model).forward_dense(x)
    assert torch.equal(targets.dense().argmax(-1), tokens.argmax(-1))
    assert not model.training and not any(p.requires_grad for p in model.parameters())


# --- the `annotator` label source (`--label-source annotator`) ---

SMALL_STUDENT = dict(num_classes=3, depth=1, stem_depths=(1, 1))


def _annotator_task(teacher, **options):
    config = STLConfig(stage='stl', teacher=teacher, label_source='annotator', token_label_mode='argmax', **options)
    return build_task(config, timm.create_model('fan_t_hybrid_stl', **SMALL_STUDENT), smoothing=0.)


def _one_step(task, teacher_view):
    seen = []
    task.criterion.register_forward_pre_hook(lambda module, args: seen.append(args[1]))
    loss = task(pair_views(teacher_view, torch.rand_like(teacher_view)), torch.tensor([0, 2]))['loss']
    loss.backward()
    assert torch.isfinite(loss) and task.steps == 1
    return seen[0].tokens


@pytest.mark.parametrize('as_file', [False, True], ids=['module', 'checkpoint'])
def test_annotator_source_labels_the_student_grid_with_the_cnn_map(tmp_path, as_file):
    cnn = timm.create_model('resnet10t', num_classes=3).eval()
    teacher = cnn
    if as_file:  # a train.py-style checkpoint with EMA weights (which are the ones used)
        teacher = str(tmp_path / 'cnn.pth.tar')
        ema = {k: v + 0.01 if v.is_floating_point() else v for k, v in cnn.state_dict().items()}
        torch.save({'state_dict': cnn.state_dict(), 'state_dict_ema': ema}, teacher)
        cnn.load_state_dict(ema)
    task = _annotator_task(teacher, **({'teacher_model': 'resnet10t'} if as_file else {}))
    teacher_view = torch.randn(2, 3, 64, 64)
    tokens = _one_step(task, teacher_view)
    with torch.no_grad():
        _, expected = DenseAnnotator(cnn).forward_dense(teacher_view)  # 2 x 2 map -> 4 x 4 student tokens
    assert tokens.shape == (2, 16, 3)
    assert torch.equal(tokens.dense().argmax(-1), expected.argmax(-1))


def test_annotator_source_refusals(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match='--teacher pretrained needs the annotator.s name: --teacher-model'):
        _annotator_task('pretrained')
    with pytest.raises(ValueError, match='needs its architecture: pass --teacher-model'):
        path = tmp_path / 'cnn.pth'
        torch.save(timm.create_model('resnet10t', num_classes=3).state_dict(), path)
        _annotator_task(str(path))
    torch.save(timm.create_model('resnet10t', num_classes=5).state_dict(), tmp_path / 'five.pth')
    with pytest.raises(ValueError, match='predicts 5 classes but the student is trained on 3; token labels are never'):
        _annotator_task(str(tmp_path / 'five.pth'), teacher_model='resnet10t')
    with pytest.raises(ValueError, match='predicts 7 classes but the student is trained on 3'):
        _annotator_task(timm.create_model('resnet10t', num_classes=7))
    task = _annotator_task(timm.create_model('mobilenetv3_small_050', num_classes=3))  # conv_head after the pooling
    with pytest.raises(ValueError, match='Supported heads: pool-linear, pool-norm-linear, token-linear, token-head'):
        _one_step(task, torch.randn(2, 3, 64, 64))
    # `--teacher pretrained --teacher-model NAME` loads NAME pretrained (no network here: random weights stand in)
    created = []
    real_create = timm.create_model

    def offline_create(name, pretrained=False, **kwargs):
        created.append((name, pretrained))
        return real_create(name.split('.')[0], **{'num_classes': 1000, **kwargs})
    monkeypatch.setattr(annotator_module.timm, 'create_model', offline_create)
    with pytest.raises(ValueError, match="annotator 'resnet10t.gluon_in1k' predicts 1000 classes .* trained on 3"):
        _annotator_task('pretrained', teacher_model='resnet10t.gluon_in1k')
    assert created[-1] == ('resnet10t.gluon_in1k', True)
