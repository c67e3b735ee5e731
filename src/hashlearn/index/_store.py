"""The on-disk code store behind ``HammingIndex.save`` / ``load`` / ``append_to``.

Layout (little-endian)::

    bytes 0..511      header slot A
    bytes 512..1023   header slot B
    bytes 4096..      records: one packed code (ceil(n_bits / 8) bytes), then its int64 id
                      when the store holds explicit ids

A header slot holds magic, format version, n_bits, record count, a sequence number, the CRC-32
of the records and the CRC-32 of the slot itself. Readers take the valid slot with the highest
sequence number and ignore any bytes past ``count`` records.

Appending is crash-safe without copying the store: new records are written after the last
committed one and flushed (``fsync``), then the new count and checksum are written to the
*other* slot and flushed. A crash before that second write leaves the old slot in charge (the
stray records are ignored and overwritten by the next append); a torn slot fails its own CRC, so
the old one is used. CRC-32 can be continued over appended bytes (``zlib.crc32(data, crc)``),
so an append reads and hashes only what it adds. Writers hold :func:`hashlearn._io.file_lock`.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashlearn._io import (
    LOCK_TIMEOUT_SECONDS,
    HashlearnFileError,
    atomic_write,
    clean_stale_temps,
    file_lock,
    version_refused,
)

MAGIC = b"HLXCODES"
VERSION = 1
SLOTS = (0, 512)
DATA_OFFSET = 4096
_SLOT = struct.Struct("<8sIIIIIIQQI")  # magic version flags n_bits kind n_tables rec count seq crc
_SLOT_CRC = struct.Struct("<I")
FLAG_IDS = 1
KINDS = ("flat", "mih")
WRITE_ROWS = 1 << 20  # records per write / checksum step


@dataclass(frozen=True)
class StoreHeader:
    """What a committed header slot says about the store at ``path``."""

    path: Path
    n_bits: int
    count: int
    has_ids: bool
    kind: str
    n_tables: int
    seq: int
    crc: int

    @property
    def n_bytes(self) -> int:
        return -(-self.n_bits // 8)

    @property
    def record_size(self) -> int:
        return self.n_bytes + (8 if self.has_ids else 0)

    @property
    def end(self) -> int:
        return DATA_OFFSET + self.count * self.record_size

    def record_dtype(self) -> np.dtype:
        fields = [("code", np.uint8, (self.n_bytes,))]
        if self.has_ids:
            fields.append(("id", "<i8"))
        return np.dtype(fields)


def _pack_slot(h: StoreHeader) -> bytes:
    flags = FLAG_IDS if h.has_ids else 0
    body = _SLOT.pack(
        MAGIC,
        VERSION,
        flags,
        h.n_bits,
        KINDS.index(h.kind),
        h.n_tables,
        h.record_size,
        h.count,
        h.seq,
        h.crc,
    )
    return body + _SLOT_CRC.pack(zlib.crc32(body))


def _records(codes: np.ndarray, ids: np.ndarray | None, dtype: np.dtype) -> bytes:
    rec = np.empty(len(codes), dtype=dtype)
    rec["code"] = codes
    if ids is not None:
        rec["id"] = ids
    return rec.tobytes()


def _write_records(handle, codes, ids, dtype, crc: int) -> int:
    for start in range(0, len(codes), WRITE_ROWS):
        stop = start + WRITE_ROWS
        chunk = _records(codes[start:stop], None if ids is None else ids[start:stop], dtype)
        handle.write(chunk)
        crc = zlib.crc32(chunk, crc)
    return crc


def write_store(
    path: str | os.PathLike,
    codes: np.ndarray,
    ids: np.ndarray | None,
    n_bits: int,
    kind: str = "flat",
    n_tables: int = 0,
    timeout: float = LOCK_TIMEOUT_SECONDS,
) -> None:
    """Write a new store holding ``codes`` (and ``ids``), replacing ``path`` atomically, once
    another writer's lock is released (waiting up to ``timeout`` seconds)."""
    path = Path(path)
    with file_lock(path, timeout=timeout):
        _write_new(path, codes, ids, n_bits, kind, n_tables)


def _write_new(path: Path, codes, ids, n_bits: int, kind: str, n_tables: int) -> None:
    header = StoreHeader(path, n_bits, len(codes), ids is not None, kind, n_tables, 1, 0)
    with atomic_write(path) as handle:
        handle.write(b"\0" * DATA_OFFSET)
        crc = _write_records(handle, codes, ids, header.record_dtype(), 0)
        header = StoreHeader(path, n_bits, len(codes), ids is not None, kind, n_tables, 1, crc)
        handle.seek(SLOTS[0])
        handle.write(_pack_slot(header))


def append_store(
    path: str | os.PathLike,
    codes: np.ndarray,
    ids: np.ndarray | None,
    n_bits: int,
    timeout: float = LOCK_TIMEOUT_SECONDS,
) -> StoreHeader:
    """Append records to the store at ``path`` (created if missing); crash-safe, see module doc.
    Waits up to ``timeout`` seconds for another writer's lock."""
    path = Path(path)
    with file_lock(path, timeout=timeout):
        if not path.exists():
            _write_new(path, codes, ids, n_bits, "flat", 0)
            return read_header(path)
        old = read_header(path)
        if old.n_bits != n_bits:
            raise HashlearnFileError(
                f"{path} holds {old.n_bits}-bit codes; cannot append {n_bits}-bit codes to it."
            )
        if not len(codes):  # nothing to append (an empty index): the store stays as it is
            return old
        if old.has_ids != (ids is not None):
            held = "explicit ids" if old.has_ids else "implicit ids (row numbers)"
            raise HashlearnFileError(
                f"{path} holds {held}; append an index built with "
                f"{'add_with_ids' if old.has_ids else 'add'} to keep them consistent."
            )
        if ids is not None:
            _check_new_ids(old, ids)
        try:
            return _append(path, old, codes, ids)
        except OSError as exc:
            if isinstance(exc, HashlearnFileError):
                raise
            raise HashlearnFileError(
                f"could not append to {path}: {exc.strerror or exc}; the store keeps its "
                f"previous {old.count} codes."
            ) from None


def _append(path: Path, old: StoreHeader, codes: np.ndarray, ids: np.ndarray | None) -> StoreHeader:
    with open(path, "r+b") as handle:
        handle.seek(old.end)
        crc = _write_records(handle, codes, ids, old.record_dtype(), old.crc)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())  # records durable before the header points at them
        new = StoreHeader(
            path,
            old.n_bits,
            old.count + len(codes),
            old.has_ids,
            old.kind,
            old.n_tables,
            old.seq + 1,
            crc,
        )
        handle.seek(SLOTS[(new.seq - 1) % 2])  # never the slot in charge
        handle.write(_pack_slot(new))
        handle.flush()
        os.fsync(handle.fileno())
    return new


def _check_new_ids(header: StoreHeader, ids: np.ndarray) -> None:
    for _, _, block_ids in iter_blocks(header, WRITE_ROWS):
        clash = np.intersect1d(block_ids, ids)
        if len(clash):
            raise HashlearnFileError(
                f"{header.path} already holds id {int(clash[0])}; ids must be unique."
            )


def read_header(path: str | os.PathLike) -> StoreHeader:
    """Read and validate the committed header of the store at ``path``."""
    path = Path(path)
    clean_stale_temps(path, dead_only=True)
    if not path.is_file():
        raise HashlearnFileError(f"no such file: {path}")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        raw = handle.read(SLOTS[1] + _SLOT.size + _SLOT_CRC.size)
    if raw[:8] != MAGIC and raw[SLOTS[1] : SLOTS[1] + 8] != MAGIC:
        raise HashlearnFileError(
            f"{path} is not a hashlearn code store (bad magic) or is corrupted; "
            "re-create it with HammingIndex.save()."
        )
    best = None
    for offset in SLOTS:
        header = _unpack_slot(path, raw[offset : offset + _SLOT.size + _SLOT_CRC.size])
        if header is not None and (best is None or header.seq > best.seq):
            best = header
    if best is None:
        raise HashlearnFileError(
            f"{path} has no valid header (checksum mismatch): the file "
            "is corrupted; re-create it with HammingIndex.save()."
        )
    if size < best.end:
        raise HashlearnFileError(
            f"{path} is truncated: its header promises {best.count} codes ({best.end} bytes) "
            f"but the file has {size} bytes; restore it from a copy or re-create it."
        )
    return best


def _unpack_slot(path: Path, raw: bytes) -> StoreHeader | None:
    if len(raw) < _SLOT.size + _SLOT_CRC.size:
        return None
    body = raw[: _SLOT.size]
    (stored_crc,) = _SLOT_CRC.unpack(raw[_SLOT.size : _SLOT.size + _SLOT_CRC.size])
    if zlib.crc32(body) != stored_crc:
        return None
    magic, version, flags, n_bits, kind, n_tables, rec, count, seq, crc = _SLOT.unpack(body)
    if magic == MAGIC and version != VERSION:  # an intact slot of another format version
        raise version_refused(path, "code store", version, VERSION)
    if magic != MAGIC or kind >= len(KINDS) or n_bits < 1:
        return None
    header = StoreHeader(
        path, n_bits, count, bool(flags & FLAG_IDS), KINDS[kind], n_tables, seq, crc
    )
    return header if header.record_size == rec else None


def iter_blocks(
    header: StoreHeader, block_rows: int, verify: bool = False
) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """Yield ``(start, codes, ids)`` blocks of the store through short-lived memory maps.

    Only one block is mapped at a time, so the address space used stays ~one block whatever
    the store size. With ``verify``, the CRC-32 of the records is checked once all blocks have
    been read, raising :class:`HashlearnFileError` (never yielding wrong data silently: callers
    that verify only return results after the iterator finishes).
    """
    dtype = header.record_dtype()
    crc = 0
    for start in range(0, header.count, block_rows):
        rows = min(block_rows, header.count - start)
        offset = DATA_OFFSET + start * dtype.itemsize
        block = np.memmap(header.path, dtype=dtype, mode="r", offset=offset, shape=(rows,))
        try:
            if verify:
                crc = zlib.crc32(memoryview(block).cast("B"), crc)
            codes = np.ascontiguousarray(block["code"])
            ids = np.array(block["id"]) if header.has_ids else None
        finally:
            del block
        yield start, codes, ids
    if verify and crc != header.crc:
        raise HashlearnFileError(
            f"{header.path} failed its checksum (CRC-32 of the records does not match the "
            "header): the file is corrupted; restore it from a copy or re-create it."
        )


def read_store(path: str | os.PathLike) -> tuple[StoreHeader, np.ndarray, np.ndarray | None]:
    """Read a whole store into memory, checksum verified."""
    header = read_header(path)
    codes = np.empty((header.count, header.n_bytes), dtype=np.uint8)
    ids = np.empty(header.count, dtype=np.int64) if header.has_ids else None
    for start, block_codes, block_ids in iter_blocks(header, WRITE_ROWS, verify=True):
        codes[start : start + len(block_codes)] = block_codes
        if ids is not None:
            ids[start : start + len(block_ids)] = block_ids
    return header, codes, ids


def read_ids_at(header: StoreHeader, rows: np.ndarray) -> np.ndarray:
    """The ids stored at record numbers ``rows`` (any shape), mapping one block at a time."""
    if not header.has_ids:
        return rows.astype(np.int64)
    flat = rows.ravel()
    out = np.empty(len(flat), dtype=np.int64)
    dtype = header.record_dtype()
    order = np.argsort(flat, kind="stable")
    sorted_rows = flat[order]
    edges = np.arange(0, header.count + WRITE_ROWS, WRITE_ROWS)
    cuts = np.searchsorted(sorted_rows, edges)
    for b in range(len(edges) - 1):
        lo, hi = cuts[b], cuts[b + 1]
        if lo == hi:
            continue
        start, rows_here = int(edges[b]), min(WRITE_ROWS, header.count - int(edges[b]))
        block = np.memmap(
            header.path,
            dtype=dtype,
            mode="r",
            offset=DATA_OFFSET + start * dtype.itemsize,
            shape=(rows_here,),
        )
        try:
            out[order[lo:hi]] = block["id"][sorted_rows[lo:hi] - start]
        finally:
            del block
    return out.reshape(rows.shape)
