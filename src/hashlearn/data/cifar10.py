"""``cifar10``: 60,000 32×32 colour images in 10 classes (Krizhevsky, 2009).

Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", tech. report (2009);
https://www.cs.toronto.edu/~kriz/cifar.html. Both official archives are read:

* ``cifar-10-batches-bin/``: ``data_batch_1.bin`` … ``data_batch_5.bin``, ``test_batch.bin``,
  records of 1 label byte + 3,072 pixel bytes (the R, then G, then B plane, each 32 × 32
  row-major), and ``batches.meta.txt`` (class names, one a line);
* ``cifar-10-batches-py/``: ``data_batch_1`` … ``data_batch_5``, ``test_batch`` and
  ``batches.meta``, pickled dicts read with :mod:`hashlearn.data.safe_pickle` (anything but
  the format's own types is refused, never executed). These files are also checked against the
  per-file MD5s that torchvision publishes for the official archive.

The six batches are pooled (pool index ``i < 50000`` is training image ``i`` in batch order,
``50000 + j`` is test image ``j``); the official 50k/10k split is recorded in the manifest's
sources and is the ``official`` protocol. Images are uint8 ``(n, 32, 32, 3)`` and stay in
memory (180 MB); features are pixels / 255 (3,072 float32), computed per split on first use.

Protocols (seeded, stratified; REFERENCE.md "Evaluation conventions"):

* ``h2q`` (default): the H²Q authors' CIFAR-10 split (Lucas-Schwengber/h2q,
  ``src/data/process/CIFAR_10.py``) — per class 500 training, 100 query and 100 validation
  images (5,000 / 1,000 / 1,000), the database is the other 53,000 images (training images
  excluded); mAP@5000. The sizes are theirs; which images go where is our seeded draw (they
  shuffle with Python's ``random.seed(0)``). An earlier hashlearn split drew the training
  images from a 58,000-image database.
* ``hswd``: the HSWD paper's split (= DeepHash-pytorch's ``cifar10`` configuration) — 100 query
  and 500 training images per class, the training images held out of the database
  (1,000 / 5,000 / 54,000); mAP@all.
* ``official``: train = database = the 50,000 training images, query = the 10,000 test images.

Where the files are looked for: see :mod:`hashlearn.data.locate` (folders
``cifar-10-batches-bin`` then ``cifar-10-batches-py``). An official archive
(``cifar-10-binary.tar.gz`` / ``cifar-10-python.tar.gz``) found in one of those places is
checked against its published MD5 and unpacked. Otherwise, with ``download=True``, the binary
archive is downloaded (``$HASHLEARN_CIFAR10_URL`` replaces the base URL, e.g. for a mirror),
verified and unpacked; our choice of the binary archive means no pickle is ever needed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tarfile
from pathlib import Path

import numpy as np

from hashlearn._checksums import file_sha256
from hashlearn._io import HashlearnFileError
from hashlearn.data.download import download_file
from hashlearn.data.fashion_mnist import pixels_to_features
from hashlearn.data.locate import download_root, first_match
from hashlearn.data.registry import Source, register_dataset
from hashlearn.data.safe_pickle import load_restricted
from hashlearn.data.splits import Protocol, paper_protocol

log = logging.getLogger("hashlearn.data")

NAME = "cifar10"
BASE_URL = "https://www.cs.toronto.edu/~kriz/"
URL_ENV = "HASHLEARN_CIFAR10_URL"
CLASS_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
N_TRAIN, N_TEST, RECORD = 50000, 10000, 1 + 3 * 32 * 32
TRAIN_STEMS = [f"data_batch_{i}" for i in range(1, 6)]
TEST_STEM = "test_batch"

# format -> (folder in the archive, archive name, archive MD5 published on the CIFAR page).
ARCHIVES = {
    "bin": ("cifar-10-batches-bin", "cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"),
    "py": ("cifar-10-batches-py", "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
}
# MD5 of each file of the official python archive (as published in torchvision's cifar.py).
PY_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}

INSTALL_STEPS = (
    "download cifar-10-binary.tar.gz (or cifar-10-python.tar.gz) from "
    "https://www.cs.toronto.edu/~kriz/cifar.html and put it, or its unpacked folder, in "
    "--data-dir / $HASHLEARN_DATA"
)
INSTALL_HINT = INSTALL_STEPS + ", or allow the download (download=True, 163 MB)"

H2Q = paper_protocol(
    "h2q",
    (
        "H2Q (CIFAR-10): query = 100 per class, val = 100 per class, train = 500 per class "
        "held out of the database, database = the other 53,000; mAP@5000"
    ),
)
HSWD = paper_protocol(
    "hswd",
    (
        "HSWD (CIFAR-10, = DeepHash-pytorch 'cifar10'): query = 100 per class, train = 500 per "
        "class held out of the database, database = the other 54,000; mAP@all"
    ),
)
OFFICIAL = Protocol(
    name="official",
    description="train = database = official 50,000 training images, query = 10,000 test images",
    fixed_sizes={"train": N_TRAIN, "query": N_TEST, "database": N_TRAIN},
)


def _stem_files(folder: Path, fmt: str) -> list[Path]:
    suffix = ".bin" if fmt == "bin" else ""
    return [folder / f"{stem}{suffix}" for stem in (*TRAIN_STEMS, TEST_STEM)]


def _complete(fmt: str) -> object:
    return lambda folder: all(p.is_file() for p in _stem_files(folder, fmt))


def find(data_dir: str | os.PathLike | None = None) -> tuple[Path | None, str, list[str]]:
    """The folder holding a complete set of batches, its format, and where we looked."""
    looked: list[str] = []
    for fmt in ("bin", "py"):
        folder, seen = first_match([ARCHIVES[fmt][0]], data_dir, _complete(fmt))
        looked += seen
        if folder is not None:
            return folder, fmt, looked
    return None, "", looked


def searched(data_dir: str | os.PathLike | None = None) -> list[str]:
    return find(data_dir)[2]


def locate(data_dir: str | os.PathLike | None = None) -> str | None:
    folder, fmt, _ = find(data_dir)
    return None if folder is None else str(folder)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_archive(path: Path, fmt: str) -> None:
    expected = ARCHIVES[fmt][2]
    got = _md5(path)
    if got != expected:
        raise HashlearnFileError(
            f"{path} has MD5 {got}, but the official {ARCHIVES[fmt][1]} has {expected}; "
            "the file is corrupt or not the official archive. Delete it and download again."
        )


def _unpack(archive: Path, fmt: str, target: Path) -> Path:
    """Verify ``archive`` and unpack its batch folder into ``target`` (members checked)."""
    _check_archive(archive, fmt)
    folder = ARCHIVES[fmt][0]
    log.info("unpacking %s into %s", archive, target)
    with tarfile.open(archive, "r:gz") as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.isfile() and m.name.startswith(folder + "/") and ".." not in Path(m.name).parts
        ]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, members=members, filter="data")
        else:  # pragma: no cover - Python < 3.11.4; members are checked above
            tar.extractall(target, members=members)
    return target / folder


def _from_archive_or_download(
    data_dir: str | os.PathLike | None, download: bool, progress: bool, looked: list[str]
) -> tuple[Path, str]:
    for fmt in ("bin", "py"):
        archive_name = ARCHIVES[fmt][1]
        for place in dict.fromkeys(Path(p) for p in looked):
            if (place / archive_name).is_file():
                return _unpack(place / archive_name, fmt, place), fmt
    where = "; ".join(looked)
    if not download:
        raise HashlearnFileError(
            f"CIFAR-10 files not found. Looked in: {where}. To fix: {INSTALL_HINT}."
        )
    root = download_root(data_dir)
    base = os.environ.get(URL_ENV) or BASE_URL
    base = base if base.endswith("/") else base + "/"
    archive = root / ARCHIVES["bin"][1]
    try:
        download_file(
            base + ARCHIVES["bin"][1],
            archive,
            verify=lambda tmp: _check_archive(tmp, "bin"),
            progress=progress,
        )
    except HashlearnFileError as exc:
        raise HashlearnFileError(
            f"CIFAR-10 files not found (looked in: {where}) and the download into {root} "
            f"failed ({exc}). To fix: {INSTALL_STEPS}, or retry when online."
        ) from None
    return _unpack(archive, "bin", root), "bin"


def _read_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise HashlearnFileError(
            f"{path} has {raw.size} bytes, not a whole number of {RECORD}-byte CIFAR-10 "
            "records (1 label byte + 3,072 pixel bytes); the file is truncated or not CIFAR-10."
        )
    records = raw.reshape(-1, RECORD)
    return records[:, 1:], records[:, 0].astype(np.int64)


def _read_py(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = load_restricted(path)
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != RECORD - 1
        or not isinstance(labels, list)
        or len(labels) != len(data)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in labels)
    ):
        raise HashlearnFileError(
            f"{path} is not a CIFAR-10 batch: expected a dict with b'data' (uint8 array of "
            "n x 3072) and b'labels' (n ints)."
        )
    return data, np.asarray(labels, dtype=np.int64)


def _class_names(folder: Path, fmt: str) -> list[str]:
    if fmt == "bin":
        meta = folder / "batches.meta.txt"
        if meta.is_file():
            names = [n.strip() for n in meta.read_text().splitlines() if n.strip()]
            if len(names) == 10:
                return names
    else:
        meta = folder / "batches.meta"
        if meta.is_file():
            names = load_restricted(meta).get(b"label_names", [])
            if len(names) == 10 and all(isinstance(n, bytes) for n in names):
                return [n.decode() for n in names]
    return list(CLASS_NAMES)


@register_dataset(
    NAME,
    description="CIFAR-10, 32x32 colour, 50k train + 10k test (Krizhevsky 2009)",
    n_classes=10,
    n_items=N_TRAIN + N_TEST,
    item_shape=(32, 32, 3),
    protocols=[H2Q, HSWD, OFFICIAL],
    locate=locate,
    install_hint=INSTALL_HINT,
    searched=searched,
)
def read_cifar10(
    *, data_dir: str | os.PathLike | None = None, download: bool = True, progress: bool = True
) -> Source:
    """Find (or unpack / download) and read the six batches as one pool of images."""
    folder, fmt, looked = find(data_dir)
    if folder is None:
        folder, fmt = _from_archive_or_download(data_dir, download, progress, looked)
    log.info("reading CIFAR-10 (%s) from %s", fmt, folder)
    pixels, labels, records, start = [], [], [], 0
    for path in _stem_files(folder, fmt):
        record = {"file": path.name, "path": str(path.resolve()), "sha256": file_sha256(path)}
        if fmt == "py":
            record["official_md5_match"] = _md5(path) == PY_MD5[path.name]
            if not record["official_md5_match"]:
                log.warning("%s differs from the official archive's file (MD5)", path)
        data, y = _read_py(path) if fmt == "py" else _read_bin(path)
        if y.size and (y.min() < 0 or y.max() > 9):
            raise HashlearnFileError(f"{path} has label {y.max()}; CIFAR-10 labels are 0-9.")
        split = "test" if path.name.startswith(TEST_STEM) else "train"
        record.update(official_split=split, pool_range=[start, start + len(y)])
        start += len(y)
        pixels.append(data)
        labels.append(y)
        records.append(record)
    n_train = records[-1]["pool_range"][0]
    if (n_train, start - n_train) != (N_TRAIN, N_TEST):
        log.warning(
            "CIFAR-10 in %s has %d training and %d test images, not the official %d and %d",
            folder, n_train, start - n_train, N_TRAIN, N_TEST,
        )  # fmt: skip
    flat = np.concatenate(pixels)
    images = np.ascontiguousarray(flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    train = np.arange(n_train, dtype=np.int64)
    test = np.arange(n_train, start, dtype=np.int64)
    return Source(
        X=pixels_to_features,
        y=np.concatenate(labels),
        images=images,
        class_names=_class_names(folder, fmt),
        files=records,
        predefined={"official": {"train": train, "query": test, "database": train}},
    )
