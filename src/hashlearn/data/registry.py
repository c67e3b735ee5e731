"""Name → dataset registry: a plain dict, the decorator that fills it and its record types.

A dataset module registers a *source reader* — a function returning the whole pooled dataset
as a :class:`Source` — together with its split protocols. Adding a dataset is one module with
one ``@register_dataset`` line, plus one import in :mod:`hashlearn.data.catalogue`, which
imports every dataset module and holds :func:`~hashlearn.data.catalogue.load_dataset`. This
module imports no dataset module, so every dataset module can import it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from hashlearn.data.splits import Protocol


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

    X: np.ndarray | Callable[[Any], np.ndarray]
    y: np.ndarray
    images: Any  # uint8 array, a lazy hashlearn.data.images.ImageFiles, or None
    class_names: list[str]
    files: list[dict[str, Any]]
    predefined: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about a dataset without reading it (used by ``hashlearn datasets``).

    ``locate(data_dir)`` returns where the files are (a path, or a short note such as
    "bundled with scikit-learn") or ``None`` when they are not on this machine;
    ``install_hint`` says how to get them; ``searched(data_dir)`` lists the places looked at.
    ``n_classes`` / ``n_items`` are 0 for datasets whose size is only known once read
    (the user's own image folders).
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
    searched: Callable[[str | os.PathLike | None], list[str]] | None = None

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
    searched: Callable[[str | os.PathLike | None], list[str]] | None = None,
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
            searched=searched,
        )
        return read

    return decorator


def registered_datasets() -> Mapping[str, DatasetInfo]:
    """Read-only view of the datasets registered by the modules imported so far.

    Use :func:`hashlearn.data.available_datasets` for every dataset hashlearn ships.
    """
    return MappingProxyType(_DATASETS)
