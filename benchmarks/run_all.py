"""Run every benchmark (``bench_*.py`` in this folder) one after the other.

    python benchmarks/run_all.py            # full sizes
    python benchmarks/run_all.py --quick    # smoke run
    python benchmarks/run_all.py search metrics   # only some

Each script prints its own table with ratios against the reference it measures in the same
run and writes ``results/bench_<name>.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    names = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help=f"benchmarks to run (of: {', '.join(names)})")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    unknown = sorted(set(args.only) - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    failed = []
    for name in args.only or names:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        cmd = [sys.executable, str(HERE / f"bench_{name}.py")] + (["--quick"] if args.quick else [])
        code = subprocess.call(cmd)
        print(f"--- {name}: exit {code}, {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
