"""How much recall do binary codes keep? The logic of ``hashlearn compress``.

Protocol (our choice, as the vector-search literature measures it): ``n_queries`` rows of the
embeddings, drawn with a seeded generator, are held out as queries and the rest is the
database; the exact float 10-NN of every query by cosine similarity is the ground truth. Each
method is fitted on a seeded sample of the database (at most ``sample`` rows), encodes it, and
is scored by recall@10 (the fraction of the true 10 nearest neighbours among the 10 returned)
from the Hamming ranking alone and after rescoring ``oversample × 10`` Hamming candidates with
the float vectors (:class:`~hashlearn.index.RescoringIndex`).

Methods: ``sign`` is sentence-transformers' binary quantization (``quantize_embeddings(...,
precision="binary")``: the sign at 0 of every dimension, so only at ``bits = d``; it sets a bit
for ``x > 0``, we for ``x >= 0``, which differs only at exact zeros); ``sign-centred`` subtracts
the sample mean first (after a PCA projection when ``bits < d``); ``itq`` and ``h2q`` learn a
rotation (with PCA when ``bits < d``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._float_vectors import check_vectors
from hashlearn._validation import HashlearnInputError
from hashlearn.catalogue import make_method
from hashlearn.embeddings import load_embeddings  # noqa: F401  (re-exported for the CLI)
from hashlearn.index import RescoringIndex
from hashlearn.metrics import exact_knn, knn_recall

METHODS = ("sign", "sign-centred", "itq", "h2q")
K = 10
TARGETS = (0.95, 0.99)


def make_quantizer(
    method: str, n_bits: int, dim: int, seed: int, progress: bool = False
) -> Any | None:
    """The unfitted estimator of ``method`` at ``n_bits``; ``None`` where it does not apply
    (``sign`` needs ``bits = d``; no method takes ``bits > d``). ``progress``: the learned
    rotations show their iterations on stderr."""
    if n_bits > dim or (method == "sign" and n_bits != dim):
        return None
    if method in ("sign", "sign-centred"):
        projection = "none" if n_bits == dim else "pca"
        return make_method("sign", n_bits=n_bits, projection=projection, center=method != "sign")
    return make_method(method, n_bits=n_bits, random_state=seed, verbose=progress)


def compress_report(
    X: Any,
    *,
    bits: Sequence[int] = (64, 128, 256),
    methods: Sequence[str] = METHODS,
    n_queries: int = 1000,
    oversample: Sequence[float] = (1, 2, 4, 10),
    sample: int = 100_000,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Fit, encode and score every (method, bits) on ``X`` (see the module docstring).

    Returns a JSON-ready dict: ``results`` (one record per method and bits: ``recall`` without
    rescoring, ``rescored`` {oversample: recall}, ``bytes_per_vector``, ``build_s``, ``qps``
    {oversample: queries/s}), ``smallest`` (the cheapest setting reaching each target recall,
    or ``None``), and the protocol; ``models`` maps ``(method, bits)`` to fitted quantizers (not
    JSON; for saving).
    """
    from tqdm.auto import tqdm

    X = check_vectors(X, "embeddings", metric="cosine")
    n, dim = X.shape
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise HashlearnInputError(
            f"unknown method(s) {', '.join(unknown)} for compress; choose from "
            f"{', '.join(METHODS)}."
        )
    if any(not o >= 1 for o in oversample):
        raise HashlearnInputError(f"--oversample values must be >= 1, got {list(oversample)}.")
    if not 1 <= n_queries <= n - K:
        raise HashlearnInputError(
            f"--queries must be in 1..{n - K} for {n} embeddings (the rest is the database, "
            f"at least {K} vectors), got {n_queries}."
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    queries, database = X[np.sort(order[:n_queries])], X[np.sort(order[n_queries:])]
    train = database[np.sort(rng.permutation(len(database))[:sample])]
    truth = exact_knn(queries, database, K, metric="cosine")[1]
    jobs = [(m, b) for m in methods for b in bits]
    results, models, skipped = [], {}, []
    for method, n_bits in tqdm(jobs, desc="compress", disable=not progress, leave=False):
        quantizer = make_quantizer(method, n_bits, dim, seed, progress)
        if quantizer is None:
            skipped.append({"method": method, "bits": n_bits})
            continue
        record, models[method, n_bits] = _score(
            quantizer, train, database, queries, truth, oversample
        )
        results.append({"method": method, "bits": n_bits, **record})
    return {
        "n_vectors": n,
        "dim": dim,
        "n_queries": n_queries,
        "n_train": len(train),
        "seed": seed,
        "k": K,
        "metric": "cosine",
        "float32_bytes_per_vector": 4 * dim,
        "results": results,
        "skipped": skipped,
        "smallest": {str(t): smallest_setting(results, t) for t in TARGETS},
        "models": models,
    }


def _score(quantizer, train, database, queries, truth, oversample) -> tuple[dict, Any]:
    start = time.perf_counter()
    quantizer.fit(train)
    index = RescoringIndex(quantizer, metric="cosine")
    index.add(database)
    build_s = time.perf_counter() - start
    codes = quantizer.encode(queries)
    record: dict[str, Any] = {
        "bytes_per_vector": index.first_stage.n_bytes,
        "build_s": build_s,
        "recall": knn_recall(truth, index.first_stage.search(codes, K)[1]),
        "rescored": {},
        "qps": {},
    }
    for factor in oversample:
        start = time.perf_counter()
        ids = index.search(queries, K, oversample=factor)[1]
        elapsed = time.perf_counter() - start
        record["rescored"][_key(factor)] = knn_recall(truth, ids)
        record["qps"][_key(factor)] = len(queries) / elapsed if elapsed > 0 else None
    return record, quantizer


def _key(factor: float) -> str:
    return f"{factor:g}"


def smallest_setting(results: list[dict], target: float) -> dict[str, Any] | None:
    """The cheapest setting reaching recall@10 ≥ ``target``: fewest bytes per vector, then no
    rescoring before rescoring, then the smallest oversampling, then the highest recall."""
    found = []
    for r in results:
        options = [(0.0, r["recall"], None)]
        options += [(float(o), v, o) for o, v in r["rescored"].items()]
        for cost, recall, factor in options:
            if recall >= target:
                found.append(((r["bytes_per_vector"], cost, -recall), r, factor, recall))
    if not found:
        return None
    _, r, factor, recall = min(found, key=lambda item: item[0])
    return {"method": r["method"], "bits": r["bits"], "oversample": factor, "recall": recall}


def chosen_model(report: dict[str, Any]) -> tuple[tuple[str, int], Any]:
    """The quantizer to save: the smallest setting reaching the highest target reached, else
    the setting with the best rescored recall."""
    for target in sorted(TARGETS, reverse=True):
        best = report["smallest"][str(target)]
        if best is not None:
            key = (best["method"], best["bits"])
            return key, report["models"][key]
    r = max(report["results"], key=lambda r: max(r["rescored"].values(), default=r["recall"]))
    key = (r["method"], r["bits"])
    return key, report["models"][key]


def format_report(report: dict[str, Any]) -> str:
    """The results table and the smallest settings, as printed by ``hashlearn compress``."""
    from hashlearn.report import format_table

    factors = list(report["results"][0]["rescored"]) if report["results"] else []
    rows = [
        {**r, **{f"r{o}": v for o, v in r["rescored"].items()}, **_qps(r)}
        for r in report["results"]
    ]
    columns = [("method", "method", "s"), ("bits", "bits", "d"), ("bytes_per_vector", "B/vec", "d")]
    columns += [("recall", "R@10", ".4f")]
    columns += [(f"r{o}", f"R@10 x{o}", ".4f") for o in factors]
    columns += [("build_s", "build s", ".2f"), ("qps_max", f"q/s x{factors[-1]}", ".0f")]
    lines = [
        f"{report['n_vectors']} x {report['dim']} embeddings, {report['n_queries']} queries, "
        f"exact cosine 10-NN; float32 = {report['float32_bytes_per_vector']} B/vec",
        format_table(rows, columns if factors else columns[:4]),
    ]
    for target, best in report["smallest"].items():
        if best is None:
            lines.append(f"recall@10 >= {target}: not reached by any setting")
        else:
            how = (
                "no rescoring" if best["oversample"] is None else f"{best['oversample']}x rescoring"
            )
            lines.append(
                f"recall@10 >= {target}: {best['method']} {best['bits']} bits, {how} "
                f"(recall {best['recall']:.4f})"
            )
    return "\n".join(lines)


def _qps(record: dict) -> dict:
    values = list(record["qps"].values())
    return {"qps_max": values[-1] if values else None}


def plot_report(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """Recall@10 against bytes per vector, one line per method and rescoring setting (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=120)
    for method in dict.fromkeys(r["method"] for r in report["results"]):
        rows = sorted((r for r in report["results"] if r["method"] == method), key=_bytes)
        x = [r["bytes_per_vector"] for r in rows]
        (line,) = ax.plot(x, [r["recall"] for r in rows], "--", marker="o", label=method)
        for o in (o for o in rows[0]["rescored"] if float(o) > 1):  # x1 = the codes' recall
            ax.plot(x, [r["rescored"][o] for r in rows], "-", marker=".", color=line.get_color(),
                    alpha=0.4 + 0.6 * math.tanh(float(o) / 10), label=f"{method} x{o}")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bytes per vector (codes)")
    ax.set_ylabel("recall@10 (exact cosine 10-NN)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    from hashlearn.report import save_png

    return save_png(fig, path)


def _bytes(record: dict) -> int:
    return record["bytes_per_vector"]
