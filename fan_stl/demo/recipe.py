"""`DEMO_RECIPE`: the training options the demo gives every arm, shared by the benchmarks that start from it."""

# Sized for two CPU cores: a FAN-T-Hybrid with 1 + 1 ConvNeXt blocks and 2 FAN blocks at 64 px (4 x 4 tokens), about
# 300 steps of batch 32 per arm. Measured on the shapes set: from scratch this model sits at chance for its first
# ~150-200 steps whatever the recipe, and at lr >= 5e-4, with random erasing or with Mixup / CutMix / RandAugment
# it is still there after 300. So: lr 2e-4 (`--lr`), decaying only to 1e-4 (most steps come after the plateau),
# label smoothing, flips, colour jitter and crops of at least 35% of the image, and nothing else.
DEMO_RECIPE = dict(model_kwargs=dict(depth=2, stem_depths=(1, 1)), aa=None, mixup=0., cutmix=0., reprob=0.,
                   scale=(0.35, 1.0), warmup_epochs=1, cooldown_epochs=0, min_lr=1e-4, ema_decay=0., drop_path=0.,
                   workers=0)
