"""`hashlearn fit` → `encode` → `search` on files, as an engineer would use them."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

from hashlearn.cli.main import main
from hashlearn.index import HammingIndex
from hashlearn.quantize import H2Q


@pytest.fixture
def digits_file(tmp_path):
    X, y = load_digits(return_X_y=True)
    path = tmp_path / "digits.npz"
    np.savez(path, X=X.astype(np.float32), y=y)
    return path, X.astype(np.float32), y


def test_fit_encode_search_round_trip(tmp_path, digits_file, capsys):
    data, X, y = digits_file
    model, codes, hits = tmp_path / "h2q.npz", tmp_path / "codes.npy", tmp_path / "hits.json"
    assert main(["fit", "--method", "h2q", "--bits", "24", "--data", str(data),
                 "--output", str(model), "--quiet"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["n_samples"] == len(X)
    assert main(["encode", "--model", str(model), "--data", str(data),
                 "--output", str(codes), "--quiet"]) == 0  # fmt: skip
    packed = np.load(codes)
    np.testing.assert_array_equal(packed, H2Q(24, random_state=0).fit(X).encode(X))
    assert main(["search", "--database", str(codes), "--queries", str(codes), "--k", "5",
                 "--bits", "24", "--output", str(hits), "--quiet"]) == 0  # fmt: skip
    result = json.loads(hits.read_text())
    index = HammingIndex(24)
    index.add(packed)
    distances, ids = index.search(packed, 5)
    assert result["ids"] == ids.tolist() and result["distances"] == distances.tolist()
    # Codes keep the classes apart: most neighbours share the query's digit.
    assert (y[ids[:, 1:]] == y[:, None]).mean() > 0.7


def test_supervised_fit_reads_labels(tmp_path, digits_file):
    data, _, _ = digits_file
    model = tmp_path / "sdh.npz"
    assert main(["fit", "--method", "sdh", "--bits", "16", "--data", str(data),
                 "--param", "n_anchors=200", "--output", str(model), "--quiet"]) == 0  # fmt: skip
    assert model.is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "--method", "nope", "--bits", "8"], "unknown method"),
        (["fit", "--method", "sdh", "--bits", "8", "--data", "FEATURES_NPY"], "no labels"),
        (["encode", "--model", "GARBAGE", "--data", "FEATURES_NPY"], "corrupted"),
        (["search", "--database", "FEATURES_NPY", "--queries", "FEATURES_NPY"], "not packed"),
    ],
)
def test_bad_input_exits_2_with_a_clear_line(tmp_path, argv, message, capsys):
    features = tmp_path / "f.npy"
    np.save(features, np.ones((20, 4)))
    garbage = tmp_path / "model.npz"
    garbage.write_bytes(b"PK not really a zip")
    subst = {"FEATURES_NPY": str(features), "GARBAGE": str(garbage)}
    argv = [subst.get(a, a) for a in argv]
    if "--data" not in argv and argv[0] != "search":
        argv += ["--data", str(features)]
    if argv[0] in ("fit", "encode"):
        argv += ["--output", str(tmp_path / "out.npz")]
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
