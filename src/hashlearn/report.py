"""Readable tables and PNG plots of evaluation results (shared by the CLI and benchmarks)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hashlearn._io import atomic_write


def results_columns(
    k: int = 100, topk: int | None = None, radius: int = 2
) -> list[tuple[str, str, str]]:
    """Table columns for evaluation records, each header naming its metric's cut-off.

    ``mAP@all`` (or ``mAP@topk``), ``P@k`` and ``R@k`` with the actual ``k``, ``P(r<=2)`` the
    precision within Hamming radius ``radius``, and the fit / encode / search seconds.
    """
    return [
        ("method", "method", "s"),
        ("bits", "bits", "d"),
        ("map", f"mAP@{'all' if topk is None else topk}", ".4f"),
        ("precision_at_k", f"P@{k}", ".4f"),
        ("recall_at_k", f"R@{k}", ".4f"),
        ("precision_within_radius", f"P(r<={radius})", ".4f"),
        ("fit_s", "fit s", ".2f"),
        ("encode_s", "encode s", ".3f"),
        ("search_s", "search s", ".3f"),
    ]


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """Align ``rows`` into a plain-text table.

    Args:
        rows: one dict per row.
        columns: ``(key, header, format)`` triples, e.g. ``("map", "mAP", ".4f")``; a missing
            or ``None`` value prints as ``-``.
    """

    def cell(row: dict[str, Any], key: str, fmt: str) -> str:
        value = row.get(key)
        if value is None:
            return "-"
        try:
            return format(value, fmt)
        except (TypeError, ValueError):
            return str(value)

    body = [[cell(row, key, fmt) for key, _, fmt in columns] for row in rows]
    headers = [header for _, header, _ in columns]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) for r in body) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in body)])


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return text == "-"
    return True


def plot_pr_curves(
    curves: dict[str, dict[str, list]], path: str | os.PathLike, title: str = ""
) -> Path:
    """Save precision–recall curves (one line per label) as a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=120)
    for label, curve in curves.items():
        ax.plot(curve["recall"], curve["precision"], marker=".", label=label)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title or "Hamming-ball precision–recall")
    ax.legend(fontsize=8)
    return save_png(fig, path)


def save_png(fig: Any, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure to ``path`` as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    target = Path(path)
    with atomic_write(target) as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)
    return target
