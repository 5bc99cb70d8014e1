"""Bad maps folders and training sets are refused with one error naming the problem: another file list, images added
after labelling, a missing or truncated shard, an index from a newer format version."""
import json
import shutil

import pytest
from timm.data import create_dataset

from fan_stl.stl.map_store import INDEX_NAME, MapStore, MapsError, shard_name
from fan_stl.training.labeling import LabelConfig, label_dataset
from tests.maps_helpers import image_folder, sharp_checkpoint


@pytest.fixture(scope='module')
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp('store')
    data = image_folder(root / 'data', per_class=2)
    checkpoint = sharp_checkpoint(root / 'resnet.pth', 'resnet10t')
    label_dataset(LabelConfig(str(data), str(checkpoint), str(root / 'maps'), teacher_model='resnet10t',
                              img_size=64, shard_size=4, workers=0, progress=False))
    return root, data


def _copy(root, tmp_path):
    shutil.copytree(root / 'maps', tmp_path / 'maps')
    return tmp_path / 'maps'


def _train_set(data):
    return create_dataset('', root=str(data), split='train')


def test_rows_of_the_labelled_set_and_of_a_subset(labelled):
    root, data = labelled
    store = MapStore(root / 'maps')
    assert store.rows_for(_train_set(data)) == list(range(6))
    subset = _train_set(data)
    subset.reader.samples = subset.reader.samples[2:5]
    assert store.rows_for(subset) == [2, 3, 4]
    indices, log_probs = store.read([5, 0])
    assert indices.shape == log_probs.shape == (2, 3, 2, 2) and (log_probs <= 0).all()


def test_another_dataset_is_refused_naming_both_fingerprints(labelled, tmp_path):
    root, _ = labelled
    other = image_folder(tmp_path / 'other', per_class=2, seed=7, size=(80, 64))
    store = MapStore(root / 'maps')
    with pytest.raises(MapsError, match='another dataset or file list') as e:
        store.rows_for(_train_set(other))
    assert store.fingerprint[:16] in str(e.value) and 'fingerprint' in str(e.value).split('training set')[1]


def test_images_added_after_labelling_are_listed(labelled, tmp_path):
    root, data = labelled
    grown = tmp_path / 'grown'
    shutil.copytree(data, grown)
    shutil.copy(grown / 'train' / 'class1' / '0.png', grown / 'train' / 'class1' / 'new.png')
    with pytest.raises(MapsError, match=r'1 training image\(s\) .* added or changed .*class1/new.png'):
        MapStore(root / 'maps').rows_for(_train_set(grown))


def test_missing_and_truncated_shards_are_named(labelled, tmp_path):
    root, _ = labelled
    maps = _copy(root, tmp_path)
    (maps / shard_name(1)).unlink()
    with pytest.raises(MapsError, match=f'{shard_name(1)} is missing'):
        MapStore(maps)
    shutil.copy(root / 'maps' / shard_name(1), maps / shard_name(1))
    data = (maps / shard_name(0)).read_bytes()
    (maps / shard_name(0)).write_bytes(data[:-10])
    with pytest.raises(MapsError, match=f'{shard_name(0)} is truncated'):
        MapStore(maps)


def test_a_changed_shard_of_the_same_size_is_refused_when_read(labelled, tmp_path):
    root, _ = labelled
    maps = _copy(root, tmp_path)
    data = bytearray((maps / shard_name(0)).read_bytes())
    data[-1] ^= 0xFF
    (maps / shard_name(0)).write_bytes(bytes(data))
    with pytest.raises(MapsError, match=f'{shard_name(0)} cannot be read .*sha256'):
        MapStore(maps).read([0])


def test_newer_format_and_unfinished_folders_are_refused(labelled, tmp_path):
    root, _ = labelled
    maps = _copy(root, tmp_path)
    index = json.loads((maps / INDEX_NAME).read_text())
    (maps / INDEX_NAME).write_text(json.dumps({**index, 'format_version': 99}))
    with pytest.raises(MapsError, match='format version 99, newer than this fan_stl reads'):
        MapStore(maps)
    (maps / INDEX_NAME).unlink()
    with pytest.raises(MapsError, match='labelling did not finish'):
        MapStore(maps)
