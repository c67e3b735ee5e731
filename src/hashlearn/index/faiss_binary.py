"""FAISS binary indexes behind the hashlearn index API (``pip install 'hashlearn[faiss]'``)."""

from __future__ import annotations

import os

import numpy as np

from hashlearn._io import LOCK_TIMEOUT_SECONDS, HashlearnFileError, file_lock, write_bytes_atomic
from hashlearn._validation import HashlearnInputError
from hashlearn.index.base import BinaryIndex, sort_hits


def _import_faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError(
            "FaissBinaryIndex needs FAISS; install it with: pip install 'hashlearn[faiss]' "
            "(or pip install faiss-cpu)."
        ) from None
    return faiss


class FaissBinaryIndex(BinaryIndex):
    """A FAISS binary index chosen by factory string, with the same API as HammingIndex.

    Args:
        n_bits: code length; FAISS needs a multiple of 8.
        factory: FAISS binary factory string: ``"BFlat"`` (exact), ``"BHNSW32"`` (graph),
            ``"BIVF1024"`` (inverted lists; trained on the first ``add``), ``"BHash16"`` ...
        nprobe: inverted lists probed per query for IVF indexes.

    As for every index, ``k`` above ``len(index)`` is an error. Approximate indexes may still
    return fewer than ``k`` hits; missing slots hold id ``-1``. Ties are ordered as FAISS orders
    them. ``range_search`` uses FAISS's own (exact for ``BFlat``, approximate for IVF, not
    offered by HNSW); its radius is inclusive, so ``radius + 1`` is passed to FAISS, which keeps
    distances strictly below its radius.
    """

    def __init__(self, n_bits: int, factory: str = "BFlat", nprobe: int = 8):
        super().__init__(n_bits)
        if self.n_bits % 8:
            raise HashlearnInputError(
                f"FAISS binary indexes need n_bits divisible by 8, got {self.n_bits}; "
                "use HammingIndex for other lengths."
            )
        faiss = _import_faiss()
        self.factory = factory
        try:
            self._index = faiss.index_binary_factory(self.n_bits, factory)
        except RuntimeError as exc:
            raise HashlearnInputError(
                f"FAISS does not understand factory string {factory!r}: {str(exc).strip()[:200]}"
            ) from None
        self._set_nprobe(nprobe)

    def _set_nprobe(self, nprobe: int) -> None:
        if hasattr(self._index, "nprobe"):
            self._index.nprobe = int(nprobe)

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def _add(self, codes: np.ndarray) -> None:
        if not self._index.is_trained:
            self._index.train(codes)
        self._index.add(codes)

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        distances, ids = self._index.search(queries, k)
        return distances.astype(np.int32), ids.astype(np.int64)

    def reset(self) -> None:
        """Remove every code (a trained IVF quantizer stays trained)."""
        self._index.reset()

    def _range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        try:
            lims, distances, ids = self._index.range_search(queries, radius + 1)
        except RuntimeError as exc:
            raise HashlearnInputError(
                f"FAISS index {self.factory!r} has no range search "
                f"({str(exc).strip().splitlines()[-1][:160]}); use 'BFlat' or an IVF index."
            ) from None
        return sort_hits(lims.astype(np.int64), distances.astype(np.int32), ids.astype(np.int64))

    def save(self, path: str | os.PathLike, timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        """Write FAISS's own format (``serialize_index_binary``), atomically and verified,
        under :func:`hashlearn._io.file_lock` (waiting up to ``timeout`` seconds for another
        writer, as :meth:`HammingIndex.save` does)."""
        faiss = _import_faiss()
        with file_lock(path, timeout=timeout):
            write_bytes_atomic(path, faiss.serialize_index_binary(self._index).tobytes())

    @classmethod
    def load(cls, path: str | os.PathLike) -> FaissBinaryIndex:
        faiss = _import_faiss()
        try:
            raw = faiss.read_index_binary(str(path))
        except RuntimeError as exc:
            raise HashlearnFileError(
                f"{path} is not a readable FAISS binary index: {str(exc).strip()[:200]}"
            ) from None
        index = cls.__new__(cls)
        BinaryIndex.__init__(index, raw.d)
        index.factory, index._index = "loaded", raw
        return index
