"""Milvus binary-vector collections behind the hashlearn index API.

``pip install 'hashlearn[milvus]'``. With a file path as ``uri`` this runs Milvus Lite embedded
in the Python process; with ``http://host:19530`` the same code talks to a Milvus server or
cluster, which is the path to billions of codes. Codes are stored as ``BINARY_VECTOR`` and
searched with the ``HAMMING`` metric (index ``BIN_FLAT`` exact, or ``BIN_IVF_FLAT``).
"""

from __future__ import annotations

import numpy as np

from hashlearn._validation import HashlearnInputError
from hashlearn.index.base import BinaryIndex

INSERT_BATCH = 10_000


def _import_milvus():
    try:
        from pymilvus import DataType, MilvusClient
    except ImportError:
        raise HashlearnInputError(
            "MilvusBinaryIndex needs pymilvus and Milvus Lite; install them with: "
            "pip install 'hashlearn[milvus]'."
        ) from None
    return MilvusClient, DataType


class MilvusBinaryIndex(BinaryIndex):
    """Packed codes in a Milvus collection; ``search`` returns ``(distances, ids)``.

    Args:
        n_bits: code length (Milvus needs a multiple of 8).
        uri: a local ``.db`` file (Milvus Lite) or a server address.
        collection: collection name; an existing one with the same dimension is reopened,
            so the data persist between sessions.
        index_type: ``"BIN_FLAT"`` (exact) or ``"BIN_IVF_FLAT"``.
        overwrite: drop an existing collection of that name first.

    Within a row, results are ordered by distance then id; which of several items tied at the
    k-th distance Milvus returns is Milvus's choice.
    """

    def __init__(
        self,
        n_bits: int,
        uri: str = "hashlearn_milvus.db",
        collection: str = "hashlearn_codes",
        index_type: str = "BIN_FLAT",
        overwrite: bool = False,
    ):
        super().__init__(n_bits)
        if self.n_bits % 8:
            raise HashlearnInputError(
                f"Milvus binary vectors need n_bits divisible by 8, got {self.n_bits}."
            )
        client_cls, data_type = _import_milvus()
        self.uri, self.collection, self.index_type = uri, collection, index_type
        self._client = client_cls(uri)
        if overwrite and self._client.has_collection(collection):
            self._client.drop_collection(collection)
        if self._client.has_collection(collection):
            self._check_existing_dimension()
        else:
            schema = client_cls.create_schema(auto_id=False)
            schema.add_field("id", data_type.INT64, is_primary=True)
            schema.add_field("code", data_type.BINARY_VECTOR, dim=self.n_bits)
            params = self._client.prepare_index_params()
            params.add_index(field_name="code", index_type=index_type, metric_type="HAMMING")
            self._client.create_collection(collection, schema=schema, index_params=params)
        self._client.load_collection(collection)
        self._ntotal = self._count()

    def _check_existing_dimension(self) -> None:
        fields = self._client.describe_collection(self.collection)["fields"]
        dims = [f.get("params", {}).get("dim") for f in fields if f["name"] == "code"]
        found = dims[0] if dims else "?"
        if not dims or int(found) != self.n_bits:
            raise HashlearnInputError(
                f"collection {self.collection!r} at {self.uri} holds {found}-bit codes, "
                f"not {self.n_bits}; use another collection name or overwrite=True."
            )

    def _count(self) -> int:
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    @property
    def ntotal(self) -> int:
        return self._ntotal

    def _add(self, codes: np.ndarray) -> None:
        for start in range(0, len(codes), INSERT_BATCH):
            batch = codes[start : start + INSERT_BATCH]
            first = self._ntotal + start
            rows = [{"id": first + i, "code": row.tobytes()} for i, row in enumerate(batch)]
            self._client.insert(self.collection, rows)
        self._ntotal += len(codes)

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        hits = self._client.search(
            self.collection,
            data=[row.tobytes() for row in queries],
            anns_field="code",
            limit=k,
            search_params={"metric_type": "HAMMING"},
        )
        distances = np.full((len(queries), k), -1, dtype=np.int32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for row, found in enumerate(hits):
            pairs = sorted((int(round(h["distance"])), int(h["id"])) for h in found)
            for col, (distance, item) in enumerate(pairs[:k]):
                distances[row, col], ids[row, col] = distance, item
        return distances, ids

    def close(self) -> None:
        """Release the connection (Milvus Lite stops its embedded server)."""
        self._client.close()

    def __enter__(self) -> MilvusBinaryIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
