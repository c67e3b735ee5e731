"""Fit-encode-search-score loop shared by ``hashlearn evaluate`` and the benchmarks.

Protocol: each method is fitted on the dataset's ``train`` split (with labels for supervised
methods), ``query`` and ``database`` are encoded, the database is searched exactly with
:class:`hashlearn.index.HammingIndex`, and :func:`hashlearn.metrics.evaluate_retrieval`
scores the Hamming ranking against the labels. With ``neighbours`` (a float metric), the
Hamming top-R of each query is also scored against the exact float k-NN of its features
(:func:`neighbour_scores`); a dataset without labels gets these neighbour metrics only. A
trained deep run is scored by the same
:func:`evaluate_encoder` (through :func:`hashlearn.deep.evaluate_run`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from hashlearn._validation import HashlearnInputError
from hashlearn.catalogue import make_method
from hashlearn.data import Dataset
from hashlearn.index import HammingIndex
from hashlearn.metrics import (
    euclidean_ground_truth,
    evaluate_retrieval,
    exact_knn,
    knn_recall,
    relevant_recall_precision,
)

log = logging.getLogger("hashlearn")


def evaluate_method(
    method: str | Any,
    dataset: Dataset,
    n_bits: int,
    *,
    topk: int | None = None,
    k: int = 100,
    seed: int = 0,
    ties: str = "stable",
    params: dict[str, Any] | None = None,
    **neighbour_options: Any,
) -> dict[str, Any]:
    """Fit one method at one code length on ``dataset`` and score it.

    Args:
        method: a registered method name, or an unfitted estimator.
        params: extra constructor parameters for a named method.
        neighbour_options: ``neighbours``, ``nn_k``, ``candidates`` of :func:`evaluate_encoder`.

    Returns:
        The record of :func:`evaluate_encoder`, with ``fit_s`` the seconds of ``fit``.
    """
    if isinstance(method, str):
        name = method
        model = make_method(method, n_bits=n_bits, random_state=seed, **(params or {}))
    else:
        model, name = method, type(method).__name__
    train = dataset.train
    start = time.perf_counter()
    model.fit(train.X, train.y)  # unsupervised methods ignore y, as in scikit-learn
    fit_s = time.perf_counter() - start
    return evaluate_encoder(
        model,
        dataset,
        method=name,
        n_bits=n_bits,
        seed=seed,
        fit_s=fit_s,
        topk=topk,
        k=k,
        ties=ties,
        **neighbour_options,
    )


def neighbour_columns(nn_k: int, candidates: Iterable[int]) -> list[str]:
    """Record keys of :func:`neighbour_scores`: ``nn_recall_<k>@<R>``."""
    return [f"nn_recall_{nn_k}@{r}" for r in candidates]


def neighbour_scores(
    index: HammingIndex,
    query_codes: Any,
    query_X: Any,
    database_X: Any,
    *,
    metric: str,
    nn_k: int = 10,
    candidates: Iterable[int] = (10, 100),
) -> dict[str, float]:
    """Recall k@R of the Hamming ranking: the fraction of each query's exact ``nn_k`` nearest
    database vectors (by ``metric`` on the float features) among its ``R`` Hamming-nearest
    codes (ties by database id), for each ``R`` in ``candidates``."""
    keys = neighbour_columns(nn_k, candidates)
    candidates = [min(int(r), len(index)) for r in candidates]
    true_ids = exact_knn(query_X, database_X, min(nn_k, len(index)), metric=metric)[1]
    retrieved = index.search(query_codes, max(candidates))[1]
    return {key: knn_recall(true_ids, retrieved[:, :r]) for key, r in zip(keys, candidates)}


def euclidean_scores(
    index: HammingIndex, query_codes: Any, query_X: Any, database_X: Any, *, k: int = 100
) -> dict[str, float]:
    """ITQ's Euclidean protocol (Gong & Lazebnik, CVPR 2011, §4): true neighbours lie within
    the mean distance to the 50th nearest database item; precision and recall of the Hamming
    top ``k`` (ties by database id) against them, and the radius used."""
    relevant, radius = euclidean_ground_truth(query_X, database_X, n_neighbours=min(50, len(index)))
    retrieved = index.search(query_codes, min(k, len(index)))[1]
    recall, precision = relevant_recall_precision(relevant, retrieved)
    return {"l2_radius": radius, "l2r_precision_at_k": precision, "l2r_recall_at_k": recall}


def evaluate_encoder(
    model: Any,
    dataset: Dataset,
    *,
    method: str,
    n_bits: int,
    seed: int | None = None,
    field: str = "X",
    fit_s: float | None = None,
    topk: int | None = None,
    k: int = 100,
    ties: str = "stable",
    radius: int = 2,
    neighbours: str | None = None,
    nn_k: int = 10,
    candidates: Iterable[int] = (10, 100),
) -> dict[str, Any]:
    """Score a fitted encoder: encode ``query`` and ``database``, search, evaluate.

    The one scoring path of shallow methods (:func:`evaluate_method`) and trained deep runs
    (:func:`hashlearn.deep.evaluate_run`), so both give records with the same keys.

    Args:
        model: anything with ``encode(X) -> packed uint8 codes`` (a fitted method, a
            :class:`hashlearn.deep.DeepHasher`).
        method: the name recorded under ``"method"``.
        n_bits: the code length (``"bits"``).
        seed: the method's seed, recorded as is.
        field: which input of the splits the model encodes: ``"X"`` (features) or
            ``"images"``.
        fit_s: seconds the fit took, recorded as is (None when not measured here).
        topk, k, ties, radius: see :func:`hashlearn.metrics.evaluate_retrieval` (skipped, and
            recorded as ``None``, when the dataset has no labels).
        neighbours: ``"cosine"``, ``"ip"`` or ``"l2"`` adds :func:`neighbour_scores` with
            ``nn_k`` and ``candidates``; ``"l2-radius"`` adds :func:`euclidean_scores` (ITQ's
            protocol) at ``k`` (one of them is required for a dataset without labels).

    Returns:
        A JSON-ready record: ``method``, ``bits``, ``seed``, ``dataset``, ``split_seed``, the
        metrics of :func:`evaluate_retrieval`, ``fit_s``, ``encode_s`` and ``search_s`` (k-NN
        search of every query with :class:`HammingIndex`).
    """
    query, database = getattr(dataset.query, field), getattr(dataset.database, field)
    start = time.perf_counter()
    query_codes = model.encode(query)
    db_codes = model.encode(database)
    encode_s = time.perf_counter() - start

    index = HammingIndex(n_bits)
    index.add(db_codes)
    index.search(query_codes[:1], 1)  # warm-up: keep JIT loading out of the timing
    start = time.perf_counter()
    index.search(query_codes, min(k, len(index)))
    search_s = time.perf_counter() - start

    if dataset.query.y is None and neighbours is None:
        raise HashlearnInputError(
            f"{dataset.name} has no labels, so only neighbour metrics can score it; pass "
            "neighbours='cosine', 'ip' or 'l2' (--neighbours on the command line)."
        )
    scores: dict[str, Any] = {}
    if dataset.query.y is not None:
        scores = evaluate_retrieval(
            query_codes,
            db_codes,
            dataset.query.y,
            dataset.database.y,
            topk=topk,
            k=k,
            ties=ties,
            radius=radius,
            n_bits=n_bits,
        )
    if neighbours == "l2-radius":
        scores.update(
            euclidean_scores(index, query_codes, dataset.query.X, dataset.database.X, k=k)
        )
    elif neighbours is not None:
        query_X, db_X = dataset.query.X, dataset.database.X
        scores.update(
            neighbour_scores(
                index,
                query_codes,
                query_X,
                db_X,
                metric=neighbours,
                nn_k=nn_k,
                candidates=candidates,
            )
        )
    record = {
        "method": method,
        "bits": n_bits,
        "seed": seed,
        "dataset": dataset.name,
        "split_seed": dataset.split_seed,
        **scores,
    }
    record.update(fit_s=fit_s, encode_s=encode_s, search_s=search_s)
    log.info(
        "%s %d bits: mAP %s  (fit %s, encode %.2fs, search %.3fs)",
        method,
        n_bits,
        "-" if record.get("map") is None else f"{record['map']:.4f}",
        "-" if fit_s is None else f"{fit_s:.2f}s",
        encode_s,
        search_s,
    )
    return record


def evaluate_grid(
    methods: Iterable[str],
    dataset: Dataset,
    bits: Iterable[int],
    *,
    progress: bool = True,
    params: dict[str, dict[str, Any]] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """:func:`evaluate_method` for every (method, bits) pair, with a progress bar on stderr.

    ``params`` maps a method name to its extra constructor parameters.
    """
    from tqdm.auto import tqdm

    jobs = [(m, b) for m in methods for b in bits]
    records = []
    for method, n_bits in tqdm(jobs, desc="evaluate", disable=not progress, leave=False):
        extra = (params or {}).get(method)
        records.append(evaluate_method(method, dataset, n_bits, params=extra, **kwargs))
    return records
