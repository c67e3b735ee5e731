"""Run one cell: fit (or train) at one code length and seed, encode, search, score.

Shallow cells go through :func:`hashlearn.evaluation.evaluate_method`; deep cells through
:func:`hashlearn.deep.train_on_dataset` (checkpointed in ``runs/<cell>``, so a cell stopped
mid-training resumes from its last epoch) and :func:`hashlearn.metrics.evaluate_retrieval`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn.codes import code_statistics
from hashlearn.data import Dataset
from hashlearn.reproduce.grid import Cell


def resolve_topk(dataset: Dataset, topk: Any) -> int | None:
    """``"protocol"``: the protocol's mAP cut-off where the dataset carries one (else all)."""
    if topk == "protocol":
        resolve = getattr(dataset, "resolve_topk", None)
        return None if resolve is None else resolve("protocol")
    if topk == "all":
        return None
    return min(int(topk), len(dataset.database))


def run_shallow(cell: Cell, dataset: Dataset, evaluation: dict) -> dict[str, Any]:
    from hashlearn.evaluation import evaluate_method

    topk = resolve_topk(dataset, evaluation["topk"])
    record = evaluate_method(
        cell.method,
        dataset,
        cell.bits,
        topk=topk,
        k=evaluation["k"],
        seed=cell.seed,
        ties=evaluation["ties"],
        params=dict(cell.options),
    )
    record.pop("method", None)
    record.pop("bits", None)
    record.pop("seed", None)
    return record


def run_deep(
    cell: Cell, dataset: Dataset, evaluation: dict, runs_dir: Path, progress: bool
) -> dict[str, Any]:
    from hashlearn.deep import TrainConfig, train_on_dataset
    from hashlearn.metrics import evaluate_retrieval

    config = TrainConfig.from_options(
        {
            **cell.options,
            "loss": cell.method,
            "n_bits": cell.bits,
            "quantization": cell.quantization,
            "seed": cell.seed,
        }
    )
    run_dir = runs_dir / cell.slug
    resume = (run_dir / "config.json").is_file()
    start = time.perf_counter()
    hasher = train_on_dataset(config, dataset, run_dir, resume=resume, progress=progress)
    fit_s = time.perf_counter() - start
    field = "X" if hasher.input_kind == "features" else "images"
    query, database = getattr(dataset.query, field), getattr(dataset.database, field)
    start = time.perf_counter()
    q_codes, db_codes = hasher.encode(query), hasher.encode(database)
    encode_s = time.perf_counter() - start
    record = evaluate_retrieval(
        q_codes,
        db_codes,
        dataset.query.y,
        dataset.database.y,
        topk=resolve_topk(dataset, evaluation["topk"]),
        k=evaluation["k"],
        radius=evaluation["radius"],
        ties=evaluation["ties"],
        n_bits=cell.bits,
    )
    record.update(fit_s=fit_s, encode_s=encode_s)
    result = json.loads((run_dir / "result.json").read_text())
    record["training"] = {
        "status": result.get("status"),
        "best_epoch": result.get("best_epoch"),
        "history": [
            {k: v for k, v in epoch.items() if k != "lr"} for epoch in result.get("history", [])
        ],
    }
    if cell.keep_embeddings:
        n = min(cell.keep_embeddings, len(query))
        rows = np.sort(np.random.default_rng(cell.seed).permutation(len(query))[:n])
        z = hasher.embed(query[rows])
        record["embeddings"] = {
            "z": np.round(z, 4).tolist(),
            "y": np.asarray(dataset.query.y[rows]).tolist(),
        }
        record["query_code_statistics"] = code_statistics(hasher.embed(query))
    return record
