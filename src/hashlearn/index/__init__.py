"""Search over binary codes: exact Hamming k-NN and adapters to FAISS and Milvus.

Every index has the same FAISS-style surface: ``add(codes)``, ``search(queries, k) ->
(distances, ids)``, ``len(index)``, ``save`` / ``load``.
"""

from hashlearn.index.base import BinaryIndex
from hashlearn.index.faiss_binary import FaissBinaryIndex
from hashlearn.index.hamming import HammingIndex
from hashlearn.index.milvus import MilvusBinaryIndex

__all__ = ["BinaryIndex", "FaissBinaryIndex", "HammingIndex", "MilvusBinaryIndex"]
