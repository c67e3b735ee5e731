"""``fashion-mnist``: Zalando's 70,000 28×28 grey clothing images in 10 classes.

Xiao, Rasul, Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine
Learning Algorithms", arXiv:1708.07747 (2017). The official 60,000 training and 10,000 test
images are pooled (pool index ``i < 60000`` is training image ``i``, ``60000 + j`` is test
image ``j``). Features are pixels / 255 as float32 (784 values); images stay uint8.

Protocols:

* ``hashing`` (default) mirrors the CIFAR-10 protocol of deep hashing (as in H²Q, arXiv 2311.04207):
  100 query and 100 validation images per class (1,000 each), the database is every other
  image (68,000), and 500 training images per class (5,000) are drawn from the database.
* ``h2q``: the H²Q authors' CIFAR-10 protocol carried over (Lucas-Schwengber/h2q,
  ``src/data/process/CIFAR_10.py``): 500 training, 100 query and 100 validation images per
  class (5,000 / 1,000 / 1,000), the database is the other 63,000 images (training images
  excluded, unlike ``hashing``); mAP@5000.
* ``hswd``: the HSWD paper's CIFAR-10 protocol (= DeepHash-pytorch's ``cifar10``) carried
  over: 100 query and 500 training images per class, training images held out of the
  database (1,000 / 5,000 / 64,000); no validation split; mAP@all.
* ``official``: train = database = the official 60,000 training images, query = the 10,000
  test images; no validation split and no randomness.

Every protocol but ``official`` places each of the 70,000 images in some split, so features
of the whole pool (e.g. ``hashlearn reproduce``'s feature cache) serve all of them.

Where the files are looked for, in order (the first folder holding all four files wins; each
file may be ``.gz`` or uncompressed):

1. ``data_dir`` if given (then only there; downloads also go there);
2. ``$HASHLEARN_DATA/fashion-mnist`` and ``$HASHLEARN_DATA``;
3. the user cache, ``$XDG_CACHE_HOME/hashlearn/fashion-mnist`` (default ``~/.cache/...``);
4. where Debian's ``dataset-fashion-mnist`` package put them (``dpkg -L``), falling back to
   ``/usr/share/datasets/fashion-mnist``.

If none has them and ``download=True``, they are downloaded from the official location
(``$HASHLEARN_FASHION_MNIST_URL`` overrides it, e.g. for a mirror) into the first writable
place of 1–3. Every file, wherever it comes from, is checked against the SHA-256 of its
*decompressed* contents: mirrors such as Debian recompress the ``.gz`` files, so the official
``.gz`` MD5s (recorded too) only match files from the official server.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np

from hashlearn._io import HashlearnFileError
from hashlearn.data.download import download_file, user_cache_dir
from hashlearn.data.idx import load_idx
from hashlearn.data.registry import Source, register_dataset
from hashlearn.data.splits import Protocol, paper_protocol

log = logging.getLogger("hashlearn.data")

NAME = "fashion-mnist"
OFFICIAL_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
URL_ENV = "HASHLEARN_FASHION_MNIST_URL"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

# name -> (file stem, official .gz MD5, SHA-256 of the decompressed IDX contents, shape).
# The SHA-256s were computed from the Debian files and agree with those other projects publish
# for the decompressed official release.
# Small files first, so a bad mirror fails fast.
FILES = {
    "test_labels": (
        "t10k-labels-idx1-ubyte",
        "bb300cfdad3c16e7a12a480ee83cd310",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        (10000,),
    ),
    "train_labels": (
        "train-labels-idx1-ubyte",
        "25c81989df183df01b3e8a0aad5dffbe",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        (60000,),
    ),
    "test_images": (
        "t10k-images-idx3-ubyte",
        "bef4ecab320f06d8554ea6380940ec79",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        (10000, 28, 28),
    ),
    "train_images": (
        "train-images-idx3-ubyte",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        (60000, 28, 28),
    ),
}
N_TRAIN, N_TEST = 60000, 10000

INSTALL_STEPS = (
    f"install Debian's package (sudo apt-get install {DEBIAN_PACKAGE}) or put the four IDX "
    "files (.gz or plain) in $HASHLEARN_DATA/fashion-mnist"
)
INSTALL_HINT = INSTALL_STEPS + ", or allow the download (download=True, about 30 MB)"

HASHING = Protocol(
    name="hashing",
    description=(
        "stratified over the pooled 70,000 images: query = 100 per class, val = 100 per class, "
        "database = all other items, train = 500 per class drawn from the database "
        "(the CIFAR-10 deep-hashing protocol)"
    ),
    query_per_class=100,
    val_per_class=100,
    train_per_class=500,
)
H2Q = paper_protocol(
    "h2q",
    (
        "the H2Q authors' CIFAR-10 protocol: query = 100 per class, val = 100 per class, "
        "train = 500 per class held out of the database, database = the other 63,000; mAP@5000"
    ),
)
HSWD = paper_protocol(
    "hswd",
    (
        "the HSWD paper's CIFAR-10 protocol (DeepHash-pytorch 'cifar10'): query = 100 per "
        "class, train = 500 per class held out of the database, database = the other 64,000; "
        "mAP@all"
    ),
)
OFFICIAL = Protocol(
    name="official",
    description="train = database = official 60,000 training images, query = 10,000 test images",
    fixed_sizes={"train": N_TRAIN, "query": N_TEST, "database": N_TRAIN},
)


@lru_cache(maxsize=1)
def debian_dirs() -> tuple[Path, ...]:
    """Folders where ``dpkg -L dataset-fashion-mnist`` lists the IDX files (plus the default)."""
    found: list[Path] = []
    if shutil.which("dpkg"):
        try:
            listing = subprocess.run(
                ["dpkg", "-L", DEBIAN_PACKAGE], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        for line in listing.splitlines():
            path = Path(line.strip())
            if path.name.startswith(FILES["train_images"][0]) and path.parent not in found:
                found.append(path.parent)
    if DEBIAN_DEFAULT_DIR not in found:
        found.append(DEBIAN_DEFAULT_DIR)
    return tuple(found)


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for the files, in order (see the module docstring)."""
    if data_dir is not None:
        return [Path(data_dir), Path(data_dir) / NAME]
    dirs = []
    if os.environ.get("HASHLEARN_DATA"):
        root = Path(os.environ["HASHLEARN_DATA"])
        dirs += [root / NAME, root]
    dirs.append(user_cache_dir() / NAME)
    dirs += list(debian_dirs())
    return dirs


def download_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Where a download goes: ``data_dir``, else ``$HASHLEARN_DATA/fashion-mnist``, else cache."""
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get("HASHLEARN_DATA"):
        return Path(os.environ["HASHLEARN_DATA"]) / NAME
    return user_cache_dir() / NAME


def _files_in(folder: Path) -> dict[str, Path]:
    """The dataset files present in ``folder`` (``.gz`` preferred over plain)."""
    found = {}
    for key, (stem, *_rest) in FILES.items():
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                found[key] = candidate
                break
    return found


def find_files(data_dir: str | os.PathLike | None = None) -> tuple[dict[str, Path] | None, str]:
    """The first complete set of files, and a report of every place searched."""
    report = []
    for folder in search_dirs(data_dir):
        found = _files_in(folder)
        if len(found) == len(FILES):
            return found, ""
        if found:
            missing = [FILES[k][0] for k in FILES if k not in found]
            report.append(f"{folder} (has {len(found)} of 4 files; missing {', '.join(missing)})")
        else:
            report.append(f"{folder} ({'no files' if folder.is_dir() else 'does not exist'})")
    return None, "; ".join(report)


def locate(data_dir: str | os.PathLike | None = None) -> str | None:
    """Folder holding the files, or ``None`` (does not read or verify them)."""
    found, _ = find_files(data_dir)
    return None if found is None else str(found["train_images"].parent)


def _download_all(target: Path, progress: bool) -> dict[str, Path]:
    base = os.environ.get(URL_ENV) or OFFICIAL_URL
    base = base if base.endswith("/") else base + "/"
    paths = {}
    for key, (stem, md5, sha256, shape) in FILES.items():
        dest = target / f"{stem}.gz"
        if not dest.is_file():

            def verify(tmp: Path, sha256: str = sha256, shape: tuple = shape) -> None:
                array, _ = load_idx(tmp, sha256)
                if array.shape != shape:  # pragma: no cover - implied by the checksum
                    raise HashlearnFileError(f"{tmp}: shape {array.shape}, expected {shape}")

            got = download_file(base + f"{stem}.gz", dest, verify=verify, progress=progress)
            log.info(
                "%s: content SHA-256 verified (%s)",
                dest.name,
                "official .gz MD5" if got == md5 else "recompressed mirror copy",
            )
        paths[key] = dest
    return paths


def pixels_to_features(images: np.ndarray) -> np.ndarray:
    """Flattened pixels / 255 as float32 (exact division, computed per split)."""
    X = images.reshape(len(images), -1).astype(np.float32)
    X /= np.float32(255.0)
    return X


@register_dataset(
    NAME,
    description="Zalando clothing images, 28x28 grey, 60k train + 10k test (Xiao et al. 2017)",
    n_classes=10,
    n_items=N_TRAIN + N_TEST,
    item_shape=(28, 28),
    protocols=[HASHING, H2Q, HSWD, OFFICIAL],
    locate=locate,
    install_hint=INSTALL_HINT,
    searched=lambda data_dir=None: [str(p) for p in search_dirs(data_dir)],
)
def read_fashion_mnist(
    *, data_dir: str | os.PathLike | None = None, download: bool = True, progress: bool = True
) -> Source:
    """Find (or download), verify and read the four IDX files as one pool of 70,000 images."""
    paths, report = find_files(data_dir)
    if paths is None:
        if not download:
            raise HashlearnFileError(
                f"Fashion-MNIST files not found. Looked in: {report}. To fix: {INSTALL_HINT}."
            )
        target = download_dir(data_dir)
        try:
            paths = _download_all(target, progress)
        except HashlearnFileError as exc:
            raise HashlearnFileError(
                f"Fashion-MNIST files not found (looked in: {report}) and the download into "
                f"{target} failed ({exc}). To fix: {INSTALL_STEPS}, or retry when online."
            ) from None
    log.info("reading Fashion-MNIST from %s", paths["train_images"].parent)
    arrays, records = {}, []
    for key, (stem, _md5, sha256, shape) in FILES.items():
        try:
            arrays[key], digest = load_idx(paths[key], sha256)
        except HashlearnFileError as exc:
            raise HashlearnFileError(
                f"{exc} Delete {paths[key]} so it can be downloaded again, or reinstall it "
                f"(sudo apt-get install --reinstall {DEBIAN_PACKAGE})."
            ) from None
        if arrays[key].shape != shape or (key.endswith("labels") and arrays[key].max() > 9):
            raise HashlearnFileError(  # pragma: no cover - implied by the checksum
                f"{paths[key]} has shape {arrays[key].shape}, expected {shape}."
            )
        records.append({"file": stem, "path": str(paths[key].resolve()), "content_sha256": digest})
    images = np.concatenate([arrays["train_images"], arrays["test_images"]])
    y = np.concatenate([arrays["train_labels"], arrays["test_labels"]]).astype(np.int64)
    train = np.arange(N_TRAIN, dtype=np.int64)
    test = np.arange(N_TRAIN, N_TRAIN + N_TEST, dtype=np.int64)
    return Source(
        X=pixels_to_features,
        y=y,
        images=images,
        class_names=list(CLASS_NAMES),
        files=records,
        predefined={"official": {"train": train, "query": test, "database": train}},
    )
