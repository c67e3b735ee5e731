"""The front door as a newcomer finds it (issue 18): labels files, whole evaluate grids, errors
that name flags, CSV label columns, light start-up imports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hashlearn._validation import HashlearnInputError
from hashlearn.cli.main import main
from hashlearn.data import load_dataset


def _blobs(n: int = 240, d: int = 12, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    X = rng.normal(size=(n, d)) + 3.0 * np.eye(classes, d)[y]
    return X, y


@pytest.fixture
def npy_pair(tmp_path):
    X, y = _blobs()
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", y)
    return tmp_path / "x.npy", tmp_path / "y.npy", X, y


def test_load_dataset_takes_a_labels_file(npy_pair):
    x_path, y_path, X, y = npy_pair
    dataset = load_dataset(x_path, labels_path=y_path)
    pool = np.concatenate([dataset.query.X, dataset.database.X])
    assert len(pool) == len(X)
    # Every row keeps its own label: the label of a row is its class's bump position.
    for split in (dataset.query, dataset.database):
        bump = np.argmax(split.X[:, :3], axis=1)
        assert np.mean(bump == split.y) > 0.8
    recipe = dataset.manifest["load_dataset"]
    assert recipe["labels_path"] == str(y_path.resolve())
    again = load_dataset(recipe["name"], recipe["split_seed"], labels_path=recipe["labels_path"])
    np.testing.assert_array_equal(again.query.X, dataset.query.X)


def test_load_dataset_refuses_a_labels_file_for_a_registered_dataset(npy_pair):
    with pytest.raises(HashlearnInputError, match="registered dataset 'digits'"):
        load_dataset("digits", labels_path=npy_pair[1])


def test_evaluate_takes_dataset_and_labels_files(npy_pair, tmp_path, capsys):
    x_path, y_path, _, _ = npy_pair
    out = tmp_path / "r.json"
    argv = ["evaluate", "--dataset", str(x_path), "--labels", str(y_path), "--quiet"]
    assert main([*argv, "--method", "lsh", "--bits", "8", "--output", str(out)]) == 0
    records = json.loads(out.read_text())["results"]
    assert [(r["method"], r["bits"]) for r in records] == [("lsh", 8)]
    assert "lsh" in capsys.readouterr().out
    # Without the labels file the error names the flag that fixes it.
    assert main([*argv[:3], "--quiet", "--method", "lsh", "--bits", "8"]) == 2
    assert "--labels" in capsys.readouterr().err
