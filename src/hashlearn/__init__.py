"""hashlearn: learning to hash, packed binary codes and fast exact Hamming search."""

from typing import Any

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


def __getattr__(name: str) -> Any:
    # pack, unpack and hamming_distances load on first use: hashlearn.codes imports numba,
    # which `hashlearn --version` and `--help` must not wait for.
    if name in ("pack", "unpack", "hamming_distances"):
        from hashlearn import codes

        return getattr(codes, name)
    raise AttributeError(f"module 'hashlearn' has no attribute {name!r}")
