"""Verified, atomic, pickle-free file writing and checksummed array archives.

Every file is written to a temporary sibling ``.NAME.<pid>-<random>.tmp``, flushed, fsynced and
checked (bytes on disk = bytes written) before :func:`os.replace` moves it onto ``NAME``; the
folder is fsynced after the rename. A full disk, a write error or a crash therefore never
replaces a good file with a short one: the old file stays and the error names the path. Temporary
files left by a killed writer (its pid is gone, or the file is older than a day) are removed by
the next write to the same name; those of dead pids also by the next load of it (models, index
files, run files).

Arrays go through Python file objects (:func:`numpy.lib.format.write_array` on a checked
writer), never ``ndarray.tofile``, which ignores write errors. :func:`save_arrays` stores the
SHA-256 of every array and of the metadata; :func:`load_arrays` verifies them (a file without
them is refused: a stripped header must not skip the verification).

Advisory file locks live in :mod:`hashlearn._locks`, the SHA-256 helpers in
:mod:`hashlearn._checksums`; both are re-exported here under their old names.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._checksums import array_sha256, file_sha256  # noqa: F401  (re-exported)
from hashlearn._locks import (  # noqa: F401  (re-exported: the lock section moved there)
    LOCK_TIMEOUT_SECONDS,
    describe_os_error,
    file_lock,
    lock_path_for,
)
from hashlearn.exceptions import HashlearnFileError  # re-exported here for older imports

_describe = describe_os_error  # the name other modules import

#: A temporary file older than this is stale even if its pid is alive (pids are reused).
STALE_TEMP_SECONDS = 24 * 3600
META_KEY, META_DIGEST_KEY, CHECKSUMS_KEY = "__meta__", "__meta_sha256__", "_checksums"


def version_refused(path: str | os.PathLike, what: str, found: Any, reads: int) -> OSError:
    """The error for a ``what`` file at ``path`` of format version ``found``, which this
    release (reading version ``reads``) cannot load: it names both versions and the fix."""
    from hashlearn import __version__

    if isinstance(found, int) and not isinstance(found, bool) and found > reads:
        fix = "it was written by a newer hashlearn; upgrade hashlearn to load it"
    else:
        fix = "re-create it with this release"
    return HashlearnFileError(
        f"{path} is a {what} of format version {found!r}, but hashlearn {__version__} reads "
        f"format version {reads} only; {fix}."
    )


# -- temporary files ---------------------------------------------------------------------------
def _temp_parts(target: Path) -> tuple[str, str]:
    return f".{target.name}.", ".tmp"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(path: str | os.PathLike, *, dead_only: bool = False) -> list[Path]:
    """Remove temporary files of ``path`` left by dead writers (or older than a day, unless
    ``dead_only``: the readers' call, which never guesses that a live pid was reused).

    Only names of the form ``.NAME.<pid>-<hex>.tmp`` are touched; a writer that is still
    running keeps its file. Writers call this before each write, the loaders of models,
    indexes and run files before each read. Files that cannot be removed (a read-only
    folder) are left. Returns the removed paths.
    """
    target = Path(path)
    prefix, suffix = _temp_parts(target)
    directory = target.parent
    removed = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        pid_text, _, rand = name[len(prefix) : -len(suffix)].partition("-")
        if not (pid_text.isdigit() and rand):
            continue
        try:
            age = now - entry.stat().st_mtime
        except OSError:
            continue
        if not _pid_alive(int(pid_text)) or (age > STALE_TEMP_SECONDS and not dead_only):
            try:
                entry.unlink(missing_ok=True)
            except OSError:
                continue
            removed.append(entry)
    return removed


def _prepare_target(path: str | os.PathLike) -> tuple[Path, Path]:
    """Check ``path`` can be replaced; clean its stale temps; reserve a new temp path."""
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        problem = "is a file, not a folder" if directory.exists() else "does not exist"
        raise HashlearnFileError(
            f"cannot write {target}: folder {directory} {problem}; create the folder first."
        )
    if target.is_dir():
        raise HashlearnFileError(
            f"cannot write {target}: it is a directory; choose a file name instead."
        )
    clean_stale_temps(target)
    prefix, suffix = _temp_parts(target)
    tmp = directory / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}{suffix}"
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise HashlearnFileError(
            f"cannot write {target}: {_describe(exc)}; choose a writable location."
        ) from None
    return target, tmp


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _failed(target: Path, exc: OSError) -> HashlearnFileError:
    kept = "the previous file is unchanged" if target.exists() else "nothing was written"
    return HashlearnFileError(f"could not write {target}: {_describe(exc)}; {kept}.")


# -- writers -----------------------------------------------------------------------------------
class VerifiedWriter(io.RawIOBase):
    """A binary file object that fails loudly: every write error names the target file.

    It tracks the furthest byte written; :meth:`commit` flushes, fsyncs and checks that the file
    on disk has exactly that size before :func:`atomic_write` renames it into place.
    """

    def __init__(self, handle: io.BufferedWriter, target: Path):
        super().__init__()
        self._handle, self.target, self._end = handle, target, 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        try:
            written = self._handle.write(data)
            position = self._handle.tell()
        except OSError as exc:
            raise _failed(self.target, exc) from exc
        if written != size:
            raise HashlearnFileError(
                f"could not write {self.target}: short write ({written} of {size} bytes)."
            )
        self._end = max(self._end, position)
        return size

    def tell(self) -> int:
        return self._handle.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def flush(self) -> None:
        try:
            self._handle.flush()
        except OSError as exc:
            raise _failed(self.target, exc) from exc

    def commit(self) -> None:
        """Flush and fsync; raise unless the file on disk holds every byte written."""
        self.flush()
        try:
            os.fsync(self._handle.fileno())
            size = os.fstat(self._handle.fileno()).st_size
        except OSError as exc:
            raise _failed(self.target, exc) from exc
        if size != self._end:
            raise HashlearnFileError(
                f"could not write {self.target}: {size} bytes reached the disk of {self._end} "
                "written; the previous file is unchanged."
            )


@contextmanager
def _replace_on_success(path: str | os.PathLike) -> Iterator[tuple[Path, Path]]:
    """Yield ``(target, temporary path beside it)``; rename the temporary onto the target when
    the block succeeds, remove it when it fails (``path`` keeps its previous content)."""
    target, tmp = _prepare_target(path)
    try:
        yield target, tmp
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, HashlearnFileError):
            raise _failed(target, exc) from exc
        raise
    _fsync_dir(target.parent)


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[VerifiedWriter]:
    """Yield a checked binary file object; on success it is verified and renamed onto ``path``.

    On any error the temporary file is removed and ``path`` keeps its previous content.
    """
    with _replace_on_success(path) as (target, tmp), open(tmp, "r+b") as handle:
        writer = VerifiedWriter(handle, target)
        yield writer
        writer.commit()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for writers that need a file name (FAISS,
    safetensors); on success it is fsynced and renamed onto ``path``.

    Prefer :func:`atomic_write`, which also checks every write.
    """
    with _replace_on_success(path) as (_, tmp):
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, verified."""
    with atomic_write(path) as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, verified."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically, verified."""
    write_text_atomic(
        path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    )


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write one array as ``.npy`` atomically, verified (never through ``ndarray.tofile``)."""
    array = np.asanyarray(array)
    with atomic_write(path) as handle:
        np.lib.format.write_array(handle, array, allow_pickle=False)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


# -- checksummed array archives ----------------------------------------------------------------
def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Save named arrays plus a JSON metadata dict to an ``.npz`` file, atomically and verified.

    The metadata is stored as UTF-8 bytes (loading never needs pickle) together with the
    SHA-256 of every array; a second entry holds the SHA-256 of the metadata itself.
    """
    payload = {key: np.asarray(value) for key, value in arrays.items()}
    for key, value in payload.items():
        if value.dtype == object:
            raise HashlearnFileError(f"array {key!r} has dtype object and cannot be saved safely")
        if key.startswith("__"):
            raise HashlearnFileError(f"array name {key!r} is reserved")
    full_meta = {**meta, CHECKSUMS_KEY: {k: array_sha256(v) for k, v in payload.items()}}
    meta_bytes = json.dumps(full_meta, default=_json_default).encode("utf-8")
    payload[META_KEY] = np.frombuffer(meta_bytes, dtype=np.uint8)
    payload[META_DIGEST_KEY] = np.frombuffer(
        hashlib.sha256(meta_bytes).hexdigest().encode(), dtype=np.uint8
    )
    with atomic_write(path) as handle:
        np.savez(handle, **payload)


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Load a file written by :func:`save_arrays`, verifying its checksums.

    Raises :class:`HashlearnFileError` naming ``path`` if it is damaged or was edited, and if
    its checksums are missing (they cannot be skipped by stripping them).
    """
    path = Path(path)
    clean_stale_temps(path, dead_only=True)
    if not path.is_file():
        raise HashlearnFileError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta_bytes = arrays.pop(META_KEY).tobytes()
        meta = json.loads(meta_bytes.decode("utf-8"))
    except Exception as exc:
        raise HashlearnFileError(
            f"{path} is not a valid hashlearn file or is corrupted ({type(exc).__name__}: {exc}); "
            "re-create it with the matching save() call."
        ) from None
    stored_digest = arrays.pop(META_DIGEST_KEY, None)
    damaged = "its content does not match the checksums stored when it was saved"
    fix = "the file was edited or corrupted; re-create it with the matching save() call"
    if stored_digest is None:
        raise HashlearnFileError(
            f"{path} has no checksums (no {META_DIGEST_KEY} entry), so it cannot be verified; "
            f"{fix}."
        )
    if stored_digest.tobytes().decode("ascii", "replace") != hashlib.sha256(meta_bytes).hexdigest():
        raise HashlearnFileError(f"{path}: {damaged} (metadata); {fix}.")
    checksums = meta.pop(CHECKSUMS_KEY, None)
    if not isinstance(checksums, dict) or set(checksums) != set(arrays):
        raise HashlearnFileError(f"{path}: {damaged} (the set of arrays differs); {fix}.")
    for key, value in arrays.items():
        if array_sha256(value) != checksums[key]:
            raise HashlearnFileError(f"{path}: {damaged} (array {key!r}); {fix}.")
    return arrays, meta
