"""The report's plots, each returned as PNG bytes (the HTML report embeds them as base64)."""

from __future__ import annotations

import io
from collections import defaultdict

import numpy as np


def _figure(width: float = 5.5, height: float = 4.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(width, height), dpi=110)


def _png(plt, fig) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def map_vs_bits(records: list[dict], title: str) -> bytes:
    """Mean mAP (± std over seeds) against code length, one line per method."""
    plt, fig, ax = _figure()
    by_name: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        by_name[r["name"]][r["bits"]].append(r["map"])
    for name, per_bits in sorted(by_name.items()):
        bits = sorted(per_bits)
        mean = [np.mean(per_bits[b]) for b in bits]
        std = [np.std(per_bits[b]) for b in bits]
        ax.errorbar(bits, mean, yerr=std, marker="o", capsize=3, label=name)
    ax.set_xlabel("bits")
    ax.set_ylabel("mAP")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(plt, fig)


def pr_curves(records: list[dict], bits: int, title: str) -> bytes:
    """Hamming-ball precision–recall at ``bits``, averaged over seeds, one line per method."""
    plt, fig, ax = _figure()
    by_name: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r["bits"] == bits and r.get("pr_curve"):
            by_name[r["name"]].append(r["pr_curve"])
    for name, curves in sorted(by_name.items()):
        recall = np.mean([c["recall"] for c in curves], axis=0)
        precision = np.nanmean([np.asarray(c["precision"], dtype=float) for c in curves], axis=0)
        ax.plot(recall, precision, marker=".", label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"{title} ({bits} bits)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(plt, fig)


def code_scatter(records: list[dict]) -> bytes:
    """The 2-bit continuous codes of query items, coloured by class, one panel per method
    (Doan et al., CVPR 2022, poster figure "2-bit hash function on 4 CIFAR-10 classes")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(records), figsize=(3.6 * len(records), 3.6), dpi=110)
    axes = np.atleast_1d(axes)
    for ax, r in zip(axes, records):
        z = np.asarray(r["embeddings"]["z"])
        y = np.asarray(r["embeddings"]["y"])
        for c in np.unique(y):
            ax.scatter(z[y == c, 0], z[y == c, 1], s=6, alpha=0.6, label=str(c))
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_title(f"{r['name']} (seed {r['seed']})", fontsize=9)
        ax.legend(fontsize=6, title="class", title_fontsize=6)
    return _png(plt, fig)


def training_curves(records: list[dict]) -> bytes:
    """Validation codes' quantization error and mean per-bit entropy over the epochs, one line
    per method (mean over seeds) — the poster's panels (a) and (b)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.8), dpi=110)
    by_name: dict[str, list[list[dict]]] = defaultdict(list)
    for r in records:
        history = r.get("training", {}).get("history", [])
        if history and "quantization_error" in history[0]:
            by_name[f"{r['name']} {r['bits']}b"].append(history)
    for name, runs in sorted(by_name.items()):
        n = min(len(h) for h in runs)
        epochs = np.arange(1, n + 1)
        err = np.mean([[e["quantization_error"] for e in h[:n]] for h in runs], axis=0)
        ent = np.mean([[np.mean(e["bit_entropy"]) for e in h[:n]] for h in runs], axis=0)
        ax1.plot(epochs, err, marker=".", label=name)
        ax2.plot(epochs, ent, marker=".", label=name)
    ax1.set_title("(a) quantization error  mean (z - sgn z)^2")
    ax2.set_title("(b) mean per-bit entropy (bits)")
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return _png(plt, fig)
