"""``read_index``: open a code store as the index kind it was saved from."""

from __future__ import annotations

import os
from pathlib import Path

from hashlearn.index import _store
from hashlearn.index.hamming import HammingIndex
from hashlearn.index.mih import MIHIndex


def read_index(path: str | os.PathLike, mmap: bool = False) -> HammingIndex:
    """Load a store written by ``HammingIndex.save`` / ``MIHIndex.save`` / ``append_to``.

    A store saved from an :class:`MIHIndex` comes back as one (tables rebuilt); any other, and
    the ``.npz`` format, as a :class:`HammingIndex`. ``mmap=True`` gives a memory-mapped
    ``HammingIndex``.
    """
    if Path(path).is_file():  # a missing file fails in read_header with a clear error
        with open(path, "rb") as handle:
            if handle.read(2) == b"PK":
                return HammingIndex.load(path, mmap=mmap)
    header = _store.read_header(path)
    if header.kind == "mih" and not mmap:
        return MIHIndex.load(path)
    return HammingIndex.load(path, mmap=mmap)
