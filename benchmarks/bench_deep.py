"""Deep hashing benchmark on Fashion-MNIST (hashing protocol: 5,000 train, 1,000 val, 1,000
query, 68,000 database; mAP@all with stable Hamming ties).

1. Grid: loss × bits × quantization (none / penalty / HSWD / two-stage H²Q / two-stage ITQ),
   mean ± std over seeds, on an MLP head over frozen features of the ImageNet-pretrained
   EfficientNet-Lite0 (the papers fine-tune ImageNet-pretrained networks; the features are
   extracted once and cached on disk). ``none``, ``h2q`` and ``itq`` share one network, trained
   as the H²Q authors do (λ = 0, no tanh on the hash layer): ``none`` is the sign of its
   embeddings, ``h2q`` / ``itq`` the sign after the rotation fitted on its training embeddings
   (H²Q: L2 loss, fast solver; ITQ: 50 iterations) — paired comparisons. ``penalty`` and
   ``hswd`` are separate runs with the loss's own activation.
2. A few end-to-end small-CNN rows (same columns, fewer epochs).
3. Seconds per epoch of HSWD vs SWD (10,000 projections), same run, both backbones.
4. Training throughput (items/s) and peak memory (RSS of a fresh process) per backbone.

Claims checked (from the H²Q and HSWD papers): H²Q ≥ λ = 0 sign codes for every
rotation-invariant loss, H²Q ≥ ITQ, HSWD > the method's own penalty. Differences are paired
(same seed, same split) and reported as mean ± std over seeds.

What the columns mean in our factorisation (read before judging a claim):

* HSWD/SWD act on the hash layer's pre-activation output (as the HSWD authors' code), the
  method's penalty on the codes its loss sees, each with its default weight (α = 0.1; λ from
  the loss class). HashNet's ``penalty`` is its continuation (tanh(β a), β raised every 200
  iterations), not an added term.
* DPSH and DSDH pair every batch with the latest outputs of all training items (a memory).
* GreedyHash (signs through a straight-through estimator) and CSQ (fixed per-bit hash centres)
  are not rotation-invariant, H²Q's premise: a rotation changes bits those losses optimised.
* ``--threads`` (default 1) sets torch and numba threads: on cores shared with other jobs two
  OpenMP threads made the MLP's small products 20-60× slower by busy-waiting.
* ``--device`` trains (and extracts features) on a GPU when one is available.

    python benchmarks/bench_deep.py --quick      # smoke run: subsampled splits, a few rows
    python benchmarks/bench_deep.py              # full grid (3 seeds)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _timing import time_quantization_terms
from hashlearn.codes import pack
from hashlearn.data import load_dataset
from hashlearn.deep import TrainConfig, Trainer
from hashlearn.deep.backbones import build_backbone
from hashlearn.deep.features import extract_features
from hashlearn.deep.two_stage import build_rotation, fit_rotation
from hashlearn.metrics import mean_average_precision

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
CACHE = RESULTS / "cache"
LOSSES = ("dpsh", "hashnet", "dch", "csq", "dsdh", "greedyhash", "cel", "dsh")
QUANTS = ("none", "penalty", "hswd", "h2q", "itq")
# Paired differences reported for each row: (label, minuend, subtrahend).
CLAIMS = (("h2q-none", "h2q", "none"), ("h2q-itq", "h2q", "itq"), ("hswd-pen", "hswd", "penalty"))
SPLITS = ("train", "val", "query", "database")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_splits(limit: int | None, seed: int = 0) -> tuple[dict, dict, str]:
    """Images and labels of every split (``limit``: a seeded subset of each, for smoke runs)."""
    ds = load_dataset("fashion-mnist", progress=False)
    images, labels = {}, {}
    rng = np.random.default_rng(seed)
    for name in SPLITS:
        split = getattr(ds, name)
        idx = np.arange(len(split))
        if limit is not None and len(idx) > limit:
            idx = np.sort(rng.permutation(len(idx))[:limit])
        images[name], labels[name] = split.images[idx], split.y[idx]
    tag = "full" if limit is None else f"limit{limit}"
    return images, labels, tag


def pretrained_features(images: dict, tag: str, device: str) -> dict[str, np.ndarray]:
    """Frozen ImageNet EfficientNet-Lite0 features (1280-d) of every split, cached on disk."""
    CACHE.mkdir(parents=True, exist_ok=True)
    net = build_backbone("efficientnet-lite0").eval()
    net.image_size = 224  # 28-px Fashion-MNIST upsampled to the network's resolution, as before
    if device != "cpu" and torch.cuda.is_available():
        net.to("cuda")
    out = {}
    for name, arr in images.items():
        start = time.perf_counter()
        out[name] = extract_features(
            net, arr, cache=CACHE / f"fmnist-effnetlite0-{tag}-{name}.npz", batch_size=128
        )
        log(f"features {name}: {out[name].shape} in {time.perf_counter() - start:.1f}s")
    return out


def train(cfg: TrainConfig, data: dict, labels: dict) -> tuple:
    trainer = Trainer(cfg, progress=False)
    hasher = trainer.fit(data["train"], labels["train"], data["val"], labels["val"], n_classes=10)
    return trainer, hasher


def _map(zq: np.ndarray, zdb: np.ndarray, labels: dict) -> float:
    return float(mean_average_precision(pack(zq), pack(zdb), labels["query"], labels["database"]))


def score_two_stage(hasher, data: dict, labels: dict, seed: int) -> dict[str, float]:
    """``none``, ``h2q`` and ``itq`` of one λ = 0 network: plain signs, signs after its fitted
    H²Q rotation, signs after an ITQ rotation fitted on the same training embeddings."""
    zq, zdb = hasher.embed(data["query"]), hasher.embed(data["database"])
    itq, _ = fit_rotation(
        build_rotation("itq", zq.shape[1], loss="l2", solver="fast", seed=seed),
        hasher.embed(data["train"]),
        seed,
    )
    return {
        "none": _map(zq, zdb, labels),
        "h2q": _map(hasher.h2q.transform(zq), hasher.h2q.transform(zdb), labels),
        "itq": _map(itq.transform(zq), itq.transform(zdb), labels),
    }


def grid(data, labels, losses, bits_list, seeds, epochs, backbone, device) -> list[dict]:
    """One row per (loss, bits, seed, quantization); three trainings per (loss, bits, seed)."""
    rows = []
    for loss in losses:
        for bits in bits_list:
            for seed in seeds:
                for quant in ("h2q", "penalty", "hswd"):
                    cfg = TrainConfig(loss=loss, n_bits=bits, quantization=quant,
                                      backbone=backbone, epochs=epochs, batch_size=128, lr=1e-3,
                                      patience=0, seed=seed, device=device)  # fmt: skip
                    start = time.perf_counter()
                    trainer, hasher = train(cfg, data, labels)
                    seconds = time.perf_counter() - start
                    if quant == "h2q":
                        maps = score_two_stage(hasher, data, labels, seed)
                    else:
                        zq, zdb = hasher.embed(data["query"]), hasher.embed(data["database"])
                        maps = {quant: _map(zq, zdb, labels)}
                    best = max(trainer.history, key=lambda h: h["val_map"])["epoch"]
                    for name, m in maps.items():
                        rows.append({"backbone": backbone, "loss": loss, "bits": bits,
                                     "quantization": name, "seed": seed, "map": m,
                                     "best_epoch": best, "train_s": seconds})  # fmt: skip
                    log(f"{backbone} {loss:10s} {bits:2d} {quant:7s} seed {seed}: "
                        + ", ".join(f"{k}={v:.4f}" for k, v in maps.items())
                        + f" ({seconds:.1f}s)")  # fmt: skip
    return rows


def summarise(rows) -> list[dict]:
    """Per (backbone, loss, bits): mean, std and count of each column, and of the paired
    (same-seed) differences in :data:`CLAIMS`."""
    out = []
    keys = sorted(
        {(r["backbone"], r["loss"], r["bits"]) for r in rows},
        key=lambda k: (k[0], LOSSES.index(k[1]), k[2]),
    )
    for key in keys:
        by_quant: dict[str, dict[int, float]] = {}
        for r in rows:
            if (r["backbone"], r["loss"], r["bits"]) == key:
                by_quant.setdefault(r["quantization"], {})[r["seed"]] = r["map"]
        entry = {"backbone": key[0], "loss": key[1], "bits": key[2]}
        for q, vals in by_quant.items():
            v = list(vals.values())
            entry[q] = (float(np.mean(v)), float(np.std(v)), len(v))
        for label, a, b in CLAIMS:
            seeds = sorted(set(by_quant.get(a, {})) & set(by_quant.get(b, {})))
            if seeds:
                d = [by_quant[a][s] - by_quant[b][s] for s in seeds]
                entry[label] = (float(np.mean(d)), float(np.std(d)), len(d))
        out.append(entry)
    return out


def print_table(summary, title) -> None:
    """Rows of mean±std mAP, then the paired differences (mean±std over seeds)."""
    print(f"\n{title}")
    labels = [c[0] for c in CLAIMS]
    print(f"{'backbone':8s} {'loss':10s} {'bits':>4s} "
          + " ".join(f"{q:>15s}" for q in (*QUANTS, *labels)))  # fmt: skip
    for e in summary:
        cells = [
            (f"{e[q][0]:+.4f}±{e[q][1]:.4f}" if q in labels else f"{e[q][0]:.4f}±{e[q][1]:.4f}")
            if q in e
            else "-"
            for q in (*QUANTS, *labels)
        ]
        print(f"{e['backbone']:8s} {e['loss']:10s} {e['bits']:4d} "
              + " ".join(f"{c:>15s}" for c in cells))  # fmt: skip


def claim_lines(summary) -> list[str]:
    """How often each claim holds (means), and where it fails and by how much."""
    from hashlearn.deep.losses import get_loss

    invariant = {
        e["loss"] for e in summary if get_loss(e["loss"], 16, 10, n_train=2).rotation_invariant
    }
    lines = []
    for label, _, _ in CLAIMS:
        rows = [e for e in summary if label in e]
        if label == "h2q-none":
            rows = [e for e in rows if e["loss"] in invariant]
        fails = [f"{e['loss']}-{e['bits']} ({e[label][0]:+.4f})" for e in rows if e[label][0] < 0]
        held = len(rows) - len(fails)
        lines.append(f"{label} >= 0 in {held}/{len(rows)}; fails: {', '.join(fails) or 'none'}")
    return lines


def hswd_vs_swd(data: dict, images: dict, labels: dict, epochs: int) -> dict:
    """Seconds per epoch of the same training with HSWD and with SWD (10,000 projections).

    On a shared machine other processes only ever add time, so next to the median epoch the
    fastest epoch is reported too; plus the quantization term alone (forward + backward on a
    batch of 128 × 32 random codes), which isolates what the paper compares.
    """
    out = {}
    for backbone in ("mlp", "cnn"):
        inputs = data if backbone == "mlp" else images
        for quant in ("hswd", "swd"):
            cfg = TrainConfig(
                loss="dpsh",
                n_bits=32,
                quantization=quant,
                backbone=backbone,
                epochs=epochs,
                n_projections=10000,
                patience=0,
            )
            trainer, _ = train(cfg, inputs, labels)
            seconds = [h["seconds"] for h in trainer.history]
            out[f"{backbone}/{quant}"] = float(np.median(seconds))
            out[f"{backbone}/{quant}_min"] = float(np.min(seconds))
        for suffix in ("", "_min"):
            out[f"{backbone}/hswd_faster_pct{suffix}"] = 100 * (
                1 - out[f"{backbone}/hswd{suffix}"] / out[f"{backbone}/swd{suffix}"]
            )
    term = time_quantization_terms(("hswd", "swd"), batch_size=128, n_bits=32, n_batches=20)
    out["term_only/hswd"], out["term_only/swd"] = term["hswd"], term["swd"]
    out["term_only/hswd_faster_pct"] = 100 * (1 - term["hswd"] / term["swd"])
    return out


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _release_free_memory() -> None:
    """glibc ``malloc_trim(0)``: return freed heap pages to the OS (no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def set_threads(n: int) -> None:
    """Same thread count for torch and for numba (hashlearn.metrics): numba's OpenMP layer
    otherwise resets the OpenMP count torch shares to the number of cores."""
    import numba

    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def measure_backbone(backbone: str, epochs: int, threads: int, limit: int | None) -> dict:
    """Run in a fresh process: training throughput, and the peak RSS while training.

    The peak-RSS counter is reset (Linux ``/proc/self/clear_refs``) after the data are loaded
    and the freed heap is trimmed, so the growth is the memory of training, not of reading the
    images (the arrays themselves stay resident and are in the baseline).
    """
    set_threads(threads)
    images, labels, tag = load_splits(limit)
    data = pretrained_features(images, tag, "cpu") if backbone == "mlp" else images
    _release_free_memory()  # give loading's freed buffers back, or training reuses them unseen
    baseline = _rss_mb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    cfg = TrainConfig(loss="dpsh", n_bits=32, quantization="hswd", backbone=backbone,
                      epochs=epochs, patience=0, device="cpu")  # fmt: skip
    trainer, _ = train(cfg, data, labels)
    seconds = float(np.mean([h["seconds"] for h in trainer.history]))
    peak = _rss_mb("VmHWM")
    n_items = (len(labels["train"]) // 128) * 128
    return {
        "backbone": backbone,
        "peak_reset": reset,
        "items_per_s": n_items / seconds,
        "epoch_s": seconds,
        "rss_before_mb": baseline,
        "peak_rss_mb": peak,
        "rss_growth_mb": peak - baseline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None,
                        help="seeded subset of at most this many items per split")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu or cuda (training and features)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch/numba threads (default 1: on cores shared with other jobs, 2 OpenMP "
        "threads made the MLP's small matrix products 20-60x slower by busy-waiting)",
    )
    parser.add_argument("--_measure", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quick = args.quick
    limit = args.limit if args.limit is not None else (600 if quick else None)
    if args._measure:
        print(json.dumps(measure_backbone(args._measure, 2, args.threads, limit)))
        return
    seeds = list(range(args.seeds or (1 if quick else 3)))
    epochs = args.epochs or (2 if quick else 12)
    bits_list = (16,) if quick else (16, 32, 64)
    losses = ("dpsh", "cel", "hashnet") if quick else LOSSES
    set_threads(args.threads)
    load_start = os.getloadavg()
    total = time.perf_counter()
    images, labels, tag = load_splits(limit)
    start = time.perf_counter()
    data = pretrained_features(images, tag, args.device)
    feature_s = time.perf_counter() - start
    start = time.perf_counter()
    rows = grid(data, labels, losses, bits_list, seeds, epochs, "mlp", args.device)
    grid_s = time.perf_counter() - start
    e2e_losses = ("dpsh", "cel") if quick else ("dpsh", "hashnet", "cel", "dsh", "greedyhash")
    start = time.perf_counter()
    e2e = grid(images, labels, e2e_losses, (32,), [0], 1 if quick else 5, "cnn", args.device)
    e2e_s = time.perf_counter() - start
    timing = hswd_vs_swd(data, images, labels, epochs=1 if quick else 3)
    resources = [
        json.loads(
            subprocess.run(
                [sys.executable, __file__, "--_measure", b, "--threads", str(args.threads),
                 *(["--limit", str(limit)] if limit is not None else [])],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for b in ("mlp", "cnn")
    ]  # fmt: skip
    elapsed = time.perf_counter() - total
    load_end = os.getloadavg()

    frozen_summary, e2e_summary = summarise(rows), summarise(e2e)
    print(
        f"Fashion-MNIST hashing protocol{'' if limit is None else f' (<= {limit} per split)'}, "
        f"mAP@all (mean±std over {len(seeds)} seed(s)), {epochs} epochs, torch threads="
        f"{args.threads}; load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end"
    )
    print_table(frozen_summary, "Frozen EfficientNet-Lite0 (ImageNet) features + MLP head")
    print_table(e2e_summary, "End-to-end small CNN (1 seed)")
    for name, summ in (("frozen", frozen_summary), ("cnn", e2e_summary)):
        for line in claim_lines(summ):
            print(f"{name}: {line}")
    print(
        "\nSeconds per epoch, DPSH 32 bits, HSWD vs SWD (10,000 projections), same run "
        "(median / fastest epoch):"
    )
    for b in ("mlp", "cnn"):
        print(
            f"  {b}: HSWD {timing[b + '/hswd']:.3f}/{timing[b + '/hswd_min']:.3f}s  "
            f"SWD {timing[b + '/swd']:.3f}/{timing[b + '/swd_min']:.3f}s  HSWD faster by "
            f"{timing[b + '/hswd_faster_pct']:.1f}%/{timing[b + '/hswd_faster_pct_min']:.1f}% "
            "(paper: 37-41%)"
        )
    print(
        f"  term only (128x32 batch, fwd+bwd): HSWD {1e3 * timing['term_only/hswd']:.2f} ms  "
        f"SWD {1e3 * timing['term_only/swd']:.2f} ms  "
        f"HSWD faster by {timing['term_only/hswd_faster_pct']:.1f}%"
    )
    print("\nTraining throughput and memory (fresh process each, 2 epochs, batch 128):")
    for r in resources:
        print(
            f"  {r['backbone']:4s}: {r['items_per_s']:8.0f} items/s  epoch {r['epoch_s']:.2f}s  "
            f"peak RSS {r['peak_rss_mb']:.0f} MB (+{r['rss_growth_mb']:.0f} MB in training)"
        )
    print(f"\nfeatures {feature_s:.0f}s, frozen grid {grid_s:.0f}s ({len(rows)} rows), "
          f"end-to-end {e2e_s:.0f}s, total {elapsed:.0f}s")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out = {
        "quick": quick,
        "limit": limit,
        "seeds": seeds,
        "epochs": epochs,
        "rows": rows,
        "e2e_rows": e2e,
        "frozen_summary": frozen_summary,
        "e2e_summary": e2e_summary,
        "hswd_vs_swd": timing,
        "resources": resources,
        "seconds": {"features": feature_s, "grid": grid_s, "e2e": e2e_s, "total": elapsed},
        "threads": args.threads,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
    }
    name = "bench_deep_quick.json" if quick else "bench_deep.json"
    (RESULTS / name).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
