"""Download a file with a progress bar, verification and an atomic rename.

The file is streamed into a temporary sibling of its destination; only when the caller's
``verify`` check passes is it renamed into place, so an interrupted or corrupted download
never leaves a file that a later run would trust.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from hashlearn._io import HashlearnFileError, atomic_path

log = logging.getLogger("hashlearn.data")

CHUNK = 1 << 16


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/hashlearn`` (default ``~/.cache/hashlearn``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hashlearn"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    verify: Callable[[Path], None] | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> str:
    """Download ``url`` to ``dest``; return the MD5 of the downloaded bytes.

    ``verify(tmp_path)`` runs on the complete temporary file and raises to reject it (the
    temporary file is then deleted). Network and file errors become
    :class:`HashlearnFileError` naming the URL.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HashlearnFileError(
            f"cannot create {dest.parent} for the download ({exc.strerror}); pass a writable "
            "data_dir or set HASHLEARN_DATA."
        ) from None
    md5 = hashlib.md5(usedforsecurity=False)
    log.info("downloading %s -> %s", url, dest)
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                total = response.headers.get("Content-Length")
                with tqdm(
                    total=int(total) if total else None,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    disable=not progress,
                    file=sys.stderr,
                    leave=False,
                ) as bar:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        md5.update(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise HashlearnFileError(f"download of {url} failed: {reason}") from None
        if verify is not None:
            verify(tmp)
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
    return md5.hexdigest()
