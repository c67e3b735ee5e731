"""The continuous tie rule: Hamming ties ordered by the distance of the continuous embeddings.

The H²Q authors' evaluation (Lucas-Schwengber/h2q, ``src/utils/eval_utils.py``,
``mAP_at_many``) L2-normalises the continuous outputs of query and database, takes the codes
as their signs, and ranks the database by ``argsort(10 * hamming + ‖q̂ − d̂‖²)``: since the
squared distance of unit vectors lies in [0, 4], that is Hamming distance first, then the
continuous distance. ``‖q̂ − d̂‖² = 2 − 2 cos(q, d)``, so we order ties by decreasing cosine
similarity, and (our choice, where NumPy's quicksort leaves it unspecified) exact ties by id.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import HashlearnInputError, check_features
from hashlearn.metrics._kernels import continuous_order_ap

#: Queries per block of the similarity matrix (block × database float64 values in memory).
BLOCK = 128


def _unit_rows(embeddings: Any, name: str, n_rows: int) -> np.ndarray:
    if embeddings is None:
        raise HashlearnInputError(
            f'ties="continuous" orders Hamming ties by the continuous embeddings; pass '
            f"{name} (one row per code, e.g. model.transform(X))."
        )
    arr = check_features(embeddings, name).astype(np.float64, copy=False)
    if len(arr) != n_rows:
        raise HashlearnInputError(
            f"{name} has {len(arr)} rows but there are {n_rows} codes; pass one embedding "
            "row per code, in the same order."
        )
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.where(norms > 0, norms, 1.0)


def continuous_statistics(
    queries: np.ndarray,
    db_t: np.ndarray,
    q_masks: np.ndarray,
    d_masks_t: np.ndarray,
    query_embeddings: Any,
    db_embeddings: Any,
    n_bits: int,
    topk: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-query AP@topk sum and relevant count in the top ``topk`` under the continuous rule
    (code words and label masks as :func:`hashlearn.metrics._kernels.query_statistics`)."""
    q_emb = _unit_rows(query_embeddings, "query_embeddings", len(queries))
    d_emb = _unit_rows(db_embeddings, "db_embeddings", db_t.shape[1])
    if q_emb.shape[1] != d_emb.shape[1]:
        raise HashlearnInputError(
            f"query_embeddings have {q_emb.shape[1]} columns but db_embeddings "
            f"{d_emb.shape[1]}; embed both with the same model."
        )
    ap_sum = np.empty(len(queries), dtype=np.float64)
    rel_top = np.empty(len(queries), dtype=np.int64)
    d_emb_t = np.ascontiguousarray(d_emb.T)
    for s0 in range(0, len(queries), BLOCK):
        s1 = min(len(queries), s0 + BLOCK)
        similarity = np.ascontiguousarray(q_emb[s0:s1] @ d_emb_t)
        ap_sum[s0:s1], rel_top[s0:s1] = continuous_order_ap(
            queries[s0:s1], db_t, q_masks[s0:s1], d_masks_t, similarity, n_bits, topk
        )
    return ap_sum, rel_top
