"""Run a reproduction grid into an output folder, resumably.

``DIR/config.json`` holds the checked config and its hash; ``DIR/results.jsonl`` one JSON line
per finished cell, appended, flushed and fsynced as soon as the cell finishes, each carrying the
config hash. A rerun with the same config skips the cells already there; a folder written by
another config is refused before anything is written. A line cut short by a kill (the only
thing an interrupted run can leave behind) is dropped on resume and its cell rerun.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from hashlearn._io import HashlearnFileError, write_json_atomic, write_text_atomic
from hashlearn._validation import HashlearnInputError
from hashlearn.reproduce.config import config_hash
from hashlearn.reproduce.grid import Cell, expand

log = logging.getLogger("hashlearn")

RESULTS = "results.jsonl"
CONFIG = "config.json"


class ResultsLog:
    """The append-only results file of one config in ``folder``."""

    def __init__(self, folder: str | os.PathLike, config: dict):
        self.folder = Path(folder)
        self.config = config
        self.hash = config_hash(config)
        self.path = self.folder / RESULTS

    def open(self) -> list[dict]:
        """Check the folder belongs to this config (or is new) and return its finished cells."""
        saved = self.folder / CONFIG
        if saved.is_file():
            try:
                other = json.loads(saved.read_text(encoding="utf-8")).get("config_sha256")
            except (json.JSONDecodeError, AttributeError):
                raise HashlearnFileError(f"{saved} is not a reproduction config record.") from None
            if other != self.hash:
                self._refuse(f"its {CONFIG} has config hash {str(other)[:12]}")
        elif self.path.is_file() and self.path.stat().st_size:
            self._refuse(f"it holds {RESULTS} but no {CONFIG}")
        records = self._read()
        self.folder.mkdir(parents=True, exist_ok=True)
        if not saved.is_file():
            write_json_atomic(saved, {"config_sha256": self.hash, "config": self.config})
        return records

    def _refuse(self, why: str) -> None:
        raise HashlearnFileError(
            f"{self.folder} holds results of a different config ({why}; this config's hash "
            f"is {self.hash[:12]}); nothing was overwritten. Rerun with the config that wrote "
            "them to resume, or choose a new --output folder."
        )

    def _read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        records, good = [], []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines) and not text.endswith("\n"):
                    log.warning("%s: dropping a line cut short by an interrupted run", self.path)
                    continue
                raise HashlearnFileError(
                    f"{self.path}, line {number}, is not JSON; the file was edited or "
                    "corrupted. Move it away to start over."
                ) from None
            if record.get("config_sha256") != self.hash:
                self._refuse(f"line {number} was written by config {record.get('config_sha256')}")
            records.append(record)
            good.append(line)
        if good and len(good) != sum(1 for line in lines if line.strip()):
            write_text_atomic(self.path, "\n".join(good) + "\n")
        return records

    def append(self, record: dict) -> None:
        line = json.dumps({**record, "config_sha256": self.hash}, separators=(",", ":"))
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def run_grid(
    config: dict,
    output: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
    max_cells: int | None = None,
    threads: int | None = 1,
) -> list[dict]:
    """Run every cell of ``config`` not yet in ``output/results.jsonl``; return all records.

    Args:
        config: a config from :func:`hashlearn.reproduce.load_config`.
        output: the output folder (created; refused if another config wrote it).
        data_dir: where the dataset files are (overrides the config's ``data_dir``).
        download: allow downloading missing dataset files.
        progress: a progress bar (cells done / left, ETA) and per-run bars on stderr.
        max_cells: stop after running this many cells (the rest stay for a later run).
        threads: torch's intra-op threads for deep cells (``None``: torch's default). One
            thread by default: the small matrix products of a hashing head ran about 10x
            slower with two threads on two shared cores (73 s against 7.5 s a cell, same mAP).
    """
    from tqdm.auto import tqdm

    from hashlearn.reproduce.cells import run_deep, run_shallow
    from hashlearn.reproduce.data import DatasetCache

    results = ResultsLog(output, config)
    records = results.open()
    done = {r["cell"] for r in records}
    cells = expand(config)
    todo = [c for c in cells if c.key not in done]
    log.info(
        "%d cells: %d finished before, %d to run (%s)", len(cells), len(done), len(todo), output
    )
    cache_dir = Path(os.environ.get("HASHLEARN_FEATURE_CACHE", Path(output) / "features"))
    datasets = DatasetCache(cache_dir, data_dir=data_dir, download=download, progress=progress)
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="cells", disable=not progress)
    for count, cell in enumerate(todo):
        if max_cells is not None and count >= max_cells:
            break
        bar.set_postfix_str(f"{cell.name} {cell.bits}b seed {cell.seed}")
        dataset = datasets.for_cell(cell.dataset, cell.seed, cell.label_noise)
        start = time.perf_counter()
        try:
            if cell.kind == "shallow":
                metrics = run_shallow(cell, dataset, config["evaluation"], config["paper"])
            else:
                runs = Path(output) / "runs"
                if threads is not None:  # per cell: shallow cells' OpenMP use resets it
                    import torch

                    torch.set_num_threads(threads)
                metrics = run_deep(
                    cell, dataset, config["evaluation"], runs, False, config["paper"]
                )
        except HashlearnInputError as exc:
            raise type(exc)(
                f"cell {cell.name}, {cell.bits} bits, seed {cell.seed} failed "
                f"({len(records)} cells are saved in {results.path}): {exc}"
            ) from exc
        record: dict[str, Any] = {
            **cell.describe(),
            "dataset": dataset.name,
            "protocol": dataset.protocol,
            "split_seed": dataset.split_seed,
            "seconds": time.perf_counter() - start,
            **metrics,
        }
        results.append(record)
        records.append(json.loads(json.dumps(record)))
        bar.update(1)
    bar.close()
    return records


def cells_of(config: dict) -> list[Cell]:
    """The grid's cells (for listing before a run)."""
    return expand(config)
