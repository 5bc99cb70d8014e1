"""One run per output folder: a lock file in the folder that names its holder (pid and host).

`output_lock(folder)` is held for the length of a `with` block (`locks_output_folder(argument)` holds it for a call
of the decorated function). It creates `<folder>/.fan_stl.lock`, takes an exclusive `flock` on it (the kernel drops it
when the holder dies, even by SIGKILL) and writes the holder's pid, host and start time into it. Another run that
finds the folder locked is refused with one line naming the holder (`OutputFolderLocked`). A lock file left by a dead
run (its flock is gone) is taken over with a warning naming the dead holder; one written on another host is refused,
since whether that run still lives cannot be told from here (remove the file by hand once it has ended). A process
may take the lock of a folder it already holds (nested calls share it). Folders the lock created are removed again
when the run leaves them empty (e.g. when it was refused before writing anything).
"""
import contextlib
import functools
import inspect
import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, TypeVar, Union

try:
    import fcntl
except ImportError:  # not POSIX: the pid and host in the file are the only guard
    fcntl = None

__all__ = ['LOCK_NAME', 'OutputFolderLocked', 'output_lock', 'locks_output_folder']

LOCK_NAME = '.fan_stl.lock'
_HELD: Dict[str, int] = {}  # lock path -> nesting depth, for the locks this process holds
F = TypeVar('F', bound=Callable[..., Any])


class OutputFolderLocked(OSError):
    """ The output folder is in use by another run (an OSError, as a busy resource: the commands print it in one
    line like their other file-system errors). """


def _holder(path: Path) -> Optional[Dict[str, Any]]:
    try:
        holder = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _describe(holder: Optional[Dict[str, Any]]) -> str:
    if holder is None:
        return 'an unknown run (the lock file is empty or unreadable)'
    started = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder.get('started', 0)))
    return f'pid {holder.get("pid")} on host {holder.get("host")} (since {started})'


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def _refuse(folder: Path, holder: Optional[Dict[str, Any]], why: str = '') -> OutputFolderLocked:
    return OutputFolderLocked(
        f'{folder} is in use by another run: {_describe(holder)}{why}; wait for it to finish or use another output '
        f'folder (lock file: {folder / LOCK_NAME}).')


def _try_lock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _open_locked(folder: Path, path: Path) -> int:
    """ An fd of `path` that this process holds the flock of, after refusing a live holder and taking over a dead
    one; retried while another process replaces the file between our open and our lock. """
    host = socket.gethostname()
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if not _try_lock(fd):
            os.close(fd)
            raise _refuse(folder, _holder(path))
        try:
            same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:  # the holder released (and removed) it between our open and our lock
            same_file = False
        if not same_file:
            os.close(fd)
            continue
        if os.fstat(fd).st_size == 0:
            return fd
        holder = _holder(path)
        if holder is not None and holder.get('host') != host:
            os.close(fd)
            raise _refuse(folder, holder, f', another host, so it cannot be checked from here: remove the lock '
                                          f'file if that run has ended')
        if fcntl is None and holder is not None and _pid_alive(holder.get('pid')):
            os.close(fd)
            raise _refuse(folder, holder)
        warnings.warn(f'{folder}: taking over the lock of {_describe(holder)}, which is no longer running; its '
                      f'outputs are resumed or checked as usual.', stacklevel=4)
        return fd


@contextlib.contextmanager
def output_lock(folder: Union[str, Path]) -> Iterator[Path]:
    """ Hold the lock of output folder `folder` (created if missing) for the block; yields the lock file's path.
    Raises `OutputFolderLocked` when another live run holds it (see the module docstring). """
    folder = Path(folder)
    created = [d for d in (folder, *folder.parents) if not d.exists()]  # removed again if left empty
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    key = os.path.realpath(path)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield path
        finally:
            _HELD[key] -= 1
        return
    try:
        fd = _open_locked(folder, path)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        record = {'pid': os.getpid(), 'host': socket.gethostname(), 'started': time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode('utf-8'), 0)
        _HELD[key] = 1
        try:
            yield path
        finally:
            del _HELD[key]
            path.unlink(missing_ok=True)  # before the flock goes: a waiting opener of this file retries (inode check)
    finally:
        os.close(fd)
        _remove_empty(created)


def _remove_empty(folders) -> None:
    """ Remove the folders the lock created (innermost first) while they are empty: a run refused before writing
    anything leaves no trace. """
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _folder_of(bound: inspect.BoundArguments, argument: str) -> Any:
    name, *attributes = argument.split('.')
    value = bound.arguments[name]
    for attribute in attributes:
        value = getattr(value, attribute)
    return value


def locks_output_folder(argument: str, parent: bool = False) -> Callable[[F], F]:
    """ Decorate a function that writes into a folder so that each call holds `output_lock` on it: `argument` names
    the parameter holding the folder (`'cfg.out_dir'` reads an attribute of one), `parent=True` takes the folder of
    a file path. """
    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def locked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            folder = Path(_folder_of(bound, argument))
            with output_lock(folder.parent if parent else folder):
                return fn(*args, **kwargs)
        return locked  # type: ignore[return-value]
    return decorate
