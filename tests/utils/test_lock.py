"""The output-folder lock: held with pid and host, a second run refused in one line, a dead holder's lock taken over."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from fan_stl.utils.lock import LOCK_NAME, OutputFolderLocked, locks_output_folder, output_lock

HOLDER = '''
import sys, time
from fan_stl.utils.lock import output_lock
with output_lock(sys.argv[1]):
    print('HELD', flush=True)
    time.sleep(600)
'''


def _holder_process(folder, tmp_path):
    script = tmp_path / 'holder.py'
    script.write_text(HOLDER)
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [os.getcwd(), os.environ.get('PYTHONPATH')]))}
    proc = subprocess.Popen([sys.executable, str(script), str(folder)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == 'HELD'
    return proc


def test_lock_records_the_holder_and_is_removed_on_release(tmp_path):
    folder = tmp_path / 'out'
    with output_lock(folder) as path:
        holder = json.loads(path.read_text())
        assert path == folder / LOCK_NAME
        assert holder['pid'] == os.getpid() and holder['host'] == socket.gethostname()
        with output_lock(folder):  # nested use by the same process shares the lock
            pass
        assert path.exists()
    assert not path.exists()


def test_second_run_refused_while_the_first_lives_then_a_killed_holder_is_taken_over(tmp_path):
    folder = tmp_path / 'out'
    proc = _holder_process(folder, tmp_path)
    try:
        with pytest.raises(OutputFolderLocked) as refused:
            with output_lock(folder):
                pass
        message = str(refused.value)
        assert f'pid {proc.pid} on host {socket.gethostname()}' in message and '\n' not in message
        assert 'use another output folder' in message
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (folder / LOCK_NAME).exists()  # a SIGKILL leaves the file behind
    with pytest.warns(UserWarning, match=f'taking over the lock of pid {proc.pid}.*no longer running'):
        with output_lock(folder) as path:
            assert json.loads(path.read_text())['pid'] == os.getpid()


def test_lock_of_another_host_is_refused(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({'pid': 1, 'host': 'elsewhere', 'started': time.time()}))
    with pytest.raises(OutputFolderLocked, match='pid 1 on host elsewhere .*another host.*remove the lock file'):
        with output_lock(tmp_path):
            pass


def test_decorator_locks_the_named_folder_for_the_call(tmp_path):
    seen = []

    @locks_output_folder('results', parent=True)
    def write(model, results):
        seen.append((tmp_path / LOCK_NAME).exists())
        return model

    assert write('m', results=tmp_path / 'r.json') == 'm'
    assert seen == [True] and not (tmp_path / LOCK_NAME).exists()


def test_folders_the_lock_created_are_removed_when_left_empty(tmp_path):
    with pytest.raises(ValueError):
        with output_lock(tmp_path / 'a' / 'b'):
            raise ValueError('refused before writing anything')
    assert not (tmp_path / 'a').exists()
    with output_lock(tmp_path / 'c') as path:
        (path.parent / 'result.json').write_text('{}')
    assert sorted(p.name for p in (tmp_path / 'c').iterdir()) == ['result.json']
