"""Benchmark hashlearn.data: IDX reading, dataset loading and the stratified split mechanism.

Each row compares a hashlearn operation with a reference measured in the same run:

* ``read_idx`` (header/size checks + SHA-256 of the contents) vs the plain reader that ships
  with Fashion-MNIST (``gzip.open`` + ``np.frombuffer``, no checks);
* ``load_dataset`` (find, verify, read, split, gather features) vs that plain reader plus a
  float conversion of all 70,000 images, and ``digits`` vs ``sklearn.datasets.load_digits``;
* ``draw_splits`` (stratified query/val/train) vs ``sklearn.model_selection.train_test_split``
  with ``stratify=y`` for the query split only.

Usage: ``python benchmarks/bench_data.py [--quick]``; prints a table and writes
``results/bench_data.json``. Timings are best-of-``repeats`` wall-clock seconds.
"""

from __future__ import annotations

import argparse
import gzip
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hashlearn._io import write_json_atomic
from hashlearn.data import fashion_mnist as fm
from hashlearn.data import load_dataset, read_idx
from hashlearn.data.splits import allocate, draw_splits


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def plain_idx(path: Path, offset: int) -> np.ndarray:
    """The reference reader of the Fashion-MNIST repository (utils/mnist_reader.py)."""
    with gzip.open(path, "rb") as handle:
        return np.frombuffer(handle.read(), dtype=np.uint8, offset=offset)


def plain_fashion(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    images = np.concatenate(
        [plain_idx(folder / f"{s}-images-idx3-ubyte.gz", 16) for s in ("train", "t10k")]
    ).reshape(-1, 784)
    labels = np.concatenate(
        [plain_idx(folder / f"{s}-labels-idx1-ubyte.gz", 8) for s in ("train", "t10k")]
    )
    return images.astype(np.float32) / np.float32(255.0), labels


def sklearn_stratified(y: np.ndarray, n_query: int, seed: int) -> None:
    from sklearn.model_selection import train_test_split

    train_test_split(np.arange(len(y)), test_size=n_query, stratify=y, random_state=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    rows = []

    def add(task: str, ours: Callable, ref: Callable, ref_name: str) -> None:
        t_ours, t_ref = best_of(ours, repeats), best_of(ref, repeats)
        rows.append({"task": task, "hashlearn_s": t_ours, "reference": ref_name,
                     "reference_s": t_ref, "ratio": t_ours / t_ref})  # fmt: skip

    load_dataset("digits", progress=False)  # warm imports
    from sklearn.datasets import load_digits

    add("load_dataset digits", lambda: load_dataset("digits"), load_digits, "load_digits")
    folder = fm.locate()
    if folder is not None:
        folder = Path(folder)
        images = folder / "train-images-idx3-ubyte.gz"
        add("read_idx train-images (60k)", lambda: read_idx(images),
            lambda: plain_idx(images, 16), "mnist_reader")  # fmt: skip
        for protocol in ("hashing", "official"):
            add(f"load_dataset fashion-mnist {protocol}",
                lambda p=protocol: load_dataset("fashion-mnist", protocol=p, progress=False),
                lambda: plain_fashion(folder), "mnist_reader + float")  # fmt: skip
    else:
        print("fashion-mnist not found locally; skipping its rows")

    n, n_classes = (100_000, 100) if args.quick else (1_000_000, 100)
    rng = np.random.default_rng(0)
    y = rng.integers(0, n_classes, n)
    sizes = np.bincount(y, minlength=n_classes)
    n_query = n // 100
    query = allocate(n_query, sizes, sizes - 1)
    val = allocate(n_query, sizes - query, sizes - query - 1)
    train = allocate(n // 10, sizes - query - val)
    add(f"draw_splits {n:,} items, {n_classes} classes",
        lambda: draw_splits(y, np.random.default_rng(0), query=query, val=val, train=train),
        lambda: sklearn_stratified(y, n_query, 0), "train_test_split(stratify)")  # fmt: skip

    print(f"{'task':44s} {'hashlearn s':>12s} {'reference':>28s} {'ref s':>8s} {'ratio':>6s}")
    for r in rows:
        print(f"{r['task']:44s} {r['hashlearn_s']:12.3f} {r['reference']:>28s} "
              f"{r['reference_s']:8.3f} {r['ratio']:6.2f}")  # fmt: skip
    out = Path(__file__).resolve().parent.parent / "results" / "bench_data.json"
    out.parent.mkdir(exist_ok=True)
    meta = {"quick": args.quick, "repeats": repeats, "machine": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__}  # fmt: skip
    write_json_atomic(out, {"meta": meta, "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
