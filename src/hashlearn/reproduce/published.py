"""The seed papers' published numbers, as data, with their citations.

Rows are keyed by ``(loss, quantization)`` in hashlearn's names: a method's own quantization
term is ``penalty``, its λ = 0 network ``none``, Doan et al.'s sliced estimate ``swd`` ("-S")
and their proposed hash-sliced estimate ``hswd`` ("-C"); H²Q's two-stage rotation ``h2q``.
Values are fractions (mAP 0.805 = 80.5 %), per code length.

Each paper's measuring rules are recorded once, in :data:`RULES` (tie rule and AP
normalisation) and in its tables (metric, cut-off, dataset and protocol, i.e. the database).
Whenever a report prints our number beside a published one, ours is scored under those rules
(:func:`comparison_rules`), on uncapped splits of the paper's protocol; records measured
otherwise are shown without a difference.
"""

from __future__ import annotations

from typing import Any

H2Q_CITATION = (
    "Schwengber et al. Deep Hashing via Householder Quantization. arXiv:2311.04207 (v3, 2024); "
    "CIFAR-10 mAP@5000, AlexNet backbone, lambda = 0 vs + H2Q (L2)."
)
HSWD_CITATION = (
    "Doan, Yang, Li. One Loss for Quantization: Deep Hashing with Discrete Wasserstein "
    "Distributional Matching. CVPR 2022 (tables of the paper and its poster)."
)


#: How each paper scored its tables (see :mod:`hashlearn.metrics` for the option values).
RULES: dict[str, dict[str, str]] = {
    # Lucas-Schwengber/h2q src/utils/eval_utils.py (mAP_at_many, called by
    # src/eval/eval_map.py): codes = signs of the continuous outputs, Hamming ties ordered by
    # the distance of the L2-normalised outputs, the AP sum divided by the number of queries.
    "h2q": {"ties": "continuous", "no_relevant": "zero"},
    # swuxyj/DeepHash-pytorch utils/tools.py (CalcTopMap), which the HSWD code uses: a plain
    # np.argsort of the Hamming distances (its order of tied items is NumPy's, not specified;
    # we use the database order) and the AP sum divided by the number of queries.
    "hswd": {"ties": "stable", "no_relevant": "zero"},
    "ssah": {"ties": "stable", "no_relevant": "skip"},
}


def _rows(bits: tuple[int, ...], table: dict[tuple[str, str], tuple[float, ...]]) -> dict:
    return {key: dict(zip(bits, values)) for key, values in table.items()}


def _hswd_rows(bits: tuple[int, ...], base: dict[str, list[tuple[float, ...]]]) -> dict:
    """``{loss: [original, -S, -C]}`` → rows ``(loss, penalty|swd|hswd)``."""
    out = {}
    for loss, (orig, swd, hswd) in base.items():
        out[(loss, "penalty")] = dict(zip(bits, orig))
        out[(loss, "swd")] = dict(zip(bits, swd))
        out[(loss, "hswd")] = dict(zip(bits, hswd))
    return out


_HSWD_MAP = {  # CIFAR-10 (16/32/64), NUS-WIDE (16/32/64), COCO (16/32/64)
    "dsdh": [
        (0.7909, 0.8072, 0.8278, 0.8270, 0.8455, 0.8640, 0.7331, 0.7853, 0.8074),
        (0.8187, 0.8439, 0.8517, 0.8282, 0.8461, 0.8712, 0.7330, 0.8030, 0.8404),
        (0.8531, 0.8620, 0.8658, 0.8433, 0.8631, 0.8749, 0.7424, 0.8032, 0.8408),
    ],
    "hashnet": [
        (0.6922, 0.8311, 0.8566, 0.7728, 0.8336, 0.8654, 0.6899, 0.7666, 0.8098),
        (0.8131, 0.8573, 0.8749, 0.8062, 0.8438, 0.8713, 0.7215, 0.7764, 0.8189),
        (0.7939, 0.8467, 0.8691, 0.8002, 0.8437, 0.8791, 0.7202, 0.7789, 0.8202),
    ],
    "greedyhash": [
        (0.8223, 0.8474, 0.8646, 0.7802, 0.8081, 0.8328, 0.6533, 0.7219, 0.7561),
        (0.8280, 0.8497, 0.8653, 0.7815, 0.8083, 0.8390, 0.6668, 0.7291, 0.7618),
        (0.8375, 0.8536, 0.8722, 0.7890, 0.8179, 0.8477, 0.6637, 0.7299, 0.7712),
    ],
    "dch": [
        (0.8302, 0.8432, 0.8558, 0.8015, 0.8061, 0.8040, 0.7578, 0.7792, 0.7723),
        (0.8372, 0.8515, 0.8602, 0.8058, 0.8079, 0.8067, 0.7657, 0.7831, 0.7803),
        (0.8446, 0.8596, 0.8711, 0.8159, 0.8145, 0.8155, 0.7702, 0.7892, 0.7807),
    ],
    "csq": [
        (0.8069, 0.8291, 0.8366, 0.7992, 0.8384, 0.8596, 0.6783, 0.7550, 0.8146),
        (0.8401, 0.8555, 0.8554, 0.8044, 0.8495, 0.8626, 0.7036, 0.7765, 0.8234),
        (0.8457, 0.8558, 0.8652, 0.8054, 0.8511, 0.8701, 0.6989, 0.7752, 0.8255),
    ],
    "dbdh": [
        (0.7660, 0.8223, 0.8492, 0.8305, 0.8552, 0.8666, 0.7202, 0.7826, 0.8042),
        (0.8458, 0.8587, 0.8603, 0.8387, 0.8577, 0.8680, 0.7461, 0.7996, 0.8336),
        (0.8466, 0.8593, 0.8668, 0.8395, 0.8633, 0.8760, 0.7389, 0.7889, 0.8308),
    ],
}


def _hswd_dataset(offset: int) -> dict:
    return {
        loss: [values[offset : offset + 3] for values in rows] for loss, rows in _HSWD_MAP.items()
    }


_HSWD_P1000 = {  # Precision@1000: CIFAR-10 (16/32), NUS-WIDE (16/32)
    "dsdh": [(0.8252, 0.8406, 0.8117, 0.8294), (0.8526, 0.8543, 0.8162, 0.8312),
             (0.8645, 0.8739, 0.8195, 0.8391)],
    "hashnet": [(0.6193, 0.8613, 0.7581, 0.8158), (0.8470, 0.8755, 0.7743, 0.8199),
                (0.7698, 0.8715, 0.7456, 0.8078)],
    "greedyhash": [(0.8561, 0.8616, 0.7601, 0.8009), (0.8583, 0.8656, 0.7657, 0.7973),
                   (0.8517, 0.8700, 0.7630, 0.7931)],
    "dch": [(0.8621, 0.8568, 0.7843, 0.7898), (0.8622, 0.8761, 0.7846, 0.7923),
            (0.8654, 0.8635, 0.7893, 0.7914)],
    "csq": [(0.8510, 0.8571, 0.7903, 0.8285), (0.8661, 0.8732, 0.8034, 0.8318),
            (0.8670, 0.8688, 0.8007, 0.8353)],
    "dbdh": [(0.8440, 0.8421, 0.8122, 0.8323), (0.8626, 0.8675, 0.8177, 0.8388),
             (0.8658, 0.8731, 0.8135, 0.8380)],
}  # fmt: skip


def _p1000(offset: int) -> dict:
    return {
        loss: [values[offset : offset + 2] for values in rows] for loss, rows in _HSWD_P1000.items()
    }


PUBLISHED: dict[str, dict[str, Any]] = {
    "h2q": {
        "citation": H2Q_CITATION,
        "tables": [
            {
                "dataset": "cifar10",
                "protocol": "h2q",
                "metric": "map",
                "metric_label": "mAP@5000",
                "topk": 5000,
                "rows": _rows(
                    (16, 32, 48, 64),
                    {
                        ("hyp2", "none"): (0.805, 0.811, 0.817, 0.818),
                        ("hyp2", "h2q"): (0.823, 0.825, 0.829, 0.831),
                        ("dch", "none"): (0.783, 0.775, 0.773, 0.763),
                        ("dch", "h2q"): (0.816, 0.803, 0.801, 0.794),
                    },
                ),
            }
        ],
        # Mean mAP change (percentage points) over all their methods and datasets.
        "mean_gains": {"h2q": 2.09, "itq": 0.02, "hswd": 1.56},
    },
    "hswd": {
        "citation": HSWD_CITATION,
        "tables": [
            {
                "dataset": name,
                "protocol": protocol,
                "metric": "map",
                "metric_label": label,
                "topk": topk,
                "rows": _hswd_rows((16, 32, 64), _hswd_dataset(offset)),
            }
            for name, protocol, label, topk, offset in (
                ("cifar10", "hswd", "mAP@all", "all", 0),
                ("nus-wide", None, "mAP@5000", 5000, 3),
                ("coco", None, "mAP@5000", 5000, 6),
            )
        ]
        + [
            {
                "dataset": name,
                "protocol": protocol,
                "metric": "precision_at_1000",
                "metric_label": "P@1000",
                "topk": "all",
                "k": 1000,
                "rows": _hswd_rows((16, 32), _p1000(offset)),
            }
            for name, protocol, offset in (("cifar10", "hswd", 0), ("nus-wide", None, 2))
        ],
        # Seconds per epoch, averaged over the supervised methods: original, SWD, HSWD.
        "timing": {
            "cifar10": {"original": 19.4, "swd": 24.2, "hswd": 17.1},
            "nus-wide": {"original": 58.3, "swd": 71.2, "hswd": 50.1},
            "coco": {"original": 55.6, "swd": 68.1, "hswd": 49.5},
        },
    },
    "ssah": {
        "citation": (
            "Zhang, Lai, Huang, Wong, Xie, Liu, Shao. Scalable Supervised Asymmetric Hashing "
            "With Semantic and Latent Factor Embedding. IEEE TIP 2019."
        ),
        "tables": [],  # no numeric table of the method is available to us
    },
}


def published_tables(paper: str | None) -> list[dict]:
    """The tables of ``paper`` (``[]`` for none)."""
    return [] if paper is None else PUBLISHED[paper]["tables"]


def matches(table: dict, dataset: str, protocol: str | None) -> bool:
    """Whether our results are on the paper's dataset and protocol (so a difference means
    something); published tables without a protocol of ours match on the dataset alone."""
    if table["dataset"] != dataset:
        return False
    return table["protocol"] is None or table["protocol"] == protocol


def table_key(table: dict) -> str:
    """The name under which a record holds its scores by this table's rules."""
    return f"{table['dataset']}:{table['metric']}"


def table_value(record: dict, table: dict) -> float | None:
    """Our number for ``table`` in ``record``, scored under the paper's rules (None when the
    record was not scored so: another dataset or protocol, capped splits, an older record)."""
    scores = record.get("rules", {}).get(table_key(table))
    if scores is None:
        return None
    return scores["map"] if table["metric"] == "map" else scores["precision_at_k"]


def comparison_rules(paper: str | None, dataset: str, protocol: str | None) -> dict[str, dict]:
    """Evaluation options (``topk``, ``k``, ``ties``, ``no_relevant``) of each table of
    ``paper`` that our results on ``dataset`` / ``protocol`` are compared with, by
    :func:`table_key`."""
    out = {}
    for table in published_tables(paper):
        if matches(table, dataset, protocol):
            out[table_key(table)] = {
                "topk": table.get("topk", "protocol"),
                "k": table.get("k", 100),
                **RULES[paper],
            }
    return out
