"""Where dataset folders are looked for: one rule for every file-based dataset.

For a dataset stored in a folder named ``F`` (``cifar-10-batches-bin``, ``nus-wide``, ...):

1. with ``data_dir=D`` only ``D/F`` and ``D`` itself (so ``D`` may be the dataset folder);
2. otherwise ``$HASHLEARN_DATA/F`` and ``$HASHLEARN_DATA``, then the user cache
   ``$XDG_CACHE_HOME/hashlearn/F`` (default ``~/.cache/hashlearn/F``).

Downloads go to ``D``, else ``$HASHLEARN_DATA``, else the user cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from hashlearn.data.download import user_cache_dir


def candidate_dirs(folder: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders that may hold dataset folder ``folder``, in search order (see module docs)."""
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        return [root / folder, root]
    dirs: list[Path] = []
    if os.environ.get("HASHLEARN_DATA"):
        root = Path(os.environ["HASHLEARN_DATA"]).expanduser()
        dirs += [root / folder, root]
    dirs.append(user_cache_dir() / folder)
    return dirs


def download_root(data_dir: str | os.PathLike | None = None) -> Path:
    """Where an archive is downloaded and unpacked (see module docs)."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("HASHLEARN_DATA"):
        return Path(os.environ["HASHLEARN_DATA"]).expanduser()
    return user_cache_dir()


def first_match(
    folders: list[str],
    data_dir: str | os.PathLike | None,
    is_complete: Callable[[Path], bool],
) -> tuple[Path | None, list[str]]:
    """The first candidate folder (over every name in ``folders``) that ``is_complete``,
    and the list of places looked at (for error messages and ``hashlearn datasets``)."""
    looked: list[str] = []
    for folder in folders:
        for path in candidate_dirs(folder, data_dir):
            if path.is_dir() and is_complete(path):
                return path, looked + [str(path)]
            looked.append(str(path))
    return None, list(dict.fromkeys(looked))
