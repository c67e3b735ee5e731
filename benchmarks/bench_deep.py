"""Deep hashing benchmark on Fashion-MNIST (hashing protocol: 5,000 train, 1,000 val, 1,000
query, 68,000 database; mAP@all with stable Hamming ties).

1. Grid: loss × bits × quantization (none / penalty / HSWD / two-stage H²Q), mean ± std over
   seeds, on an MLP head over frozen features. The features come from the small CNN trained
   briefly with a softmax classifier on the *training split only* and cached on disk.
   ``none`` and ``h2q`` share one network (two-stage H²Q trains with λ = 0): ``none`` is the
   sign of its embeddings, ``h2q`` the sign after the fitted rotation — a paired comparison.
2. A few end-to-end CNN rows (same losses, fewer epochs) to check the ranking of methods.
3. Seconds per epoch of HSWD vs SWD (10,000 projections), same run, both backbones.
4. Training throughput (items/s) and peak memory (RSS of a fresh process) per backbone.

Claims checked (REFERENCE.md): HSWD beats the method's own penalty; H²Q beats λ = 0 sign
codes and is never worse.

What the columns mean in our factorisation (read before judging a claim):

* HSWD/SWD act on the hash layer's pre-activation output (as the HSWD authors' code), the
  method's penalty on the codes its loss sees, each with its default weight (α = 0.1; λ from
  the loss class: DPSH 0.1, GreedyHash 0.1, DCH 0.1, CSQ 1e-4, DSDH 0.1, HashNet 0).
* HashNet binarises by continuation, which is not implemented, so its ``penalty`` column is
  λ = 0 (identical to ``none``).
* DSDH's classification term only reaches the network through its penalty (pull towards the
  B codes), so DSDH ``none``/``h2q``/``hswd`` are bit-identical to DPSH's.
* GreedyHash's loss classifies the *signs* of the codes (straight-through estimator) also at
  λ = 0, and CSQ's is a per-bit cross-entropy to fixed hash centres: neither is invariant under
  rotations, which is H²Q's premise, so a rotation changes bits those losses had optimised.
* H²Q (L2 loss, fast solver) is fitted on the training split's embeddings (model selection uses
  the val split; the query split is never seen) and rotates the very vectors whose signs are
  the ``none`` codes of the same network (a paired comparison).
* ``--threads`` (default 1) sets torch and numba threads: on cores shared with other jobs two
  OpenMP threads made the MLP's small products 20-60× slower by busy-waiting.

    python benchmarks/bench_deep.py --quick      # smoke run, a couple of minutes
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

from hashlearn.codes import pack
from hashlearn.data import load_dataset
from hashlearn.deep import TrainConfig, Trainer
from hashlearn.deep.backbones import SmallCNN
from hashlearn.deep.features import extract_features, pretrain_classifier
from hashlearn.deep.runs import load_tensors, save_tensors
from hashlearn.metrics import mean_average_precision

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
CACHE = RESULTS / "cache"
LOSSES = ("dpsh", "hashnet", "dch", "csq", "dsdh", "greedyhash")
QUANTS = ("none", "penalty", "hswd", "h2q")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def frozen_features(ds, epochs: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Small-CNN features of every split; the CNN is trained on the train split only."""
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    cnn = SmallCNN(width=16, out_features=128)
    weights = CACHE / f"fmnist-cnn-e{epochs}-s{seed}.safetensors"
    mean, std = float(ds.train.images.mean() / 255), float(ds.train.images.std() / 255)
    if weights.is_file():
        cnn.load_state_dict(load_tensors(weights))
    else:
        start = time.perf_counter()
        pretrain_classifier(
            cnn,
            ds.train.images,
            ds.train.y,
            n_classes=ds.n_classes,
            epochs=epochs,
            seed=seed,
            mean=mean,
            std=std,
        )
        log(f"feature CNN trained on train split in {time.perf_counter() - start:.1f}s")
        save_tensors(weights, cnn.state_dict())
    cnn.eval()
    return {
        name: extract_features(
            cnn,
            split.images,
            mean=mean,
            std=std,
            cache=CACHE / f"fmnist-feat-e{epochs}-s{seed}-{name}.npz",
        )
        for name, split in ds.splits().items()
    }


def score(hasher, Xq, Xdb, ds, names: tuple[str, ...]) -> dict[str, float]:
    """mAP@all of each name's codes; the query/database are embedded once.

    ``none``: plain signs of the network's embeddings; ``h2q``: signs after the fitted H²Q
    rotation of the *same* embeddings (``DeepHasher.encode`` does exactly this); any other
    name: plain signs.
    """
    zq, zdb = hasher.embed(Xq), hasher.embed(Xdb)
    out = {}
    for name in names:
        if name == "h2q":
            q, db = pack(hasher.h2q.transform(zq)), pack(hasher.h2q.transform(zdb))
        else:
            q, db = pack(zq), pack(zdb)
        out[name] = float(mean_average_precision(q, db, ds.query.y, ds.database.y))
    return out


def train(cfg: TrainConfig, data: dict, ds) -> tuple:
    trainer = Trainer(cfg, progress=False)
    hasher = trainer.fit(data["train"], ds.train.y, data["val"], ds.val.y, n_classes=10)
    return trainer, hasher


def grid(ds, data, losses, bits_list, seeds, epochs, field="features") -> list[dict]:
    rows = []
    for loss in losses:
        for bits in bits_list:
            for quant in ("penalty", "hswd", "h2q"):
                for seed in seeds:
                    cfg = TrainConfig(
                        loss=loss,
                        n_bits=bits,
                        quantization=quant,
                        backbone="mlp" if field == "features" else "cnn",
                        epochs=epochs,
                        batch_size=128,
                        lr=1e-3,
                        patience=0,
                        seed=seed,
                    )
                    start = time.perf_counter()
                    trainer, hasher = train(cfg, data, ds)
                    seconds = time.perf_counter() - start
                    names = ("none", "h2q") if quant == "h2q" else (quant,)
                    maps = score(hasher, data["query"], data["database"], ds, names)
                    for name, m in maps.items():
                        rows.append(
                            {
                                "backbone": cfg.backbone,
                                "loss": loss,
                                "bits": bits,
                                "quantization": name,
                                "seed": seed,
                                "map": m,
                                "best_epoch": max(trainer.history, key=lambda h: h["val_map"])[
                                    "epoch"
                                ],
                                "train_s": seconds,
                            }
                        )
                    log(
                        f"{cfg.backbone} {loss:10s} {bits:2d} {quant:7s} seed {seed}: "
                        + ", ".join(
                            f"{r['quantization']}={r['map']:.4f}" for r in rows[-len(names) :]
                        )
                        + f" ({seconds:.1f}s)"
                    )
    return rows


def summarise(rows, quants=QUANTS) -> list[dict]:
    out = []
    keys = sorted(
        {(r["backbone"], r["loss"], r["bits"]) for r in rows},
        key=lambda k: (k[0], LOSSES.index(k[1]), k[2]),
    )
    for backbone, loss, bits in keys:
        entry = {"backbone": backbone, "loss": loss, "bits": bits}
        for q in quants:
            vals = [
                r["map"]
                for r in rows
                if (r["backbone"], r["loss"], r["bits"], r["quantization"])
                == (backbone, loss, bits, q)
            ]
            if vals:
                entry[q] = (float(np.mean(vals)), float(np.std(vals)), len(vals))
        out.append(entry)
    return out


def print_table(summary, title) -> None:
    """Rows of mean±std mAP; the last columns are the two claims as differences of means."""
    print(f"\n{title}")
    print(
        f"{'backbone':8s} {'loss':10s} {'bits':>4s} "
        + " ".join(f"{q:>15s}" for q in QUANTS)
        + "  hswd-pen  h2q-none"
    )
    for e in summary:
        cells = [f"{e[q][0]:.4f}±{e[q][1]:.4f}" if q in e else "-" for q in QUANTS]
        print(
            f"{e['backbone']:8s} {e['loss']:10s} {e['bits']:4d} "
            + " ".join(f"{c:>15s}" for c in cells)
            + f"  {e['hswd'][0] - e['penalty'][0]:+8.4f}  {e['h2q'][0] - e['none'][0]:+8.4f}"
        )


def hswd_vs_swd(ds, data, epochs: int, cnn: bool) -> dict:
    """Seconds per epoch of the same training with HSWD and with SWD (10,000 projections).

    On a shared machine other processes only ever add time, so next to the median epoch the
    fastest epoch is reported too; plus the quantization term alone (forward + backward on a
    batch of 128 × 32 random codes), which isolates what the paper compares.
    """
    from hashlearn.deep.quantization import time_quantization_terms

    out = {}
    for backbone in ("mlp", "cnn") if cnn else ("mlp",):
        inputs = data if backbone == "mlp" else {n: s.images for n, s in ds.splits().items()}
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
            trainer, _ = train(cfg, inputs, ds)
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


def measure_backbone(backbone: str, epochs: int, threads: int) -> dict:
    """Run in a fresh process: training throughput, and the peak RSS while training.

    The peak-RSS counter is reset (Linux ``/proc/self/clear_refs``) after the data are loaded
    and the freed heap is trimmed, so the growth is the memory of training, not of reading the
    70,000 images (the arrays themselves stay resident and are in the baseline).
    """
    set_threads(threads)
    ds = load_dataset("fashion-mnist", progress=False)
    if backbone == "mlp":
        data = frozen_features(ds, epochs=3)
    else:
        data = {n: s.images for n, s in ds.splits().items()}
    _release_free_memory()  # give loading's freed buffers back, or training reuses them unseen
    baseline = _rss_mb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    cfg = TrainConfig(
        loss="dpsh", n_bits=32, quantization="hswd", backbone=backbone, epochs=epochs, patience=0
    )
    trainer, _ = train(cfg, data, ds)
    seconds = float(np.mean([h["seconds"] for h in trainer.history]))
    peak = _rss_mb("VmHWM")
    n_items = (len(ds.train) // 128) * 128
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
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch/numba threads (default 1: on cores shared with other jobs, 2 OpenMP "
        "threads made the MLP's small matrix products 20-60x slower by busy-waiting)",
    )
    parser.add_argument("--_measure", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._measure:
        print(json.dumps(measure_backbone(args._measure, epochs=2, threads=args.threads)))
        return
    quick = args.quick
    seeds = list(range(args.seeds or (1 if quick else 3)))
    epochs = args.epochs or (4 if quick else 12)
    bits_list = (16, 32) if quick else (16, 32, 64)
    losses = ("dpsh", "csq", "greedyhash") if quick else LOSSES
    set_threads(args.threads)
    load_start = os.getloadavg()
    total = time.perf_counter()
    ds = load_dataset("fashion-mnist", progress=False)
    data = frozen_features(ds, epochs=3)
    rows = grid(ds, data, losses, bits_list, seeds, epochs)
    e2e_losses = ("dpsh", "csq") if quick else ("dpsh", "hashnet", "csq", "greedyhash")
    images = {n: s.images for n, s in ds.splits().items()}
    e2e = grid(ds, images, e2e_losses, (32,), [0], 2 if quick else 5, field="images")
    timing = hswd_vs_swd(ds, data, epochs=3, cnn=True)
    resources = [
        json.loads(
            subprocess.run(
                [sys.executable, __file__, "--_measure", b, "--threads", str(args.threads)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for b in ("mlp", "cnn")
    ]
    elapsed = time.perf_counter() - total
    load_end = os.getloadavg()

    frozen_summary, e2e_summary = summarise(rows), summarise(e2e)
    print(
        f"Fashion-MNIST hashing protocol, mAP@all (mean±std over {len(seeds)} seed(s)), "
        f"{epochs} epochs, torch threads={args.threads}; busy shared machine (load average "
        f"{load_start[0]:.2f} at start, {load_end[0]:.2f} at end)"
    )
    print_table(frozen_summary, "Frozen small-CNN features + MLP head")
    print_table(e2e_summary, "End-to-end small CNN (1 seed)")
    for name, summ in (("frozen", frozen_summary), ("cnn", e2e_summary)):
        hswd_wins = sum(e["hswd"][0] > e["penalty"][0] for e in summ)
        h2q_ok = sum(e["h2q"][0] >= e["none"][0] for e in summ)
        h2q_worse = [f"{e['loss']}-{e['bits']}" for e in summ if e["h2q"][0] < e["none"][0]]
        hswd_worse = [f"{e['loss']}-{e['bits']}" for e in summ if e["hswd"][0] <= e["penalty"][0]]
        print(
            f"{name}: HSWD > penalty in {hswd_wins}/{len(summ)} (not: {', '.join(hswd_worse)}); "
            f"H2Q >= none in {h2q_ok}/{len(summ)} (worse: {', '.join(h2q_worse)})"
        )
    ranking = {
        name: [
            e["loss"]
            for e in sorted((e for e in summ if e["bits"] == 32), key=lambda e: -e["hswd"][0])
        ]
        for name, summ in (("frozen", frozen_summary), ("cnn", e2e_summary))
    }
    print(f"ranking at 32 bits (HSWD): frozen {ranking['frozen']} | cnn {ranking['cnn']}")
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
    print(f"\ntotal {elapsed:.0f}s")
    RESULTS.mkdir(exist_ok=True)
    out = {
        "quick": quick,
        "seeds": seeds,
        "epochs": epochs,
        "rows": rows,
        "e2e_rows": e2e,
        "frozen_summary": frozen_summary,
        "e2e_summary": e2e_summary,
        "ranking": ranking,
        "hswd_vs_swd": timing,
        "resources": resources,
        "seconds": elapsed,
        "threads": args.threads,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
    }
    (RESULTS / "bench_deep.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
