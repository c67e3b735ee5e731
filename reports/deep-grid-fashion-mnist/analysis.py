"""Tables and diagnostics of the deep grid (benchmarks/results/deep_fashion_mnist.md).

Run from the repository root after the grid (``hashlearn reproduce
configs/deep-grid-fashion-mnist.toml --output reports/deep-grid-fashion-mnist``)::

    OMP_NUM_THREADS=1 PYTHONPATH=src HASHLEARN_FEATURE_CACHE=... python \
        reports/deep-grid-fashion-mnist/analysis.py [--diagnostics]

Prints (markdown) the mAP table, the paired differences and, with ``--diagnostics``, what the
saved runs show: whether the two-stage cells trained the same network as the λ = 0 cell, how
far the λ = 0 embeddings are from centred, and the mAP of H²Q fitted on centred embeddings and
of ITQ without centring (a counterfactual on the same embeddings, not a change of the method).
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LOSSES = ["dpsh", "hashnet", "dch", "csq", "dsdh", "greedyhash", "cel", "dsh"]
INVARIANT = {"dpsh", "hashnet", "dch", "dsdh", "cel", "dsh"}
QUANTS = ["none", "penalty", "hswd", "h2q", "itq"]
PAIRS = [("h2q", "none"), ("h2q", "itq"), ("hswd", "penalty"), ("itq", "none")]


def load() -> list[dict]:
    return [json.loads(line) for line in (HERE / "results.jsonl").read_text().splitlines()]


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.4f}"


def tables(records: list[dict]) -> None:
    cell = {
        (r["label"], r["method"], r["quantization"], r["bits"], r["seed"]): r["map"]
        for r in records
    }
    for label in ("", "cnn"):
        rows = sorted(
            {(k[1], k[3]) for k in cell if k[0] == label}, key=lambda t: (LOSSES.index(t[0]), t[1])
        )
        quants = [q for q in QUANTS if any(k[0] == label and k[2] == q for k in cell)]
        print(f"\n### {'small CNN end to end' if label else 'frozen features + mlp head'}\n")
        print("| loss | bits | " + " | ".join(quants) + " |")
        print("|---|---|" + "---|" * len(quants))
        for loss, bits in rows:
            vals = [
                fmt([v for k, v in cell.items() if k[:4] == (label, loss, q, bits)]) for q in quants
            ]
            print(f"| {loss} | {bits} | " + " | ".join(vals) + " |")
        print(f"\n#### paired differences ({label or 'mlp'}; mean ± std over seeds, wins)\n")
        print("| loss | bits | " + " | ".join(f"{a} − {b}" for a, b in PAIRS) + " |")
        print("|---|---|" + "---|" * len(PAIRS))
        for loss, bits in rows:
            out = []
            for a, b in PAIRS:
                d = [
                    cell[(label, loss, a, bits, s)] - cell[(label, loss, b, bits, s)]
                    for s in (0, 1, 2)
                    if (label, loss, a, bits, s) in cell and (label, loss, b, bits, s) in cell
                ]
                out.append(f"{fmt(d)} ({sum(x > 0 for x in d)}/{len(d)})" if d else "-")
            print(f"| {loss} | {bits} | " + " | ".join(out) + " |")


def cosine_map(zq: np.ndarray, zdb: np.ndarray, yq: np.ndarray, ydb: np.ndarray) -> float:
    """mAP of ranking the database by the cosine of the continuous embeddings (no codes)."""
    unit = lambda z: z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)  # noqa: E731
    order = np.argsort(-(unit(zq) @ unit(zdb).T), axis=1, kind="stable")
    rel = (ydb[order] == yq[:, None]).astype(float)
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, rel.shape[1] + 1)
    return float(np.mean((rel * hits / ranks).sum(axis=1) / np.maximum(rel.sum(axis=1), 1)))


def quantization_error(z: np.ndarray) -> float:
    """H²Q's L2 loss: mean squared distance to the signs, rows rescaled to norm √k."""
    z = z * np.sqrt(z.shape[1]) / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return float(((z - np.where(z > 0, 1.0, -1.0)) ** 2).sum(axis=1).mean())


def slug(block: int, name: str, bits: int, seed: int) -> str:
    text = f"deep{block}-{name}-{bits}b-s{seed}-n0.0"
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in text)


def same_weights(a: Path, b: Path) -> bool:
    from hashlearn.deep.runs import load_tensors

    ta, tb = load_tensors(a / "model.safetensors"), load_tensors(b / "model.safetensors")
    net = [k for k in ta if not k.startswith("loss.")]
    return all(k in tb and ta[k].shape == tb[k].shape and bool((ta[k] == tb[k]).all()) for k in net)


def diagnostics(records: list[dict]) -> None:
    from hashlearn.codes import pack
    from hashlearn.deep.runs import load_run
    from hashlearn.metrics import mean_average_precision
    from hashlearn.quantize import H2Q, ITQ
    from hashlearn.reproduce.config import load_config
    from hashlearn.reproduce.data import DatasetCache

    config = load_config(HERE.parents[1] / "configs" / "deep-grid-fashion-mnist.toml")
    cache = Path(os.environ.get("HASHLEARN_FEATURE_CACHE", HERE / "features"))
    data = DatasetCache(cache, progress=False).base(config["dataset"])
    Xtr, Xq, Xdb = data.train.X, data.query.X, data.database.X
    yq, ydb = data.query.y, data.database.y
    runs = HERE / "runs"
    block = {r["method"]: r["block"] for r in records if r["label"] == ""}
    cell = {
        (r["method"], r["quantization"], r["bits"], r["seed"]): r["map"]
        for r in records
        if r["label"] == ""
    }

    def score(fit_z, zq, zdb) -> float:
        return float(mean_average_precision(pack(zq), pack(zdb), yq, ydb))

    stats = defaultdict(list)
    same = defaultdict(list)
    for loss in LOSSES:
        for bits in (16, 32, 64):
            for seed in (0, 1, 2):
                if any((loss, q, bits, seed) not in cell for q in ("none", "h2q", "itq")):
                    continue
                b = block[loss]
                d_h2q = runs / slug(b, f"{loss}+h2q", bits, seed)
                d_itq = runs / slug(b, f"{loss}+itq", bits, seed)
                d_none = runs / slug(b, f"{loss}+none", bits, seed)
                same[(loss, "h2q=itq")].append(same_weights(d_h2q, d_itq))
                same[(loss, "h2q=none")].append(same_weights(d_h2q, d_none))
                if loss == "dsdh" and "dpsh" in block:
                    dp = runs / slug(block["dpsh"], "dpsh+h2q", bits, seed)
                    same[("dsdh", "h2q=dpsh h2q")].append(same_weights(d_h2q, dp))
                hasher = load_run(d_h2q, device="cpu")
                ztr, zq, zdb = hasher.embed(Xtr), hasher.embed(Xq), hasher.embed(Xdb)
                mu = ztr.mean(axis=0)
                rms = np.sqrt((ztr**2).sum(axis=1).mean())
                offset = float(np.linalg.norm(mu) / rms)
                per_bit = float(np.mean(np.abs(mu) / (ztr.std(axis=0) + 1e-12)))
                imbalance = {
                    "sign": float(np.abs(np.sign(zdb).mean(axis=0)).mean()),
                    "h2q": float(np.abs(np.sign(hasher.h2q.transform(zdb)).mean(axis=0)).mean()),
                }
                itq = load_run(d_itq, device="cpu").h2q
                imbalance["itq"] = float(np.abs(np.sign(itq.transform(zdb)).mean(axis=0)).mean())
                h2q_c = H2Q(bits, random_state=seed).fit(ztr - mu)
                itq_u = ITQ(bits, center=False, random_state=seed).fit(ztr)
                refit = H2Q(bits, random_state=seed).fit(ztr)
                stats[(loss, bits)].append(
                    {
                        "offset": offset,
                        "per_bit": per_bit,
                        "imb_sign": imbalance["sign"],
                        "imb_h2q": imbalance["h2q"],
                        "imb_itq": imbalance["itq"],
                        "h2q": cell[(loss, "h2q", bits, seed)],
                        "h2q_refit": score(None, refit.transform(zq), refit.transform(zdb)),
                        "h2q_centred": score(
                            None, h2q_c.transform(zq - mu), h2q_c.transform(zdb - mu)
                        ),
                        "itq": cell[(loss, "itq", bits, seed)],
                        "itq_uncentred": score(None, itq_u.transform(zq), itq_u.transform(zdb)),
                        "sign": score(None, zq, zdb),
                        "cosine": cosine_map(zq, zdb, yq, ydb),
                        "qerr_sign": quantization_error(ztr),
                        "qerr_h2q": quantization_error(hasher.h2q.transform(ztr)),
                        "qerr_itq": quantization_error(itq.transform(ztr)),
                        "none": cell[(loss, "none", bits, seed)],
                    }
                )
    print("\n### same stage-1 network (bit-identical head weights), runs agreeing / compared\n")
    for (loss, what), flags in same.items():
        print(f"- {loss}: {what}: {sum(flags)}/{len(flags)}")
    keys = [
        "offset",
        "per_bit",
        "imb_sign",
        "imb_h2q",
        "imb_itq",
        "sign",
        "h2q",
        "h2q_refit",
        "h2q_centred",
        "itq",
        "itq_uncentred",
        "cosine",
        "qerr_sign",
        "qerr_h2q",
        "qerr_itq",
    ]
    print("\n### λ = 0 (stage-1) embeddings: centring and counterfactual quantizers\n")
    print("| loss | bits | " + " | ".join(keys) + " | centred h2q − h2q | h2q_c − itq |")
    print("|---|---|" + "---|" * (len(keys) + 2))
    for (loss, bits), rows in stats.items():
        vals = [fmt([r[k] for r in rows]) for k in keys]
        dc = fmt([r["h2q_centred"] - r["h2q"] for r in rows])
        di = fmt([r["h2q_centred"] - r["itq"] for r in rows])
        print(f"| {loss} | {bits} | " + " | ".join(vals) + f" | {dc} | {di} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diagnostics", action="store_true", help="also load the saved runs")
    args = parser.parse_args()
    records = load()
    tables(records)
    if args.diagnostics:
        diagnostics(records)
