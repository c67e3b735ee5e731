"""Run one cell: fit (or train) at one code length and seed, encode, search, score.

Both kinds end in :func:`hashlearn.evaluation.evaluate_encoder`, the one scoring path:
shallow cells through :func:`hashlearn.evaluation.evaluate_method`, deep cells after
:func:`hashlearn.deep.train_on_dataset` (checkpointed in ``runs/<cell>``, so a cell stopped
mid-training resumes from its last epoch). When the config names a paper, each cell is also
scored under that paper's rules for every published table it is comparable with
(:func:`paper_rules`), into ``record["rules"]``.
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
from hashlearn.reproduce.published import comparison_rules

OPTIONS = ("k", "ties", "radius", "no_relevant")


def resolve_topk(dataset: Dataset, topk: Any) -> int | None:
    """``"protocol"``: the protocol's mAP cut-off where the dataset carries one (else all);
    ``"all"``: None; an int, capped at the database size."""
    if topk in ("protocol", "all"):
        return dataset.resolve_topk(topk)
    return min(int(topk), len(dataset.database))


def paper_rules(paper: str | None, dataset: Dataset) -> dict[str, dict]:
    """The evaluation options of ``paper``'s tables that this dataset's results compare with:
    none when the splits are not the paper's (a class subset or capped splits change the
    database, so the numbers would not be comparable)."""
    if paper is None or dataset.manifest.get("max_items") or dataset.manifest.get("classes"):
        return {}
    rules = comparison_rules(paper, dataset.name, dataset.protocol)
    return {name: {**r, "topk": resolve_topk(dataset, r["topk"])} for name, r in rules.items()}


def _options(evaluation: dict, dataset: Dataset, paper: str | None) -> dict[str, Any]:
    options = {key: evaluation[key] for key in OPTIONS if key in evaluation}
    rules = paper_rules(paper, dataset)
    return {"topk": resolve_topk(dataset, evaluation["topk"]), **options, "rules": rules or None}


def _strip(record: dict[str, Any]) -> dict[str, Any]:
    for key in ("method", "bits", "seed", "dataset", "split_seed"):
        record.pop(key, None)  # the runner records them from the cell and the dataset
    if record.get("rules") is None:
        record.pop("rules", None)
    return record


def run_shallow(
    cell: Cell, dataset: Dataset, evaluation: dict, paper: str | None = None
) -> dict[str, Any]:
    from hashlearn.evaluation import evaluate_method

    record = evaluate_method(
        cell.method,
        dataset,
        cell.bits,
        seed=cell.seed,
        params=dict(cell.options),
        **_options(evaluation, dataset, paper),
    )
    return _strip(record)


def run_deep(
    cell: Cell,
    dataset: Dataset,
    evaluation: dict,
    runs_dir: Path,
    progress: bool,
    paper: str | None = None,
) -> dict[str, Any]:
    from hashlearn.deep import TrainConfig, train_on_dataset
    from hashlearn.evaluation import evaluate_encoder

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
    record = evaluate_encoder(
        hasher,
        dataset,
        method=cell.method,
        n_bits=cell.bits,
        seed=cell.seed,
        field=field,
        fit_s=fit_s,
        **_options(evaluation, dataset, paper),
    )
    record = _strip(record)
    result = json.loads((run_dir / "result.json").read_text())
    record["training"] = {
        "status": result.get("status"),
        "best_epoch": result.get("best_epoch"),
        "history": [
            {k: v for k, v in epoch.items() if k != "lr"} for epoch in result.get("history", [])
        ],
    }
    if cell.keep_embeddings:
        query = getattr(dataset.query, field)
        n = min(cell.keep_embeddings, len(query))
        rows = np.sort(np.random.default_rng(cell.seed).permutation(len(query))[:n])
        z = hasher.embed(query[rows])
        record["embeddings"] = {
            "z": np.round(z, 4).tolist(),
            "y": np.asarray(dataset.query.y[rows]).tolist(),
        }
        record["query_code_statistics"] = code_statistics(hasher.embed(query))
    return record
