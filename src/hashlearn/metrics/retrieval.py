"""Retrieval metrics for binary codes ranked by Hamming distance.

Conventions (stated because published numbers differ by them):

* **Relevance**: a database item is relevant to a query when they share at least one label
  (labels are 1-D labels of any values, read as categories, or 2-D multi-hot rows).
* **Ties**: ``ties="stable"`` ranks items at equal Hamming distance by database id, the usual
  convention of hashing code bases. ``ties="aware"`` returns the *expected* value over all
  orders of tied items (McSherry & Najork, ECIR 2008; He et al., "Hashing as tie-aware learning
  to rank", CVPR 2018), which does not depend on how the database happens to be ordered.
  ``ties="continuous"`` orders tied items by the cosine distance of the continuous embeddings
  (``query_embeddings`` / ``db_embeddings``, e.g. ``model.transform(X)``), then by id: the H²Q
  authors' rule (:mod:`hashlearn.metrics._continuous`). Radius metrics and PR curves do not
  depend on the tie rule.
* **AP@k**: mean of precision at the rank of each relevant item within the first k, divided
  by the number of relevant items within the first k (0 when there are none), as in HashNet /
  DeepHash. With ``topk=None`` (mAP@all) that number is every relevant item. For
  ``ties="aware"`` the ratio of expectations is used, which is the exact expected AP when
  ``topk=None``.
* **Queries without any relevant database item**: ``no_relevant="skip"`` (our default)
  leaves them out of every mean; ``no_relevant="zero"`` scores them 0 and averages over all
  queries, as DeepHash-pytorch's ``CalcTopMap`` (swuxyj/DeepHash-pytorch ``utils/tools.py``,
  used by the HSWD code) and the H²Q authors' ``mAP_at_many`` do (both divide the sum by the
  number of queries). The returned :class:`Score` says how many were evaluated and excluded.
  PR curves always leave such queries out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hashlearn._bitops import to_words
from hashlearn._labels import as_labels, labels_to_multihot
from hashlearn._validation import HashlearnInputError, check_choice
from hashlearn.codes import as_packed
from hashlearn.metrics._continuous import continuous_statistics
from hashlearn.metrics._kernels import query_statistics, tie_aware_ap
from hashlearn.vocab import (
    DEFAULT_K,
    DEFAULT_NO_RELEVANT,
    DEFAULT_RADIUS,
    DEFAULT_TIES,
    NO_RELEVANT,
    TIES,
)


class Score(float):
    """A float metric value that also carries per-query values and exclusion counts.

    Attributes:
        per_query: value for each query, NaN for excluded queries.
        n_evaluated: queries that entered the mean.
        n_excluded: queries with no relevant item in the database.
    """

    per_query: np.ndarray
    n_evaluated: int
    n_excluded: int

    def __new__(cls, per_query: np.ndarray, evaluated: np.ndarray) -> Score:
        value = float(per_query[evaluated].mean()) if evaluated.any() else float("nan")
        score = super().__new__(cls, value)
        score.per_query = np.where(evaluated, per_query, np.nan)
        score.n_evaluated = int(evaluated.sum())
        score.n_excluded = int((~evaluated).sum())
        return score


@dataclass(frozen=True)
class _Stats:
    hist_all: np.ndarray  # (m, n_bits + 1)
    hist_rel: np.ndarray
    ap_sum: np.ndarray  # stable order, within topk
    rel_top: np.ndarray
    topk: int

    @property
    def n_relevant(self) -> np.ndarray:
        return self.hist_rel.sum(axis=1)

    @property
    def evaluated(self) -> np.ndarray:
        return self.n_relevant > 0


def _label_masks(query_labels: Any, db_labels: Any, n_queries: int, n_db: int) -> tuple:
    """Query and database labels as uint64 bitmask words (one bit per class).

    1-D labels of any values are categories; only the classes that occur get a bit, so sparse
    ids (e.g. 10**9) cost nothing.
    """
    q_lab = as_labels(query_labels, "query_labels")
    d_lab = as_labels(db_labels, "db_labels")
    for arr, name, n_items in ((q_lab, "query_labels", n_queries), (d_lab, "db_labels", n_db)):
        if len(arr) != n_items:
            raise HashlearnInputError(
                f"{name} must have one row per code ({n_items}), got shape {arr.shape}; "
                "pass 1-D labels or 2-D multi-hot rows aligned with the codes."
            )
    if q_lab.ndim != d_lab.ndim or (q_lab.ndim == 2 and q_lab.shape[1] != d_lab.shape[1]):
        raise HashlearnInputError(
            f"query_labels {q_lab.shape} and db_labels {d_lab.shape} use different formats; "
            "both must be 1-D labels or both 2-D multi-hot with the same number of classes."
        )
    hot = labels_to_multihot(np.concatenate([q_lab, d_lab]), name="labels", dtype=bool)
    words = to_words(np.packbits(hot, axis=1))
    return words[:n_queries], words[n_queries:]


def _statistics(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    topk: int | None,
    ties: str = DEFAULT_TIES,
    embeddings: tuple[Any, Any] = (None, None),
) -> _Stats:
    """One pass over the database for every query; under ``ties="continuous"`` the
    stable-order AP sums and top-k counts are replaced by those of the continuous order."""
    check_choice(ties, TIES, "ties")
    if ties != "continuous" and any(e is not None for e in embeddings):
        raise HashlearnInputError(
            f'query_embeddings / db_embeddings order ties only with ties="continuous" '
            f"(got ties={ties!r}); drop them or choose that tie rule."
        )
    queries = as_packed(query_codes, "query_codes")
    database = as_packed(db_codes, "db_codes")
    if len(queries) == 0:
        raise HashlearnInputError("query_codes is empty; evaluate at least one query.")
    if len(database) == 0:
        raise HashlearnInputError("db_codes is empty; the database needs at least one code.")
    if queries.shape[1] != database.shape[1]:
        raise HashlearnInputError(
            f"query codes have {queries.shape[1] * 8} bits per row (padded) but database codes "
            f"{database.shape[1] * 8}; encode both with the same model and n_bits."
        )
    q_masks, d_masks = _label_masks(query_labels, db_labels, len(queries), len(database))
    n_db = len(database)
    if topk is None:
        topk = n_db
    elif isinstance(topk, bool) or not isinstance(topk, (int, np.integer)) or topk < 1:
        raise HashlearnInputError(f"topk must be a positive integer or None (all), got {topk!r}.")
    elif topk > n_db:
        raise HashlearnInputError(
            f"topk={topk} is larger than the database ({n_db} codes); use topk <= {n_db} "
            "or topk=None for all."
        )
    n_bits = 8 * queries.shape[1]
    words, db_t = to_words(queries), np.ascontiguousarray(to_words(database).T)
    d_masks_t = np.ascontiguousarray(d_masks.T)
    hist_all, hist_rel, ap_sum, rel_top = query_statistics(
        words, db_t, q_masks, d_masks_t, n_bits, int(topk)
    )
    if ties == "continuous":
        ap_sum, rel_top = continuous_statistics(
            words, db_t, q_masks, d_masks_t, *embeddings, n_bits, int(topk)
        )
    return _Stats(hist_all, hist_rel, ap_sum, rel_top, int(topk))


def _kept(stats: _Stats, no_relevant: str) -> np.ndarray:
    """The queries that enter the means: those with a relevant item, or all (``"zero"``)."""
    check_choice(no_relevant, NO_RELEVANT, "no_relevant")
    return stats.evaluated if no_relevant == "skip" else np.ones_like(stats.evaluated)


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(len(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _ap(stats: _Stats, ties: str, no_relevant: str = DEFAULT_NO_RELEVANT) -> Score:
    check_choice(ties, TIES, "ties")
    if ties != "aware":  # the stable or continuous order's sums (see _statistics)
        per_query = _safe_ratio(stats.ap_sum, stats.rel_top)
    else:
        numerator, expected_rel = tie_aware_ap(stats.hist_all, stats.hist_rel, stats.topk)
        per_query = _safe_ratio(numerator, expected_rel)
    return Score(per_query, _kept(stats, no_relevant))


def _relevant_in_top(stats: _Stats, ties: str) -> np.ndarray:
    check_choice(ties, TIES, "ties")
    if ties != "aware":
        return stats.rel_top.astype(np.float64)
    return tie_aware_ap(stats.hist_all, stats.hist_rel, stats.topk)[1]


def _within_radius(stats: _Stats, r: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0:
        raise HashlearnInputError(f"radius must be a non-negative integer, got {r!r}.")
    r = min(int(r), stats.hist_all.shape[1] - 1)
    return stats.hist_all[:, : r + 1].sum(axis=1), stats.hist_rel[:, : r + 1].sum(axis=1)


def mean_average_precision(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    topk: int | None = None,
    ties: str = DEFAULT_TIES,
    *,
    no_relevant: str = DEFAULT_NO_RELEVANT,
    query_embeddings: Any = None,
    db_embeddings: Any = None,
) -> Score:
    """mAP@topk of Hamming ranking (``topk=None``: the whole database). See module docs.

    ``query_embeddings`` / ``db_embeddings``: the continuous codes, needed (only) by
    ``ties="continuous"``.
    """
    embeddings = (query_embeddings, db_embeddings)
    stats = _statistics(query_codes, db_codes, query_labels, db_labels, topk, ties, embeddings)
    return _ap(stats, ties, no_relevant)


def precision_at_k(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    k: int,
    ties: str = DEFAULT_TIES,
    *,
    no_relevant: str = DEFAULT_NO_RELEVANT,
    query_embeddings: Any = None,
    db_embeddings: Any = None,
) -> Score:
    """Mean fraction of relevant items among the first ``k`` of the Hamming ranking."""
    embeddings = (query_embeddings, db_embeddings)
    stats = _statistics(query_codes, db_codes, query_labels, db_labels, k, ties, embeddings)
    return Score(_relevant_in_top(stats, ties) / stats.topk, _kept(stats, no_relevant))


def recall_at_k(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    k: int,
    ties: str = DEFAULT_TIES,
    *,
    no_relevant: str = DEFAULT_NO_RELEVANT,
    query_embeddings: Any = None,
    db_embeddings: Any = None,
) -> Score:
    """Mean fraction of each query's relevant items found among the first ``k`` (a query
    without relevant items scores 0 under ``no_relevant="zero"``)."""
    embeddings = (query_embeddings, db_embeddings)
    stats = _statistics(query_codes, db_codes, query_labels, db_labels, k, ties, embeddings)
    found = _safe_ratio(_relevant_in_top(stats, ties), stats.n_relevant)
    return Score(found, _kept(stats, no_relevant))


def precision_within_radius(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    r: int = DEFAULT_RADIUS,
    *,
    no_relevant: str = DEFAULT_NO_RELEVANT,
) -> Score:
    """Precision of the items within Hamming radius ``r`` (hash-lookup precision).

    A query that retrieves nothing within the radius scores 0, the convention of SDH / KSH
    and most hashing papers ("precision within Hamming radius 2").
    """
    stats = _statistics(query_codes, db_codes, query_labels, db_labels, None)
    retrieved, relevant = _within_radius(stats, r)
    return Score(_safe_ratio(relevant, retrieved), _kept(stats, no_relevant))


@dataclass(frozen=True)
class PRCurve:
    """Precision and recall of Hamming-ball retrieval at each radius 0..n_bits.

    ``precision[r]`` averages only the queries that retrieve at least one item within radius
    ``r`` (their share is ``retrieved_fraction[r]``); ``recall[r]`` averages every query.
    """

    radius: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    retrieved_fraction: np.ndarray

    def to_dict(self) -> dict[str, list]:
        return {key: getattr(self, key).tolist() for key in self.__dataclass_fields__}


def _pr_curve(stats: _Stats, n_bits: int | None) -> PRCurve:
    keep = stats.evaluated
    hist_all, hist_rel = stats.hist_all[keep], stats.hist_rel[keep]
    max_radius = (
        hist_all.shape[1] - 1 if n_bits is None else min(int(n_bits), hist_all.shape[1] - 1)
    )
    retrieved = np.cumsum(hist_all, axis=1)[:, : max_radius + 1]
    relevant = np.cumsum(hist_rel, axis=1)[:, : max_radius + 1]
    total_relevant = hist_rel.sum(axis=1, keepdims=True)
    has_any = retrieved > 0
    precision_sum = np.where(has_any, relevant / np.maximum(retrieved, 1), 0.0).sum(axis=0)
    n_any = has_any.sum(axis=0)
    precision = np.divide(precision_sum, n_any, out=np.full(len(n_any), np.nan), where=n_any > 0)
    return PRCurve(
        radius=np.arange(max_radius + 1),
        precision=precision,
        recall=(relevant / np.maximum(total_relevant, 1)).mean(axis=0),
        retrieved_fraction=n_any / max(len(hist_all), 1),
    )


def precision_recall_curve(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    n_bits: int | None = None,
) -> PRCurve:
    """Precision/recall of Hamming-ball retrieval at every radius (see :class:`PRCurve`)."""
    return _pr_curve(_statistics(query_codes, db_codes, query_labels, db_labels, None), n_bits)


def evaluate_retrieval(
    query_codes: Any,
    db_codes: Any,
    query_labels: Any,
    db_labels: Any,
    topk: int | None = None,
    k: int = DEFAULT_K,
    radius: int = DEFAULT_RADIUS,
    ties: str = DEFAULT_TIES,
    n_bits: int | None = None,
    *,
    no_relevant: str = DEFAULT_NO_RELEVANT,
    query_embeddings: Any = None,
    db_embeddings: Any = None,
) -> dict[str, Any]:
    """Every metric from one pass: mAP@topk, P@k, R@k, precision within ``radius``, PR curve.

    ``k`` is clipped to the database size. Returns a JSON-ready dict.
    """
    check_choice(ties, TIES, "ties")
    check_choice(no_relevant, NO_RELEVANT, "no_relevant")
    embeddings = (query_embeddings, db_embeddings)
    stats = _statistics(query_codes, db_codes, query_labels, db_labels, topk, ties, embeddings)
    n_db = int(stats.hist_all[0].sum())
    k = min(int(k), n_db)
    at_k = (
        stats
        if k == stats.topk
        else _statistics(query_codes, db_codes, query_labels, db_labels, k, ties, embeddings)
    )
    retrieved, relevant = _within_radius(stats, radius)
    kept = _kept(stats, no_relevant)
    return {
        "map": float(_ap(stats, ties, no_relevant)),
        "topk": None if topk is None else stats.topk,
        "ties": ties,
        "no_relevant": no_relevant,
        "k": k,
        "precision_at_k": float(Score(_relevant_in_top(at_k, ties) / k, kept)),
        "recall_at_k": float(
            Score(_safe_ratio(_relevant_in_top(at_k, ties), stats.n_relevant), kept)
        ),
        "radius": int(radius),
        "precision_within_radius": float(Score(_safe_ratio(relevant, retrieved), kept)),
        "n_queries": int(len(kept)),
        "n_excluded": int((~kept).sum()),
        "pr_curve": _pr_curve(stats, n_bits).to_dict(),
    }
