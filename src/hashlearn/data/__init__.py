"""Datasets for learning to hash, split by seeded, stratified, documented retrieval protocols.

``load_dataset(name, split_seed=0)`` returns a :class:`Dataset` with ``train``, ``query``,
``database`` (and ``val`` where the protocol has one) splits, each holding float32 features
``X``, labels ``y`` and, for image datasets, uint8 ``images`` (an array, or for large sets a
lazy :class:`ImageFiles` sequence decoded on demand); ``dataset.manifest`` records how the
split was made. ``hashlearn datasets`` lists what is registered and available locally.
"""

from hashlearn._labels import encode_labels, labels_to_multihot
from hashlearn.data.base import Dataset, Split
from hashlearn.data.catalogue import available_datasets, dataset_info, load_dataset
from hashlearn.data.files import load_files, read_arrays
from hashlearn.data.idx import read_idx
from hashlearn.data.image_folder import load_image_folder, load_image_list
from hashlearn.data.images import ImageFiles, ImageTransform
from hashlearn.data.registry import DatasetInfo, Source, register_dataset
from hashlearn.data.splits import Protocol
from hashlearn.data.user import from_arrays, from_splits

__all__ = [
    "Dataset",
    "DatasetInfo",
    "ImageFiles",
    "ImageTransform",
    "Protocol",
    "Source",
    "Split",
    "available_datasets",
    "dataset_info",
    "encode_labels",
    "from_arrays",
    "from_splits",
    "labels_to_multihot",
    "load_dataset",
    "load_files",
    "load_image_folder",
    "load_image_list",
    "read_arrays",
    "read_idx",
    "register_dataset",
]
