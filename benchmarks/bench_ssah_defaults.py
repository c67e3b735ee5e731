"""Validation evidence for SSAH's defaults (issue 13): S ∈ {0, 1} or {−1, 1}, Cayley or SVD R-step.

Every number here comes from a validation split, never from a dataset's query split:

- digits (default protocol, split seed 0): models fit on the 500-item train split; the
  validation queries are 200 seeded database items outside the train split, searched against
  the rest of the database;
- fashion-mnist (hashing protocol, split seed 0): models fit on the 5,000-item train split;
  its 1,000-item ``val`` split is searched against a seeded 20,000-item sample of the database.

For each code length the table gives mAP@all (mean ± std over model seeds) and the number of
distinct training codes of the four default candidates, SDH as the reference, and two settings
with a heavier latent term (``lambda2`` = 1, with ``mu`` = 3 or 0.3) that keep the training
codes apart from the one-code-per-class solution, to show what that costs.

Usage: python benchmarks/bench_ssah_defaults.py [--quick] [--datasets digits fashion-mnist]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from hashlearn._io import write_json_atomic
from hashlearn.catalogue import make_method
from hashlearn.data import load_dataset
from hashlearn.metrics import mean_average_precision

CONFIGS = [
    ("ssah", {"dissimilar": -1.0, "r_step": "cayley"}),
    ("ssah", {"dissimilar": 0.0, "r_step": "cayley"}),
    ("ssah", {"dissimilar": -1.0, "r_step": "svd"}),
    ("ssah", {"dissimilar": 0.0, "r_step": "svd"}),
    ("sdh", {}),
    ("ssah", {"lambda2": 1.0}),
    ("ssah", {"lambda2": 1.0, "mu": 0.3}),
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def validation_split(name: str) -> dict:
    """Train, validation queries and their database (see the module docstring)."""
    rng = np.random.default_rng(123)
    if name == "digits":
        ds = load_dataset("digits", progress=False)
        outside = np.flatnonzero(~np.isin(ds.database.indices, ds.train.indices))
        val = np.sort(rng.choice(outside, 200, replace=False))
        rest = np.setdiff1d(np.arange(len(ds.database.y)), val)
        Xq, yq = ds.database.X[val], ds.database.y[val]
        Xdb, ydb = ds.database.X[rest], ds.database.y[rest]
        anchors = 300
    else:
        ds = load_dataset(name, progress=False)
        db = np.sort(rng.choice(len(ds.database.y), 20000, replace=False))
        Xq, yq = ds.val.X, ds.val.y
        Xdb, ydb = ds.database.X[db], ds.database.y[db]
        anchors = 1000
    return {"Xtr": ds.train.X, "ytr": ds.train.y, "Xq": Xq, "yq": yq, "Xdb": Xdb, "ydb": ydb,
            "anchors": anchors}  # fmt: skip


def label(name: str, params: dict) -> str:
    return name + "".join(f" {k}={v}" for k, v in params.items())


def run(dataset: str, bits_list: list[int], seeds: list[int]) -> list[dict]:
    data = validation_split(dataset)
    rows = []
    for n_bits in bits_list:
        for name, params in CONFIGS:
            maps, n_codes, start = [], [], time.perf_counter()
            for seed in seeds:
                model = make_method(
                    name, n_bits=n_bits, n_anchors=data["anchors"], random_state=seed, **params
                ).fit(data["Xtr"], data["ytr"])
                q, db = model.encode(data["Xq"]), model.encode(data["Xdb"])
                maps.append(float(mean_average_precision(q, db, data["yq"], data["ydb"])))
                codes = getattr(model, "train_codes_", None)
                n_codes.append(None if codes is None else len(np.unique(codes, axis=0)))
            row = {
                "dataset": dataset,
                "n_bits": n_bits,
                "config": label(name, params),
                "map": float(np.mean(maps)),
                "map_std": float(np.std(maps)),
                "maps": maps,
                "distinct_train_codes": n_codes,
                "seconds_per_fit": (time.perf_counter() - start) / len(seeds),
            }
            rows.append(row)
            log(f"{dataset} {n_bits:3d} {row['config']:38s} {row['map']:.4f}±{row['map_std']:.4f}")
    return rows


def print_table(rows: list[dict]) -> None:
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        at = [r for r in rows if r["dataset"] == dataset]
        print(f"\n## {dataset}: validation mAP@all (mean ± std over seeds), distinct train codes")
        bits = sorted({r["n_bits"] for r in at})
        print(f"{'config':38s}" + "".join(f" {b:>19d}" for b in bits) + f" {'mean':>7s}")
        for config in dict.fromkeys(r["config"] for r in at):
            cells, means = "", []
            for b in bits:
                r = next(x for x in at if x["config"] == config and x["n_bits"] == b)
                codes = [c for c in r["distinct_train_codes"] if c is not None]
                n = f"{np.mean(codes):5.0f}" if codes else "    -"
                cells += f" {r['map']:.4f}±{r['map_std']:.4f}{n}"
                means.append(r["map"])
            print(f"{config:38s}{cells} {np.mean(means):7.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits only, 2 seeds")
    parser.add_argument("--datasets", nargs="+", default=["digits", "fashion-mnist"])
    parser.add_argument("--out", default="results/bench_ssah_defaults.json")
    args = parser.parse_args(argv)
    plan = {
        "digits": ([16, 32, 48, 64], [0, 1] if args.quick else [0, 1, 2, 3, 4]),
        "fashion-mnist": ([16, 32, 64, 128], [0, 1, 2]),
    }
    datasets = ["digits"] if args.quick else args.datasets
    start, load_before = time.perf_counter(), os.getloadavg()
    rows = []
    for dataset in datasets:
        bits, seeds = plan.get(dataset, plan["fashion-mnist"])
        rows += run(dataset, bits, seeds)
    print_table(rows)
    total = time.perf_counter() - start
    print(
        f"\nload average {tuple(round(x, 2) for x in load_before)} before, "
        f"{tuple(round(x, 2) for x in os.getloadavg())} after; total {total:.0f} s"
    )
    write_json_atomic(args.out, {"rows": rows, "total_s": total})
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
