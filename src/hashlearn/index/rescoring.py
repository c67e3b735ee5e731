"""Binary first stage + exact rescoring with stored vectors: the vector-database recipe.

Candidates come from a Hamming index over the quantizer's codes (``oversample × k`` of them),
or, with ``asymmetric=True``, from the float query's rotated projection scored against the ±1
codes (no query binarisation, as in asymmetric distance computation); the candidates are then
rescored exactly with the stored vectors, and the best ``k`` returned.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._float_vectors import METRICS, check_vectors, top_k
from hashlearn._io import HashlearnFileError, file_lock, write_json_atomic
from hashlearn._validation import HashlearnInputError, check_choice
from hashlearn.codes import unpack
from hashlearn.index import _store
from hashlearn.index._vectors import INDEX_FORMAT, VectorCodec, quantizer_fingerprint, read_meta
from hashlearn.index.base import BinaryIndex
from hashlearn.index.hamming import HammingIndex
from hashlearn.index.mih import MIHIndex

FIRST_STAGES = {"flat": HammingIndex, "mih": MIHIndex}
#: Float64 vector entries gathered at a time for rescoring (queries × candidates × dim).
RESCORE_BLOCK = 1 << 23
#: Float32 ±1 code entries unpacked at a time by the asymmetric scan.
ASYMMETRIC_BLOCK = 1 << 22


class RescoringIndex:
    """Search float vectors through their binary codes, then rescore the candidates exactly.

    ``add(X)`` encodes the vectors with the fitted ``quantizer`` and keeps codes and vectors
    together (vectors as float32, float16 or int8 with a per-vector or global scale; for
    ``metric="cosine"`` they are stored unit-normalised). ``search(Q, k, oversample)`` takes raw
    float queries: it fetches ``ceil(oversample × k)`` candidates by Hamming distance (ties by
    insertion), scores them by ``metric`` with the stored vectors and returns the exact top-k
    among them: ``(scores, ids)``, similarities descending for ``cosine`` / ``ip``, squared
    distances ascending for ``l2``, ties by smaller id.

    Args:
        quantizer: a fitted hashlearn estimator (``transform`` / ``encode``, ``n_features_in_``).
        metric: ``"cosine"``, ``"ip"`` or ``"l2"``.
        first_stage: ``"flat"`` (:class:`HammingIndex`), ``"mih"`` (:class:`MIHIndex`) or an
            empty instance of either.
        vector_dtype: ``"float32"``, ``"float16"`` or ``"int8"``.
        int8_scale: ``"vector"`` (one float32 scale per vector) or ``"global"`` (one scale for
            the index, set by the first ``add``; later vectors must fit in it).
        asymmetric: rank candidates by ``transform(q) · b`` over the ±1 codes ``b`` (a float
            scan of all codes) instead of the Hamming distance of the binarised query.

    Example:
        >>> quantizer = ITQ(n_bits=256, random_state=0).fit(sample)
        >>> index = RescoringIndex(quantizer, metric="cosine", vector_dtype="int8")
        >>> index.add(embeddings)
        >>> scores, ids = index.search(queries, k=10, oversample=4)
    """

    def __init__(
        self,
        quantizer: Any,
        metric: str = "cosine",
        first_stage: str | BinaryIndex = "flat",
        vector_dtype: str = "float32",
        int8_scale: str = "vector",
        asymmetric: bool = False,
    ):
        self.metric = check_choice(metric, METRICS, "metric")
        self.asymmetric = bool(asymmetric)
        if not hasattr(quantizer, "encode") or not hasattr(quantizer, "transform"):
            raise HashlearnInputError(
                f"quantizer must be a fitted hashlearn estimator with transform/encode, got "
                f"{type(quantizer).__name__}."
            )
        self.dim = getattr(quantizer, "n_features_in_", None)
        self.n_bits = getattr(quantizer, "n_bits_", None)
        if self.dim is None or self.n_bits is None:
            raise HashlearnInputError(
                f"quantizer {type(quantizer).__name__} is not fitted (no n_features_in_ / "
                "n_bits_); call fit() on a sample of the vectors first."
            )
        self.quantizer = quantizer
        self.codec = VectorCodec(self.dim, vector_dtype, int8_scale, unit=self.metric == "cosine")
        if isinstance(first_stage, str):
            cls = FIRST_STAGES[check_choice(first_stage, tuple(FIRST_STAGES), "first_stage")]
            first_stage = cls(self.n_bits)
        if not isinstance(first_stage, HammingIndex) or first_stage.n_bits != self.n_bits:
            raise HashlearnInputError(
                f"first_stage must be an empty HammingIndex or MIHIndex of {self.n_bits} bits "
                "(the quantizer's code length)."
            )
        if len(first_stage):
            raise HashlearnInputError(
                "first_stage must be empty: RescoringIndex adds codes and vectors together."
            )
        self.first_stage = first_stage
        self._codes = np.zeros((0, first_stage.n_bytes), dtype=np.uint8)
        self._records = self.codec.empty()

    @property
    def ntotal(self) -> int:
        return self.first_stage.ntotal

    def __len__(self) -> int:
        return self.ntotal

    def __repr__(self) -> str:
        return (
            f"RescoringIndex(n_bits={self.n_bits}, dim={self.dim}, metric={self.metric!r}, "
            f"vectors={self.codec.dtype}, ntotal={self.ntotal})"
        )

    @property
    def ids(self) -> np.ndarray:
        return self.first_stage.ids

    # -- adding -------------------------------------------------------------------------------

    def _check_X(self, X: Any, name: str) -> np.ndarray:
        return check_vectors(X, name, dim=self.dim, metric=self.metric)

    def add(self, X: Any, ids: Any = None) -> None:
        """Encode float vectors and store their codes and vectors together (all or nothing)."""
        X = self._check_X(X, "X")
        self.add_encoded(self.quantizer.encode(X), X, ids)

    def add_encoded(self, codes: Any, X: Any, ids: Any = None) -> None:
        """Add codes already encoded by this quantizer with their vectors (one row each)."""
        if isinstance(self._records, np.memmap):
            raise HashlearnInputError(
                f"cannot add: this index maps its vectors from {self._records.filename} "
                "read-only; load it with mmap=False, or grow the folder with append_to()."
            )
        X = self._check_X(X, "vectors")
        codes = self.first_stage._check_codes(codes, "codes")
        if len(codes) != len(X):
            raise HashlearnInputError(
                f"codes has {len(codes)} rows but the vectors have {len(X)}; pass one code "
                "per vector, in the same order."
            )
        if ids is not None and np.asarray(ids).shape != (len(X),):
            raise HashlearnInputError(
                f"ids must hold one id per vector ({len(X)}), got shape {np.shape(ids)}."
            )
        stored = self.codec.encode(self._normalised(X))  # checks int8 range before any change
        if ids is None:
            self.first_stage.add(codes)
        else:
            self.first_stage.add_with_ids(codes, ids)  # checks the ids before any change
        self._codes = np.concatenate([self._codes, codes])
        self._records = np.concatenate([self._records, stored])

    @classmethod
    def from_store(
        cls,
        quantizer: Any,
        codes_path: str | os.PathLike,
        vectors: Any,
        vector_ids: Any = None,
        *,
        check_codes: bool = True,
        **options: Any,
    ) -> RescoringIndex:
        """Join a code store written by ``HammingIndex.save`` / ``append_to`` (or the ``.npz``
        format) with the float vectors it was encoded from.

        ``vectors`` is an array (or a ``.npy`` path) with one row per stored code; with
        ``vector_ids`` its rows are matched to the store's ids (in any order), else taken in
        the store's order. ``check_codes`` re-encodes the vectors and refuses codes that this
        quantizer did not produce. ``options`` go to the constructor.
        """
        from hashlearn.index.io import read_index

        codes_index = read_index(codes_path)
        name = str(vectors) if isinstance(vectors, (str, os.PathLike)) else "vectors"
        if isinstance(vectors, (str, os.PathLike)):
            vectors = np.load(vectors, mmap_mode="r", allow_pickle=False)
        index = cls(quantizer, **options)
        X = index._check_X(vectors, name)
        codes, ids = codes_index.codes, codes_index.ids
        if len(X) != len(codes):
            raise HashlearnInputError(
                f"{codes_path} holds {len(codes)} codes but {name} has {len(X)} vectors; they "
                "must be the same items."
            )
        if vector_ids is not None:
            vector_ids = np.asarray(vector_ids).astype(np.int64, copy=False)
            if vector_ids.shape != ids.shape or len(np.unique(vector_ids)) != len(vector_ids):
                raise HashlearnInputError(
                    f"vector_ids must hold {len(ids)} distinct ids, one per row of {name}."
                )
            order = np.argsort(vector_ids)
            where = order[np.searchsorted(vector_ids, ids, sorter=order).clip(0, len(ids) - 1)]
            missing = vector_ids[where] != ids
            if missing.any():
                raise HashlearnInputError(
                    f"id {int(ids[np.argmax(missing)])} of {codes_path} has no vector in {name} "
                    f"({int(missing.sum())} ids differ); the files describe different items."
                )
            X = X[where]
        if check_codes:
            wrong = (quantizer.encode(X) != codes).any(axis=1)
            if wrong.any():
                raise HashlearnInputError(
                    f"{int(wrong.sum())} codes of {codes_path} (first: row {int(np.argmax(wrong))})"
                    f" are not this quantizer's codes of their vectors in {name}; encode them "
                    "with the same quantizer, or match the rows with vector_ids."
                )
        index.add_encoded(codes, X, ids)
        return index

    def _normalised(self, X: np.ndarray) -> np.ndarray:
        if self.metric != "cosine":
            return X
        return X / np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True)

    # -- searching ----------------------------------------------------------------------------

    def search(self, queries: Any, k: int, oversample: float = 4) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` by ``metric`` among ``ceil(oversample × k)`` binary candidates."""
        Q = self._check_X(queries, "queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise HashlearnInputError(f"k must be a positive integer, got {k!r}.")
        if self.ntotal == 0:
            raise HashlearnInputError("the index is empty; add() vectors before search().")
        if k > self.ntotal:
            raise HashlearnInputError(
                f"k={k} is larger than the {self.ntotal} vectors in the index; "
                f"use k <= {self.ntotal}."
            )
        if isinstance(oversample, bool) or not isinstance(oversample, (int, float, np.number)):
            raise HashlearnInputError(f"oversample must be a number >= 1, got {oversample!r}.")
        if not oversample >= 1:
            raise HashlearnInputError(
                f"oversample must be >= 1 (candidates = oversample × k), got {oversample!r}."
            )
        n_cand = min(self.ntotal, math.ceil(oversample * k))
        rows = self.candidates(Q, n_cand)
        out_s, out_i = np.empty((len(Q), k)), np.empty((len(Q), k), dtype=np.int64)
        step = max(1, RESCORE_BLOCK // (n_cand * self.dim))  # queries per gathered block
        for s in range(0, len(Q), step):
            out_s[s : s + step], out_i[s : s + step] = self._rescore(
                Q[s : s + step], rows[s : s + step], k
            )
        return (np.maximum(-out_s, 0.0) if self.metric == "l2" else out_s), out_i

    def _rescore(self, Q: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores (larger = nearer) of each query's candidate rows, and the top ``k``."""
        order = np.argsort(rows, axis=None)  # sorted reads: sequential pages when memory-mapped
        flat = np.empty((rows.size, self.dim))
        flat[order] = self.codec.decode(self._records[rows.ravel()[order]])
        vectors = flat.reshape(*rows.shape, self.dim)
        Qp = self._normalised(Q).astype(np.float64)
        scores = np.einsum("qd,qcd->qc", Qp, vectors)
        if self.metric == "cosine":
            scores /= np.maximum(np.linalg.norm(vectors, axis=2), 1e-300)
        elif self.metric == "l2":
            scores = 2 * scores - (Qp**2).sum(1)[:, None] - (vectors**2).sum(2)
        return top_k(scores, self._row_ids(rows), k)

    def candidates(self, Q: np.ndarray, n: int) -> np.ndarray:
        """Row numbers of the ``n`` first-stage candidates of each (checked) query."""
        if not self.asymmetric:
            rows = self.first_stage._knn_rows(self.quantizer.encode(Q), n)[1]
            return rows
        Y = np.asarray(self.quantizer.transform(Q), dtype=np.float32)
        block = max(1, ASYMMETRIC_BLOCK // self.n_bits)
        best_s = best_i = None
        for start in range(0, self.ntotal, block):
            B = unpack(self._codes[start : start + block], self.n_bits).astype(np.float32)
            s = Y @ B.T
            i = np.arange(start, start + len(B), dtype=np.int64)[None, :]
            s, i = top_k(s, i, min(n, len(B)))
            if best_s is not None:
                s, i = top_k(np.hstack([best_s, s]), np.hstack([best_i, i]), n)
            best_s, best_i = s, i
        return best_i

    def _row_ids(self, rows: np.ndarray) -> np.ndarray:
        return self.first_stage._rows_to_ids(rows)

    # -- files --------------------------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        return {
            "format": INDEX_FORMAT,
            "version": 1,
            "metric": self.metric,
            "asymmetric": self.asymmetric,
            "first_stage": "mih" if isinstance(self.first_stage, MIHIndex) else "flat",
            "n_bits": self.n_bits,
            "quantizer_sha256": quantizer_fingerprint(self.quantizer),
            **self.codec.meta(),
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to the folder ``path``: ``quantizer.npz``, ``index.json`` and
        ``records.hlx``, a checksummed code store (see :mod:`hashlearn.index._store`) whose
        records hold each code with its vector and id, so they are never out of step."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        with file_lock(folder / "index.json"):
            self.quantizer.save(folder / "quantizer.npz")
            _store.write_store(
                folder / "records.hlx",
                self.codec.records(self._codes, self._records),
                self.ids,
                self.codec.record_bits(self.first_stage.n_bytes),
            )
            # Written last: a crash before this leaves a folder that load() refuses (the
            # quantizer or store no longer matches the previous index.json), never a mix.
            write_json_atomic(folder / "index.json", self._meta())

    def append_to(self, path: str | os.PathLike) -> None:
        """Append this index's codes, vectors and ids to a saved index (crash-safe: one store
        commit adds all of them, or none; see :mod:`hashlearn.index._store`)."""
        folder = Path(path)
        meta = read_meta(folder)
        mine = self._meta()
        if {k: meta.get(k) for k in mine} != mine:
            raise HashlearnFileError(
                f"{folder / 'index.json'} was saved with other settings "
                f"({ {k: meta.get(k) for k in mine if meta.get(k) != mine[k]} }); "
                "append an index built the same way."
            )
        _store.append_store(
            folder / "records.hlx",
            self.codec.records(self._codes, self._records),
            self.ids,
            self.codec.record_bits(self.first_stage.n_bytes),
        )

    @classmethod
    def load(cls, path: str | os.PathLike, mmap: bool = False) -> RescoringIndex:
        """Read an index written by :meth:`save`; ``mmap=True`` keeps the vectors on disk
        (memory-mapped, read-only) and reads only the codes into the first stage. The store's
        checksum is verified either way."""
        from hashlearn.catalogue import load_model

        folder = Path(path)
        meta = read_meta(folder)
        quantizer = load_model(folder / "quantizer.npz")
        index = cls(
            quantizer,
            metric=meta["metric"],
            first_stage=meta["first_stage"],
            vector_dtype=meta["vector_dtype"],
            int8_scale=meta["int8_scale"],
            asymmetric=meta["asymmetric"],
        )
        index.codec.restore(meta, folder / "index.json")
        if meta.get("quantizer_sha256") != quantizer_fingerprint(quantizer):
            raise HashlearnFileError(
                f"{folder / 'quantizer.npz'} is not the quantizer that {folder / 'index.json'} "
                "was saved with (an interrupted save or an edited folder); save the index again."
            )
        store = folder / "records.hlx"
        header = _store.read_header(store)
        if header.n_bits != index.codec.record_bits(index.first_stage.n_bytes) or not (
            header.has_ids or header.count == 0
        ):
            raise HashlearnFileError(
                f"{store} does not match {folder / 'index.json'} (record size or ids differ): "
                "the folder was edited or mixes two indexes; save the index again."
            )
        for _ in _store.iter_blocks(header, _store.WRITE_ROWS, verify=True):
            pass
        view = index.codec.view_dtype(index.first_stage.n_bytes)
        if header.count:
            records = np.memmap(
                store, dtype=view, mode="r", offset=_store.DATA_OFFSET, shape=(header.count,)
            )
        else:
            records = np.zeros(0, dtype=view)
        codes = np.ascontiguousarray(records["code"])
        if header.count:
            index.first_stage.add_with_ids(codes, np.asarray(records["id"]))
        index._codes = codes
        index._records = records["vector"] if mmap else np.array(records["vector"])
        return index
