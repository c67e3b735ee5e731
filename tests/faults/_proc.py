"""Run hashlearn in real child processes for the fault tests: disk limits, kills, races."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import hashlearn

SRC = str(Path(hashlearn.__file__).resolve().parents[1])


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _disk_limit(max_bytes: int):
    def limit() -> None:
        # Ignore SIGXFSZ so a write past the limit fails with EFBIG, as on a full disk, instead
        # of killing the process.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return limit


def run_cli(args: list[str], cwd: Path, max_file_bytes: int | None = None):
    """``hashlearn ARGS`` in a child process, optionally unable to write past ``max_file_bytes``."""
    return subprocess.run(
        [sys.executable, "-m", "hashlearn.cli.main", *args],
        cwd=cwd, env=env(), capture_output=True, text=True, timeout=300,
        preexec_fn=None if max_file_bytes is None else _disk_limit(max_file_bytes),
    )  # fmt: skip


def run_python(code: str, cwd: Path, max_file_bytes: int | None = None):
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env(), capture_output=True, text=True,
        timeout=300, preexec_fn=None if max_file_bytes is None else _disk_limit(max_file_bytes),
    )  # fmt: skip


def start_python(code: str, cwd: Path) -> subprocess.Popen:
    """Start ``code``; it must print a line once it reached the point the test waits for."""
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=cwd, env=env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_ready(proc: subprocess.Popen, word: str = "ready") -> None:
    line = proc.stdout.readline()
    if word not in line:
        proc.kill()
        raise AssertionError(f"child did not get ready: {line!r} {proc.stderr.read()}")


def one_line_error(result, *needles: str) -> str:
    """Assert a failed CLI run printed one error line (no traceback) holding every needle."""
    assert result.returncode != 0, result.stdout
    err = result.stderr.strip()
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
