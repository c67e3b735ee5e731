"""Advisory file locks (``fcntl.flock``) that serialise writers of one file or folder.

The lock of ``NAME`` is the file ``.NAME.lock`` beside it (``DIR/.lock`` for a folder). The
kernel drops a lock when its holder exits, even after ``kill -9``, so a lock is never stale.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hashlearn.exceptions import HashlearnFileError

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX: locks become no-ops
    fcntl = None  # type: ignore[assignment]

#: How long the Python API's ``save`` / ``append_to`` wait for another writer's lock by
#: default (the CLI passes 0: it refuses at once).
LOCK_TIMEOUT_SECONDS = 60.0


def describe_os_error(exc: OSError) -> str:
    """``strerror`` of an OS error, with its errno name (``No space left on device [ENOSPC]``)."""
    name = errno.errorcode.get(exc.errno or 0)
    text = exc.strerror or str(exc)
    return f"{text} [{name}]" if name else text


_HELD: dict[str, list] = {}  # lock file -> [fd, depth], for re-entrant use within a process


def lock_path_for(path: str | os.PathLike) -> Path:
    """The lock file guarding ``path``: ``DIR/.lock`` for a folder, ``.NAME.lock`` beside a file."""
    target = Path(path)
    return target / ".lock" if target.is_dir() else target.parent / f".{target.name}.lock"


@contextmanager
def file_lock(path: str | os.PathLike, *, timeout: float = 0.0) -> Iterator[Path]:
    """Hold an exclusive advisory lock (``fcntl.flock``) on ``path`` for the ``with`` block.

    A second process asking for the same lock waits up to ``timeout`` seconds, then gets a
    :class:`HashlearnFileError` saying that another process is writing ``path``. The kernel drops
    the lock when its holder exits, even after ``kill -9``, so a lock is never stale. Re-entrant
    within one process (a ``save`` inside a locked read-modify-write does not deadlock).
    """
    target = Path(path)
    lock = lock_path_for(target)
    key = os.path.realpath(lock)
    if fcntl is None or key in _HELD:
        if key in _HELD:
            _HELD[key][1] += 1
        try:
            yield lock
        finally:
            if key in _HELD:
                _HELD[key][1] -= 1
        return
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise HashlearnFileError(
            f"cannot lock {target}: {describe_os_error(exc)} ({lock})."
        ) from None
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                os.close(fd)
                who = f" (pid {holder})" if holder.isdigit() else ""
                waited = f" (waited {timeout:g} s)" if timeout > 0 else ""
                raise HashlearnFileError(
                    f"another process{who} is writing {target}{waited}; wait for it to finish "
                    "and retry, or pass a larger timeout (its lock is released when it exits)."
                ) from None
            time.sleep(0.05)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _HELD[key] = [fd, 1]
    try:
        yield lock
    finally:
        del _HELD[key]
        os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the flock
