"""SHA-256 helpers: of a file's bytes, and of an array's dtype, shape and bytes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from hashlearn.exceptions import HashlearnFileError


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and C-order bytes (hex): two arrays with the same
    bytes but another dtype or shape differ (compare :func:`hashlearn.data.base.bytes_sha256`,
    of the bytes alone)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.reshape(-1).view(np.uint8).data if array.size else b"")
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike, missing: str = "") -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB blocks; a missing file is a
    :class:`HashlearnFileError` naming it (``missing`` adds what that means to the caller)."""
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise HashlearnFileError(f"missing file {path}{missing}.") from None
    return digest.hexdigest()
