"""Search over binary codes: exact Hamming k-NN (flat scan or multi-index hashing) and adapters
to FAISS and Milvus.

Every index has the same FAISS-style surface: ``add(codes)``, ``search(queries, k) ->
(distances, ids)``, ``range_search(queries, radius) -> (lims, distances, ids)``, ``reset()``,
``len(index)``, ``save`` / ``load``; :class:`HammingIndex` and :class:`MIHIndex` also take
``add_with_ids`` / ``remove_ids`` and read or grow on-disk code stores (:func:`read_index`).
:class:`RescoringIndex` takes float vectors: binary candidates, then exact rescoring.
"""

from hashlearn.index.base import BinaryIndex
from hashlearn.index.faiss_binary import FaissBinaryIndex
from hashlearn.index.hamming import HammingIndex
from hashlearn.index.io import read_index
from hashlearn.index.mih import MIHIndex, recommend_index
from hashlearn.index.milvus import MilvusBinaryIndex
from hashlearn.index.rescoring import RescoringIndex

__all__ = [
    "BinaryIndex",
    "FaissBinaryIndex",
    "HammingIndex",
    "MIHIndex",
    "MilvusBinaryIndex",
    "RescoringIndex",
    "read_index",
    "recommend_index",
]
