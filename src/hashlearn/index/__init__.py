"""Search over binary codes: exact Hamming k-NN and adapters to FAISS and Milvus."""

from hashlearn.index.hamming import HammingIndex

__all__ = ["HammingIndex"]
