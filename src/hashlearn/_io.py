"""Atomic, pickle-free file writing.

Files are written to a temporary sibling and renamed into place with :func:`os.replace`, so a
crash or a full disk never leaves a half-written model, index or result file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


class HashlearnFileError(OSError):
    """Raised when a file cannot be written, read or parsed."""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.exists():
        raise HashlearnFileError(
            f"cannot write {target}: folder {directory} does not exist; create it first."
        )
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise HashlearnFileError(
            f"cannot write {target}: {exc.strerror}; choose a writable location."
        ) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(
        path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Save named arrays plus a JSON metadata dict to an ``.npz`` file, atomically.

    The metadata is stored as a UTF-8 byte array so that loading never needs pickle.
    """
    payload = {key: np.asarray(value) for key, value in arrays.items()}
    for key, value in payload.items():
        if value.dtype == object:
            raise HashlearnFileError(f"array {key!r} has dtype object and cannot be saved safely")
    payload["__meta__"] = np.frombuffer(
        json.dumps(meta, default=_json_default).encode("utf-8"), dtype=np.uint8
    )
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **payload)


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Load a file written by :func:`save_arrays`; raise a clear error if it is damaged."""
    path = Path(path)
    if not path.is_file():
        raise HashlearnFileError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
    except Exception as exc:
        raise HashlearnFileError(
            f"{path} is not a valid hashlearn file or is corrupted ({type(exc).__name__}: {exc}); "
            "re-create it with the matching save() call."
        ) from None
    return arrays, meta
