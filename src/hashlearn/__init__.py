"""hashlearn: learning to hash, packed binary codes and fast exact Hamming search."""

from hashlearn.codes import hamming_distances, pack, unpack
from hashlearn.exceptions import HashlearnError, HashlearnFileError, HashlearnInputError

__version__ = "0.1.0"
__all__ = [
    "pack",
    "unpack",
    "hamming_distances",
    "HashlearnError",
    "HashlearnFileError",
    "HashlearnInputError",
    "__version__",
]
