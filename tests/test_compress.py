"""`hashlearn compress` end to end on the digits features, its file formats and bad input."""

import json
import sys

import numpy as np
import pytest

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.catalogue import load_model
from hashlearn.cli.main import main
from hashlearn.compress import compress_report, load_embeddings, smallest_setting


@pytest.fixture(scope="module")
def vectors(digits):
    return np.vstack([digits.database.X, digits.query.X]).astype(np.float32)


@pytest.fixture(scope="module")
def report(vectors):
    return compress_report(vectors, bits=(32, 64), n_queries=200, oversample=(1, 4, 10))


def test_learned_rotation_beats_sign_at_zero_at_every_oversampling(report):
    by = {(r["method"], r["bits"]): r for r in report["results"]}
    sign, itq = by["sign", 64], by["itq", 64]
    print({k: (r["recall"], r["rescored"]) for k, r in by.items()})
    assert itq["recall"] > sign["recall"]
    assert all(itq["rescored"][o] > sign["rescored"][o] for o in sign["rescored"])
    assert ("sign", 32) not in by and {"method": "sign", "bits": 32} in report["skipped"]
    for r in report["results"]:
        values = [r["rescored"][o] for o in ("1", "4", "10")]
        assert values == sorted(values) and r["rescored"]["1"] == pytest.approx(r["recall"])
        assert r["bytes_per_vector"] == r["bits"] // 8


def test_smallest_setting_is_the_cheapest_that_reaches_the_target(report):
    for target in (0.5, 0.9):
        best = smallest_setting(report["results"], target)
        assert best["recall"] >= target
        cheaper = [
            r
            for r in report["results"]
            if r["bytes_per_vector"]
            < next(
                x["bytes_per_vector"]
                for x in report["results"]
                if x["method"] == best["method"] and x["bits"] == best["bits"]
            )
        ]
        assert all(max(r["rescored"].values()) < target for r in cheaper)
    assert smallest_setting(report["results"], 1.01) is None


def test_cli_writes_table_json_plot_and_quantizer(tmp_path, vectors, capsys):
    np.savez(tmp_path / "emb.npz", X=vectors)
    out, png, q = tmp_path / "r.json", tmp_path / "r.png", tmp_path / "q.npz"
    code = main(
        ["compress", str(tmp_path / "emb.npz"), "--bits", "32,64", "--methods", "sign,itq",
         "--queries", "100", "--oversample", "1,10", "--output", str(out), "--plot", str(png),
         "--save-quantizer", str(q), "--quiet"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "R@10 x10" in printed and "recall@10 >= 0.95" in printed
    result = json.loads(out.read_text())
    assert result["n_queries"] == 100 and len(result["results"]) == 3
    assert png.read_bytes()[:4] == b"\x89PNG"
    saved = result["saved_quantizer"]
    model = load_model(q)
    assert model.n_bits_ == saved["bits"]


def test_embedding_file_formats(tmp_path, vectors):
    np.save(tmp_path / "a.npy", vectors)
    np.savez(tmp_path / "b.npz", emb=vectors)
    for name in ("a.npy", "b.npz"):
        np.testing.assert_array_equal(load_embeddings(tmp_path / name), vectors)
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    pq.write_table(
        pa.table({"id": np.arange(10), "embedding": list(vectors[:10])}), tmp_path / "c.parquet"
    )
    np.testing.assert_allclose(load_embeddings(tmp_path / "c.parquet"), vectors[:10])
    np.savez(tmp_path / "d.npz", a=vectors, b=vectors)
    with pytest.raises(HashlearnFileError, match="under the key X"):
        load_embeddings(tmp_path / "d.npz")


def test_parquet_without_pyarrow_names_the_install(tmp_path, monkeypatch):
    (tmp_path / "e.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(HashlearnInputError, match="pip install pyarrow"):
        load_embeddings(tmp_path / "e.parquet")


@pytest.mark.parametrize(
    "edit, kwargs, match",
    [
        (lambda X: X.__setitem__((5, 3), np.nan), {}, "embeddings row 5 holds NaN"),
        (lambda X: X.__setitem__(7, 0.0), {}, "embeddings row 7 is all zeros"),
        (None, {"oversample": (0.5,)}, "oversample values must be >= 1"),
        (None, {"n_queries": 5000}, "--queries must be in 1..1787"),
        (None, {"methods": ("pq",)}, "unknown method"),
    ],
)
def test_compress_bad_input(vectors, edit, kwargs, match):
    X = vectors.copy()
    if edit is not None:
        edit(X)
    with pytest.raises(HashlearnInputError, match=match):
        compress_report(X, bits=(16,), **kwargs)


def test_cli_bad_arguments(tmp_path, vectors, capsys):
    np.save(tmp_path / "a.npy", vectors)
    assert main(["compress", str(tmp_path / "a.npy"), "--oversample", "0", "--quiet"]) != 0
    assert "--oversample" in capsys.readouterr().err
    assert main(["compress", str(tmp_path / "a.npy"), "--bits", "128", "--quiet"]) != 0
    assert "no method applies" in capsys.readouterr().err
    assert main(["compress", str(tmp_path / "missing.npy"), "--quiet"]) != 0
    assert "missing.npy" in capsys.readouterr().err
