"""Fit-encode-search-score loop shared by ``hashlearn evaluate`` and the benchmarks.

Protocol: each method is fitted on the dataset's ``train`` split (with labels for supervised
methods), ``query`` and ``database`` are encoded, the database is searched exactly with
:class:`hashlearn.index.HammingIndex`, and :func:`hashlearn.metrics.evaluate_retrieval`
scores the Hamming ranking.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

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
        A JSON-ready record: the metrics of :func:`evaluate_retrieval` plus ``fit_s``,
        ``encode_s`` and ``search_s`` (k-NN search of every query with ``HammingIndex``).
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

    start = time.perf_counter()
    query_codes = model.encode(dataset.query.X)
    db_codes = model.encode(dataset.database.X)
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
        n_bits=n_bits,
    )
    record = {"method": name, "bits": n_bits, "seed": seed, **scores}
    record.update(fit_s=fit_s, encode_s=encode_s, search_s=search_s)
    log.info(
        "%s %d bits: mAP %.4f  (fit %.2fs, encode %.2fs, search %.3fs)",
        name,
        n_bits,
        record["map"],
        fit_s,
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
