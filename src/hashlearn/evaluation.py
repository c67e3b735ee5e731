"""Fit-encode-search-score loop shared by ``hashlearn evaluate`` and the benchmarks.

Protocol: each method is fitted on the dataset's ``train`` split (with labels for supervised
methods), ``query`` and ``database`` are encoded, the database is searched exactly with
:class:`hashlearn.index.HammingIndex`, and :func:`hashlearn.metrics.evaluate_retrieval`
scores the Hamming ranking. A trained deep run is scored by the same
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
from hashlearn.metrics import evaluate_retrieval

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
) -> dict[str, Any]:
    """Fit one method at one code length on ``dataset`` and score it.

    Args:
        method: a registered method name, or an unfitted estimator.
        params: extra constructor parameters for a named method.

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
    )


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
        topk, k, ties, radius: see :func:`hashlearn.metrics.evaluate_retrieval`.

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
        "%s %d bits: mAP %.4f  (fit %s, encode %.2fs, search %.3fs)",
        method,
        n_bits,
        record["map"],
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
    records: list[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """:func:`evaluate_method` for every (method, bits) pair, with a progress bar on stderr.

    Every cell's parameters are checked against the training split's shape before the first
    fit (:func:`check_grid`), so a grid is not refused half-way for a reason known up front.

    Args:
        params: maps a method name to its extra constructor parameters.
        records: a list each finished record is appended to as soon as it is scored (and
            which is returned); a caller keeps the finished cells of a grid when a later cell
            fails or is interrupted.
    """
    from tqdm.auto import tqdm

    jobs = [(m, b) for m in methods for b in bits]
    check_grid(jobs, dataset, params=params, seed=kwargs.get("seed", 0))
    records = [] if records is None else records
    for method, n_bits in tqdm(jobs, desc="evaluate", disable=not progress, leave=False):
        extra = (params or {}).get(method)
        records.append(evaluate_method(method, dataset, n_bits, params=extra, **kwargs))
    return records


def check_grid(
    jobs: Iterable[tuple[str, int]],
    dataset: Dataset,
    *,
    params: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
) -> None:
    """Construct every (method, bits) cell and check its parameters against the shape of
    ``dataset.train`` (:meth:`hashlearn.base.BaseHasher.check_fit_shape`), without fitting.

    Raises the first cell's error prefixed by the cell, e.g. ``ssah at 16 bits: n_anchors=1000
    is more than the 500 training samples; ...``.
    """
    n_samples, n_features = dataset.train.X.shape
    for method, n_bits in jobs:
        extra = (params or {}).get(method) or {}
        model = make_method(method, n_bits=n_bits, random_state=seed, **extra)
        check = getattr(model, "check_fit_shape", None)
        if check is None:
            continue
        try:
            check(n_samples, n_features)
        except HashlearnInputError as exc:
            raise type(exc)(f"{method} at {n_bits} bits: {exc}") from None
