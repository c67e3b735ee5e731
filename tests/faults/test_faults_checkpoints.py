"""Fault injection on deep run directories: crashes inside the checkpoint rotation, a deleted
``latest.json``, flipped bytes and edited metadata, resuming nothing, two trainers at once.

Every resumed run must end bit-identical to an uninterrupted one, and must really resume (it
trains only the epochs that were missing: a run restarted from scratch would also end
identical, since training is seeded). Crashes between two steps of the rotation are injected
through ``checkpoints._rotation_step``: in-process as an exception (nothing in the rotation
cleans up after it, so the files are left as a kill would leave them), and once as a real
``kill -9`` of a trainer in a child process.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _proc import one_line_error, run_cli, start_python, wait_ready  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

import hashlearn.deep.checkpoints as checkpoints  # noqa: E402
from hashlearn._io import HashlearnFileError  # noqa: E402
from hashlearn.cli.main import main  # noqa: E402
from hashlearn.deep import TrainConfig, Trainer, load_run  # noqa: E402
from hashlearn.quantize import ITQ  # noqa: E402

SETTINGS = dict(loss="dpsh", quantization="hswd", n_bits=16, backbone="mlp", epochs=2,
                batch_size=64, lr=3e-3, patience=0, seed=5)  # fmt: skip


class Crash(BaseException):
    """Stands for the process dying (not an ``Exception``: nothing may catch it)."""


class Counting(Trainer):
    """Records the epochs it trains."""

    def _run_epoch(self, model, X, epoch, state, show):
        self.trained = [*getattr(self, "trained", []), epoch]
        return super()._run_epoch(model, X, epoch, state, show)


def fit(digits, run_dir, resume=False, **changes):
    trainer = Counting(TrainConfig(**{**SETTINGS, **changes}), run_dir, resume=resume,
                       progress=False)  # fmt: skip
    hasher = trainer.fit(digits.train.X, digits.train.y, n_classes=10)
    return hasher, getattr(trainer, "trained", [])


def crash_at(monkeypatch, folder, step):
    def hook(at_step, at_folder):
        if (at_folder, at_step) == (folder, step):
            raise Crash(f"{folder} {step}")

    monkeypatch.setattr(checkpoints, "_rotation_step", hook)


def interrupted(digits, run_dir, monkeypatch, folder, step):
    """A run that dies right after ``step`` of writing checkpoint ``folder``."""
    crash_at(monkeypatch, folder, step)
    with pytest.raises(Crash):
        fit(digits, run_dir)
    monkeypatch.undo()


def newest(run_dir):
    return checkpoints.checkpoint_folders(run_dir)[0]


def same_run(a, b):
    """The two run directories hold identical best weights, final checkpoint and history."""
    for x, y in ((a, b), (newest(a), newest(b))):
        x, y = load_file(str(x / "model.safetensors")), load_file(str(y / "model.safetensors"))
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    history = [[{k: v for k, v in h.items() if k != "seconds"} for h in history_of(run)]
               for run in (a, b)]  # fmt: skip
    assert history[0] == history[1] and len(history[0]) == SETTINGS["epochs"]


def history_of(run):
    return read(run / "result.json")["history"]


def read(path):
    return json.loads(path.read_text())


def flip_byte(path, where=-1):
    """Flip the lowest bit of one byte (by default the last: tensor data in safetensors)."""
    data = bytearray(path.read_bytes())
    data[where] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def straight(digits, tmp_path_factory):
    """An uninterrupted run."""
    run = tmp_path_factory.mktemp("straight") / "run"
    fit(digits, run)
    return run


# -- crashes inside the rotation ----------------------------------------------------------------
@pytest.mark.parametrize(
    "folder, step, trains",
    [
        ("epoch-0001", "written", [1, 2]),  # no checkpoint in place yet: restarts at epoch 1
        ("epoch-0002", "renamed", []),  # latest.json is one behind: the newer folder is intact
        ("epoch-0002", "pointed", []),  # the older folder is not pruned yet
        ("epoch-0002-2", "written", []),  # the final rewrite of epoch 2, live folder untouched
        ("epoch-0002-2", "renamed", []),
    ],
)
def test_crash_between_rotation_steps_resumes_identically(
    digits, straight, tmp_path, monkeypatch, caplog, folder, step, trains
):
    run = tmp_path / "run"
    interrupted(digits, run, monkeypatch, folder, step)
    pointer = run / "checkpoints/latest.json"
    if pointer.exists():  # latest.json never names a missing or damaged folder
        checkpoints.load_checkpoint(run / "checkpoints" / read(pointer)["folder"])
    with caplog.at_level("WARNING", logger="hashlearn"):
        _, trained = fit(digits, run, resume=True)
    assert trained == trains
    assert ("no checkpoint yet" in caplog.text) == (trains == [1, 2])
    same_run(straight, run)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len([n for n in names if n.startswith("epoch-")]) == 2  # the newest two are kept
    assert not [n for n in names if n.endswith(".tmp")]  # crash leftovers are cleaned


@pytest.mark.slow
def test_kill_9_mid_rotation_while_a_second_trainer_is_refused(digits, straight, tmp_path):
    run = tmp_path / "run"
    code = textwrap.dedent(f"""
        import time
        import hashlearn.deep.checkpoints as checkpoints
        from hashlearn.data import load_dataset
        from hashlearn.deep import TrainConfig, Trainer

        def hook(step, folder):
            if (folder, step) == ("epoch-0002-2", "written"):
                print("ready", flush=True)
                time.sleep(300)

        checkpoints._rotation_step = hook
        d = load_dataset("digits", progress=False)
        Trainer(TrainConfig(**{SETTINGS!r}), {str(run)!r}, progress=False).fit(
            d.train.X, d.train.y, n_classes=10)
    """)
    child = start_python(code, tmp_path)
    try:
        wait_ready(child)
        with pytest.raises(HashlearnFileError, match=rf"pid {child.pid}\).*{re.escape(str(run))}"):
            fit(digits, run, resume=True)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert (run / "checkpoints/.epoch-0002-2.tmp").is_dir()  # killed mid-rotation
    _, trained = fit(digits, run, resume=True)  # the kernel released the lock
    assert trained == []
    same_run(straight, run)


def test_disk_full_while_writing_a_checkpoint_is_one_line_and_keeps_the_earlier(tmp_path):
    args = ["train", "--dataset", "digits", "--backbone", "mlp", "--bits", "8", "--output",
            "run", "--quiet"]  # fmt: skip
    assert run_cli([*args, "--epochs", "1"], tmp_path).returncode == 0
    root = tmp_path / "run/checkpoints"
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    optimizer = max(len(data) for p, data in before.items() if p.name == "optimizer.safetensors")
    # Every file but the optimizer state still fits: epoch 2's checkpoint fails part-way.
    result = run_cli([*args, "--epochs", "2", "--resume"], tmp_path, max_file_bytes=optimizer - 1)
    one_line_error(result, "checkpoint run/checkpoints/epoch-0002", "File too large [EFBIG]",
                   "earlier checkpoints are unchanged")  # fmt: skip
    assert "Safetensor" not in result.stderr
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    checkpoints.load_checkpoint(checkpoints.checkpoint_folders(tmp_path / "run")[0])


# -- lost pointer, damaged and edited files ----------------------------------------------------
def test_deleted_latest_json_resumes_from_the_newest_intact_checkpoint(
    digits, straight, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    interrupted(digits, run, monkeypatch, "epoch-0001", "pruned")
    (run / "checkpoints/latest.json").unlink()
    with pytest.raises(HashlearnFileError, match="already holds a training run.*`resume=True`"):
        fit(digits, run)
    _, trained = fit(digits, run, resume=True)
    assert trained == [2]
    same_run(straight, run)


@pytest.mark.parametrize("damage", ["weights", "optimizer", "state"])
def test_damaged_newest_checkpoint_is_skipped_with_a_warning(
    digits, straight, tmp_path, monkeypatch, caplog, damage
):
    run = tmp_path / "run"
    interrupted(digits, run, monkeypatch, "epoch-0002", "pruned")
    bad = run / "checkpoints/epoch-0002"
    if damage == "state":  # a consistent edit of the JSON: only its checksum tells
        state = read(bad / "state.json")
        state["state"]["best_map"] = 1.0
        (bad / "state.json").write_text(json.dumps(state))
        culprit = "state.json"
    else:
        culprit = f"{'model' if damage == 'weights' else 'optimizer'}.safetensors"
        flip_byte(bad / culprit)
    with caplog.at_level("WARNING", logger="hashlearn"):
        _, trained = fit(digits, run, resume=True)
    assert trained == [2]
    assert "from epoch-0001, the newest intact" in caplog.text
    assert f"epoch-0002/{culprit}" in caplog.text and "SHA-256" in caplog.text
    same_run(straight, run)
    assert not bad.exists()  # the damaged folder was replaced once a new one was in place


def test_no_intact_checkpoint_refuses_and_keeps_the_files(digits, tmp_path, monkeypatch):
    run = tmp_path / "run"
    interrupted(digits, run, monkeypatch, "epoch-0002", "pruned")
    for folder in ("epoch-0001", "epoch-0002"):
        flip_byte(run / "checkpoints" / folder / "model.safetensors")

    def files():
        return {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}

    before = files()
    with pytest.raises(HashlearnFileError, match="no intact checkpoint") as error:
        fit(digits, run, resume=True)
    assert "epoch-0001: " in str(error.value) and "epoch-0002: " in str(error.value)
    assert files() == before


def test_damaged_best_weights_are_refused_on_load_and_resume(digits, tmp_path, monkeypatch):
    run = tmp_path / "run"
    interrupted(digits, run, monkeypatch, "epoch-0002", "pruned")
    flip_byte(run / "model.safetensors")
    with pytest.raises(HashlearnFileError, match=r"model\.safetensors: tensor .* SHA-256"):
        load_run(run)
    with pytest.raises(HashlearnFileError, match=r"model\.safetensors.*cannot be resumed"):
        fit(digits, run, resume=True)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["network"].update(n_bits=32) or c["train"].update(n_bits=32), "network"),
        (lambda c: c["train"].update(n_bits=32), "train.n_bits"),
        (lambda c: c["input"].update(mean=0.5), "input"),
    ],
)
def test_edited_run_metadata_is_checked_against_the_weights(straight, tmp_path, edit, message):
    run = tmp_path / "run"
    shutil.copytree(straight, run)
    load_run(run)  # the unedited copy loads
    config = read(run / "config.json")
    edit(config)
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(HashlearnFileError, match=rf"config\.json does not match .*{message}"):
        load_run(run)


def test_weights_of_another_shape_name_the_file(digits, straight, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "model.safetensors"):
        (run / name).write_bytes((straight / name).read_bytes())
    weights = load_file(str(run / "model.safetensors"))
    head = [k for k in weights if k.startswith("head.")][-1]
    weights[head] = weights[head][:-1]  # a 15-bit head, without the spec header
    checkpoints.save_tensors(run / "model.safetensors", weights)
    with pytest.raises(HashlearnFileError, match=r"model\.safetensors does not fit the network"):
        load_run(run)


def test_files_with_stripped_checksums_are_refused(digits, straight, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(straight, run)
    weights = load_file(str(run / "model.safetensors"))  # rewritten without the checksum header
    save_file(weights, str(run / "model.safetensors"))
    with pytest.raises(HashlearnFileError, match=r"model\.safetensors has no checksums"):
        load_run(run)
    folder = newest(run)
    checkpoints.load_checkpoint(folder)  # intact
    state = read(folder / "state.json")
    del state["sha256"]
    (folder / "state.json").write_text(json.dumps(state))
    with pytest.raises(HashlearnFileError, match=r"state\.json has no checksums"):
        checkpoints.load_checkpoint(folder)


def test_rotation_files_are_verified_and_checked_against_the_network(digits, tmp_path):
    run = tmp_path / "run"
    fit(digits, run, quantization="itq", epochs=1)
    rotation = run / "itq.npz"
    good = rotation.read_bytes()
    flip_byte(rotation, len(good) // 2)  # inside the archive's members
    with pytest.raises(HashlearnFileError, match=r"itq\.npz"):
        load_run(run)
    rotation.write_bytes(good)
    ITQ(8, random_state=0).fit(np.random.default_rng(0).standard_normal((50, 8))).save(rotation)
    with pytest.raises(HashlearnFileError, match=r"itq\.npz does not fit the 16-bit network"):
        load_run(run)


# -- nothing to resume, a file as the run directory, CLI flags ---------------------------------
def test_resume_without_a_run_is_refused(digits, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(HashlearnFileError, match="holds no training run.*`resume=True`"):
            fit(digits, path, resume=True)
    assert not (tmp_path / "missing").exists() and not any((tmp_path / "empty").iterdir())
    args = ["train", "--dataset", "digits", "--backbone", "mlp", "--bits", "8", "--epochs", "1",
            "--output", str(tmp_path / "empty"), "--resume", "--quiet"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds no training run" in err
    assert "`--resume`" in err and "`--output`" in err and "resume=True" not in err


def test_a_file_as_run_directory_names_the_argument(digits, tmp_path):
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(HashlearnFileError, match="File exists and is not a folder.*`run_dir`"):
        fit(digits, tmp_path / "run")
    assert (tmp_path / "run").read_text() == "not a folder"
