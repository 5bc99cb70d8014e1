"""The labelling run: resumable after a kill (equal to an uninterrupted run, finished shards never rewritten),
another run into the same folder refused, two torchrun ranks give the single-process result, and (real images) label
then train with the engine from the maps."""
import json
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from fan_stl.stl.map_store import INDEX_NAME, shard_name
from fan_stl.training.labeling import LabelConfig, label_dataset
from fan_stl.utils.lock import LOCK_NAME, OutputFolderLocked
from tests.conftest import CHECKOUT, checkout_env
from tests.maps_helpers import image_folder, sharp_checkpoint


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('labeling')
    data = image_folder(root / 'data', per_class=3)
    return root, data, sharp_checkpoint(root / 'resnet.pth', 'resnet10t')


def _config(data, checkpoint, out, **options):
    return LabelConfig(str(data), str(checkpoint), str(out), teacher_model='resnet10t', img_size=64, shard_size=2,
                       workers=0, progress=False, **options)


def _same_maps(a, b):
    index_a, index_b = (json.loads((p / INDEX_NAME).read_text()) for p in (a, b))
    rows = [[(s['name'], s['start'], s['count']) for s in index['shards']] for index in (index_a, index_b)]
    assert rows[0] == rows[1] and index_a['run'] == index_b['run']  # the run id covers data, teacher and settings
    for shard in index_a['shards']:
        first, second = load_file(a / shard['name']), load_file(b / shard['name'])
        assert all((first[k] == second[k]).all() for k in ('indices', 'log_probs'))


@pytest.fixture(scope='module')
def uninterrupted(setup):
    root, data, checkpoint = setup
    result = label_dataset(_config(data, checkpoint, root / 'whole'))
    assert len(result.written) == 5 and result.index['num_images'] == 9
    return root / 'whole'


def test_killed_run_resumes_to_the_uninterrupted_result(setup, uninterrupted, tmp_path):
    root, data, checkpoint = setup
    out = tmp_path / 'maps'
    kill_after_first_shard = (
        'import os, signal, sys\n'
        'from fan_stl.training.labeling import LabelConfig, label_dataset\n'
        f'config = LabelConfig({str(data)!r}, {str(checkpoint)!r}, {str(out)!r}, teacher_model="resnet10t", '
        'img_size=64, shard_size=2, workers=0, progress=False)\n'
        'label_dataset(config, on_shard=lambda name: os.kill(os.getpid(), signal.SIGKILL))\n')
    proc = subprocess.run([sys.executable, '-c', kill_after_first_shard], env=checkout_env(), cwd=CHECKOUT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (out / shard_name(0)).is_file() and not (out / INDEX_NAME).exists()
    (out / '.shard-00001.safetensors.123-abcd.tmp').write_bytes(b'half a shard')  # what a kill mid-write leaves
    first = (out / shard_name(0)).stat()
    result = label_dataset(_config(data, checkpoint, out))
    assert result.skipped == [shard_name(0)] and len(result.written) == 4
    again = (out / shard_name(0)).stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)  # never rewritten
    assert not list(out.glob('.*.tmp'))
    _same_maps(out, uninterrupted)


def test_another_run_into_the_same_folder_is_refused(setup, uninterrupted):
    _, data, checkpoint = setup
    with pytest.raises(ValueError, match=r'another labelling run: settings.topk differs \(settings.topk: 3 there, '
                                         r'2 now'):
        label_dataset(_config(data, checkpoint, uninterrupted, topk=2))
    assert label_dataset(_config(data, checkpoint, uninterrupted)).written == []  # finished: nothing to redo


def test_a_folder_another_live_run_holds_is_refused_before_any_work(setup, tmp_path):
    _, data, checkpoint = setup
    out = tmp_path / 'maps'
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({'pid': 1, 'host': 'elsewhere', 'started': 0}))
    with pytest.raises(OutputFolderLocked, match='pid 1 on host elsewhere'):
        label_dataset(_config(data, checkpoint, out))
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written beside the other run's lock


def test_teacher_of_another_class_count_is_refused(setup, tmp_path):
    root, data, _ = setup
    five = sharp_checkpoint(root / 'five.pth', 'resnet10t', num_classes=5)
    with pytest.raises(ValueError, match='predicts 5 classes but the student is trained on 3'):
        label_dataset(_config(data, five, tmp_path / 'maps'))


def test_two_torchrun_ranks_label_their_shards_and_match_one_process(setup, uninterrupted, tmp_path):
    _, data, checkpoint = setup
    out = tmp_path / 'maps'
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '-m', 'fan_stl',
         'label', str(data), '--teacher', str(checkpoint), '--teacher-model', 'resnet10t', '--out', str(out),
         '--img-size', '64', '--shard-size', '2', '--workers', '0', '--device', 'cpu', '--no-progress'],
        env=checkout_env(OMP_NUM_THREADS='1'), cwd=CHECKOUT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '9 images: top-3 maps' in proc.stdout
    _same_maps(out, uninterrupted)


def test_label_then_train_with_the_engine_on_real_images(imagenette_root, tmp_path):
    from tests.training.test_train_launcher import _subset
    from fan_stl.training.engine import TrainConfig, train
    data = _subset(imagenette_root, tmp_path / 'data', per_class=4)
    checkpoint = sharp_checkpoint(tmp_path / 'resnet.pth', 'resnet10t')
    label_dataset(LabelConfig(str(data), str(checkpoint), str(tmp_path / 'maps'), teacher_model='resnet10t',
                              img_size=128, workers=0, progress=False))
    result = train(TrainConfig.from_options(
        data_dir=str(data), model='fan_t_hybrid_stl', model_kwargs={'depth': 1}, stage='stl', label_source='maps',
        label_maps=str(tmp_path / 'maps'), img_size=64, batch_size=4, epochs=1, cooldown_epochs=0, warmup_epochs=0,
        workers=0, progress=False, ema_decay=0))
    assert len(result.step_losses) == 3 and all(loss == loss and loss > 0 for loss in result.step_losses)


def test_storage_of_top5_on_a_14x14_grid_is_a_few_kilobytes(tmp_path):
    data = image_folder(tmp_path / 'data', per_class=1, classes=5)
    checkpoint = sharp_checkpoint(tmp_path / 'fan.pth', 'fan_t_hybrid_tl', num_classes=5)
    index = label_dataset(LabelConfig(str(data), str(checkpoint), str(tmp_path / 'maps'),
                                      teacher_model='fan_t_hybrid_tl', workers=0, progress=False)).index
    assert index['settings']['grid'] == [14, 14] and index['settings']['topk'] == 5  # FAN at 224 px
    per_image = sum(shard['bytes'] for shard in index['shards']) / index['num_images']
    assert 14 * 14 * 5 * (2 + 2) <= per_image < 4100  # int16 classes + fp16 values, one small header per shard
