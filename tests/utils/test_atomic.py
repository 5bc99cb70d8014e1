"""Atomic writes (`fan_stl.utils.atomic`): whole files or the old file, no temp files left, usual permissions."""
import json
import os

import pytest

from fan_stl.utils.atomic import (
    TEMP_GLOB, append_text_atomic, atomic_path, write_bytes_atomic, write_json_atomic, write_text_atomic)


def test_writes_bytes_text_json_and_appends(tmp_path):
    target = tmp_path / 'new' / 'a.bin'  # the folder is made
    assert write_bytes_atomic(target, b'\x00\x01') == target and target.read_bytes() == b'\x00\x01'
    write_text_atomic(tmp_path / 'a.txt', 'héllo')
    assert (tmp_path / 'a.txt').read_text(encoding='utf-8') == 'héllo'
    write_json_atomic(tmp_path / 'a.json', {'k': [1, 2]})
    assert json.loads((tmp_path / 'a.json').read_text()) == {'k': [1, 2]}
    append_text_atomic(tmp_path / 'log.md', 'one\n')
    append_text_atomic(tmp_path / 'log.md', 'two\n')
    assert (tmp_path / 'log.md').read_text() == 'one\ntwo\n'
    assert not list(tmp_path.rglob(TEMP_GLOB))


def test_a_failed_writer_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / 'figure.png'
    target.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith('.figure.png.') and tmp.match(TEMP_GLOB)
            tmp.write_bytes(b'half')
            raise RuntimeError('writer died')
    assert target.read_bytes() == b'old' and not list(tmp_path.glob(TEMP_GLOB))


def test_files_get_the_usual_permissions_not_owner_only(tmp_path):
    """ files written through a mkstemp temp file were owner-only (0600), unlike the others. """
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / 'history.json', '{}')
        (tmp_path / 'plain.json').write_text('{}')
    finally:
        os.umask(old)
    mode = (tmp_path / 'history.json').stat().st_mode & 0o777
    assert mode == (tmp_path / 'plain.json').stat().st_mode & 0o777 == 0o644
