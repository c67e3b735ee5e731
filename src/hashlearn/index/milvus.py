"""Milvus binary-vector collections behind the hashlearn index API.

``pip install 'hashlearn[milvus]'``. With a file path as ``uri`` this runs Milvus Lite embedded
in the Python process; with ``http://host:19530`` the same code talks to a Milvus server or
cluster, which is the path to billions of codes. Codes are stored as ``BINARY_VECTOR`` and
searched with the ``HAMMING`` metric (index ``BIN_FLAT`` exact, or ``BIN_IVF_FLAT``).

Milvus Lite 3.x (a rewrite in Python, checked up to 3.2.2) has no ``BINARY_VECTOR`` and no
``HAMMING``: it refuses the collection, which :class:`MilvusBinaryIndex` reports as one line
asking for ``milvus-lite<3``. A Milvus server keeps both.
"""

from __future__ import annotations

import time

import numpy as np

from hashlearn._validation import HashlearnInputError
from hashlearn.index.base import BinaryIndex, sort_hits

INSERT_BATCH = 10_000
MAX_LIMIT = 16_384  # Milvus refuses a search limit (top-k) above this


def _is_milvus_lite(uri: str) -> bool:
    """A local file uri (Milvus Lite, embedded) rather than a server address."""
    return not str(uri).startswith(("http://", "https://", "tcp://"))


def _connect(client_cls, uri: str, token: str, timeout: float):
    """A client of ``uri``. Milvus Lite starts its server process and declares it ready after
    0.5 s, but on a busy machine the server's socket can appear later, and the first call
    then fails at once ("Fail connecting to server"); the server keeps starting, so connecting
    again reaches it. Local files are retried until ``timeout``; servers are not."""
    from pymilvus.exceptions import MilvusException

    credentials = {"token": token} if token else {}
    local = _is_milvus_lite(uri)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client_cls(uri, timeout=timeout, **credentials)
        except MilvusException:
            if not local or time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def _import_milvus():
    try:
        from pymilvus import DataType, MilvusClient
    except ImportError:
        raise ImportError(
            "MilvusBinaryIndex needs pymilvus and Milvus Lite; install them with: "
            "pip install 'hashlearn[milvus]'."
        ) from None
    return MilvusClient, DataType


def _milvus_lite_version() -> str:
    try:
        from importlib.metadata import version

        return f"milvus-lite {version('milvus-lite')}"
    except Exception:  # noqa: BLE001 - only for the wording of an error
        return "a Milvus without milvus-lite"


class MilvusBinaryIndex(BinaryIndex):
    """Packed codes in a Milvus collection; ``search`` returns ``(distances, ids)``.

    Args:
        n_bits: code length (Milvus needs a multiple of 8).
        uri: a local ``.db`` file (Milvus Lite) or a server address.
        collection: collection name; an existing one with the same dimension is reopened,
            so the data persist between sessions.
        index_type: ``"BIN_FLAT"`` (exact) or ``"BIN_IVF_FLAT"``.
        overwrite: drop an existing collection of that name first.
        index_params: extra index build parameters, e.g. ``{"nlist": 1024}`` for
            ``BIN_IVF_FLAT``.
        search_params: extra search parameters, e.g. ``{"nprobe": 16}`` for ``BIN_IVF_FLAT``.
        token: credentials for a Milvus server (``"user:password"``) or a Zilliz Cloud API key;
            not used by Milvus Lite.
        connect_timeout: seconds to wait for the server. Milvus Lite (a local file) is
            connected to again until then while its embedded server opens its socket, which
            on a busy machine can come after pymilvus's first attempt (see ``_connect``).

    Within a row, results are ordered by distance then id; which of several items tied at the
    k-th distance Milvus returns is Milvus's choice. As for every index, ``k`` above
    ``len(index)`` is an error. ``range_search`` uses Milvus's range search (``radius`` /
    ``range_filter`` search parameters); Milvus returns at most 16,384 hits per query, so a
    query with more hits than that within the radius raises an error instead of a truncated
    answer.
    """

    def __init__(
        self,
        n_bits: int,
        uri: str = "hashlearn_milvus.db",
        collection: str = "hashlearn_codes",
        index_type: str = "BIN_FLAT",
        overwrite: bool = False,
        index_params: dict | None = None,
        search_params: dict | None = None,
        token: str = "",
        connect_timeout: float = 60.0,
    ):
        super().__init__(n_bits)
        if self.n_bits % 8:
            raise HashlearnInputError(
                f"Milvus binary vectors need n_bits divisible by 8, got {self.n_bits}."
            )
        if index_type != "BIN_FLAT" and _is_milvus_lite(uri):
            raise HashlearnInputError(
                f"Milvus Lite (a local file uri, here {uri!r}) builds only BIN_FLAT indexes; "
                f"{index_type} needs a Milvus server or cluster: pass uri='http://host:19530'."
            )
        client_cls, _ = _import_milvus()
        self.uri, self.collection, self.index_type = uri, collection, index_type
        self.index_params, self.search_params = dict(index_params or {}), dict(search_params or {})
        self._client = _connect(client_cls, uri, token, connect_timeout)
        if overwrite and self._client.has_collection(collection):
            self._client.drop_collection(collection)
        if self._client.has_collection(collection):
            self._check_existing_dimension()
            self._client.load_collection(collection)
        else:
            self._create_collection()
        self._ntotal = self._count()

    def _create_collection(self) -> None:
        client_cls, data_type = _import_milvus()
        schema = client_cls.create_schema(auto_id=False)
        schema.add_field("id", data_type.INT64, is_primary=True)
        schema.add_field("code", data_type.BINARY_VECTOR, dim=self.n_bits)
        params = self._client.prepare_index_params()
        params.add_index(
            field_name="code",
            index_type=self.index_type,
            metric_type="HAMMING",
            params=self.index_params,
        )
        try:
            self._client.create_collection(self.collection, schema=schema, index_params=params)
        except Exception as exc:  # pymilvus.MilvusException; its classes vary between releases
            if "BinaryVector" not in str(exc):
                raise
            raise HashlearnInputError(
                f"{self.uri}: this Milvus ({_milvus_lite_version()}) does not store "
                "BINARY_VECTOR fields; Milvus Lite 3.x dropped them (it keeps float and sparse "
                "vectors only): pip install 'milvus-lite<3', or pass a Milvus server uri."
            ) from None
        self._client.load_collection(self.collection)

    def reset(self) -> None:
        """Drop every code: the collection is dropped and created again, empty."""
        self._client.drop_collection(self.collection)
        self._create_collection()
        self._ntotal = 0

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
            search_params={"metric_type": "HAMMING", "params": self.search_params},
        )
        distances = np.full((len(queries), k), -1, dtype=np.int32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for row, found in enumerate(hits):
            pairs = sorted((int(round(h["distance"])), int(h["id"])) for h in found)
            for col, (distance, item) in enumerate(pairs[:k]):
                distances[row, col], ids[row, col] = distance, item
        return distances, ids

    def _range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        limit = min(self._ntotal, MAX_LIMIT)
        hits = self._client.search(
            self.collection,
            data=[row.tobytes() for row in queries],
            anns_field="code",
            limit=limit,
            # Milvus keeps range_filter <= distance < radius for HAMMING.
            search_params={
                "metric_type": "HAMMING",
                "params": {**self.search_params, "radius": radius + 1, "range_filter": 0},
            },
        )
        lims = np.zeros(len(queries) + 1, dtype=np.int64)
        distances, ids = [], []
        for row, found in enumerate(hits):
            if len(found) >= limit and limit < self._ntotal:
                raise HashlearnInputError(
                    f"query {row} has at least {limit} hits within radius {radius}, more than "
                    "one Milvus search returns; use a smaller radius or HammingIndex / MIHIndex."
                )
            distances += [int(round(h["distance"])) for h in found]
            ids += [int(h["id"]) for h in found]
            lims[row + 1] = len(ids)
        return sort_hits(lims, np.array(distances, np.int32), np.array(ids, np.int64))

    def close(self) -> None:
        """Release the connection (Milvus Lite stops its embedded server)."""
        self._client.close()

    def __enter__(self) -> MilvusBinaryIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
