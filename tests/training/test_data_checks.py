"""Data guards: named errors instead of shifted labels, empty epochs or bare timm assertions."""
import pytest

from fan_stl.training.data_checks import check_image_folders, check_run_lengths


def _folders(root, train, val):
    for split, classes in (('train', train), ('val', val)):
        for name, count in classes.items():
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                (root / split / name / f'{i}.jpg').write_bytes(b'x')
    return root


def test_matching_folders_pass(tmp_path):
    assert check_image_folders(str(_folders(tmp_path, {'a': 1, 'b': 1}, {'a': 1, 'b': 2}))) == ['a', 'b']


def test_empty_class_folder_is_named(tmp_path):
    root = _folders(tmp_path, {'a': 1, 'b': 0, 'c': 1}, {'a': 1, 'b': 1, 'c': 1})
    with pytest.raises(ValueError, match='hold no images.*shift'):
        check_image_folders(str(root))


def test_different_class_lists_are_named(tmp_path):
    root = _folders(tmp_path, {'a': 1, 'c': 1}, {'a': 1, 'b': 1, 'c': 1})
    with pytest.raises(ValueError, match=r"only in validation \['b'\]"):
        check_image_folders(str(root))


def test_missing_data_dir_and_zero_epochs(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist.*--data-dir'):
        check_image_folders(str(tmp_path / 'nowhere'))
    with pytest.raises(ValueError, match='epochs must be at least 1'):
        check_run_lengths(0)
    with pytest.raises(ValueError, match='grad_accum_steps'):
        check_run_lengths(1, 0)
