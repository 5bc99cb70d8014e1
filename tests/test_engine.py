"""End to end on real images: stage 1 (token labeler) then stage 2 (STL student) through the launcher's pieces."""
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import timm
import torch
from timm.models import load_checkpoint

from fan_stl.engine import TrainConfig, train

TINY = dict(model='fan_t_hybrid_tl', img_size=64, batch_size=4, samples_per_class=2, val_samples_per_class=1,
            lr=1e-3, drop_path=0., aa='rand-m9-mstd0.5-inc1-mmax9', progress=False)


def test_stage1_then_stage2_losses_decrease_and_checkpoints_load(imagenette_root, tmp_path):
    tl = train(TrainConfig(data_dir=str(imagenette_root), stage='tl', epochs=2, max_steps_per_epoch=3, mixup=0.,
                           cutmix=0., reprob=0., ema_decay=0.9, output_dir=str(tmp_path / 'tl'),
                           **{**TINY, 'aa': None}))
    assert len(tl.history) == 2 and 0. <= tl.history[-1]['val_top1'] <= 100.
    assert tl.history[1]['train_loss'] < tl.history[0]['train_loss']
    reloaded = timm.create_model('fan_t_hybrid_tl', num_classes=10)
    load_checkpoint(reloaded, tl.checkpoint, use_ema=False)
    assert torch.equal(reloaded.aux_head.weight, tl.model.aux_head.weight)

    stl_cfg = TrainConfig(data_dir=str(imagenette_root), stage='stl', teacher=tl.checkpoint,
                          teacher_model='fan_t_hybrid_tl', epochs=2, max_steps_per_epoch=3, mixup=0., cutmix=0.,
                          reprob=0., token_label_mode='argmax', ema_decay=0.9, output_dir=str(tmp_path / 'stl'),
                          **{**TINY, 'model': 'fan_t_hybrid_stl', 'aa': None})
    stl = train(stl_cfg)
    assert stl.history[1]['train_loss'] < stl.history[0]['train_loss']
    student = timm.create_model('fan_t_hybrid_stl', num_classes=10)
    load_checkpoint(student, stl.checkpoint, use_ema=True)
    assert not torch.equal(student.head.weight, stl.model.head.weight)  # the EMA weights, not the raw ones
    resumed = train(replace(stl_cfg, epochs=3, max_steps_per_epoch=1, resume=stl.checkpoint,
                            output_dir=str(tmp_path / 'resumed')))
    assert [h['epoch'] for h in resumed.history] == [2]


def test_full_recipe_prefetcher_amp_accumulation_follow_mixing(imagenette_root):
    teacher = timm.create_model('fan_t_hybrid_tl', num_classes=10)
    result = train(TrainConfig(data_dir=str(imagenette_root), stage='stl', teacher=teacher, prefetcher=True,
                               device='cpu', follow_mixing=True, token_label_mode='topk', amp=True,
                               grad_accum_steps=2, epochs=1, max_steps_per_epoch=2,
                               **{**TINY, 'model': 'fan_t_hybrid_stl'}))
    assert len(result.step_losses) == 2 and all(torch.isfinite(torch.tensor(result.step_losses)))


def test_plain_baseline_stage_trains_any_model_with_model_kwargs(imagenette_root):
    result = train(TrainConfig(data_dir=str(imagenette_root), stage='plain', epochs=2, max_steps_per_epoch=2,
                               model_kwargs=dict(depth=1), **{**TINY, 'model': 'fan_tiny_8_p4_hybrid'}))
    assert len(result.model.blocks) == 1 and result.model.aux_head is None
    assert len(result.history) == 2 and all(torch.isfinite(torch.tensor(result.step_losses)))


def test_stl_without_teacher_is_a_clear_error(imagenette_root):
    with pytest.raises(ValueError, match='needs a teacher'):
        train(TrainConfig(data_dir=str(imagenette_root), stage='stl', **{**TINY, 'model': 'fan_t_hybrid_stl'}))


DDP_SCRIPT = '''
import sys, torch, timm, fan_stl
from fan_stl.engine import TrainConfig, train
from fan_stl.token_labels import rank_seed
root, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
teacher = timm.create_model("fan_t_hybrid_tl", num_classes=10)
r = train(TrainConfig(data_dir=root, model="fan_t_hybrid_stl", stage="stl", teacher=teacher, img_size=64,
                      batch_size=2, samples_per_class=2, val_samples_per_class=1, epochs=1, max_steps_per_epoch=2,
                      aa="rand-m9-mstd0.5-inc1-mmax9", progress=False, output_dir=out))
rank = torch.distributed.get_rank()
print(f"rank{rank} steps={len(r.step_losses)} top1={r.history[-1]['val_top1']:.2f} gumbel_seed={rank_seed(42, rank)}")
'''


def test_torchrun_two_ranks_stage2(imagenette_root, tmp_path):
    script = tmp_path / 'ddp_stl.py'
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29517', str(script),
         str(imagenette_root), str(tmp_path / 'out')],
        capture_output=True, text=True, timeout=600, env=env, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = sorted(l for l in proc.stdout.splitlines() if l.startswith('rank'))
    assert len(lines) == 2 and all('steps=2' in l for l in lines)
    top1 = {l.split()[2] for l in lines}
    assert len(top1) == 1  # validation accuracy is reduced over both ranks
    assert len({l.split()[3] for l in lines}) == 2  # each rank draws its own Gumbel stream
    assert (tmp_path / 'out' / 'last.pth.tar').is_file()
