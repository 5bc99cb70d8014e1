"""build_task with every mixing method, MixToken inside the task, PAL / TransMix rewriting the class target,
refusals."""
import numpy as np
import pytest
import timm
import torch

from fan_stl.stl.attention_labels import pal_alpha, pal_lam, transmix_lam
from fan_stl.stl.config import STLConfig
from fan_stl.stl.mix_record import MixRecord
from fan_stl.stl.data import build_data
from fan_stl.stl.mixtoken import record_args, unmix_tokens
from fan_stl.stl.task import build_task
from fan_stl.stl.views import pair_views

K = 3
SMALL = dict(num_classes=K, depth=1, stem_depths=(1, 1))
MODELS = {'plain': 'fan_tiny_8_p4_hybrid', 'tl': 'fan_t_hybrid_tl', 'stl': 'fan_t_hybrid_stl'}


def _config(stage, **options):
    teacher = timm.create_model('fan_t_hybrid_tl', **SMALL) if stage == 'stl' else None
    return STLConfig(stage=stage, teacher=teacher, token_label_mode='soft', **options)


def _captured(task):
    """ The (output, target) pairs the task's criterion sees. """
    seen = []
    task.criterion.register_forward_pre_hook(lambda module, args: seen.append(args))
    return seen


def _batch(config, seed=0):
    """ A batch mixed by the config's producer in timm's Mixup slot, and its packed target. """
    np.random.seed(seed)
    torch.manual_seed(seed)
    mixer = build_data(config).mixer(mixup_alpha=0.8, cutmix_alpha=1., num_classes=K, label_smoothing=0.1)
    images = torch.rand(4, 3, 64, 64)
    x = pair_views(images, images.clone()) if config.needs_teacher else images
    return mixer(x, torch.tensor([0, 1, 2, 0]))


@pytest.mark.parametrize('stage', ['plain', 'tl', 'stl'])
@pytest.mark.parametrize('method', ['mixup_cutmix', 'maskmix', 'mixpro', 'mixtoken'])
def test_every_method_runs_one_step_in_every_stage(stage, method):
    config = _config(stage, mix_method=method, mix_pairing='perm', maskmix_cell=1)
    task = build_task(config, timm.create_model(MODELS[stage], **SMALL), smoothing=0.1).train()
    seen = _captured(task)
    x, packed = _batch(config)
    loss = task(x, packed)['loss']
    assert torch.isfinite(loss) and task.steps == 1
    loss.backward()
    target = seen[0][1].cls if stage != 'plain' else seen[0][1]
    soft, record = MixRecord.unpack(packed, K)
    if method == 'mixtoken':  # the data path packed an unmixed record; the task mixed the tokens
        assert record.is_identity
    else:
        torch.testing.assert_close(target, record.class_target(soft))
    torch.testing.assert_close(target.sum(-1), torch.ones(4))


def test_patch_cutmix_on_a_vit_p16_and_mixup_cutmix_on_any_model():
    for method, name in (('patch_cutmix', 'vit_tiny_patch16_224'), ('mixup_cutmix', 'resnet18')):
        config = _config('plain', mix_method=method)
        kwargs = dict(img_size=64, depth=1) if name.startswith('vit') else {}
        task = build_task(config, timm.create_model(name, num_classes=K, **kwargs)).train()
        x, packed = _batch(config, seed=1)
        assert torch.isfinite(task(x, packed)['loss'])


def test_mixtoken_in_the_task_uses_the_token_area_lam_and_token_targets_follow_the_record():
    config = _config('stl', mix_method='mixtoken', mix_pairing='perm')
    student = timm.create_model('fan_t_hybrid_stl', **SMALL)
    task = build_task(config, student, smoothing=0.).train()
    record = MixRecord(own=torch.tensor([[1., 0, 0, 1]] * 4), partner=torch.tensor([2, 3, 0, 1]),
                       lam=torch.full((4,), 0.5))
    task.token_mixer = lambda batch, grid, device: record  # a known draw
    seen = _captured(task)
    teacher_view, student_view = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    labels = torch.tensor([0, 1, 2, 0])
    task(pair_views(teacher_view, student_view), labels)
    output, target = seen[0]
    torch.testing.assert_close(target.cls, record.class_target(torch.eye(K)[labels]))
    clean = task.labeler(teacher_view)
    torch.testing.assert_close(target.tokens.dense(), clean.blend(record).dense())
    with torch.no_grad():  # the model really mixed its tokens: the same forward with token_mix
        expected = student(student_view, token_mix=record_args(record))
    torch.testing.assert_close(output[1], expected[1])
    # LV-ViT's form: un-mixed token predictions against each image's own targets - the same dense loss
    log_probs = output[1].log_softmax(-1)
    following = -(target.tokens.dense() * log_probs).sum(-1).mean()
    unmixed = -(clean.dense() * unmix_tokens(log_probs, record)).sum(-1).mean()
    torch.testing.assert_close(following, unmixed)


@pytest.mark.parametrize('stage', ['plain', 'stl'])
@pytest.mark.parametrize('relabel', ['pal', 'transmix', 'pal_fixed'])
def test_attention_relabelling_rewrites_the_class_target(stage, relabel):
    options = dict(attention_relabel='pal', pal_alpha=0.5) if relabel == 'pal_fixed' else dict(
        attention_relabel=relabel)
    config = _config(stage, **options)
    model = timm.create_model(MODELS[stage], **SMALL)
    task = build_task(config, model, smoothing=0.).train()
    seen = _captured(task)
    record = MixRecord(own=torch.tensor([[1., 1, 0, 0]] * 2), partner=torch.tensor([1, 0]), lam=torch.full((2,), .5))
    soft = torch.eye(K)[[0, 1]]
    torch.manual_seed(0)
    images = torch.rand(2, 3, 32, 32)
    task(pair_views(images, images) if stage == 'stl' else images, record.pack(soft))
    target = seen[0][1].cls if stage == 'stl' else seen[0][1]
    with torch.no_grad():
        output, attn = model(images, return_attn=True)
    logits = output[0] if stage == 'stl' else output
    if relabel == 'transmix':
        lam = transmix_lam(attn, record)
    else:
        lam = pal_lam(attn, record, 0.5 if relabel == 'pal_fixed' else pal_alpha(logits, soft, record))
    expected = lam[:, None] * soft + (1 - lam[:, None]) * soft[record.partner]
    torch.testing.assert_close(target, expected)
    assert not torch.allclose(target, record.class_target(soft))  # the rewrite is visible


def test_combinations_that_cannot_work_are_refused_with_the_fix():
    resnet = timm.create_model('resnet18', num_classes=K)
    with pytest.raises(ValueError, match='patch_cutmix'):
        build_task(_config('plain', mix_method='mixtoken'), resnet)
    with pytest.raises(ValueError, match='attention-relabel none'):
        build_task(_config('plain', attention_relabel='transmix'), timm.create_model('vit_tiny_patch16_224'))
    with pytest.raises(ValueError, match='mixtoken for FAN'):
        build_task(_config('plain', mix_method='patch_cutmix'), timm.create_model(MODELS['plain'], **SMALL))
    with pytest.raises(ValueError, match='pal_alpha'):
        STLConfig(stage='plain', attention_relabel='pal', pal_alpha=2.)
    with pytest.raises(ValueError, match='mix_pairing'):
        STLConfig(stage='plain', mix_pairing='random')
