"""``hashlearn reproduce``: run a TOML-described grid of methods x quantization x bits x seeds
into a folder (resumable) and write ``report.md`` and ``report.html`` there.

Example::

    hashlearn reproduce configs/h2q-loss-ablation-fashion-mnist.toml --output reports/h2q-ablation
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from hashlearn.cli._common import add_command

log = logging.getLogger("hashlearn")


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "reproduce",
        help="rerun a paper's table from a TOML config; results and report in a folder",
        description=(
            "Run every cell of the grid in CONFIG (methods x quantization x bits x seeds) not "
            "yet in OUTPUT/results.jsonl, appending each as it finishes, then write "
            "OUTPUT/report.md and a self-contained OUTPUT/report.html. Rerunning resumes; a "
            "folder written by another config is refused. See the configs/ folder."
        ),
    )
    parser.add_argument("config", help="the grid's TOML file")
    parser.add_argument("--output", required=True, help="folder for results and report")
    parser.add_argument(
        "--data-dir", default=None, help="folder holding the dataset files (overrides the config)"
    )
    parser.add_argument(
        "--no-download", action="store_true", help="never download missing dataset files"
    )
    parser.add_argument(
        "--max-cells", type=int, default=None, help="stop after running this many cells"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="write the report from finished cells only"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for deep cells (0: torch's default; 1 is fastest on shared cores)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hashlearn.reproduce import ResultsLog, load_config, run_grid, write_report

    config = load_config(args.config)
    if args.report_only:
        records = ResultsLog(args.output, config).open()
    else:
        records = run_grid(
            config,
            args.output,
            data_dir=args.data_dir,
            download=not args.no_download,
            progress=not args.quiet,
            max_cells=args.max_cells,
            threads=args.threads or None,
        )
    md, page = write_report(records, config, args.output)
    log.info("%d cells; report: %s and %s", len(records), md, page)
    print(md.read_text(encoding="utf-8"))
    return 0
