"""hashlearn reproduce: a tiny grid on digits runs, resumes, refuses another config's folder."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hashlearn._io import HashlearnFileError
from hashlearn.cli.main import main
from hashlearn.reproduce import expand, load_config, run_grid

SHALLOW = """
title = "tiny"
paper = "h2q"
seeds = [0, 1]
[dataset]
name = "digits"
[evaluation]
topk = "all"
k = 50
[[shallow]]
methods = ["sign", "itq"]
bits = [8, 16]
"""
DEEP = """
[[deep]]
losses = ["dpsh"]
quantization = ["penalty", "hswd"]
bits = [2]
seeds = [0]
keep_embeddings = 50
train = { backbone = "mlp", epochs = 2, batch_size = 64, hidden = 16 }
dataset = { classes = [0, 1, 2, 3] }
"""


def write(tmp_path: Path, text: str, name: str = "grid.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def lines(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_tiny_grid_runs_and_reports(tmp_path):
    config = write(tmp_path, SHALLOW + DEEP)
    out = tmp_path / "out"
    assert main(["reproduce", str(config), "--output", str(out), "--quiet"]) == 0
    records = lines(out)
    assert len(records) == len(expand(load_config(config))) == 2 * 2 * 2 + 2
    assert {r["name"] for r in records} == {"sign", "itq", "dpsh+penalty", "dpsh+hswd"}
    assert len({r["cell"] for r in records}) == len(records)
    deep = [r for r in records if r["kind"] == "deep"]
    # Deep and shallow cells end in one scoring path: the same score keys, search timed.
    shallow = next(r for r in records if r["kind"] == "shallow")
    extra = {"training", "embeddings", "query_code_statistics"}
    assert set(deep[0]) - extra == set(shallow)
    assert all(r["search_s"] > 0 and r["encode_s"] > 0 for r in records)
    # the class subset reached the deep cells: only classes 0-3 among the stored queries
    assert set(np.concatenate([r["embeddings"]["y"] for r in deep])) <= {0, 1, 2, 3}
    history = deep[0]["training"]["history"]
    assert len(history) == 2 and len(history[0]["bit_entropy"]) == 2
    assert history[0]["quantization_error"] >= 0
    md = (out / "report.md").read_text()
    assert "dpsh+hswd − dpsh+penalty" in md and "itq" in md and "± " in md
    assert "for reference only" in md  # digits is not the paper's CIFAR-10 protocol
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4  # mAP/bits, PR curves, scatter, training
    assert "figures/codes_2bit.png" in md and (out / "figures" / "codes_2bit.png").is_file()


@pytest.mark.parametrize("threads, expected", [(1, 1), (None, "unchanged")])
def test_deep_cells_run_with_the_asked_torch_threads(tmp_path, threads, expected):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        config = load_config(write(tmp_path, SHALLOW.replace('"sign", "itq"', '"sign"') + DEEP))
        run_grid(config, tmp_path / "out", progress=False, threads=threads)
        assert torch.get_num_threads() == (2 if expected == "unchanged" else expected)
    finally:
        torch.set_num_threads(before)


def test_resume_skips_finished_cells(tmp_path):
    config = load_config(write(tmp_path, SHALLOW))
    out = tmp_path / "out"
    run_grid(config, out, progress=False, max_cells=3)
    first = (out / "results.jsonl").read_text()
    assert len(first.splitlines()) == 3
    records = run_grid(config, out, progress=False)
    text = (out / "results.jsonl").read_text()
    assert text.startswith(first)  # earlier lines kept as they were
    assert len(records) == len(text.splitlines()) == 8
    assert len({r["cell"] for r in lines(out)}) == 8
    run_grid(config, out, progress=False)  # nothing left: nothing appended
    assert (out / "results.jsonl").read_text() == text


def test_other_config_refused_nothing_overwritten(tmp_path, capsys):
    out = tmp_path / "out"
    run_grid(load_config(write(tmp_path, SHALLOW)), out, progress=False, max_cells=1)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    other = write(tmp_path, SHALLOW.replace("bits = [8, 16]", "bits = [8, 24]"), "other.toml")
    with pytest.raises(HashlearnFileError, match="different config"):
        run_grid(load_config(other), out, progress=False)
    assert main(["reproduce", str(other), "--output", str(out), "--quiet"]) == 2
    assert "nothing was overwritten" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    # a results file without its config record is refused too
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "results.jsonl").write_bytes(before["results.jsonl"])
    with pytest.raises(HashlearnFileError, match="no config.json"):
        run_grid(load_config(other), lone, progress=False)


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        ("methods = [", "method = [", ["shallow[0].method", "methods"]),
        ('name = "digits"', 'nam = "digits"', ["dataset.nam", "name"]),
        ('"itq"]', '"itqq"]', ["shallow[0].methods", "'itqq'", "itq"]),
        ('topk = "all"', 'topk = "al"', ["evaluation.topk", "protocol"]),
        ('paper = "h2q"', 'paper = "h3q"', ["paper", "hswd"]),
    ],
)
def test_typo_names_key_and_allowed_values(tmp_path, capsys, old, new, names):
    config = write(tmp_path, SHALLOW.replace(old, new))
    assert main(["reproduce", str(config), "--output", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    for name in names:
        assert name in err
    assert not (tmp_path / "o").exists()


def test_deep_typos_name_key(tmp_path, capsys):
    for old, new, names in [
        ("epochs = 2", "epoch = 2", ["deep[0].train.epoch", "epochs"]),
        ('"hswd"]', '"hswdd"]', ["deep[0].quantization", "hswd", "penalty"]),
    ]:
        config = write(tmp_path, SHALLOW + DEEP.replace(old, new))
        assert main(["reproduce", str(config), "--output", str(tmp_path / "o"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert all(name in err for name in names), err


@pytest.mark.slow
def test_killed_run_loses_nothing(tmp_path):
    grid = SHALLOW.replace('["sign", "itq"]', '["sign", "itq", "pcah", "lsh"]').replace(
        "bits = [8, 16]", "bits = [8, 12, 16, 24, 32, 40]"
    )
    config = write(tmp_path, grid)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    cmd = [sys.executable, "-m", "hashlearn.cli.main", "reproduce", str(config)]
    proc = subprocess.Popen([*cmd, "--output", str(out), "--quiet"], env=env)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if results.is_file() and len(results.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = results.read_text()
    n_kept = len([x for x in kept.split("\n") if x.strip()])
    assert n_kept >= 2
    total = len(expand(load_config(config)))
    assert n_kept < total, "the run finished before it could be killed"
    # a line torn by a kill mid-write is dropped and its cell rerun
    with open(results, "a") as handle:
        handle.write('{"cell": "torn')
    records = run_grid(load_config(config), out, progress=False)
    text = results.read_text()
    complete = kept if kept.endswith("\n") else kept[: kept.rfind("\n") + 1]
    assert text.startswith(complete)
    assert len(records) == len(text.splitlines()) == total
    assert len({r["cell"] for r in records}) == total


def test_label_noise_flips_the_asked_share_seeded(digits):
    from hashlearn.reproduce.data import flip_labels

    noisy = flip_labels(digits, 0.3, seed=4)
    changed = noisy.train.y != digits.train.y
    assert changed.sum() == round(0.3 * len(digits.train))
    assert np.array_equal(flip_labels(digits, 0.3, seed=4).train.y, noisy.train.y)
    assert not np.array_equal(flip_labels(digits, 0.3, seed=5).train.y, noisy.train.y)
    assert np.array_equal(noisy.query.y, digits.query.y)  # only training labels change
    assert noisy.manifest["label_noise"]["n_flipped"] == changed.sum()


def test_class_subset_and_caps(digits):
    from hashlearn.reproduce.data import cap_splits, keep_classes

    subset = keep_classes(digits, [1, 7])
    assert set(subset.database.y) == {1, 7} and set(subset.train.y) == {1, 7}
    capped = cap_splits(subset, {"database": 50, "train": 20}, split_seed=0)
    assert len(capped.database) == 50 and len(capped.train) == 20
    assert np.isin(capped.database.indices, subset.database.indices).all()
    assert np.array_equal(capped.database.X, subset.database.X[
        np.searchsorted(subset.database.indices, capped.database.indices)])  # fmt: skip


def test_code_statistics():
    from hashlearn.codes import code_statistics

    z = np.array([[1.0, 0.5], [-1.0, 0.5], [1.0, 0.5], [-1.0, 0.5]])
    stats = code_statistics(z)
    assert stats["quantization_error"] == pytest.approx(0.125)  # (0.5^2) / 2 entries
    assert stats["bit_entropy"] == pytest.approx([1.0, 0.0], abs=1e-6)


def test_published_tables_agree_with_their_printed_gains():
    """The HSWD tables print each row's relative gain; our transcription must reproduce it."""
    from hashlearn.reproduce import PUBLISHED

    cifar = PUBLISHED["hswd"]["tables"][0]["rows"]
    printed = {("dsdh", 16): 7.9, ("dsdh", 64): 4.6, ("csq", 16): 4.8, ("dbdh", 32): 4.5}
    for (loss, bits), gain in printed.items():
        ratio = cifar[(loss, "hswd")][bits] / cifar[(loss, "penalty")][bits] - 1
        assert 100 * ratio == pytest.approx(gain, abs=0.06)
    h2q = PUBLISHED["h2q"]["tables"][0]["rows"]
    assert all(h2q[("dch", "h2q")][b] > h2q[("dch", "none")][b] for b in (16, 32, 48, 64))
