"""Read the user's features and labels from ``.npz``, ``.npy`` or ``.csv`` files.

* ``.npz``: features under ``X`` (or ``features``), labels under ``y`` (or ``labels``); or
  ready-made splits ``X_query``/``y_query``, ``X_database``/``y_database`` (optionally
  ``X_train``/``y_train`` and ``X_val``/``y_val``), used as they are.
* ``.npy``: a 2-D feature matrix; the labels come from a separate file (``labels_path``).
* ``.csv`` / ``.tsv``: one item per row, numeric features; the labels are the last column
  (numbers or text) unless ``labels_path`` is given or ``csv_labels=False`` (every column is a
  feature). This holds whether or not the caller needs labels, so ``hashlearn fit`` of an
  unsupervised method and ``hashlearn encode`` read the same columns as features. A first row
  that is not numeric is taken as a header. A numeric last column with non-integer values is
  refused (a feature taken for the label); one with about one distinct value per row is
  warned about.

Labels files: ``.npy`` (1-D ids or a 2-D multi-hot matrix) or text (``.csv``/``.tsv``/``.txt``,
one label per line, or one 0/1 column per class). Nothing is ever unpickled.
"""

from __future__ import annotations

import logging
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._checksums import file_sha256
from hashlearn._io import HashlearnFileError
from hashlearn.data.base import SPLIT_NAMES, Dataset
from hashlearn.data.user import SizeArg, from_arrays, from_splits

log = logging.getLogger("hashlearn")

FEATURE_KEYS = ("X", "features")
LABEL_KEYS = ("y", "labels")
_HOW = "save features with np.savez(path, X=features, y=labels) or as a numeric CSV"


def _existing(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise HashlearnFileError(f"{what} file not found: {path}")
    return path


def _check_magic(path: Path, magic: bytes, kind: str) -> None:
    with open(path, "rb") as handle:
        head = handle.read(len(magic))
    if head != magic:
        raise HashlearnFileError(
            f"{path} is not a valid {kind} file (it does not start with the {kind} signature); "
            "it is corrupted or was saved in another format."
        )


def _load_npy(path: Path) -> np.ndarray:
    _check_magic(path, b"\x93NUMPY", ".npy")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise HashlearnFileError(
                f"{path} holds Python objects (pickled data), which hashlearn does not load for "
                "safety; save plain numeric arrays instead."
            ) from None
        raise HashlearnFileError(f"{path} is not a valid .npy file ({exc}).") from None
    except (OSError, EOFError) as exc:
        raise HashlearnFileError(
            f"{path} is not a valid .npy file or is truncated ({exc})."
        ) from None


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    _check_magic(path, b"PK", ".npz")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise HashlearnFileError(
                f"{path} holds Python objects (pickled data), which hashlearn does not load."
            ) from None
        raise HashlearnFileError(f"{path} is not a valid .npz file ({exc}).") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise HashlearnFileError(
            f"{path} is not a valid .npz file or is corrupted ({type(exc).__name__}: {exc})."
        ) from None


def _predefined_splits(arrays: dict[str, np.ndarray]) -> dict[str, tuple] | None:
    """``{split: (X, y)}`` when the archive holds ready-made splits (``X_query``, ...)."""
    if not any(key.startswith("X_") for key in arrays):
        return None
    return {
        split: (arrays.get(f"X_{split}"), arrays.get(f"y_{split}"))
        for split in SPLIT_NAMES
        if f"X_{split}" in arrays
    }


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    arrays = _npz_arrays(path)
    keys = list(arrays)
    fkey = next((k for k in FEATURE_KEYS if k in keys), None)
    lkey = next((k for k in LABEL_KEYS if k in keys), None)
    if fkey is None:
        raise HashlearnFileError(
            f"{path} has no features array: expected a key named "
            f"{' or '.join(FEATURE_KEYS)} (or split arrays X_query, y_query, X_database, "
            f"y_database, optionally X_train/y_train and X_val/y_val), found {keys}; {_HOW}."
        )
    return arrays[fkey], None if lkey is None else arrays[lkey]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_text_table(path: Path, *, labels_last: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Parse a delimited text file into features (and the last column as labels)."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise HashlearnFileError(f"cannot read {path} as text ({exc}).") from None
    if not first.strip():
        raise HashlearnFileError(f"{path} is empty; it needs one row per item.")
    fields = [f.strip().strip('"') for f in first.split(delimiter)]
    numeric_part = fields[:-1] if labels_last and len(fields) > 1 else fields
    skip = 0 if all(_is_number(f) for f in numeric_part) else 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            table = np.loadtxt(path, delimiter=delimiter, skiprows=skip, dtype=str, ndmin=2)
    except ValueError as exc:
        raise HashlearnFileError(f"{path}: malformed table ({exc}).") from None
    if table.size == 0:
        raise HashlearnFileError(f"{path} has a header but no data rows.")
    table = np.char.strip(np.char.strip(table), '"')
    if labels_last:
        if table.shape[1] < 2:
            raise HashlearnFileError(
                f"{path} has a single column; it needs feature columns plus a last label "
                "column (or pass a separate labels file)."
            )
        feats, labels = table[:, :-1], table[:, -1]
    else:
        feats, labels = table, None
    try:
        X = feats.astype(np.float64)
    except ValueError:
        bad = np.argwhere(~np.vectorize(_is_number)(feats))[0]
        raise HashlearnFileError(
            f"{path}: row {bad[0] + 1 + skip}, column {bad[1] + 1} is not a number "
            f"({str(feats[bad[0], bad[1]])!r}); features must be numeric."
        ) from None
    if labels is not None and all(_is_number(v) for v in labels[:1000]):
        try:
            labels = labels.astype(np.float64)
        except ValueError:
            pass  # mixed numbers and text: keep as text class names
        else:
            _check_label_column(path, labels, skip)
    return X, labels


def _check_label_column(path: Path, labels: np.ndarray, skip: int) -> None:
    """Refuse a numeric last column that cannot be class labels (non-integer numbers: a feature
    taken for the label), warn when it has about one value per row (ids or a feature?)."""
    fix = (
        "if the file has no label column pass `csv_labels=False` (every column is a feature), "
        "or give the labels in a separate file (`labels_path`)"
    )
    fractional = np.flatnonzero(np.isfinite(labels) & (labels != np.round(labels)))
    if len(fractional):
        row = int(fractional[0])
        raise HashlearnFileError(
            f"{path}: the last column, read as the class label, holds non-integer numbers "
            f"({labels[row]:g} in row {row + 1 + skip}), so it looks like a feature; {fix}."
        )
    n_distinct = len(np.unique(labels))
    if len(labels) >= 20 and n_distinct > len(labels) // 2:
        log.warning(
            "%s: the last column, read as the class label, has %d distinct values in %d rows; "
            "if it is a feature, not a label, %s.",
            path,
            n_distinct,
            len(labels),
            fix,
        )


def _read_labels(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _load_npy(path)
    if suffix not in (".csv", ".tsv", ".txt"):
        raise HashlearnFileError(
            f"unsupported labels file type {suffix!r} ({path}); use .npy, .csv or .txt."
        )
    try:
        table = np.loadtxt(
            path, delimiter="\t" if suffix == ".tsv" else ",", dtype=str, ndmin=2, comments=None
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise HashlearnFileError(f"{path}: malformed labels file ({exc}).") from None
    table = np.char.strip(np.char.strip(table), '"')
    numeric = np.vectorize(_is_number, otypes=[bool])(table) if table.size else table
    if len(table) > 1 and not numeric[0].all() and numeric[1:].all():
        table, numeric = table[1:], numeric[1:]  # header row
    if table.size == 0:
        raise HashlearnFileError(f"{path} holds no labels.")
    if table.shape[1] == 1:
        return table[:, 0].astype(np.float64) if numeric.all() else table[:, 0]
    if not numeric.all():
        raise HashlearnFileError(
            f"{path}: a labels file with several columns must be a numeric 0/1 multi-hot matrix."
        )
    return table.astype(np.float64)


def read_arrays(
    features_path: str | os.PathLike,
    labels_path: str | os.PathLike | None = None,
    *,
    require_labels: bool = True,
    csv_labels: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``(X, y)`` from a features file and optional labels file (see the module docstring).

    With ``require_labels=False`` a file without labels gives ``(X, None)``. A ``.csv``/``.tsv``
    without a labels file has its labels in the last column (the documented format) unless
    ``csv_labels=False``, which reads every column as a feature.
    """
    path = _existing(features_path, "features")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        X, y = _load_npz(path)
    elif suffix == ".npy":
        X, y = _load_npy(path), None
    elif suffix in (".csv", ".tsv"):
        X, y = _read_text_table(path, labels_last=labels_path is None and csv_labels)
    else:
        raise HashlearnFileError(
            f"unsupported features file type {suffix!r} ({path}); use .npz, .npy or .csv."
        )
    if labels_path is not None:
        y = _read_labels(_existing(labels_path, "labels"))
    if y is None and require_labels:
        raise HashlearnFileError(
            f"{path} has no labels; pass a labels file (labels_path / --labels) or {_HOW}."
        )
    return X, y


def file_record(path: str | os.PathLike) -> dict[str, Any]:
    """Provenance of one file for a manifest: absolute path, size and SHA-256."""
    path = Path(path)
    return {"path": str(path.resolve()), "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def load_files(
    features_path: str | os.PathLike,
    labels_path: str | os.PathLike | None = None,
    *,
    query_size: SizeArg = 0.1,
    train_size: SizeArg = None,
    val_size: SizeArg = 0,
    split_seed: int = 0,
    name: str | None = None,
    require_labels: bool = True,
) -> Dataset:
    """Read your features (and labels) from files and split them like :func:`from_arrays`.

    An ``.npz`` holding ready-made splits (``X_query``/``y_query``, ``X_database``/``y_database``
    and optionally ``X_train``/``y_train``, ``X_val``/``y_val``) is used as it is (see
    :func:`hashlearn.data.user.from_splits`); the split arguments are then ignored. The manifest
    records each file's path, size and SHA-256. With ``require_labels=False`` a file without
    labels gives an unlabelled dataset (``y`` is ``None``; for neighbour metrics).
    """
    files = [features_path] + ([] if labels_path is None else [labels_path])
    path = _existing(features_path, "features")
    if path.suffix.lower() == ".npz" and labels_path is None:
        given = _predefined_splits(_npz_arrays(path))
        if given is not None:
            missing = [k for k in ("query", "database") if k not in given]
            if missing:
                raise HashlearnFileError(
                    f"{path} holds split arrays {sorted(given)} but no X_{missing[0]}; "
                    "ready-made splits need at least X_query/y_query and X_database/y_database."
                )
            return from_splits(**given, name=name or path.stem, _sources=[file_record(path)])
    X, y = read_arrays(features_path, labels_path, require_labels=require_labels)
    return from_arrays(
        X,
        y,
        query_size=query_size,
        train_size=train_size,
        val_size=val_size,
        split_seed=split_seed,
        name=name or Path(features_path).stem,
        require_labels=require_labels,
        _sources=[file_record(f) for f in files],
    )
