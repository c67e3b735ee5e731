"""The front door as a newcomer finds it (issue 18): labels files, whole evaluate grids, errors
that name flags, CSV label columns, light start-up imports."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

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


def test_evaluate_checks_every_cell_before_the_first_fit(tmp_path, capsys):
    # digits trains on 500 rows: ssah's default 1,000 anchors cannot work, known before ksh fits.
    out = tmp_path / "r.json"
    argv = ["evaluate", "--dataset", "digits", "--method", "ksh,ssah", "--bits", "16"]
    assert main([*argv, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "ssah at 16 bits: n_anchors=1000 is more than the 500 training samples" in err
    assert "mAP" not in err  # ksh was not fitted first
    assert not out.exists()


@pytest.mark.parametrize(
    ("method", "params", "bits", "fragment"),
    [
        ("itq", {}, 128, "n_bits=128 is larger than the 12 available dimensions"),
        ("sdh", {"n_anchors": 500}, 16, "n_anchors=500 is more than the 216 training samples"),
        ("ksh", {"n_anchors": 40}, 64, "n_bits=64 exceeds n_anchors=40"),
        ("ksh", {"n_anchors": 300, "n_labeled": 200}, 16, "exceeds n_labeled=200"),
        ("lsh", {"n_bits": 0}, None, "n_bits"),
    ],
)
def test_check_grid_refuses_what_fit_would_refuse(npy_pair, method, params, bits, fragment):
    from hashlearn.evaluation import check_grid

    dataset = load_dataset(npy_pair[0], labels_path=npy_pair[1])
    params = dict(params)
    bits = params.pop("n_bits", bits)
    with pytest.raises(HashlearnInputError, match=fragment):
        check_grid([(method, bits)], dataset, params={method: params})


@pytest.mark.parametrize(
    ("method", "bits", "fragment"),
    [("itq", 12, "X has 9 samples but n_bits=12"), ("pcah", 9, "X has 9 samples but n_bits=9")],
)
def test_check_grid_refuses_too_few_training_rows(method, bits, fragment):
    from hashlearn.data import from_arrays
    from hashlearn.evaluation import check_grid

    X, y = _blobs(n=10, d=12, classes=2)
    dataset = from_arrays(X, y, query_size=1)
    assert len(dataset.train.X) == 9
    with pytest.raises(HashlearnInputError, match=fragment):
        check_grid([(method, bits)], dataset)
    with pytest.raises(HashlearnInputError, match=fragment):  # what fit itself says
        from hashlearn.catalogue import make_method

        make_method(method, n_bits=bits).fit(dataset.train.X)


def test_check_grid_accepts_cells_that_fit(npy_pair):
    from hashlearn.evaluation import check_grid

    dataset = load_dataset(npy_pair[0], labels_path=npy_pair[1])
    jobs = [("itq", 12), ("lsh", 128), ("ksh", 16), ("cca-itq", 8), ("pcah", 4)]
    check_grid(jobs, dataset, params={"ksh": {"n_anchors": 100}})


def test_evaluate_writes_the_finished_cells_when_a_later_one_fails(tmp_path, capsys):
    # Three constant columns leave 5 directions: a 6-bit ITQ refuses them, which only fit sees.
    X, y = _blobs(d=8)
    X[:, 5:] = 1.0
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "r.json"
    argv = ["evaluate", "--dataset", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy")]
    assert main([*argv, "--method", "lsh,itq", "--bits", "6", "--output", str(out)]) == 2
    captured = capsys.readouterr()
    assert "spans only 5 directions" in captured.err
    assert "lsh" in captured.out  # the table of what finished
    saved = json.loads(out.read_text())
    assert [r["method"] for r in saved["results"]] == ["lsh"]
    assert "stopped after 1 cell" in saved["incomplete"]


def _error(capsys, argv: list[str]) -> str:
    assert main([*argv, "--quiet"]) == 2
    return capsys.readouterr().err


def test_errors_name_flags_not_python_arguments(npy_pair, capsys):
    x_path, y_path, _, _ = npy_pair
    data = ["--dataset", str(x_path), "--labels", str(y_path)]
    err = _error(capsys, ["evaluate", *data, "--method", "lsh", "--bits", "8", "--topk", "5000"])
    assert "`--topk 5000` is larger than the database" in err
    assert "use `--topk` <= 216 or `--topk all`" in err and "topk=None" not in err
    err = _error(capsys, ["evaluate", *data, "--method", "itq", "--bits", "128"])
    assert "use `--bits` <= 12" in err and "n_bits" not in err.replace("(n_features", "")
    err = _error(capsys, ["fit", "--method", "itq", "--bits", "64", "--data", str(x_path),
                          "--output", str(x_path.with_name("m.npz"))])  # fmt: skip
    assert "`--bits 64`" in err and "n_bits=" not in err


def test_download_hint_names_the_flag(tmp_path, capsys):
    err = _error(
        capsys,
        ["evaluate", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path), "--no-download"],
    )
    assert "without `--no-download`" in err and "download=True" not in err


def test_as_flags_spells_values_the_cli_way():
    from hashlearn.cli._flags import as_flags

    flags = {"topk": "--topk", "n_bits": "--bits", "download": "--no-download", "k": "--k"}
    assert as_flags("use topk <= 9 or topk=None.", flags) == "use `--topk` <= 9 or `--topk all`."
    assert as_flags("(download=False)", flags) == "(`--no-download`)"
    assert as_flags("k=10.", flags) == "`--k 10`."
    # Names the command does not have, and words that merely contain a name, are left alone.
    text = "mAP@topk with n_features=8 and top_k=3 (k_means=2)"
    assert as_flags(text, flags) == text


@pytest.mark.parametrize("spelling", ["-k", "--k"])
def test_search_and_index_search_take_both_k_spellings(tmp_path, capsys, spelling):
    codes = np.random.default_rng(0).integers(0, 256, size=(20, 2), dtype=np.uint8)
    np.save(tmp_path / "c.npy", codes)
    c = str(tmp_path / "c.npy")
    assert main(["search", "--database", c, "--queries", c, spelling, "3", "--quiet"]) == 0
    first = capsys.readouterr().out.splitlines()[0].split("\t")[1].split()
    assert len(first) == 3 and first[0] == "0:0"
    idx = str(tmp_path / "c.hlx")
    assert main(["index", "build", "--codes", c, "--output", idx, "--quiet"]) == 0
    assert main(["index", "search", "--index", idx, "--queries", c, spelling, "3"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split("\t")[1].split() == first


def test_encode_with_a_codes_file_as_model_says_so(tmp_path, npy_pair, capsys):
    np.save(tmp_path / "codes.npy", np.zeros((4, 2), dtype=np.uint8))
    argv = ["encode", "--model", str(tmp_path / "codes.npy"), "--data", str(npy_pair[0])]
    err = _error(capsys, [*argv, "--output", str(tmp_path / "out.npy")])
    assert "is a plain .npy array" in err and "not a model file" in err
    assert "TypeError" not in err and len(err.strip().splitlines()) == 1


def test_csv_whose_last_column_is_a_feature_is_refused_naming_the_flag(tmp_path, capsys):
    X, _ = _blobs(n=60, d=5)
    csv = tmp_path / "features.csv"
    np.savetxt(csv, X, delimiter=",")
    argv = ["fit", "--method", "itq", "--bits", "4", "--data", str(csv)]
    err = _error(capsys, [*argv, "--output", str(tmp_path / "m.npz")])
    assert "looks like a feature" in err and "`--no-csv-labels`" in err and "`--labels`" in err
    assert main([*argv, "--output", str(tmp_path / "m.npz"), "--no-csv-labels", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["n_features"] == 5


def test_csv_label_column_with_one_value_per_row_is_warned_about(tmp_path, caplog):
    from hashlearn.data import read_arrays

    X, y = _blobs(n=60, d=4)
    ids = np.arange(60)
    np.savetxt(tmp_path / "ids.csv", np.column_stack([X, ids]), delimiter=",")
    np.savetxt(tmp_path / "classes.csv", np.column_stack([X, y]), delimiter=",")
    with caplog.at_level("WARNING", logger="hashlearn"):
        read_arrays(tmp_path / "classes.csv")
        assert not caplog.records
        Xr, yr = read_arrays(tmp_path / "ids.csv")
    assert Xr.shape == (60, 4) and len(yr) == 60
    assert "60 distinct values in 60 rows" in caplog.text and "csv_labels=False" in caplog.text


HEAVY = ("torch", "matplotlib", "faiss", "pymilvus", "sklearn", "scipy", "numba", "pandas")


@pytest.mark.parametrize("argv", [None, ["--version"], ["--help"]])
def test_start_up_imports_no_heavy_module(argv):
    code = "import sys\nimport hashlearn.cli.main\n"
    if argv is not None:
        code += f"try:\n    hashlearn.cli.main.main({argv!r})\nexcept SystemExit:\n    pass\n"
    code += f"print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_first_compile_of_a_kernel_is_announced_once(tmp_path, monkeypatch, caplog):
    from hashlearn._jit import note_compile

    (tmp_path / "tiny_kernel.py").write_text(
        "import numba\n\n@numba.njit(cache=True)\ndef double(x):\n    return 2 * x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    tiny_kernel = importlib.import_module("tiny_kernel")
    with caplog.at_level("INFO", logger="hashlearn"):
        note_compile(tiny_kernel.double, what="tiny")
        assert "compiling the tiny kernels" in caplog.text
        assert tiny_kernel.double(2) == 4
        caplog.clear()
        note_compile(tiny_kernel.double, what="tiny")
    assert not caplog.records


@pytest.mark.parametrize("command", ["evaluate", "train", "reproduce"])
def test_every_command_maps_download_to_its_flag(command):
    from hashlearn.cli._flags import as_flags
    from hashlearn.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if hasattr(a, "choices") and a.choices)
    flags = sub.choices[command].get_default("flags")
    assert as_flags("allow it (download=True)", flags) == "allow it (without `--no-download`)"
