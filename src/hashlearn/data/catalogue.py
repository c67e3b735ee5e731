"""Every dataset hashlearn ships, and :func:`load_dataset`, the one entry point to all of them.

Importing this module imports each dataset module, whose ``@register_dataset`` lines fill
:mod:`hashlearn.data.registry`. :func:`load_dataset` reads a registered dataset's source and
cuts it with its protocol (:meth:`hashlearn.data.splits.Protocol.draw`), so every dataset is
split by the same seeded, stratified, documented mechanism; a path instead of a name loads the
user's own file, image folder or image list.
"""

from __future__ import annotations

import os
from pathlib import Path

import hashlearn.data.cifar10  # noqa: F401  (registers "cifar10")
import hashlearn.data.digits  # noqa: F401  (registers "digits")
import hashlearn.data.fashion_mnist  # noqa: F401  (registers "fashion-mnist")
import hashlearn.data.image_folder  # noqa: F401  (registers "image-folder", "image-list")
import hashlearn.data.image_lists  # noqa: F401  (registers "nus-wide", "coco", "imagenet100")
from hashlearn._validation import HashlearnInputError
from hashlearn.data.base import Dataset, dataset_from_source
from hashlearn.data.files import load_files
from hashlearn.data.registry import DatasetInfo, registered_datasets
from hashlearn.data.splits import check_seed

USER_FILE_SUFFIXES = (".npz", ".npy", ".csv", ".tsv")


def available_datasets() -> list[str]:
    """Sorted names of every registered dataset."""
    return sorted(registered_datasets())


def dataset_info(name: str) -> DatasetInfo:
    """Registry entry of ``name`` (accepts ``fashion_mnist`` for ``fashion-mnist``)."""
    datasets = registered_datasets()
    key = name.strip().lower().replace("_", "-")
    if key not in datasets:
        raise HashlearnInputError(
            f"unknown dataset {name!r}; choose one of: {', '.join(sorted(datasets))}, "
            f"or pass the path of your own features file ({', '.join(USER_FILE_SUFFIXES)})."
        )
    return datasets[key]


def _looks_like_path(name: str) -> bool:
    return (
        Path(name).suffix.lower() in (*USER_FILE_SUFFIXES, ".txt")
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
    require_labels: bool = True,
    labels_path: str | os.PathLike | None = None,
) -> Dataset:
    """Load a registered dataset (or a user's features file) split for retrieval.

    Args:
        name: a registered name (see :func:`available_datasets`) or the path of a ``.npz``,
            ``.npy`` or ``.csv`` file of your own (see :func:`hashlearn.data.load_files`; such
            files are split with its defaults: 10 % query, train = database, and the dataset is
            named by the file's absolute path), of a folder of images with one subfolder per
            class (``image-folder``) or of a ``.txt`` image list (``image-list``; see
            :mod:`hashlearn.data.image_folder`). ``load_dataset(ds.name, ds.split_seed,
            ds.protocol)`` rebuilds any dataset ``ds`` it returned (also recorded in
            ``ds.manifest["load_dataset"]``).
        split_seed: seed of the stratified split; the same seed gives the same items.
        protocol: split protocol; ``None`` for the dataset's default (see ``hashlearn datasets``).
        data_dir: folder holding the dataset files; when given, only this folder is searched
            and downloads go there. Default: ``$HASHLEARN_DATA``, the user cache, system
            packages (see each dataset's documentation).
        download: allow downloading missing files (with checksum verification).
        progress: show progress bars on stderr.
        require_labels: ``False`` lets a features file without labels load as an unlabelled
            dataset (``y`` is ``None``), for neighbour metrics.
        labels_path: labels of a features file ``name`` that holds none (a ``.npy``, or a
            ``.csv`` read as all features): ``.npy``, ``.csv`` or ``.txt``, one label per row or
            a multi-hot matrix (see :func:`hashlearn.data.load_files`). Only with a path.
    """
    split_seed = check_seed(split_seed)
    name_str = os.fspath(name)
    is_path = isinstance(name, os.PathLike) or _looks_like_path(name_str)
    if labels_path is not None and not is_path:
        raise HashlearnInputError(
            f"a labels file applies to your own features file, not to the registered dataset "
            f"{name_str!r} (which has its labels); drop the labels file or pass a features path."
        )
    if is_path:
        path = Path(name_str).expanduser().resolve()
        if path.is_dir() or path.suffix.lower() == ".txt":
            if labels_path is not None:
                raise HashlearnInputError(
                    f"{path} is an image folder or list, which names its own labels; "
                    "drop the labels file."
                )
            kind = "image-folder" if path.is_dir() else "image-list"
            return load_dataset(kind, split_seed, protocol, data_dir=path, progress=progress)
        labels = None if labels_path is None else Path(labels_path).expanduser().resolve()
        dataset = load_files(
            path, labels, split_seed=split_seed, name=str(path), require_labels=require_labels
        )
        if protocol is not None and protocol != dataset.protocol:
            raise HashlearnInputError(
                f"protocol {protocol!r} does not apply to {path}, which is split "
                f"{dataset.protocol!r}; to choose split sizes use "
                "hashlearn.data.load_files(..., query_size=..., train_size=...)."
            )
        return _with_recipe(dataset, labels)
    info = dataset_info(name_str)
    protocol = info.default_protocol if protocol is None else protocol
    if protocol not in info.protocols:
        raise HashlearnInputError(
            f"unknown protocol {protocol!r} for dataset {info.name!r}; choose one of: "
            f"{', '.join(info.protocols)}."
        )
    proto = info.protocols[protocol]
    source = info.read(data_dir=data_dir, download=download, progress=progress)
    n_classes = info.n_classes or len(source.class_names)
    indices = proto.draw(source.y, n_classes, split_seed, source.predefined)
    dataset = dataset_from_source(
        source,
        name=info.name,
        protocol=proto.name,
        protocol_description=proto.description,
        split_seed=split_seed,
        indices=indices,
        n_classes=n_classes,
        randomised=proto.fixed_sizes is None,
    )
    dataset.manifest["protocol_parameters"] = proto.record()
    return _with_recipe(dataset)


def _with_recipe(dataset: Dataset, labels_path: Path | None = None) -> Dataset:
    """Record in the manifest the call that rebuilds this exact split."""
    dataset.manifest["load_dataset"] = {
        "name": dataset.name,
        "split_seed": dataset.split_seed,
        "protocol": dataset.protocol,
    }
    if labels_path is not None:
        dataset.manifest["load_dataset"]["labels_path"] = str(labels_path)
    return dataset
