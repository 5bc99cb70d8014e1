"""The engine on real images: both stages, best-epoch EMA teacher, safe resume, atomic checkpoints, data guards."""
import argparse
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import timm
import torch
from timm.models import load_checkpoint
from PIL import Image

from fan_stl.training.engine import TrainConfig, train
from tests.conftest import checkout_env

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(model='fan_t_hybrid_tl', img_size=64, batch_size=4, samples_per_class=2, val_samples_per_class=1,
            lr=1e-3, drop_path=0., aa=None, progress=False, warmup_epochs=0, cooldown_epochs=0, workers=0)


def _checkpoint(path):
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, map_location='cpu', weights_only=True)


@pytest.mark.slow
def test_stage1_then_stage2_best_ema_teacher_options_in_checkpoints_and_resume(imagenette_root, tmp_path):
    tl = train(TrainConfig.from_options(
        data_dir=str(imagenette_root), stage='tl', epochs=2, max_steps_per_epoch=3, mixup=0., cutmix=0., reprob=0.,
        ema_decay=0.9, output_dir=str(tmp_path / 'tl'), **TINY))
    assert len(tl.history) == 2 and tl.history[1]['train_loss'] < tl.history[0]['train_loss']
    best = _checkpoint(tl.best_checkpoint)
    assert best['epoch'] == tl.best_epoch and best['args'].stl['stage'] == 'tl'
    teacher = timm.create_model('fan_t_hybrid_tl', num_classes=10)
    load_checkpoint(teacher, tl.best_checkpoint, use_ema=True)
    assert torch.equal(teacher.aux_head.weight, tl.model.aux_head.weight)  # result.model = the best epoch's EMA
    assert not torch.equal(tl.model.aux_head.weight, tl.final_model.aux_head.weight)

    stl_cfg = TrainConfig.from_options(
        data_dir=str(imagenette_root), stage='stl', teacher=tl.best_checkpoint, teacher_model='fan_t_hybrid_tl',
        epochs=2, max_steps_per_epoch=3, mixup=0., cutmix=0., reprob=0., token_label_mode='argmax', ema_decay=0.9,
        output_dir=str(tmp_path / 'stl'), **{**TINY, 'model': 'fan_t_hybrid_stl'})
    stl = train(stl_cfg)
    assert stl.history[1]['train_loss'] < stl.history[0]['train_loss']
    last = _checkpoint(stl.checkpoint)
    assert last['args'].stl['teacher'] == tl.best_checkpoint and last['args'].stl['token_label_mode'] == 'argmax'
    resumed = train(replace(stl_cfg, epochs=3, max_steps_per_epoch=1, resume=stl.checkpoint,
                            output_dir=str(tmp_path / 'resumed')))
    assert [h['epoch'] for h in resumed.history] == [2]


@pytest.mark.slow
def test_full_recipe_prefetcher_amp_accumulation_follow_mixing(imagenette_root):
    teacher = timm.create_model('fan_t_hybrid_tl', num_classes=10)
    result = train(TrainConfig.from_options(
        data_dir=str(imagenette_root), stage='stl', teacher=teacher, prefetcher=True, device='cpu', follow_mixing=True,
        token_label_mode='topk', amp=True, amp_dtype='bfloat16', grad_accum_steps=2, epochs=1, max_steps_per_epoch=2,
        **{**TINY, 'model': 'fan_t_hybrid_stl', 'aa': 'rand-m9-mstd0.5-inc1-mmax9'}))
    assert len(result.step_losses) == 2 and all(torch.isfinite(torch.tensor(result.step_losses)))


def test_plain_baseline_stage_trains_any_model_with_model_kwargs(imagenette_root):
    result = train(TrainConfig.from_options(
        data_dir=str(imagenette_root), stage='plain', epochs=2, max_steps_per_epoch=2, model_kwargs=dict(depth=1),
        **{**TINY, 'model': 'fan_tiny_8_p4_hybrid'}))
    assert len(result.model.blocks) == 1 and result.model.aux_head is None
    assert len(result.history) == 2 and all(torch.isfinite(torch.tensor(result.step_losses)))


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), 'pwned'))


def test_crafted_resume_checkpoint_is_refused(imagenette_root, tmp_path):
    marker = tmp_path / 'marker'
    crafted = tmp_path / 'evil.pth.tar'
    with crafted.open('wb') as f:
        pickle.dump({'state_dict': {}, 'epoch': _Marker(str(marker))}, f)
    cfg = TrainConfig.from_options(data_dir=str(imagenette_root), stage='tl', resume=str(crafted),
                                   model_kwargs=dict(depth=1), **TINY)
    with pytest.raises(ValueError, match='cannot be resumed safely'):
        train(cfg)
    assert not marker.exists()


def test_data_guards(imagenette_root, tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        train(TrainConfig.from_options(data_dir=str(tmp_path / 'missing'), stage='tl', **TINY))
    with pytest.raises(ValueError, match='epochs must be at least 1'):
        train(TrainConfig.from_options(data_dir=str(imagenette_root), stage='tl', epochs=0, **TINY))
    with pytest.raises(ValueError, match='zero training steps'):
        train(TrainConfig.from_options(data_dir=str(imagenette_root), stage='tl', **{**TINY, 'batch_size': 64}))
    for split in ('train', 'val'):
        (tmp_path / 'data' / split / 'a').mkdir(parents=True)
        (tmp_path / 'data' / split / 'a' / 'x.jpg').write_bytes(b'x')
    (tmp_path / 'data' / 'train' / 'b').mkdir()
    with pytest.raises(ValueError, match='hold no images'):
        train(TrainConfig.from_options(data_dir=str(tmp_path / 'data'), stage='tl', **TINY))


SIGTERM_SCRIPT = '''
import sys, time, torch, fan_stl
from fan_stl.training.engine import TrainConfig, train
real_save, calls = torch.save, []
def slow_save(obj, path, *args, **kwargs):
    calls.append(path)
    if len(calls) == 2:  # the second epoch's save: write part of the file, then hang until killed
        with open(path, 'wb') as f:
            f.write(b'partial')
        print('SAVING', flush=True)
        time.sleep(600)
    real_save(obj, path, *args, **kwargs)
torch.save = slow_save
train(TrainConfig.from_options(data_dir=sys.argv[1], output_dir=sys.argv[2], stage='tl', model='fan_t_hybrid_tl',
      img_size=64, batch_size=2, samples_per_class=1, val_samples_per_class=1, epochs=2, cooldown_epochs=0,
      warmup_epochs=0, max_steps_per_epoch=1, aa=None, workers=0, progress=False, model_kwargs=dict(depth=1)))
'''


def test_sigterm_during_a_checkpoint_save_keeps_the_previous_checkpoint(imagenette_root, tmp_path):
    script = tmp_path / 'slow_save.py'
    script.write_text(SIGTERM_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(imagenette_root), str(tmp_path / 'out')], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env=checkout_env())
    deadline = time.time() + 300
    while proc.stdout.readline().strip() != 'SAVING':
        assert proc.poll() is None and time.time() < deadline, 'the training script ended before its second save'
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    last = _checkpoint(tmp_path / 'out' / 'last.pth.tar')
    assert last['epoch'] == 0 and 'state_dict' in last


DDP_SCRIPT = '''
import sys, torch, timm, fan_stl
from fan_stl.training.engine import TrainConfig, train
from fan_stl.stl.teacher import rank_seed
root, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
teacher = timm.create_model("fan_t_hybrid_tl", num_classes=10)
r = train(TrainConfig.from_options(data_dir=root, model="fan_t_hybrid_stl", stage="stl", teacher=teacher, img_size=64,
          batch_size=2, samples_per_class=2, val_samples_per_class=1, epochs=1, cooldown_epochs=0, warmup_epochs=0,
          max_steps_per_epoch=2, aa="rand-m9-mstd0.5-inc1-mmax9", workers=0, progress=False, output_dir=out))
rank = torch.distributed.get_rank()
print(f"rank{rank} steps={len(r.step_losses)} top1={r.history[-1]['val_top1']:.2f} gumbel_seed={rank_seed(42, rank)}")
'''


@pytest.mark.slow
def test_torchrun_two_ranks_stage2(imagenette_root, tmp_path):
    script = tmp_path / 'ddp_stl.py'
    script.write_text(DDP_SCRIPT)
    env = checkout_env(OMP_NUM_THREADS='1')  # torchrun's children run the script by path
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29517', str(script),
         str(imagenette_root), str(tmp_path / 'out')],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = sorted(line for line in proc.stdout.splitlines() if line.startswith('rank'))
    assert len(lines) == 2 and all('steps=2' in line for line in lines)
    assert len({line.split()[2] for line in lines}) == 1  # validation accuracy is reduced over both ranks
    assert len({line.split()[3] for line in lines}) == 2  # each rank draws its own Gumbel stream
    assert (tmp_path / 'out' / 'last.pth.tar').is_file()


def test_maskmix_cell_covering_the_image_is_refused_before_training(tmp_path):
    """ k = 4 tokens = 64 px at 64 px: one cell per image, so MaskMix would never mix; refused, naming the fix. """
    for split in ('train', 'val'):
        for name in ('a', 'b'):
            (tmp_path / split / name).mkdir(parents=True)
            Image.new('RGB', (64, 64)).save(tmp_path / split / name / 'x.png')
    cfg = TrainConfig.from_options(data_dir=str(tmp_path), stage='plain', model='fan_tiny_8_p4_hybrid', img_size=64,
                                   batch_size=2, cutmix=1., mix_method='maskmix', maskmix_cell=4, workers=0,
                                   model_kwargs=dict(depth=1, stem_depths=(1, 1)), progress=False)
    with pytest.raises(ValueError, match='one cell covers the whole image. Use --maskmix-cell 3 or less'):
        train(cfg)
