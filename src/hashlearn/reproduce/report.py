"""``report.md`` (figures beside it as PNG files) and a self-contained ``report.html`` (figures
embedded as base64 PNG) from a reproduction's ``results.jsonl``.

Tables give mean ± std over seeds; paired differences subtract the baseline cell of the same
loss, code length, seed and label noise, so the spread of a difference is not inflated by the
seeds' shared variation. The published numbers of the paper the config names are printed beside
ours, with the difference where the dataset and protocol are the paper's.
"""

from __future__ import annotations

import base64
import html
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import atomic_path, write_text_atomic
from hashlearn.reproduce import figures
from hashlearn.reproduce.published import (
    PUBLISHED,
    RULES,
    matches,
    published_tables,
    table_value,
)

Section = tuple[str, Any]  # ("h", text) | ("p", text) | ("table", (headers, rows)) | ("img", ...)


def _fmt(values: list[float], digits: int = 4) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def _noise_tag(noise: float, noises: list[float]) -> str:
    return f" @noise {noise:g}" if len(noises) > 1 else ""


def metric_table(records: list[dict], metric: str) -> tuple[list[str], list[list[str]]]:
    """Rows: method (and label noise); columns: bits; cells: mean ± std over seeds."""
    bits = sorted({r["bits"] for r in records})
    noises = sorted({r["label_noise"] for r in records})
    groups: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    order: list[tuple] = []
    for r in records:
        key = (r["name"], r["label_noise"])
        if key not in groups:
            order.append(key)
        if r.get(metric) is not None:
            groups[key][r["bits"]].append(float(r[metric]))
    rows = []
    for name, noise in order:
        seeds = max(len(v) for v in groups[(name, noise)].values()) if groups[(name, noise)] else 0
        rows.append(
            [name + _noise_tag(noise, noises), str(seeds)]
            + [_fmt(groups[(name, noise)].get(b, [])) for b in bits]
        )
    return ["method", "seeds", *(f"{b} bits" for b in bits)], rows


def paired_differences(records: list[dict], pairs: list[list[str]]) -> list[list[str]]:
    """For each (better, baseline) pair: mean ± std over seeds of the per-seed mAP difference.

    Deep cells pair on quantization (same loss, bits, seed, noise; a labelled variant pairs
    with an unlabelled baseline); shallow cells pair on method names."""
    index = {}
    for r in records:
        index[(r["kind"], r["method"], r["quantization"], r["label"], r["bits"], r["seed"],
               r["label_noise"])] = r  # fmt: skip
    diffs: dict[tuple, list[float]] = defaultdict(list)
    for r in records:
        for better, base in pairs:
            if r["kind"] == "deep" and r["quantization"] == better:
                for label in dict.fromkeys((r["label"], "")):
                    other = index.get(
                        ("deep", r["method"], base, label, r["bits"], r["seed"], r["label_noise"])
                    )
                    if other is not None:
                        name = f"{r['name']} − {other['name']}"
                        diffs[(name, r["bits"], r["label_noise"])].append(r["map"] - other["map"])
                        break
            elif r["kind"] == "shallow" and r["method"] == better:
                other = index.get(
                    ("shallow", base, "", r["label"], r["bits"], r["seed"], r["label_noise"])
                )
                if other is not None:
                    name = f"{r['name']} − {other['name']}"
                    diffs[(name, r["bits"], r["label_noise"])].append(r["map"] - other["map"])
    noises = sorted({k[2] for k in diffs})
    rows = []
    for (name, bits, noise), values in diffs.items():
        wins = sum(v > 0 for v in values)
        rows.append(
            [name + _noise_tag(noise, noises), str(bits), _fmt(values), f"{wins}/{len(values)}"]
        )
    return rows


def published_sections(records: list[dict], paper: str | None) -> list[Section]:
    if paper is None:
        return []
    out: list[Section] = [
        ("h", f"Published numbers ({paper})"),
        ("p", PUBLISHED[paper]["citation"]),
    ]
    tables = published_tables(paper)
    if not tables:
        out.append(("p", "The paper publishes no table we can compare with."))
    deep = [r for r in records if r["kind"] == "deep" and not r["label"]]
    dataset = records[0]["dataset"] if records else ""
    protocol = records[0]["protocol"] if records else None
    rules = ", ".join(f"{k} {v}" for k, v in RULES[paper].items())
    for table in tables:
        same = matches(table, dataset, protocol)
        where = f"{table['dataset']}" + (f" ({table['protocol']})" if table["protocol"] else "")
        note = (
            f"our numbers on the same dataset and protocol, scored under the paper's rules "
            f"({rules}); difference = ours − published"
            if same
            else f"for reference only: our results are on {dataset} ({protocol}), not {where}"
        )
        rows = []
        for (loss, quant), values in table["rows"].items():
            for bits, published in values.items():
                cells = [
                    r for r in deep
                    if r["method"] == loss and r["quantization"] == quant and r["bits"] == bits
                    and r["label_noise"] == 0
                ]  # fmt: skip
                # Beside a comparable table: ours under its rules; else for reference only.
                found = (table_value(r, table) if same else r.get(table["metric"]) for r in cells)
                ours = [v for v in found if v is not None]
                mean = f"{np.mean(ours):.4f}" if ours else "-"
                diff = f"{np.mean(ours) - published:+.4f}" if ours and same else "-"
                rows.append([f"{loss}+{quant}", str(bits), f"{published:.4f}", mean, diff])
        out.append(("p", f"**{where}, {table['metric_label']}** — {note}."))
        out.append(("table", (["method", "bits", "published", "ours", "difference"], rows)))
    extra = PUBLISHED[paper]
    if "mean_gains" in extra:
        gains = ", ".join(f"{k} {v:+.2f}" for k, v in extra["mean_gains"].items())
        out.append(
            ("p", f"Published mean mAP change over all methods and datasets: {gains} points.")
        )
    if "timing" in extra:
        rows = [
            [d, *(f"{t[k]:.1f}" for k in ("original", "swd", "hswd"))]
            for d, t in extra["timing"].items()
        ]
        out.append(("p", "Published seconds per epoch (mean over the supervised methods):"))
        out.append(("table", (["dataset", "original", "swd", "hswd"], rows)))
    return out


def timing_rows(records: list[dict]) -> list[list[str]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[r["name"]].append(r)
    rows = []
    for name, rs in groups.items():
        epochs = [h["seconds"] for r in rs for h in r.get("training", {}).get("history", [])]
        per_epoch = f"{np.mean(epochs):.2f}" if epochs else "-"
        rows.append([name, str(len(rs)), f"{np.mean([r['fit_s'] for r in rs]):.2f}", per_epoch])
    return rows


def build_sections(records: list[dict], config: dict) -> list[Section]:
    title = config["title"] or "Reproduction"
    ds = records[0] if records else {}
    out: list[Section] = [("title", title)]
    ev = config["evaluation"]
    out.append(
        ("p", f"Dataset **{ds.get('dataset', '?')}**, protocol {ds.get('protocol')}, split seed "
              f"{ds.get('split_seed')}; {len(records)} finished cells; mAP cut-off "
              f"{ds.get('topk') or 'all'}, P@{ev['k']}, ties {ev['ties']}, queries without "
              f"relevant items: {ev.get('no_relevant', 'skip')}.")
    )  # fmt: skip
    for kind in ("shallow", "deep"):
        part = [r for r in records if r["kind"] == kind]
        if not part:
            continue
        out.append(("h", f"{kind.capitalize()} methods: mAP (mean ± std over seeds)"))
        out.append(("table", metric_table(part, "map")))
        out.append(("h", f"{kind.capitalize()} methods: P@{ev['k']}"))
        out.append(("table", metric_table(part, "precision_at_k")))
    diffs = paired_differences(records, config["report"]["pairs"])
    if diffs:
        out.append(("h", "Paired differences in mAP (same seed; mean ± std over seeds)"))
        out.append(("table", (["difference", "bits", "mAP difference", "wins"], diffs)))
    out.extend(published_sections(records, config["paper"]))
    out.append(("h", "Time"))
    out.append(
        ("table", (["method", "cells", "fit / train s", "s per epoch"], timing_rows(records)))
    )
    out.append(("h", "Figures"))
    out.append(("img", ("map_vs_bits", figures.map_vs_bits(records, "mAP vs bits"))))
    for bits in sorted({r["bits"] for r in records}):
        out.append(("img", (f"pr_{bits}", figures.pr_curves(records, bits, "precision–recall"))))
    scatter = [r for r in records if r.get("embeddings") and r["bits"] == 2]
    if scatter:
        first = {}
        for r in scatter:
            first.setdefault(r["name"], r)
        out.append(("p", "2-bit continuous codes of query items (one seed per method):"))
        out.append(("img", ("codes_2bit", figures.code_scatter(list(first.values())))))
    curves = [r for r in records if r["kind"] == "deep"]
    if curves:
        smallest = min(r["bits"] for r in curves)
        chosen = [r for r in curves if r["bits"] == smallest and r["label_noise"] == 0]
        out.append(("p", f"Validation codes over training ({smallest} bits):"))
        out.append(("img", ("training", figures.training_curves(chosen))))
    return out


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(records: list[dict], config: dict, output: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` (+ ``figures/*.png``) and ``report.html`` into ``output``."""
    output = Path(output)
    sections = build_sections(records, config)
    md, body = [], []
    (output / "figures").mkdir(parents=True, exist_ok=True)
    for kind, content in sections:
        if kind == "title":
            md.append(f"# {content}")
            body.append(f"<h1>{html.escape(content)}</h1>")
        elif kind == "h":
            md.append(f"## {content}")
            body.append(f"<h2>{html.escape(content)}</h2>")
        elif kind == "p":
            md.append(content)
            text = html.escape(content)
            while text.count("**") >= 2:
                text = text.replace("**", "<b>", 1).replace("**", "</b>", 1)
            body.append(f"<p>{text}</p>")
        elif kind == "table":
            headers, rows = content
            md.append(_md_table(headers, rows))
            head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
            cells = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in rows
            )
            body.append(f"<table><tr>{head}</tr>{cells}</table>")
        elif kind == "img":
            name, png = content
            with atomic_path(output / "figures" / f"{name}.png") as tmp:
                Path(tmp).write_bytes(png)
            md.append(f"![{name}](figures/{name}.png)")
            data = base64.b64encode(png).decode()
            body.append(f'<img alt="{name}" src="data:image/png;base64,{data}">')
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}img{max-width:100%}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(config['title'] or 'Reproduction')}</title><style>{style}</style>"
        f"</head><body>{''.join(body)}</body></html>\n"
    )
    write_text_atomic(output / "report.md", "\n\n".join(md) + "\n")
    write_text_atomic(output / "report.html", page)
    return output / "report.md", output / "report.html"
