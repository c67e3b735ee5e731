"""The `hashlearn evaluate` command end to end on the embedded digits dataset."""

import json

import pytest

from hashlearn.cli.main import main


def test_evaluate_digits_prints_table_and_writes_json_and_plots(tmp_path, capsys):
    output, plots = tmp_path / "results.json", tmp_path / "plots"
    code = main(
        [
            "evaluate",
            "--dataset",
            "digits",
            "--method",
            "sign",
            "--bits",
            "8,16",
            "--topk",
            "100",
            "--output",
            str(output),
            "--plot",
            str(plots),
            "--quiet",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "mAP" in out and "sign" in out
    results = json.loads(output.read_text())
    assert [r["bits"] for r in results["results"]] == [8, 16]
    for record in results["results"]:
        assert 0.1 < record["map"] <= 1.0  # far above chance (about 0.1 for 10 classes)
        assert record["topk"] == 100
    assert results["manifest"]["split_seed"] == 0
    assert sorted(p.name for p in plots.iterdir()) == [
        "pr_digits_16bits.png",
        "pr_digits_8bits.png",
    ]


def test_evaluate_is_reproducible(tmp_path):
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path in paths:
        main(
            [
                "evaluate",
                "--dataset",
                "digits",
                "--method",
                "sign",
                "--bits",
                "16",
                "--output",
                str(path),
                "--quiet",
            ]
        )
    first, second = (json.loads(p.read_text())["results"][0] for p in paths)
    assert first["map"] == second["map"] and first["pr_curve"] == second["pr_curve"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "nope"], "unknown dataset 'nope'"),
        (["--dataset", "digits", "--method", "nope"], "unknown method 'nope'"),
        (["--dataset", "digits", "--bits", "16,x"], "comma-separated integers"),
        (["--dataset", "digits", "--bits", "0"], "positive integers"),
        (["--dataset", "digits", "--topk", "100000"], "larger than the database"),
        (["--dataset", "digits", "--output", "/nonexistent-dir/r.json"], "not a writable folder"),
    ],
)
def test_bad_arguments_exit_2_with_one_clear_line(argv, message, capsys):
    code = main(["evaluate", *argv, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_param_reaches_the_methods_that_take_it(tmp_path):
    output = tmp_path / "r.json"
    code = main(
        [
            "evaluate",
            "--dataset",
            "digits",
            "--method",
            "sign,lsh",
            "--bits",
            "8",
            "--param",
            "projection=random",
            "--output",
            str(output),
            "--quiet",
        ]
    )
    assert code == 0
    results = json.loads(output.read_text())["results"]
    assert [r["method"] for r in results] == ["sign", "lsh"]
    sign = results[0]
    # sign with a random projection differs from its PCA default.
    pca = main(
        [
            "evaluate",
            "--dataset",
            "digits",
            "--method",
            "sign",
            "--bits",
            "8",
            "--output",
            str(tmp_path / "pca.json"),
            "--quiet",
        ]
    )
    assert pca == 0
    assert sign["map"] != json.loads((tmp_path / "pca.json").read_text())["results"][0]["map"]


@pytest.mark.parametrize(
    "param, message",
    [("foo=1", "no chosen method takes parameter"), ("novalue", "NAME=VALUE")],
)
def test_bad_param_is_a_clear_error(param, message, capsys):
    assert main(["evaluate", "--dataset", "digits", "--param", param, "--quiet"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_model_run_honours_k_and_ties(tmp_path, capsys):
    pytest.importorskip("torch")
    run = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--loss", "dpsh", "--quantization", "none",
                 "--bits", "16", "--backbone", "cnn", "--epochs", "1", "--output", str(run),
                 "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    results = {}
    for ties in ("stable", "aware"):
        output = tmp_path / f"{ties}.json"
        assert main(["evaluate", "--model", str(run), "--k", "10", "--ties", ties,
                     "--output", str(output), "--quiet"]) == 0  # fmt: skip
        (results[ties],) = json.loads(output.read_text())["results"]
    assert "run" in capsys.readouterr().out
    for ties, record in results.items():
        assert record["k"] == 10 and record["ties"] == ties and record["bits"] == 16
        assert 0.1 < record["map"] <= 1.0
