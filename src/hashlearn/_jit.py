"""Say when a numba kernel is about to be compiled rather than loaded from numba's cache.

Every kernel is ``@numba.njit(cache=True)``: the first call in a new install (or after an
upgrade) compiles it, which for the multi-index-hashing kernels takes tens of seconds; later
runs load the machine code from the cache (``__pycache__`` beside the module, or
``$NUMBA_CACHE_DIR``). :func:`note_compile` logs one line before such a first call, so a long
silent pause is explained.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("hashlearn")

_NOTED: set[int] = set()


def _cache_index(dispatcher: Any) -> Path | None:
    """The cache index file numba reads for ``dispatcher`` (numba internals: None if they
    changed, in which case nothing is said)."""
    try:
        return Path(dispatcher._cache._cache_file._index_path)
    except (AttributeError, TypeError):
        return None


def note_compile(*dispatchers: Any, what: str) -> None:
    """Log once per process, before the first call, when a dispatcher has no cached code yet."""
    fresh = [d for d in dispatchers if id(d) not in _NOTED and not d.signatures]
    _NOTED.update(id(d) for d in dispatchers)
    missing = [p for p in map(_cache_index, fresh) if p is not None and not p.exists()]
    if missing:
        log.info(
            "compiling the %s kernels (numba, once per install: up to half a minute; cached in %s)",
            what,
            missing[0].parent,
        )
