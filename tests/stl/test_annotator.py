"""Any timm classifier as a dense token annotator."""
import pytest
import torch

import timm
from fan_stl.stl.annotator import DenseAnnotator, annotator_labeler


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
