"""Rerun the seed papers' tables: a grid of methods x quantization x bits x seeds described in
a TOML file, run resumably into a folder, reported in Markdown and self-contained HTML beside
the papers' published numbers.

    from hashlearn.reproduce import load_config, run_grid, write_report
    config = load_config("configs/h2q-fashion-mnist.toml")
    records = run_grid(config, "out/h2q")
    write_report(records, config, "out/h2q")
"""

from hashlearn.reproduce.config import config_hash, load_config, parse_config
from hashlearn.reproduce.grid import Cell, expand
from hashlearn.reproduce.published import PUBLISHED
from hashlearn.reproduce.report import write_report
from hashlearn.reproduce.runner import ResultsLog, run_grid

__all__ = [
    "PUBLISHED",
    "Cell",
    "ResultsLog",
    "config_hash",
    "expand",
    "load_config",
    "parse_config",
    "run_grid",
    "write_report",
]
