"""Checksummed tensor files and crash-safe checkpoint folders of a run directory.

Tensor files (``model.safetensors``, ``optimizer.safetensors``) carry the SHA-256 of every
tensor (of its dtype, shape and bytes) in their safetensors header; :func:`load_tensors`
verifies them, so a flipped byte is an error naming the file, never silently used weights; a
file without them is refused too (stripping the header must not skip the verification).

A checkpoint is a folder ``checkpoints/epoch-NNNN`` (``epoch-NNNN-K`` when epoch ``NNNN`` is
written again, e.g. the final checkpoint of a run after the last epoch's) holding
``model.safetensors``, ``optimizer.safetensors`` and ``state.json``; ``state.json`` records
the SHA-256 of both tensor files and of its own content. :func:`write_checkpoint` never
replaces or removes the live checkpoint before its successor is complete:

1. the new folder is written under a temporary name (``.epoch-NNNN.tmp``) and fsynced;
2. it is renamed to a name no other folder has, and the ``checkpoints`` folder is fsynced;
3. ``latest.json`` is rewritten atomically to name it;
4. only then are older folders removed (all but the new one and its predecessor).

A crash at any moment therefore leaves at least one intact checkpoint. :func:`read_checkpoint`
does not trust ``latest.json`` (it may be missing, or one step behind): it verifies the folders
newest first and returns the newest intact one, with the reasons it skipped any newer ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import safe_open
from safetensors.torch import save as serialize

from hashlearn._checksums import file_sha256 as _file_sha256
from hashlearn._io import (
    HashlearnFileError,
    _describe,
    _fsync_dir,
    _json_default,
    clean_stale_temps,
    write_bytes_atomic,
    write_json_atomic,
)

CHECKPOINTS = "checkpoints"
LATEST = "latest.json"
TENSOR_FILES = ("model.safetensors", "optimizer.safetensors")
#: safetensors header entry holding JSON ``{tensor name: SHA-256}``.
CHECKSUM_KEY = "hashlearn.sha256"
_FOLDER = re.compile(r"^epoch-(\d+)(?:-(\d+))?$")
_DAMAGED = "the file is damaged or was edited"


# -- checksummed tensor files ----------------------------------------------------------------
def tensor_sha256(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and C-order bytes (hex)."""
    tensor = tensor.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    if tensor.numel():
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file of a run directory (hex), or a clear error when it is missing."""
    return _file_sha256(path, missing="; the run directory is incomplete")


def save_tensors(
    path: str | os.PathLike,
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """Write ``tensors`` (CPU copies, contiguous) to a safetensors file atomically, with the
    SHA-256 of each tensor and ``metadata`` (strings) in its header."""
    payload = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    sums = json.dumps({k: tensor_sha256(v) for k, v in payload.items()}, sort_keys=True)
    # Serialised in memory, then written through the verified writer: a full disk is an
    # error naming the file and its errno (safetensors' own writer reports a bare os error).
    data = serialize(payload, metadata={**(metadata or {}), CHECKSUM_KEY: sums})
    write_bytes_atomic(path, data)


def read_tensor_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, header metadata)`` of a safetensors file, its checksums verified."""
    path = Path(path)
    clean_stale_temps(path, dead_only=True)
    if not path.is_file():
        raise HashlearnFileError(f"missing file {path}; the run directory is incomplete.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as exc:
        raise HashlearnFileError(f"{path} is damaged ({type(exc).__name__}: {exc}).") from None
    stored = meta.get(CHECKSUM_KEY)
    if stored is None:
        raise HashlearnFileError(
            f"{path} has no checksums (no {CHECKSUM_KEY!r} header entry), so it cannot be "
            f"verified; {_DAMAGED} (hashlearn writes them with every tensor file)."
        )
    try:
        sums = json.loads(stored)
    except ValueError:
        raise HashlearnFileError(f"{path}: unreadable checksum header; {_DAMAGED}.") from None
    if not isinstance(sums, dict) or set(sums) != set(tensors):
        raise HashlearnFileError(f"{path}: its tensors differ from its checksums; {_DAMAGED}.")
    for key, tensor in tensors.items():
        if tensor_sha256(tensor) != sums[key]:
            raise HashlearnFileError(
                f"{path}: tensor {key!r} does not match the SHA-256 stored when it was saved; "
                f"{_DAMAGED}."
            )
    return tensors, meta


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, verified (see :func:`read_tensor_file`)."""
    return read_tensor_file(path)[0]


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file of a run directory, or a clear error when it is missing or damaged."""
    path = Path(path)
    clean_stale_temps(path, dead_only=True)
    if not path.is_file():
        raise HashlearnFileError(f"missing file {path}; is this a hashlearn run directory?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HashlearnFileError(f"{path} is not valid JSON ({exc}).") from None


def _json_sha256(obj: Any) -> str:
    """SHA-256 of ``obj`` as canonical JSON (what it reads back as, keys sorted)."""
    canonical = json.loads(json.dumps(obj, default=_json_default))
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


# -- checkpoint folders ----------------------------------------------------------------------
def checkpoint_folders(run_dir: str | os.PathLike) -> list[Path]:
    """The checkpoint folders of ``run_dir``, newest first (by epoch, then by rewrite)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _FOLDER.match(path.name)
        if match and path.is_dir():
            found.append(((int(match[1]), int(match[2] or 1)), path))
    return [path for _, path in sorted(found, reverse=True)]


def _new_name(run_dir: str | os.PathLike, epoch: int) -> str:
    """A folder name for checkpoint ``epoch`` that sorts after every existing folder of the
    same epoch (``epoch-NNNN``, then ``epoch-NNNN-2``, ...), so the newest is found first."""
    rewrites = [
        int(match[2] or 1)
        for folder in checkpoint_folders(run_dir)
        if (match := _FOLDER.match(folder.name)) and int(match[1]) == epoch
    ]
    rewrite = max(rewrites, default=0) + 1
    return f"epoch-{epoch:04d}" if rewrite == 1 else f"epoch-{epoch:04d}-{rewrite}"


def _rotation_step(step: str, folder: str) -> None:
    """Called after each step of :func:`write_checkpoint` (``written``, ``renamed``,
    ``pointed``, ``pruned``) with the new folder's name; does nothing. Fault-injection tests
    replace it to crash a trainer between two steps."""


def _remove(folder: Path) -> None:
    """Remove a checkpoint folder: renamed to a temporary name first (atomic), so a crash
    while deleting its files never leaves a half-deleted ``epoch-*`` folder behind."""
    doomed = folder.with_name(f".{folder.name}.old.tmp")
    shutil.rmtree(doomed, ignore_errors=True)
    os.rename(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def write_checkpoint(
    run_dir: str | os.PathLike,
    epoch: int,
    weights: dict[str, torch.Tensor],
    optimizer_tensors: dict[str, torch.Tensor],
    state: dict,
    keep: str | None = None,
) -> str:
    """Write checkpoint ``epoch`` crash-safely (see the module docstring); returns its folder
    name. Older folders other than ``keep`` (the checkpoint this one follows) are removed
    once ``latest.json`` names the new one. The caller holds the run directory's lock."""
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    for junk in root.glob(".epoch-*.tmp"):  # left by an interrupted write or removal
        shutil.rmtree(junk, ignore_errors=True)
    name = _new_name(run_dir, epoch)
    tmp = root / f".{name}.tmp"
    try:
        tmp.mkdir()
        save_tensors(tmp / TENSOR_FILES[0], weights)
        save_tensors(tmp / TENSOR_FILES[1], optimizer_tensors)
        record = {**state, "files": {f: file_sha256(tmp / f) for f in TENSOR_FILES}}
        write_json_atomic(tmp / "state.json", {**record, "sha256": _json_sha256(record)})
        _fsync_dir(tmp)
    except BaseException as exc:  # a full disk, a write error, an interrupt: no half folder
        shutil.rmtree(tmp, ignore_errors=True)
        cause = exc if type(exc) is not HashlearnFileError else exc.__cause__
        if isinstance(cause, OSError):
            earlier = checkpoint_folders(run_dir)
            kept = "the earlier checkpoints are unchanged" if earlier else "nothing was written"
            raise HashlearnFileError(
                f"could not write checkpoint {root / name}: {_describe(cause)}; {kept}."
            ) from exc
        raise
    _rotation_step("written", name)
    os.rename(tmp, root / name)  # a free name: no checkpoint is replaced
    _fsync_dir(root)
    _rotation_step("renamed", name)
    write_json_atomic(root / LATEST, {"epoch": epoch, "folder": name})
    _rotation_step("pointed", name)
    for folder in checkpoint_folders(run_dir):
        if folder.name not in (name, keep):
            _remove(folder)
    _fsync_dir(root)
    _rotation_step("pruned", name)
    return name


def load_checkpoint(folder: str | os.PathLike) -> tuple[dict, dict, dict]:
    """``(weights, optimizer_tensors, state)`` of one checkpoint folder, every checksum
    verified; a :class:`HashlearnFileError` naming the damaged file otherwise."""
    folder = Path(folder)
    path = folder / "state.json"
    saved = read_json(path)
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
        raise HashlearnFileError(f"{path} is not a checkpoint state; {_DAMAGED}.")
    digest = saved.pop("sha256", None)
    if digest is None or not isinstance(saved.get("files"), dict):
        raise HashlearnFileError(f"{path} has no checksums, so it cannot be verified; {_DAMAGED}.")
    if digest != _json_sha256(saved):
        raise HashlearnFileError(
            f"{path} does not match the SHA-256 stored when it was saved; {_DAMAGED}."
        )
    match = _FOLDER.match(folder.name)
    if match and saved["state"].get("epoch") != int(match[1]):
        raise HashlearnFileError(
            f"{path} claims epoch {saved['state'].get('epoch')} in folder {folder.name}; "
            f"{_DAMAGED}."
        )
    for name, expected in saved.pop("files").items():
        if file_sha256(folder / name) != expected:
            raise HashlearnFileError(
                f"{folder / name} does not match the SHA-256 in state.json; {_DAMAGED}."
            )
    weights, optimizer = (load_tensors(folder / name) for name in TENSOR_FILES)
    return weights, optimizer, saved


class Found(NamedTuple):
    """The newest intact checkpoint: its content, folder name, and the newer folders skipped
    (one reason each)."""

    checkpoint: tuple[dict, dict, dict]
    folder: str
    skipped: list[str]


def read_checkpoint(run_dir: str | os.PathLike) -> Found | None:
    """The newest intact checkpoint of ``run_dir`` (whatever ``latest.json`` says), or None
    when there is no checkpoint folder; a :class:`HashlearnFileError` listing every folder's
    problem when none is intact."""
    skipped = []
    for folder in checkpoint_folders(run_dir):
        try:
            return Found(load_checkpoint(folder), folder.name, skipped)
        except HashlearnFileError as exc:
            skipped.append(f"{folder.name}: {exc}")
    if skipped:
        raise HashlearnFileError(
            f"no intact checkpoint in {Path(run_dir) / CHECKPOINTS} ({'; '.join(skipped)}); "
            "the run cannot be resumed: start it again in a new `run_dir`."
        )
    return None
