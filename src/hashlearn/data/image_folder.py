"""``image-folder`` and ``image-list``: your own images, decoded lazily.

How to pass them (either form):

* ``load_dataset("image-folder", data_dir="photos/")`` — or ``load_dataset(Path("photos"))``,
  any existing directory path — where ``photos/`` holds one subfolder per class
  (``photos/cat/*.jpg``, ``photos/dog/*.png``; images are found recursively inside each class
  folder, by suffix). Class names are the folder names, sorted.
* ``load_dataset("image-list", data_dir="labels.txt")`` — or ``load_dataset("labels.txt")``,
  any path ending in ``.txt``; ``data_dir`` may also be a folder holding ``images.txt``. Each
  line is an image path (relative to the list file's folder, or absolute) then either one
  class label (any word: ``cat``) or a 0/1 label vector (``0 1 1 0``, multi-label), the
  same kind on every line. The CLI takes the same: ``--dataset image-folder --data-dir photos``.

Both are split like the user's own arrays (:func:`hashlearn.data.from_arrays` defaults,
protocol ``stratified``: 10 % query, train = database, no validation; multi-label lists are
split uniformly at random), seeded by ``split_seed``. For other sizes call
:func:`load_image_folder` / :func:`load_image_list`. Images stay on disk: each split's
``images`` is a lazy :class:`~hashlearn.data.images.ImageFiles`; features come from a backbone
(:func:`hashlearn.deep.features.extract_split_features`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from hashlearn._checksums import file_sha256
from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.data.base import Dataset, dataset_from_source
from hashlearn.data.image_lists import NoFeatures, parse_list_file
from hashlearn.data.images import IMAGE_SUFFIXES, ImageFiles, find_images
from hashlearn.data.registry import Source, register_dataset
from hashlearn.data.splits import Protocol, SizeArg, check_seed, split_indices
from hashlearn.data.user import encode_labels

LIST_NAME = "images.txt"
USER_SPLIT = {"query_size": 0.1, "val_size": 0, "train_size": None}
STRATIFIED = Protocol(
    name="stratified",
    description=(
        "seeded, stratified by class (multi-label: uniformly random): query = 10 % of the "
        "items, database = the rest, train = the database"
    ),
    user_sizes=USER_SPLIT,
)


def _need_dir(kind: str, data_dir: str | os.PathLike | None) -> Path:
    if data_dir is None:
        what = (
            "a folder with one subfolder per class"
            if kind == "image-folder"
            else (f"a list file (or a folder holding {LIST_NAME})")
        )
        raise HashlearnInputError(
            f"{kind} needs data_dir: {what} (--data-dir on the command line)."
        )
    return Path(data_dir).expanduser().resolve()


def read_image_folder(
    *, data_dir: str | os.PathLike | None = None, download: bool = True, progress: bool = True
) -> Source:
    """One subfolder per class under ``data_dir``; every image file inside is an item."""
    root = _need_dir("image-folder", data_dir)
    if not root.is_dir():
        raise HashlearnFileError(f"image folder {root} does not exist.")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise HashlearnFileError(
            f"{root} has no subfolders; put the images of each class in their own subfolder "
            "(photos/cat/..., photos/dog/...)."
        )
    paths, y = [], []
    for class_id, folder in enumerate(classes):
        found = find_images(folder)
        if not found:
            raise HashlearnFileError(
                f"class folder {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})."
            )
        paths += [str(p) for p in found]
        y += [class_id] * len(found)
    listing = "\n".join(os.path.relpath(p, root) for p in paths)
    return Source(
        X=NoFeatures(f"image folder {root}"),
        y=np.asarray(y, dtype=np.int64),
        images=ImageFiles(paths),
        class_names=[p.name for p in classes],
        files=[
            {
                "folder": str(root),
                "n_images": len(paths),
                "listing_sha256": hashlib.sha256(listing.encode()).hexdigest(),
            }
        ],
    )


def read_image_list(
    *, data_dir: str | os.PathLike | None = None, download: bool = True, progress: bool = True
) -> Source:
    """A list file of ``path label`` or ``path 0 1 0 ...`` lines (see the module docstring)."""
    path = _need_dir("image-list", data_dir)
    if path.is_dir():
        path = path / LIST_NAME
    if not path.is_file():
        raise HashlearnFileError(f"image list {path} does not exist.")
    origins: list[str] = []
    paths, tokens = parse_list_file(path, path.parent, binary=None, origins=origins)
    if len(tokens[0]) == 1:
        y, _, class_names = encode_labels(np.array([t[0] for t in tokens]), len(tokens))
    else:
        y = (np.array(tokens) == "1").astype(np.uint8)
        class_names = [str(c) for c in range(y.shape[1])]
    return Source(
        X=NoFeatures(f"image list {path}"),
        y=y,
        images=ImageFiles(paths, origins),
        class_names=class_names,
        files=[
            {
                "file": path.name,
                "path": str(path),
                "sha256": file_sha256(path),
                "lines": len(paths),
            }
        ],
    )


def _locate_folder(data_dir: str | os.PathLike | None = None) -> str | None:
    return None if data_dir is None or not Path(data_dir).is_dir() else str(data_dir)


def _locate_list(data_dir: str | os.PathLike | None = None) -> str | None:
    if data_dir is None:
        return None
    path = Path(data_dir)
    path = path / LIST_NAME if path.is_dir() else path
    return str(path) if path.is_file() else None


def _searched(data_dir: str | os.PathLike | None = None) -> list[str]:
    return ["only data_dir (your own images)" if data_dir is None else str(data_dir)]


register_dataset(
    "image-folder",
    description="your own images, one subfolder per class (pass data_dir)",
    n_classes=0,
    n_items=0,
    item_shape=(),
    protocols=[STRATIFIED],
    locate=_locate_folder,
    install_hint="pass data_dir / --data-dir: a folder with one subfolder of images per class",
    searched=_searched,
)(read_image_folder)
register_dataset(
    "image-list",
    description="your own images listed with labels in a text file (pass data_dir)",
    n_classes=0,
    n_items=0,
    item_shape=(),
    protocols=[STRATIFIED],
    locate=_locate_list,
    install_hint=(
        "pass data_dir / --data-dir: a text file of 'path label' or 'path 0 1 0 ...' lines "
        f"(or a folder holding {LIST_NAME})"
    ),
    searched=_searched,
)(read_image_list)


def _load_user_images(
    kind: str, source: Source, split_seed: int, sizes: dict[str, SizeArg]
) -> Dataset:
    split_seed = check_seed(split_seed)
    n_classes = len(source.class_names)
    indices, protocol, description = split_indices(source.y, n_classes, split_seed, **sizes)
    dataset = dataset_from_source(
        source,
        name=kind,
        protocol=protocol,
        protocol_description=description,
        split_seed=split_seed,
        indices=indices,
        n_classes=n_classes,
    )
    dataset.manifest["protocol_parameters"] = {"map_topk": None, **sizes}
    return dataset


def load_image_folder(
    folder: str | os.PathLike,
    *,
    split_seed: int = 0,
    query_size: SizeArg = 0.1,
    train_size: SizeArg = None,
    val_size: SizeArg = 0,
) -> Dataset:
    """An image folder (one subfolder per class) split with the given sizes (see
    :func:`hashlearn.data.from_arrays` for their meaning)."""
    sizes = {"query_size": query_size, "val_size": val_size, "train_size": train_size}
    return _load_user_images("image-folder", read_image_folder(data_dir=folder), split_seed, sizes)


def load_image_list(
    list_file: str | os.PathLike,
    *,
    split_seed: int = 0,
    query_size: SizeArg = 0.1,
    train_size: SizeArg = None,
    val_size: SizeArg = 0,
) -> Dataset:
    """An image list file split with the given sizes (see :func:`load_image_folder`)."""
    sizes = {"query_size": query_size, "val_size": val_size, "train_size": train_size}
    return _load_user_images("image-list", read_image_list(data_dir=list_file), split_seed, sizes)
