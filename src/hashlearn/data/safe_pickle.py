"""A restricted unpickler for the CIFAR python archive — data, never code.

Unpickling calls whatever callables a pickle names, so a ``pickle.load`` on a downloaded file
can run arbitrary code (``os.system``, ...). The CIFAR-10 python batches are protocol-2 pickles
of plain dicts (bytes keys ``b"data"``, ``b"labels"``, ``b"batch_label"``, ``b"filenames"``)
whose ``b"data"`` is a NumPy uint8 array; building one needs only the callables NumPy's array
pickling names. :class:`RestrictedUnpickler` resolves exactly those (under both the NumPy 1 and
NumPy 2 module names) plus ``_codecs.encode`` — which Python 3 uses to store ``bytes`` in
protocol-2 pickles and which only turns text into bytes — and refuses every other global before
anything is called. Dicts, lists, strings, bytes and ints need no global at all.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import HashlearnFileError


def _reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct as fn  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import _reconstruct as fn
    return fn


ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` admits only :data:`ALLOWED`; anything else raises
    :class:`pickle.UnpicklingError` before it could be called."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name}") from None


def load_restricted(path: str | os.PathLike, data: bytes | None = None) -> Any:
    """Unpickle ``path`` (or its already-read bytes ``data``) with :class:`RestrictedUnpickler`.

    Python-2 strings are decoded as ``bytes`` (the CIFAR files were written by Python 2).
    A refused global, a truncated file or any other unpickling failure raises
    :class:`HashlearnFileError` naming the file.
    """
    raw = Path(path).read_bytes() if data is None else data
    try:
        return RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if text.startswith("global "):
            raise HashlearnFileError(
                f"{path}: the pickle asks for {text[7:]}, which the CIFAR-10 format never "
                "contains; refused, not executed. Replace the file with one from the official "
                "archive (cifar-10-python.tar.gz)."
            ) from None
        raise HashlearnFileError(f"{path} is not a readable pickle ({text}).") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise HashlearnFileError(
            f"{path} is not a readable CIFAR-10 pickle ({type(exc).__name__}: {exc})."
        ) from None
