"""Reader for the IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed).

An IDX file is a 4-byte magic number — two zero bytes, a type code, the number of
dimensions — followed by one big-endian uint32 per dimension and the data in C order
(LeCun et al., "The MNIST database", format description). Every field is checked against the
file size, so a truncated download or a file of the wrong kind gives an error that names the
file and what is wrong instead of a garbled array.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

from hashlearn._io import HashlearnFileError

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's contents, decompressed when it is gzip data (detected by its magic bytes)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise HashlearnFileError(f"cannot read {path}: {exc.strerror or exc}.") from None
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise HashlearnFileError(
            f"{path} is a damaged gzip file ({exc}); it is probably truncated or corrupted."
        ) from None


def parse_idx(data: bytes, source: str | os.PathLike = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array (native byte order), checking header against size."""
    if len(data) < 4:
        raise HashlearnFileError(
            f"{source} is too short ({len(data)} bytes) to hold an IDX header; it is truncated."
        )
    if data[0] != 0 or data[1] != 0:
        raise HashlearnFileError(
            f"{source} is not an IDX file: bad magic number 0x{data[:4].hex()} "
            "(expected two zero bytes, a type code and a dimension count)."
        )
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_TYPES:
        raise HashlearnFileError(
            f"{source} has unknown IDX type code 0x{type_code:02x}; expected one of "
            f"{', '.join(f'0x{c:02x}' for c in IDX_TYPES)}."
        )
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise HashlearnFileError(
            f"{source}: IDX header announces {ndim} dimensions but the file ends at "
            f"byte {len(data)}; it is truncated or corrupted."
        )
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    present = len(data) - header
    if present != expected:
        what = "truncated" if present < expected else "longer than its header says (corrupted)"
        raise HashlearnFileError(
            f"{source} is {what}: header announces shape {shape} = {expected} data bytes but "
            f"{present} are present."
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def load_idx(path: str | os.PathLike, expected_sha256: str | None = None) -> tuple[np.ndarray, str]:
    """Read an IDX file; return the array and the SHA-256 of its decompressed contents.

    With ``expected_sha256``, a file whose contents differ raises :class:`HashlearnFileError`.
    """
    data = read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise HashlearnFileError(
            f"{path} has the wrong contents: SHA-256 of the decompressed data is {digest}, "
            f"expected {expected_sha256}; the file is corrupted or is not the official release."
        )
    return parse_idx(data, path), digest


def read_idx(path: str | os.PathLike, expected_sha256: str | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into a numpy array; see :func:`load_idx`."""
    return load_idx(path, expected_sha256)[0]
