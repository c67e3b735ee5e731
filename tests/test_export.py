"""Exported quantizers (.npy arrays, ONNX graph) reproduce ``encode`` outside hashlearn."""

import json
import sys

import numpy as np
import pytest

from hashlearn.catalogue import make_method
from hashlearn.cli.main import main
from hashlearn.export import export_npy, export_onnx, linear_form

LINEAR = [
    ("sign", {"n_bits": 13}),
    ("sign", {"projection": "none"}),
    ("lsh", {"n_bits": 37}),
    ("pcah", {"n_bits": 9}),
    ("itq", {"n_bits": 12}),
    ("itq", {}),  # n_bits = d: centring, no PCA
    ("h2q", {"n_bits": 16}),  # PCA, then rows rescaled (which changes no sign)
    ("h2q", {}),  # n_bits = d: no centring
    ("random-rotation", {"n_bits": 20}),
    ("cca-itq", {"n_bits": 6}),
]


def _data(seed=0, n=400, d=24):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + 3.0
    return X.astype(np.float32), rng.integers(0, 8, size=n)


def _clear_rows(model, Q, margin=1e-4):
    """Rows whose every float64 projection is farther than ``margin`` from 0 (relative)."""
    mean, W = linear_form(model)
    Z = (Q.astype(np.float64) - mean) @ W.astype(np.float64)
    return np.abs(Z).min(axis=1) > margin * np.abs(Z).max()


@pytest.fixture(scope="module", params=LINEAR, ids=lambda p: f"{p[0]}-{p[1].get('n_bits', 'd')}")
def fitted(request):
    name, params = request.param
    X, y = _data()
    model = make_method(name, random_state=0, **params).fit(X, y)
    Q = _data(seed=1, n=300)[0]
    clear = _clear_rows(model, Q)
    assert clear.mean() > 0.9  # the comparison below covers most rows
    return model, Q, clear


def test_npy_recipe_reproduces_encode(fitted, tmp_path):
    model, Q, clear = fitted
    paths = export_npy(model, tmp_path / "rot")
    mean, W = np.load(paths["mean"]), np.load(paths["projection"])
    assert mean.dtype == W.dtype == np.float32
    assert W.shape == (Q.shape[1], model.n_bits_)
    codes = np.packbits((Q - mean) @ W > 0, axis=1)
    np.testing.assert_array_equal(codes[clear], model.encode(Q)[clear])
    meta = json.loads((tmp_path / "rot" / "export.json").read_text())
    assert meta["n_bits"] == model.n_bits_ and meta["method"] == model.method_name


def test_onnx_graph_reproduces_encode(fitted, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="pip install 'hashlearn[export]'")
    model, Q, clear = fitted
    path = export_onnx(model, tmp_path / "encode.onnx")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    codes, projections = session.run(["codes", "projections"], {"x": Q})
    expected = model.encode(Q)
    assert codes.dtype == np.uint8 and codes.shape == expected.shape
    np.testing.assert_array_equal(codes[clear], expected[clear])
    mean, W = linear_form(model)
    np.testing.assert_allclose(projections, (Q - mean) @ W, rtol=1e-4, atol=1e-4)


def test_onnx_zero_projection_is_a_zero_bit_as_in_encode(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="pip install 'hashlearn[export]'")
    X, _ = _data(d=12)
    model = make_method("h2q").fit(X - X.mean(axis=0))  # n_bits = d: no centring, x = 0 -> z = 0
    Q = np.vstack([np.zeros((1, 12), np.float32), X[:3]])
    session = ort.InferenceSession(export_onnx(model, tmp_path / "m.onnx"))
    codes = session.run(["codes"], {"x": Q})[0]
    np.testing.assert_array_equal(codes[0], 0)
    np.testing.assert_array_equal(codes, model.encode(Q))


def test_cli_export_npy_and_onnx(tmp_path, capsys):
    X, _ = _data()
    data, model_path = tmp_path / "x.npy", tmp_path / "itq.npz"
    np.save(data, X)
    assert main(["fit", "--method", "itq", "--bits", "20", "--data", str(data),
                 "--output", str(model_path), "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    out = tmp_path / "rot"
    assert main(["export", "--model", str(model_path), "--format", "npy",
                 "--output", str(out), "--quiet"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_bits"] == 20 and summary["n_bytes"] == 3
    codes = np.packbits((X - np.load(out / "mean.npy")) @ np.load(out / "projection.npy") > 0, 1)
    model = make_method("itq", n_bits=20, random_state=0).fit(X)
    clear = _clear_rows(model, X)
    np.testing.assert_array_equal(codes[clear], model.encode(X)[clear])
    onnx_path = tmp_path / "itq.onnx"
    assert main(["export", "--model", str(model_path), "--format", "onnx",
                 "--output", str(onnx_path), "--quiet"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["files"]["onnx"] == str(onnx_path)
    onnx = pytest.importorskip("onnx", reason="pip install 'hashlearn[export]'")
    proto = onnx.load(str(onnx_path))
    assert [o.name for o in proto.graph.output] == ["codes", "projections"]
    assert {p.key: p.value for p in proto.metadata_props}["n_bits"] == "20"


def test_kernel_method_is_refused_with_a_clear_line(tmp_path, capsys):
    X, y = _data()
    model_path = tmp_path / "ksh.npz"
    make_method("ksh", n_bits=8, n_anchors=50, random_state=0).fit(X, y).save(model_path)
    assert main(["export", "--model", str(model_path), "--format", "npy",
                 "--output", str(tmp_path / "out"), "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert "not a linear projection followed by a sign" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_npy_export_onto_a_file_is_refused(tmp_path):
    X, _ = _data()
    target = tmp_path / "taken"
    target.write_text("keep me")
    with pytest.raises(ValueError, match="is a file"):
        export_npy(make_method("sign", n_bits=8).fit(X), target)
    assert target.read_text() == "keep me"


def test_onnx_export_without_onnx_says_how_to_install(tmp_path, monkeypatch):
    X, _ = _data()
    model = make_method("sign", n_bits=8).fit(X)
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if onnx were not installed
    with pytest.raises(ValueError, match=r"pip install 'hashlearn\[export\]'"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
