"""Fit-encode-search-score loop shared by ``hashlearn evaluate`` and the benchmarks.

Protocol: each method is fitted on the dataset's ``train`` split (with labels for supervised
methods), ``query`` and ``database`` are encoded, the database is searched exactly with
:class:`hashlearn.index.HammingIndex`, and :func:`hashlearn.metrics.evaluate_retrieval`
scores the Hamming ranking against the labels. With ``neighbours`` (a float metric), the
Hamming top-R of each query is also scored against the exact float k-NN of its features
(:func:`neighbour_scores`); a dataset without labels gets these neighbour metrics only. A
trained deep run is scored by the same :func:`evaluate_encoder` (through
:func:`evaluate_run`), and so are the deep cells of ``hashlearn reproduce``: one scoring path,
one record layout.

This module sits above the methods (``deep`` included) and below ``reproduce`` and the CLI;
it imports ``hashlearn.deep`` only inside :func:`evaluate_run`, so torch stays optional.
The defaults of every evaluation option are those of :mod:`hashlearn.vocab`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hashlearn._validation import HashlearnInputError
from hashlearn.catalogue import make_method
from hashlearn.codes import pack
from hashlearn.data import Dataset, load_dataset
from hashlearn.index import HammingIndex
from hashlearn.metrics import (
    euclidean_ground_truth,
    evaluate_retrieval,
    exact_knn,
    knn_recall,
    relevant_recall_precision,
)
from hashlearn.vocab import (
    DEFAULT_K,
    DEFAULT_NO_RELEVANT,
    DEFAULT_RADIUS,
    DEFAULT_TIES,
    DEFAULT_TOPK,
)

log = logging.getLogger("hashlearn")


def evaluate_method(
    method: str | Any,
    dataset: Dataset,
    n_bits: int,
    *,
    topk: int | str | None = DEFAULT_TOPK,
    k: int = DEFAULT_K,
    seed: int = 0,
    ties: str = DEFAULT_TIES,
    params: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Fit one method at one code length on ``dataset`` and score it.

    Args:
        method: a registered method name, or an unfitted estimator.
        params: extra constructor parameters for a named method.
        **options: ``radius``, ``no_relevant``, ``rules``, ``neighbours``, ``nn_k``,
            ``candidates`` of :func:`evaluate_encoder`.

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
        **options,
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
    topk: int | str | None = DEFAULT_TOPK,
    k: int = DEFAULT_K,
    ties: str = DEFAULT_TIES,
    radius: int = DEFAULT_RADIUS,
    no_relevant: str = DEFAULT_NO_RELEVANT,
    rules: Mapping[str, Mapping[str, Any]] | None = None,
    neighbours: str | None = None,
    nn_k: int = 10,
    candidates: Iterable[int] = (10, 100),
) -> dict[str, Any]:
    """Score a fitted encoder: encode ``query`` and ``database``, search, evaluate.

    The one scoring path of shallow methods (:func:`evaluate_method`) and trained deep runs
    (:func:`evaluate_run`), so both give records with the same keys.

    Args:
        model: anything with ``encode(X) -> packed uint8 codes`` (a fitted method, a
            :class:`hashlearn.deep.DeepHasher`); with ``ties="continuous"`` anywhere, also
            ``transform(X)``, whose signs are then the codes (one pass over the items).
        method: the name recorded under ``"method"``.
        n_bits: the code length (``"bits"``).
        seed: the method's seed, recorded as is.
        field: which input of the splits the model encodes: ``"X"`` (features) or
            ``"images"``.
        fit_s: seconds the fit took, recorded as is (None when not measured here).
        topk: mAP cut-off: an int, ``"protocol"`` (the dataset protocol's, see
            :meth:`hashlearn.data.Dataset.resolve_topk`), ``"all"`` or None (mAP@all).
        k, ties, radius, no_relevant: see :func:`hashlearn.metrics.evaluate_retrieval`;
            ``ties="continuous"`` orders Hamming ties by ``model.transform`` of the items.
            The label metrics are skipped (and recorded as ``None``) when the dataset has no
            labels.
        rules: further named sets of these options (e.g. a paper's rules), each scored on
            the same codes into ``record["rules"][name]`` (``map``, ``precision_at_k``,
            ``recall_at_k`` and the options used).
        neighbours: ``"cosine"``, ``"ip"`` or ``"l2"`` adds :func:`neighbour_scores` with
            ``nn_k`` and ``candidates``; ``"l2-radius"`` adds :func:`euclidean_scores` (ITQ's
            protocol) at ``k`` (one of them is required for a dataset without labels).

    Returns:
        A JSON-ready record: ``method``, ``bits``, ``seed``, ``dataset``, ``split_seed``, the
        metrics of :func:`evaluate_retrieval`, ``fit_s``, ``encode_s`` and ``search_s`` (k-NN
        search of every query with :class:`HammingIndex`).
    """
    query, database = getattr(dataset.query, field), getattr(dataset.database, field)
    main = {"topk": topk, "k": k, "ties": ties, "radius": radius, "no_relevant": no_relevant}
    every = [main, *(dict(r) for r in (rules or {}).values())]
    embeddings: tuple[Any, Any] = (None, None)
    start = time.perf_counter()
    if any(r.get("ties") == "continuous" for r in every):
        # One pass: the codes are the signs of the continuous codes (as every hashlearn
        # encoder's ``encode``, and the H2Q authors' ``hashes = sign(features)``).
        embeddings = (model.transform(query), model.transform(database))
        query_codes, db_codes = pack(embeddings[0]), pack(embeddings[1])
    else:
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

    def score(options: Mapping[str, Any]) -> dict[str, Any]:
        options = {**main, **options}
        continuous = options["ties"] == "continuous"
        return evaluate_retrieval(
            query_codes,
            db_codes,
            dataset.query.y,
            dataset.database.y,
            topk=dataset.resolve_topk(options["topk"]),
            k=options["k"],
            ties=options["ties"],
            radius=options["radius"],
            n_bits=n_bits,
            no_relevant=options["no_relevant"],
            query_embeddings=embeddings[0] if continuous else None,
            db_embeddings=embeddings[1] if continuous else None,
        )

    scores: dict[str, Any] = {}
    if dataset.query.y is not None:
        scores = score(main)
        if rules:
            keep = ("map", "topk", "k", "ties", "no_relevant", "precision_at_k", "recall_at_k")
            scores["rules"] = {
                name: {key: value for key, value in score(r).items() if key in keep}
                for name, r in rules.items()
            }
    if neighbours == "l2-radius":
        scores.update(
            euclidean_scores(index, query_codes, dataset.query.X, dataset.database.X, k=k)
        )
    elif neighbours is not None:
        scores.update(
            neighbour_scores(
                index,
                query_codes,
                dataset.query.X,
                dataset.database.X,
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


#: Options of :func:`evaluate_run` passed on to :func:`evaluate_encoder`.
METRIC_OPTIONS = ("k", "radius", "ties", "no_relevant", "rules")


def evaluate_run(
    run_dir: str | os.PathLike,
    topk: int | str | None = DEFAULT_TOPK,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    device: Any = "auto",
    **metric_kwargs: Any,
) -> dict:
    """Encode a trained deep run's dataset query and database splits and evaluate retrieval.

    Uses the dataset name, protocol and split seed recorded in ``config.json``, so the numbers
    are on the same split as training (the query split was never used for model selection).
    Scored by :func:`evaluate_encoder`, the path of the shallow methods: the record has the
    same keys (``method`` is the run directory's name, ``seed`` the training seed, ``fit_s``
    None: training time is in the run's ``result.json``).

    Args:
        run_dir: a run directory written by ``hashlearn train``.
        topk: mAP cut-off: ``"protocol"`` (the dataset protocol's, e.g. 5000 for CIFAR-10
            ``h2q``; see :meth:`hashlearn.data.Dataset.resolve_topk`), an int, or ``None`` /
            ``"all"`` for mAP@all.
        data_dir: folder holding the dataset files (passed to ``load_dataset``; None = the
            folder recorded in ``config.json`` at training, else the default search path).
        download: let ``load_dataset`` download missing dataset files (False: fail with
            instructions instead).
        device: where to encode (see :func:`hashlearn.deep.load_run`).
        **metric_kwargs: ``k``, ``radius``, ``ties``, ``no_relevant``, ``rules`` of
            :func:`evaluate_encoder`, left at its defaults when not given.
    """
    unknown = sorted(set(metric_kwargs) - set(METRIC_OPTIONS))
    if unknown:
        raise HashlearnInputError(
            f"unknown evaluation option(s) {unknown}; evaluate_run accepts "
            f"{sorted(METRIC_OPTIONS)}."
        )
    from hashlearn.deep import load_run

    hasher = load_run(run_dir, device=device)
    data = hasher.config.get("dataset")
    if not data or not data.get("name"):
        raise HashlearnInputError(
            f"{run_dir} was trained on in-memory arrays, not a named dataset; encode your "
            "query/database with load_run(...).encode and call hashlearn.metrics yourself."
        )
    kwargs: dict[str, Any] = {"split_seed": data["split_seed"], "download": download}
    if data.get("protocol"):
        kwargs["protocol"] = data["protocol"]
    if data_dir is None:  # the folder the run was trained from (recorded at training)
        data_dir = data.get("data_dir")
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    dataset = load_dataset(data["name"], **kwargs)
    return evaluate_encoder(
        hasher,
        dataset,
        method=Path(run_dir).resolve().name,
        n_bits=hasher.n_bits,
        seed=hasher.config["train"]["seed"],
        field="X" if hasher.input_kind == "features" else "images",
        topk=topk,
        **metric_kwargs,
    )
