"""Helpers shared by the benchmark scripts: argument parsing, timing, output files."""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hashlearn._io import write_json_atomic

RESULTS = Path(__file__).resolve().parent.parent / "results"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    p.add_argument("--output", type=Path, default=None, help="JSON output path")
    return p


def best_time(fn: Callable[..., Any], *args: Any, repeats: int = 3) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls of ``fn(*args)``, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def save(name: str, payload: dict[str, Any], output: Path | None) -> Path:
    path = output or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": platform.processor() or platform.machine(), **payload}
    write_json_atomic(path, payload)
    return path


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2)
