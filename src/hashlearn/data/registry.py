"""Name → dataset registry and :func:`load_dataset`, the one entry point to every dataset.

A dataset module registers a *source reader* — a function returning the whole pooled dataset
as a :class:`Source` — together with its split protocols; :func:`load_dataset` reads the source
and cuts it with :func:`hashlearn.data.splits.draw_splits`, so every dataset is split by the
same seeded, stratified, documented mechanism. Adding a dataset is one module plus one
``@register_dataset`` line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._validation import HashlearnInputError
from hashlearn.data.base import Dataset, make_dataset
from hashlearn.data.splits import Protocol, check_seed, draw_splits

USER_FILE_SUFFIXES = (".npz", ".npy", ".csv", ".tsv")


@dataclass
class Source:
    """A whole dataset before splitting.

    Attributes:
        X, y, images: pooled features (float32), labels and optional uint8 images; ``X`` may
            instead be a function turning a batch of images into features (computed per split).
        class_names: name of each class id.
        files: provenance records (path, checksums) that go into the manifest.
        predefined: for protocols with a split fixed by the dataset itself, protocol name →
            split name → indices into the pool.
    """

    X: np.ndarray | Callable[[np.ndarray], np.ndarray]
    y: np.ndarray
    images: np.ndarray | None
    class_names: list[str]
    files: list[dict[str, Any]]
    predefined: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about a dataset without reading it (used by ``hashlearn datasets``).

    ``locate(data_dir)`` returns where the files are (a path, or a short note such as
    "bundled with scikit-learn") or ``None`` when they are not on this machine;
    ``install_hint`` says how to get them.
    """

    name: str
    description: str
    read: Callable[..., Source]
    n_classes: int
    n_items: int
    item_shape: tuple[int, ...]
    protocols: Mapping[str, Protocol]
    default_protocol: str
    locate: Callable[[str | os.PathLike | None], str | None]
    install_hint: str = ""

    def split_sizes(self, protocol: str | None = None) -> dict[str, int]:
        proto = self.protocols[protocol or self.default_protocol]
        return proto.sizes(self.n_classes, self.n_items)


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(
    name: str,
    *,
    description: str,
    n_classes: int,
    n_items: int,
    item_shape: tuple[int, ...],
    protocols: list[Protocol],
    locate: Callable[[str | os.PathLike | None], str | None],
    install_hint: str = "",
) -> Callable[[Callable[..., Source]], Callable[..., Source]]:
    """Decorator: register a source reader ``read(*, data_dir, download, progress) -> Source``.

    The first protocol in ``protocols`` is the default.
    """

    def decorator(read: Callable[..., Source]) -> Callable[..., Source]:
        if name in _DATASETS and _DATASETS[name].read is not read:
            raise RuntimeError(f"dataset name {name!r} registered twice")
        _DATASETS[name] = DatasetInfo(
            name=name,
            description=description,
            read=read,
            n_classes=n_classes,
            n_items=n_items,
            item_shape=tuple(item_shape),
            protocols={p.name: p for p in protocols},
            default_protocol=protocols[0].name,
            locate=locate,
            install_hint=install_hint,
        )
        return read

    return decorator


def _load_all() -> None:
    # Importing the dataset modules runs their registrations.
    import hashlearn.data.digits  # noqa: F401
    import hashlearn.data.fashion_mnist  # noqa: F401


def available_datasets() -> list[str]:
    """Sorted names of every registered dataset."""
    _load_all()
    return sorted(_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """Registry entry of ``name`` (accepts ``fashion_mnist`` for ``fashion-mnist``)."""
    _load_all()
    key = name.strip().lower().replace("_", "-")
    if key not in _DATASETS:
        raise HashlearnInputError(
            f"unknown dataset {name!r}; choose one of: {', '.join(sorted(_DATASETS))}, "
            f"or pass the path of your own features file ({', '.join(USER_FILE_SUFFIXES)})."
        )
    return _DATASETS[key]


def _looks_like_path(name: str) -> bool:
    return (
        Path(name).suffix.lower() in USER_FILE_SUFFIXES
        or os.sep in name
        or (os.altsep is not None and os.altsep in name)
    )


def load_dataset(
    name: str | os.PathLike,
    split_seed: int = 0,
    protocol: str | None = None,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> Dataset:
    """Load a registered dataset (or a user's features file) split for retrieval.

    Args:
        name: a registered name (see :func:`available_datasets`) or the path of a ``.npz``,
            ``.npy`` or ``.csv`` file of your own (see :func:`hashlearn.data.load_files`; such
            files are split with its defaults: 10 % query, train = database, and the dataset is
            named by the file's absolute path). ``load_dataset(ds.name, ds.split_seed,
            ds.protocol)`` rebuilds any dataset ``ds`` it returned (also recorded in
            ``ds.manifest["load_dataset"]``).
        split_seed: seed of the stratified split; the same seed gives the same items.
        protocol: split protocol; ``None`` for the dataset's default (see ``hashlearn datasets``).
        data_dir: folder holding the dataset files; when given, only this folder is searched
            and downloads go there. Default: ``$HASHLEARN_DATA``, the user cache, system
            packages (see each dataset's documentation).
        download: allow downloading missing files (with checksum verification).
        progress: show progress bars on stderr.
    """
    split_seed = check_seed(split_seed)
    name_str = os.fspath(name)
    if isinstance(name, os.PathLike) or _looks_like_path(name_str):
        from hashlearn.data.files import load_files

        path = Path(name_str).expanduser().resolve()
        dataset = load_files(path, split_seed=split_seed, name=str(path))
        if protocol is not None and protocol != dataset.protocol:
            raise HashlearnInputError(
                f"protocol {protocol!r} does not apply to {path}, which is split "
                f"{dataset.protocol!r}; to choose split sizes use "
                "hashlearn.data.load_files(..., query_size=..., train_size=...)."
            )
        return _with_recipe(dataset)
    info = dataset_info(name_str)
    protocol = info.default_protocol if protocol is None else protocol
    if protocol not in info.protocols:
        raise HashlearnInputError(
            f"unknown protocol {protocol!r} for dataset {info.name!r}; choose one of: "
            f"{', '.join(info.protocols)}."
        )
    proto = info.protocols[protocol]
    source = info.read(data_dir=data_dir, download=download, progress=progress)
    if proto.fixed_sizes is not None:
        indices = source.predefined[proto.name]
    else:
        rng = np.random.default_rng(split_seed)
        indices = draw_splits(source.y, rng, **proto.counts(info.n_classes))
    dataset = make_dataset(
        name=info.name,
        protocol=proto.name,
        protocol_description=proto.description,
        split_seed=split_seed,
        X=source.X,
        y=source.y,
        images=source.images,
        indices=indices,
        n_classes=info.n_classes,
        class_names=source.class_names,
        sources=source.files,
        randomised=proto.fixed_sizes is None,
    )
    return _with_recipe(dataset)


def _with_recipe(dataset: Dataset) -> Dataset:
    """Record in the manifest the call that rebuilds this exact split."""
    dataset.manifest["load_dataset"] = {
        "name": dataset.name,
        "split_seed": dataset.split_seed,
        "protocol": dataset.protocol,
    }
    return dataset
