"""How :class:`~hashlearn.index.rescoring.RescoringIndex` stores its float vectors (and the
checks of its saved folder).

Each vector is one fixed-size record: float32, float16, or int8 with a float32 scale per vector
(``x ≈ scale × q``, ``scale = max|x| / 127``) or one global scale for the index. On disk the
record follows the packed code inside a code-store record (``code | vector | id``), so the
store's checksum and crash-safe append cover codes and vectors together.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError, check_choice

INDEX_FORMAT = "hashlearn-rescoring-index"
DTYPES = ("float32", "float16", "int8")
SCALES = ("vector", "global")


class VectorCodec:
    """Encode float vectors to storage records and back (see the module docstring).

    Args:
        dim: vector dimension.
        dtype: ``"float32"``, ``"float16"`` or ``"int8"``.
        int8_scale: ``"vector"`` or ``"global"`` (int8 only).
        unit: the vectors are unit-normalised (cosine), so a global int8 scale is fixed at
            1/127 instead of being taken from the first vectors added.
    """

    def __init__(self, dim: int, dtype: str, int8_scale: str = "vector", unit: bool = False):
        self.dim = int(dim)
        self.dtype = check_choice(dtype, DTYPES, "vector_dtype")
        self.int8_scale = check_choice(int8_scale, SCALES, "int8_scale")
        self.scale: float | None = 1 / 127 if unit and self._global else None
        fields = [("v", {"float32": "<f4", "float16": "<f2", "int8": "i1"}[dtype], (self.dim,))]
        if dtype == "int8" and int8_scale == "vector":
            fields.append(("scale", "<f4"))
        self.record_dtype = np.dtype(fields)

    @property
    def _global(self) -> bool:
        return self.dtype == "int8" and self.int8_scale == "global"

    def empty(self) -> np.ndarray:
        return np.zeros(0, dtype=self.record_dtype)

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Records for the finite vectors ``X`` (n, dim); raises before changing any state."""
        out = np.zeros(len(X), dtype=self.record_dtype)
        if self.dtype != "int8":
            with np.errstate(over="ignore"):
                out["v"] = X
            if not np.isfinite(out["v"]).all():
                raise HashlearnInputError(
                    f"vectors have entries too large for {self.dtype}; rescale them or store "
                    "them as float32."
                )
            return out
        peak = np.abs(X).max(axis=1) if len(X) else np.zeros(0)
        if self._global:
            scale = self.scale if self.scale is not None else (float(peak.max()) / 127 or 1.0)
            if (peak > 127.5 * scale * (1 + 1e-6)).any():
                raise HashlearnInputError(
                    f"vector {int(np.argmax(peak))} has an entry of magnitude {peak.max():.4g}, "
                    f"beyond the global int8 scale ({127 * scale:.4g}) set by the first add; "
                    "use int8_scale='vector', or add the largest vectors first."
                )
            out["v"] = np.clip(np.rint(X / scale), -127, 127)
            self.scale = scale
        else:
            scale = np.where(peak > 0, peak / 127, 1.0).astype(np.float32)
            out["v"] = np.clip(np.rint(X / scale[:, None]), -127, 127)
            out["scale"] = scale
        return out

    def decode(self, records: np.ndarray) -> np.ndarray:
        """Float64 vectors (n, dim) of ``records``."""
        V = np.asarray(records["v"], dtype=np.float64)
        if self.dtype == "int8":
            V *= records["scale"][:, None] if not self._global else self.scale
        return V

    def meta(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "vector_dtype": self.dtype,
            "int8_scale": self.int8_scale,
            "global_scale": self.scale if self._global else None,
        }

    def restore(self, meta: dict[str, Any], path: Path) -> None:
        """Take the global scale (and check the dimension) recorded in ``path``."""
        if meta.get("dim") != self.dim:
            raise HashlearnFileError(
                f"{path} records dimension {meta.get('dim')} but its quantizer takes "
                f"{self.dim}; the folder mixes two indexes; save the index again."
            )
        if self._global:
            self.scale = meta.get("global_scale")

    # -- the on-disk record: code | vector | id ------------------------------------------------

    def record_bits(self, n_code_bytes: int) -> int:
        """The code-store "n_bits" of a record holding a code and a vector."""
        return 8 * (n_code_bytes + self.record_dtype.itemsize)

    def records(self, codes: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Codes and vector records side by side as uint8 rows, the store's "codes"."""
        raw = np.ascontiguousarray(vectors).view(np.uint8)
        return np.hstack([codes, raw.reshape(len(vectors), self.record_dtype.itemsize)])

    def view_dtype(self, n_code_bytes: int) -> np.dtype:
        """A structured view of a store record: ``code``, ``vector``, ``id``."""
        size = self.record_dtype.itemsize
        return np.dtype(
            {
                "names": ["code", "vector", "id"],
                "formats": [(np.uint8, (n_code_bytes,)), self.record_dtype, "<i8"],
                "offsets": [0, n_code_bytes, n_code_bytes + size],
                "itemsize": n_code_bytes + size + 8,
            }
        )


def quantizer_fingerprint(quantizer: Any) -> str:
    """SHA-256 of a fitted quantizer's learned arrays and parameters, so that a folder's codes
    are never appended to, or loaded with, another quantizer."""
    digest = hashlib.sha256(type(quantizer).__name__.encode())
    state = getattr(quantizer, "_fitted_state", None)
    arrays, scalars = state() if state is not None else ({}, {})
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}{value.dtype.str}{value.shape}".encode())
        digest.update(value.tobytes())
    digest.update(json.dumps(scalars, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def read_meta(folder: Path) -> dict[str, Any]:
    """The checked ``index.json`` of a saved RescoringIndex folder."""
    path = folder / "index.json"
    if not path.is_file():
        raise HashlearnFileError(f"{folder} holds no RescoringIndex (no {path.name}).")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HashlearnFileError(
            f"{path} is not valid JSON ({exc}); save the index again."
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT or meta.get("version") != 1:
        raise HashlearnFileError(f"{path} is not a RescoringIndex description.")
    return meta
