"""The engine: both stages on real images, best-epoch EMA teacher, data guards; on tiny generated images: resume of
whole training checkpoints only, the checkpoint history across a resume, interruptions (SIGKILL mid-epoch, SIGKILL
or SIGTERM mid-save) followed by a resume, checkpoints never missing or partial, the output-folder lock, cooldown.
"""
import argparse
import copy
import os
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

from fan_stl.training import engine
from fan_stl.training.engine import TrainConfig, train
from fan_stl.utils.lock import OutputFolderLocked
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


DDP_SCRIPT = '''
import sys, torch, timm, fan_stl
from fan_stl.training import engine
from fan_stl.training.engine import TrainConfig, train
from fan_stl.utils.lock import OutputFolderLocked
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


def _tiny_images(root, size=32):
    """ Two classes, two training and one validation image each: an ImageFolder in seconds. """
    for split, count in (('train', 2), ('val', 1)):
        for c, colour in enumerate(((200, 30, 30), (30, 30, 200))):
            (root / split / f'c{c}').mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = Image.new('RGB', (size, size), tuple(v + 20 * i for v in colour))
                image.save(root / split / f'c{c}' / f'{i}.png')
    return root


def _tiny_cfg(root, **options):
    values = dict(data_dir=str(root), stage='tl', model='fan_t_hybrid_tl', model_kwargs=dict(depth=1), img_size=32,
                  batch_size=2, epochs=2, cooldown_epochs=0, warmup_epochs=0, aa=None, reprob=0., mixup=0., cutmix=0.,
                  workers=0, progress=False, ema_decay=0.9)
    values.update(options)
    return TrainConfig.from_options(**values)


@pytest.fixture
def tiny_data(tmp_path):
    return _tiny_images(tmp_path / 'data')


def test_resume_needs_a_whole_training_checkpoint(tiny_data, tmp_path):
    out = tmp_path / 'out'
    train(_tiny_cfg(tiny_data, epochs=1, output_dir=str(out)))
    plain = tmp_path / 'weights.pth'
    torch.save(_checkpoint(out / 'last.pth.tar')['state_dict'], plain)
    with pytest.raises(ValueError, match=r'plain model state dict .*missing the epoch.*the optimizer state'):
        train(_tiny_cfg(tiny_data, resume=str(plain)))
    no_ema = _checkpoint(out / 'last.pth.tar')
    del no_ema['state_dict_ema']
    torch.save(no_ema, tmp_path / 'no_ema.pth.tar')
    with pytest.raises(ValueError, match=r'incomplete training checkpoint, missing the EMA weights'):
        train(_tiny_cfg(tiny_data, resume=str(tmp_path / 'no_ema.pth.tar')))
    data = (out / 'last.pth.tar').read_bytes()
    (tmp_path / 'truncated.pth.tar').write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=r'truncated.pth.tar is not a readable checkpoint'):
        train(_tiny_cfg(tiny_data, resume=str(tmp_path / 'truncated.pth.tar')))
    with pytest.raises(FileNotFoundError, match=r'missing.pth.tar does not exist'):
        train(_tiny_cfg(tiny_data, resume=str(tmp_path / 'missing.pth.tar')))
    with pytest.raises(ValueError, match=r'finished epoch 0, the last of a run of 1 epochs'):
        train(_tiny_cfg(tiny_data, epochs=1, resume=str(out / 'last.pth.tar')))


def test_resume_into_the_same_folder_keeps_the_checkpoint_history(tiny_data, tmp_path, monkeypatch):
    """ Epoch 1 scores best; the resumed epoch 2 scores worse and must not replace model_best. """
    scores = iter([50., 80., 10.])
    monkeypatch.setattr(engine, 'evaluate', lambda *args, **kwargs: next(scores))
    out = tmp_path / 'out'
    first = train(_tiny_cfg(tiny_data, ema_decay=0., output_dir=str(out)))
    assert first.best_epoch == 1 and _checkpoint(out / 'model_best.pth.tar')['epoch'] == 1
    resumed = train(_tiny_cfg(tiny_data, ema_decay=0., epochs=3, output_dir=str(out),
                              resume=str(out / 'last.pth.tar')))
    assert [h['epoch'] for h in resumed.history] == [2]
    assert _checkpoint(out / 'model_best.pth.tar')['epoch'] == 1 and resumed.best_epoch == 1
    best = _checkpoint(out / 'model_best.pth.tar')['state_dict']
    assert all(torch.equal(best[k], v) for k, v in resumed.model.state_dict().items())
    saver = _checkpoint(out / 'last.pth.tar')['saver']
    assert [m for _, m in saver['checkpoint_files']] == [80., 50.]  # history of 3 kept: 80 and 50 before 10
    assert sorted(p.name for p in out.glob('checkpoint-*.pth.tar')) == [f'checkpoint-{e}.pth.tar' for e in range(3)]


def _watch_checkpoints(out, monkeypatch):
    """ After every rename, link and unlink anywhere, check that last / model_best, once written, are present and
    whole: a reader can look at any moment between two file-system steps. """
    seen, checks = set(), []

    def check():
        for name in ('last.pth.tar', 'model_best.pth.tar'):
            path = out / name
            if name in seen or path.exists():
                seen.add(name)
                assert path.exists(), f'{name} is missing between two steps of a checkpoint save'
                assert 'epoch' in _checkpoint(path), f'{name} is partial'
                checks.append(name)

    for fn in ('replace', 'rename', 'link', 'unlink', 'remove'):
        real = getattr(os, fn)

        def watched(*args, _real=real, **kwargs):
            result = _real(*args, **kwargs)
            check()
            return result
        monkeypatch.setattr(os, fn, watched)
    return checks


def test_checkpoints_are_never_missing_or_partial(tiny_data, tmp_path, monkeypatch):
    out = tmp_path / 'out'
    checks = _watch_checkpoints(out, monkeypatch)
    train(_tiny_cfg(tiny_data, epochs=3, checkpoint_hist=1, output_dir=str(out)))
    assert len(checks) > 6  # the files were looked at during every save
    assert not list(out.glob('.*.tmp')) and not (out / 'tmp.pth.tar').exists()


INTERRUPTED_SCRIPT = '''
import sys, time, torch, fan_stl
from fan_stl.training import engine
from fan_stl.training import engine
from fan_stl.training.engine import TrainConfig, train
from fan_stl.utils.lock import OutputFolderLocked
data, out, mode = sys.argv[1:4]
if mode == 'epoch':  # stop inside epoch 2's training steps
    real_loaders = engine._loaders
    def loaders(*args, **kwargs):
        train_loader, val_loader, mixer = real_loaders(*args, **kwargs)
        class Interrupted:
            sampler, epochs = None, 0
            def __len__(self):
                return len(train_loader)
            def __iter__(self):
                Interrupted.epochs += 1
                for step, batch in enumerate(train_loader):
                    if Interrupted.epochs == 3 and step == 1:
                        print('STOPPED', flush=True)
                        time.sleep(600)
                    yield batch
        return Interrupted(), val_loader, mixer
    engine._loaders = loaders
else:  # stop inside epoch 1's checkpoint write, part of the file written
    real_save, saves = torch.save, []
    def slow_save(obj, path, *args, **kwargs):
        saves.append(path)
        if len(saves) == 2:
            with open(path, 'wb') as f:
                f.write(b'partial')
            print('STOPPED', flush=True)
            time.sleep(600)
        real_save(obj, path, *args, **kwargs)
    torch.save = slow_save
train(TrainConfig.from_options(
    data_dir=data, output_dir=out, stage='tl', model='fan_t_hybrid_tl', model_kwargs=dict(depth=1), img_size=32,
    batch_size=2, epochs=3, cooldown_epochs=0, warmup_epochs=0, aa=None, reprob=0., mixup=0., cutmix=0., workers=0,
    progress=False, ema_decay=0.9))
'''


def _optimizer_spy(monkeypatch):
    """ The optimizer state right after the engine loaded it from the resume checkpoint. """
    loaded = {}
    real = engine.create_optimizer_v2

    def create(*args, **kwargs):
        optimizer = real(*args, **kwargs)
        load = optimizer.load_state_dict

        def load_and_record(state):
            load(state)
            loaded.update(copy.deepcopy(optimizer.state_dict()))
        optimizer.load_state_dict = load_and_record
        return optimizer
    monkeypatch.setattr(engine, 'create_optimizer_v2', create)
    return loaded


@pytest.mark.parametrize('where, sig', [('epoch', signal.SIGKILL), ('save', signal.SIGKILL),
                                        ('save', signal.SIGTERM)])
def test_interrupted_run_resumes_from_the_last_complete_epoch(tiny_data, tmp_path, monkeypatch, where, sig):
    script, out = tmp_path / 'interrupted.py', tmp_path / 'out'
    script.write_text(INTERRUPTED_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(tiny_data), str(out), where], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env=checkout_env(OMP_NUM_THREADS='1'))
    deadline = time.time() + 300
    while proc.stdout.readline().strip() != 'STOPPED':
        assert proc.poll() is None and time.time() < deadline, 'the training script ended before it was stopped'
    proc.send_signal(sig)
    proc.wait(timeout=60)
    last_complete = 1 if where == 'epoch' else 0
    last = _checkpoint(out / 'last.pth.tar')
    assert last['epoch'] == last_complete and _checkpoint(out / 'model_best.pth.tar')['epoch'] <= last_complete
    assert (out / f'checkpoint-{last_complete}.pth.tar').exists()
    assert not (out / f'checkpoint-{last_complete + 1}.pth.tar').exists()

    loaded = _optimizer_spy(monkeypatch)
    with pytest.warns(UserWarning, match=f'taking over the lock of pid {proc.pid}'):
        resumed = train(_tiny_cfg(tiny_data, epochs=3, output_dir=str(out), resume=str(out / 'last.pth.tar')))
    assert [h['epoch'] for h in resumed.history] == list(range(last_complete + 1, 3))
    saved = last['optimizer']['state']
    assert saved and loaded['state'].keys() == saved.keys()
    for key, state in saved.items():
        assert all(torch.equal(loaded['state'][key][name], value) for name, value in state.items())
    assert _checkpoint(out / 'last.pth.tar')['epoch'] == 2


def test_second_run_into_the_same_output_folder_is_refused(tiny_data, tmp_path):
    out = tmp_path / 'out'
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\nfrom fan_stl.utils.lock import output_lock\n'
         'with output_lock(sys.argv[1]):\n    print("HELD", flush=True); time.sleep(600)', str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env=checkout_env())
    try:
        assert holder.stdout.readline().strip() == 'HELD'
        with pytest.raises(OutputFolderLocked, match=f'in use by another run: pid {holder.pid}'):
            train(_tiny_cfg(tiny_data, output_dir=str(out)))
        assert not (out / 'last.pth.tar').exists()
    finally:
        holder.kill()
        holder.wait()


def test_cooldown_epochs_are_trained_after_epochs_and_said_so(tiny_data, capsys):
    result = train(_tiny_cfg(tiny_data, epochs=1, cooldown_epochs=2, progress=True))
    assert [h['epoch'] for h in result.history] == [0, 1, 2]
    assert 'training 3 epochs: 1 (cosine schedule) + 2 cooldown epochs at min_lr' in capsys.readouterr().out
    assert TrainConfig(data_dir='x').cooldown_epochs == 10
