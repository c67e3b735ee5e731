"""`hashlearn evaluate --neighbours`: recall of the exact float k-NN next to the label metrics,
and unlabelled features files scored by neighbour metrics only."""

import json

import numpy as np
import pytest

from hashlearn.cli.main import main
from hashlearn.data import load_dataset


def test_evaluate_neighbours_adds_recall_columns_to_label_metrics(tmp_path, capsys):
    output = tmp_path / "r.json"
    args = ["evaluate", "--dataset", "digits", "--method", "sign,itq", "--bits", "16,32"]
    code = main([*args, "--neighbours", "l2", "--output", str(output), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "mAP" in out and "l2 R10@10" in out and "l2 R10@100" in out
    records = json.loads(output.read_text())["results"]
    for r in records:
        assert r["map"] is not None
        assert 0 < r["nn_recall_10@10"] <= r["nn_recall_10@100"] <= 1
    by = {(r["method"], r["bits"]): r for r in records}
    # More bits find more of the true Euclidean neighbours (digits, same seed and split).
    for method in ("sign", "itq"):
        assert by[method, 32]["nn_recall_10@100"] > by[method, 16]["nn_recall_10@100"]


def test_evaluate_unlabelled_npy_gets_neighbour_metrics_only(tmp_path, capsys):
    X = load_dataset("digits", progress=False).database.X
    path = tmp_path / "vectors.npy"
    np.save(path, X)
    output = tmp_path / "r.json"
    code = main(
        ["evaluate", "--dataset", str(path), "--method", "itq", "--bits", "32",
         "--neighbours", "cosine", "--candidates", "10,50", "--output", str(output), "--quiet"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "mAP" not in out and "cosine R10@50" in out
    (record,) = json.loads(output.read_text())["results"]
    assert "map" not in record and 0.2 < record["nn_recall_10@50"] <= 1


def test_evaluate_unlabelled_without_neighbours_names_the_fix(tmp_path, capsys):
    path = tmp_path / "vectors.npy"
    np.save(path, np.random.default_rng(0).standard_normal((50, 4)))
    code = main(["evaluate", "--dataset", str(path), "--bits", "4", "--quiet"])
    assert code != 0
    assert "no labels" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--nn-k", "0"], ["--candidates", "0"]])
def test_evaluate_neighbour_options_are_checked(bad, capsys):
    code = main(["evaluate", "--dataset", "digits", "--bits", "8", "--neighbours", "ip", *bad])
    assert code != 0
    assert ("--nn-k" if "--nn-k" in bad else "--candidates") in capsys.readouterr().err


def test_evaluate_itq_euclidean_protocol(tmp_path, capsys):
    output = tmp_path / "r.json"
    code = main(
        ["evaluate", "--dataset", "digits", "--method", "sign,itq", "--bits", "32", "--k", "50",
         "--neighbours", "l2-radius", "--output", str(output), "--quiet"]
    )  # fmt: skip
    assert code == 0
    assert "L2r P@50" in capsys.readouterr().out
    records = {r["method"]: r for r in json.loads(output.read_text())["results"]}
    for r in records.values():
        assert r["l2_radius"] > 0 and 0 < r["l2r_precision_at_k"] <= 1
        assert 0 < r["l2r_recall_at_k"] <= 1
    # ITQ's claim on its own protocol: it beats PCA-sign (PCAH) on Euclidean neighbours.
    assert records["itq"]["l2r_precision_at_k"] > records["sign"]["l2r_precision_at_k"]
