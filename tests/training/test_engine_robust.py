"""The engine with the robust-training options: --aug-splits / --jsd-loss in stages plain, tl and stl (prefetcher and
not), a batch augmentation, and the refusals that come before any training."""
import pytest
import timm
import torch

from fan_stl.stl.task import STLTask
from fan_stl.training.engine import TrainConfig, train

TINY = dict(model='fan_t_hybrid_tl', img_size=64, batch_size=4, samples_per_class=1, val_samples_per_class=1,
            lr=1e-3, drop_path=0., progress=False, warmup_epochs=0, cooldown_epochs=0, workers=0, epochs=1,
            max_steps_per_epoch=1, mixup=0., cutmix=0., ema_decay=0., model_kwargs=dict(depth=1))


@pytest.mark.parametrize('stage, prefetcher, extra', [
    ('plain', False, dict(batch_augment='randconv')),
    ('tl', True, dict(jsd_tokens=True)),
    ('stl', False, dict(jsd_tokens=True, batch_augment='prime')),
], ids=['plain-randconv', 'tl-prefetcher', 'stl-prime'])
def test_aug_splits_and_jsd_through_the_engine(imagenette_root, stage, prefetcher, extra, monkeypatch):
    teacher = dict(teacher=timm.create_model('fan_t_hybrid_tl', num_classes=10, depth=1)) if stage == 'stl' else {}
    model = {'plain': 'fan_tiny_8_p4_hybrid', 'tl': 'fan_t_hybrid_tl', 'stl': 'fan_t_hybrid_stl'}[stage]
    terms = []
    original = STLTask.forward

    def spy(self, input, target):
        out = original(self, input, target)
        terms.append((input.shape[0], self.consistency is not None))
        return out

    monkeypatch.setattr(STLTask, 'forward', spy)
    result = train(TrainConfig.from_options(
        data_dir=str(imagenette_root), stage=stage, aug_splits=3, jsd_loss=True, prefetcher=prefetcher,
        aa='augmix-m3-w3', **teacher, **extra, **{**TINY, 'model': model}))
    assert all(torch.isfinite(torch.tensor(result.step_losses)))
    assert terms[0] == (12, True)  # 4 images x 3 views, the JS term on


def test_refusals_before_training(imagenette_root):
    with pytest.raises(ValueError, match='--mixup 0'):
        train(TrainConfig.from_options(data_dir=str(imagenette_root), stage='tl', aug_splits=2,
                                       **{**TINY, 'mixup': 0.8}))
    with pytest.raises(ValueError, match='geometry'):
        train(TrainConfig.from_options(data_dir=str(imagenette_root), stage='stl', aug_splits=2,
                                       teacher=timm.create_model('fan_t_hybrid_tl', num_classes=10, depth=1),
                                       aa='rand-m9-mstd0.5-inc1-mmax9', **{**TINY, 'model': 'fan_t_hybrid_stl'}))
