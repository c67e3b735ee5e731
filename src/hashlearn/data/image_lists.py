"""``nus-wide``, ``coco``, ``imagenet100``: image sets in the list format of deep hashing code.

The popular deep hashing code (HashNet, https://github.com/thuml/HashNet, and
DeepHash-pytorch, https://github.com/swuxyj/DeepHash-pytorch, ``utils/tools.py``, ``ImageList``)
describes each split by a text file — ``train.txt``, ``test.txt`` (the queries) and
``database.txt`` — with one line per image: its path, then its 0/1 label vector, separated by
spaces::

    images/0001.jpg 0 1 0 0 1 ... 0

Here the three files sit in the dataset's folder (``nus-wide/``, ``coco/``, ``imagenet100/``)
and a relative path is taken relative to that folder (an absolute path is used as is).
Labels are multi-hot uint8 ``(n, n_classes)`` (ImageNet-100's vectors are one-hot); two items
are relevant when they share a label. An optional ``classes.txt`` (one name per line) names the
columns; otherwise they are numbered. Images are not read into memory: each split's ``images``
is a lazy :class:`~hashlearn.data.images.ImageFiles`, and the datasets have no feature vectors
until a backbone computes them (:func:`hashlearn.deep.features.extract_split_features`).

Every line is checked when the lists are read: a label vector of the wrong length or with
values other than 0/1, or an image file that does not exist, is reported with the list file and
line number.

Protocol ``lists`` (the only one) takes the split of the files as it is: train = ``train.txt``,
query = ``test.txt``, database = ``database.txt`` (in the published lists the training images
are also in the database); no validation split (trainers hold one out of train). mAP cut-offs
as in HashNet and DeepHash-pytorch: NUS-WIDE-21 and COCO mAP@5000, ImageNet-100 mAP@1000.
The sizes shown by ``hashlearn datasets`` are those of the published lists (NUS-WIDE-21:
DeepHash-pytorch README; COCO and ImageNet-100: the HashNet lists); the sizes used are always
those of your files, recorded in the manifest.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from hashlearn._checksums import file_sha256
from hashlearn._io import HashlearnFileError
from hashlearn.data.images import ImageFiles
from hashlearn.data.locate import first_match
from hashlearn.data.registry import Source, register_dataset
from hashlearn.data.splits import Protocol

log = logging.getLogger("hashlearn.data")

LIST_FILES = {"train": "train.txt", "query": "test.txt", "database": "database.txt"}


def parse_list_file(
    path: Path,
    root: Path,
    n_labels: int | None = None,
    *,
    binary: bool | None = True,
    check_images: bool = True,
    origins: list[str] | None = None,
) -> tuple[list[str], list[list[str]]]:
    """Read a list file: each non-empty line is a path and its label tokens.

    Returns the absolute image paths and, per line, the label tokens (strings). Raises
    :class:`HashlearnFileError` naming the file and line for a line without labels, label
    vectors of different lengths (or not ``n_labels`` long), with ``binary`` a label value
    other than 0/1 (``binary=None``: only on lines with several labels, i.e. vectors), and
    with ``check_images`` an image that does not exist. ``origins``, when given, receives
    ``"<list file>, line N"`` per entry (for :class:`~hashlearn.data.images.ImageFiles`).
    """
    paths: list[str] = []
    labels: list[list[str]] = []
    first: tuple[int, int] | None = None  # (line number, label count) of the first entry
    missing: list[tuple[int, str]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HashlearnFileError(f"cannot read list file {path}: {exc}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < 2:
            raise HashlearnFileError(
                f"{path}, line {number}: {tokens[0]!r} has no labels; each line must be an "
                "image path followed by its labels, separated by spaces."
            )
        count = len(tokens) - 1
        if n_labels is not None and count != n_labels:
            raise HashlearnFileError(
                f"{path}, line {number}: {count} label values, but this dataset has "
                f"{n_labels} classes (one 0/1 value per class)."
            )
        vector = binary or (binary is None and count > 1)
        if vector and not set(tokens[1:]) <= {"0", "1"}:
            bad = next(tok for tok in tokens[1:] if tok not in ("0", "1"))
            raise HashlearnFileError(
                f"{path}, line {number}: label value {bad!r}; label vectors hold only 0 and 1."
            )
        if first is None:
            first = (number, count)
        elif count != first[1]:
            raise HashlearnFileError(
                f"{path}, line {number}: {count} label values, but line {first[0]} has "
                f"{first[1]}; every line needs a label vector of the same length."
            )
        image = Path(tokens[0]).expanduser()
        if not image.is_absolute():
            image = root / image
            _check_inside(path, number, tokens[0], image, root)
        if check_images and not image.is_file():
            missing.append((number, str(image)))
        paths.append(str(image))
        labels.append(tokens[1:])
        if origins is not None:
            origins.append(f"{path}, line {number}")
    if missing:
        number, image = missing[0]
        more = f" ({len(missing) - 1} more lines name missing images)" if len(missing) > 1 else ""
        raise HashlearnFileError(
            f"{path}, line {number}: image {image} does not exist{more}. Relative paths are "
            f"taken relative to {root}; fix the list or put the images there."
        )
    if not paths:
        raise HashlearnFileError(f"list file {path} has no entries.")
    return paths, labels


def _check_inside(path: Path, number: int, entry: str, image: Path, root: Path) -> None:
    """A relative entry must stay inside the data folder ``root`` once ``..`` and symlinks are
    resolved (an entry such as ``../../private/notes.txt`` would read any file); a symlink
    loop is an error too. Absolute entries are the user's explicit choice and are not checked."""
    try:
        resolved, top = image.resolve(strict=False), root.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on Python < 3.13
        raise HashlearnFileError(
            f"{path}, line {number}: image {entry!r} cannot be resolved ({exc}); a symlink "
            "loop? Fix the list or the link."
        ) from None
    if not resolved.is_relative_to(top):
        raise HashlearnFileError(
            f"{path}, line {number}: image {entry!r} leaves the data folder {top} (it is "
            f"{resolved}); relative paths must stay inside it; use an absolute path if you "
            "mean that file."
        )


def file_record(path: Path, n: int, split: str) -> dict[str, object]:
    return {"file": path.name, "path": str(path.resolve()), "sha256": file_sha256(path), "lines": n,
            "split": split}  # fmt: skip


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in LIST_FILES.values())


def _class_names(folder: Path, n_classes: int) -> list[str]:
    names_file = folder / "classes.txt"
    if names_file.is_file():
        names = [n.strip() for n in names_file.read_text().splitlines() if n.strip()]
        if len(names) == n_classes:
            return names
        log.warning("%s has %d names for %d classes; ignored", names_file, len(names), n_classes)
    return [str(c) for c in range(n_classes)]


def read_lists(
    name: str, folder_name: str, n_classes: int, data_dir: str | os.PathLike | None, hint: str
) -> Source:
    """Find ``folder_name`` and read its three list files as one pool (train, query, database)."""
    folder, looked = first_match([folder_name], data_dir, _complete)
    if folder is None:
        raise HashlearnFileError(
            f"{name} list files ({', '.join(LIST_FILES.values())}) not found. Looked in: "
            f"{'; '.join(looked)}. To fix: {hint}."
        )
    log.info("reading %s lists from %s", name, folder)
    all_paths: list[str] = []
    origins: list[str] = []
    blocks, records, predefined, start = [], [], {}, 0
    for split, file_name in LIST_FILES.items():
        path = folder / file_name
        paths, tokens = parse_list_file(path, folder, n_classes, origins=origins)
        blocks.append((np.array(tokens) == "1").astype(np.uint8))
        all_paths += paths
        predefined[split] = np.arange(start, start + len(paths), dtype=np.int64)
        start += len(paths)
        records.append(file_record(path, len(paths), split))
    return Source(
        X=NoFeatures(name),
        y=np.concatenate(blocks),
        images=ImageFiles(all_paths, origins),
        class_names=_class_names(folder, n_classes),
        files=records,
        predefined={"lists": predefined},
    )


class NoFeatures:
    """Stands for the features of an image set that has none (raises a clear error)."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, images: object) -> np.ndarray:
        from hashlearn._validation import HashlearnInputError

        raise HashlearnInputError(
            f"{self.name} has images but no feature vectors. Compute backbone features with "
            "hashlearn.deep.features.extract_split_features (cached on disk), train on the "
            "images (hashlearn train --backbone efficientnet-lite0 ...), or pass a features "
            "file (.npz) instead."
        )


def register_list_dataset(
    name: str,
    *,
    folder: str,
    n_classes: int,
    sizes: dict[str, int],
    map_topk: int,
    description: str,
    source_hint: str,
) -> None:
    """Register one list-format dataset (one mechanism, many parameters)."""
    hint = (
        f"put train.txt, test.txt and database.txt ({source_hint}) and the images in "
        f"--data-dir/{folder} or $HASHLEARN_DATA/{folder}"
    )
    protocol = Protocol(
        name="lists",
        description=(
            "train = train.txt, query = test.txt, database = database.txt, as in the files; "
            f"mAP@{map_topk}"
        ),
        fixed_sizes=sizes,
        map_topk=map_topk,
    )

    def locate(data_dir: str | os.PathLike | None = None) -> str | None:
        found, _ = first_match([folder], data_dir, _complete)
        return None if found is None else str(found)

    def searched(data_dir: str | os.PathLike | None = None) -> list[str]:
        return first_match([folder], data_dir, _complete)[1]

    def read(
        *, data_dir: str | os.PathLike | None = None, download: bool = True, progress: bool = True
    ) -> Source:
        return read_lists(name, folder, n_classes, data_dir, hint)

    read.__doc__ = f"Read the {name} list files (see :mod:`hashlearn.data.image_lists`)."
    register_dataset(
        name,
        description=description,
        n_classes=n_classes,
        n_items=sizes["train"] + sizes["query"] + sizes["database"],
        item_shape=(),
        protocols=[protocol],
        locate=locate,
        install_hint=hint,
        searched=searched,
    )(read)


register_list_dataset(
    "nus-wide",
    folder="nus-wide",
    n_classes=21,
    sizes={"train": 10500, "query": 2100, "database": 193734},
    map_topk=5000,
    description="NUS-WIDE, 21 most frequent concepts, multi-label (Chua et al. 2009)",
    source_hint="DeepHash-pytorch data/nuswide_21",
)
register_list_dataset(
    "coco",
    folder="coco",
    n_classes=80,
    sizes={"train": 10000, "query": 5000, "database": 117218},
    map_topk=5000,
    description="MS-COCO 2014, 80 object labels, multi-label (Lin et al. 2014; HashNet lists)",
    source_hint="HashNet data/coco",
)
register_list_dataset(
    "imagenet100",
    folder="imagenet100",
    n_classes=100,
    sizes={"train": 13000, "query": 5000, "database": 128503},
    map_topk=1000,
    description="ImageNet-100, the HashNet class list (Cao et al. 2017), single-label",
    source_hint="HashNet data/imagenet",
)
