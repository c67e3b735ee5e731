"""Fault injection on every writer: full disk, kill -9 mid-write, paths that cannot be written.

Each case runs the real writer in a child process where it matters and asserts that the
previous file survives byte for byte, that the error names the path and the cause, and that no
temporary file is left behind (or that the next write removes it).
"""

import json
import os
import signal
import time

import numpy as np
import pytest
from _proc import one_line_error, run_cli, run_python, start_python, wait_ready

from hashlearn._io import (
    STALE_TEMP_SECONDS,
    HashlearnFileError,
    atomic_write,
    clean_stale_temps,
    save_npy,
    write_json_atomic,
)
from hashlearn.base import BaseHasher
from hashlearn.index import HammingIndex
from hashlearn.quantize import ITQ


@pytest.fixture
def workdir(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "small.npy", rng.standard_normal((40, 16)))
    np.save(tmp_path / "big.npy", rng.standard_normal((4000, 16)))
    return tmp_path


def temps(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def fit(workdir, data="small.npy", output="model.npz", **kw):
    return run_cli(["fit", "--method", "itq", "--bits", "16", "--data", data,
                    "--output", output, "--quiet"], workdir, **kw)  # fmt: skip


@pytest.mark.slow
def test_disk_full_during_encode_keeps_the_old_codes(workdir):
    assert fit(workdir).returncode == 0
    args = ["encode", "--model", "model.npz", "--output", "codes.npy", "--quiet"]
    assert run_cli([*args[:2], *args[2:], "--data", "small.npy"], workdir).returncode == 0
    before = (workdir / "codes.npy").read_bytes()
    # 4000 codes of 2 bytes do not fit in 4 KiB: the write fails with EFBIG like a full disk.
    result = run_cli([*args, "--data", "big.npy"], workdir, max_file_bytes=4096)
    one_line_error(result, "codes.npy", "File too large", "previous file is unchanged")
    assert (workdir / "codes.npy").read_bytes() == before
    assert temps(workdir) == []


@pytest.mark.slow
def test_disk_full_during_fit_keeps_the_old_model(workdir):
    assert fit(workdir).returncode == 0
    before = (workdir / "model.npz").read_bytes()
    one_line_error(fit(workdir, max_file_bytes=len(before) // 2), "model.npz", "File too large")
    assert (workdir / "model.npz").read_bytes() == before
    assert temps(workdir) == []


@pytest.mark.slow
def test_disk_full_during_search_json_keeps_the_old_results(workdir):
    assert fit(workdir).returncode == 0
    enc = ["encode", "--model", "model.npz", "--data", "big.npy", "--output", "c.npy", "--quiet"]
    assert run_cli(enc, workdir).returncode == 0
    search = ["search", "--database", "c.npy", "--queries", "c.npy", "--k", "3",
              "--output", "hits.json", "--quiet"]  # fmt: skip
    # One unlimited run first, so that numba's on-disk kernel cache is written before the
    # file-size limit applies (a fresh clone compiles the search kernels here).
    assert run_cli(search, workdir).returncode == 0
    (workdir / "hits.json").write_text('{"old": true}')
    # The limit leaves room for the inputs' reads but not for 4000 × 3 ids and distances.
    one_line_error(run_cli(search, workdir, max_file_bytes=8192), "hits.json", "File too large")
    assert json.loads((workdir / "hits.json").read_text()) == {"old": True}


def test_disk_full_during_index_save_keeps_the_old_index(workdir):
    codes = np.random.default_rng(1).integers(0, 256, (5000, 8), dtype=np.uint8)
    index = HammingIndex(64)
    index.add(codes[:10])
    index.save(workdir / "db.npz")
    before = (workdir / "db.npz").read_bytes()
    code = (
        "import numpy as np, sys\n"
        "from hashlearn.index import HammingIndex\n"
        "from hashlearn._io import HashlearnFileError\n"
        "i = HammingIndex.load('db.npz'); i.add(np.random.default_rng(1).integers("
        "0, 256, (5000, 8), dtype=np.uint8))\n"
        "try:\n    i.save('db.npz')\nexcept HashlearnFileError as e:\n    print(e); sys.exit(3)\n"
    )
    result = run_python(code, workdir, max_file_bytes=len(before) + 1000)
    assert result.returncode == 3, result.stderr
    assert "db.npz" in result.stdout and "File too large" in result.stdout
    assert (workdir / "db.npz").read_bytes() == before
    np.testing.assert_array_equal(HammingIndex.load(workdir / "db.npz").codes, codes[:10])


def test_writer_killed_mid_write_leaves_old_file_and_next_write_cleans_up(workdir):
    target = workdir / "codes.npy"
    save_npy(target, np.arange(6, dtype=np.uint8).reshape(3, 2))
    before = target.read_bytes()
    code = (
        "import sys, time\n"
        "from hashlearn._io import atomic_write\n"
        "with atomic_write('codes.npy') as f:\n"
        "    f.write(b'x' * 100000); f.flush(); print('ready', flush=True); time.sleep(60)\n"
    )
    child = start_python(code, workdir)
    wait_ready(child)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert target.read_bytes() == before  # kill -9 mid-write: the old file is intact
    left = temps(workdir)
    assert len(left) == 1 and left[0].startswith(f".codes.npy.{child.pid}-")
    assert (workdir / left[0]).stat().st_size == 100000
    save_npy(target, np.ones((2, 2), dtype=np.uint8))  # the next write removes the dead temp
    assert temps(workdir) == []
    np.testing.assert_array_equal(np.load(target), np.ones((2, 2), dtype=np.uint8))


def test_temp_of_a_writer_killed_mid_save_is_removed_by_the_next_load(workdir):
    index = HammingIndex(64)
    index.add(np.random.default_rng(3).integers(0, 256, (50, 8), dtype=np.uint8))
    for name in ("db.hlx", "db.npz"):
        index.save(workdir / name)
    ITQ(8, random_state=0).fit(np.load(workdir / "small.npy")).save(workdir / "model.npz")
    loaders = {"db.hlx": HammingIndex.load, "db.npz": HammingIndex.load,
               "model.npz": BaseHasher.load}  # fmt: skip
    for name, load in loaders.items():
        code = (
            "import time\n"
            "from hashlearn._io import atomic_write\n"
            f"with atomic_write({name!r}) as f:\n"
            "    f.write(b'x' * 1000); f.flush(); print('ready', flush=True); time.sleep(60)\n"
        )
        child = start_python(code, workdir)
        wait_ready(child)
        live = temps(workdir)
        load(workdir / name)  # a running writer keeps its temp
        assert temps(workdir) == live and len(live) == 1 and f".{child.pid}-" in live[0]
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        load(workdir / name)  # its pid is gone: the load removes the temp
        assert temps(workdir) == []
    mmap = workdir / f".db.hlx.{dead_pid()}-abcd.tmp"
    mmap.write_bytes(b"partial")
    HammingIndex.load(workdir / "db.hlx", mmap=True)
    assert not mmap.exists()


def test_a_load_leaves_old_temps_of_live_pids(tmp_path):
    ITQ(2, random_state=0).fit(np.random.default_rng(0).standard_normal((20, 4))).save(
        tmp_path / "m.npz"
    )
    old = tmp_path / f".m.npz.{os.getpid()}-bbbb.tmp"  # this process: alive, but a day old
    old.write_text("partial")
    past = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(old, (past, past))
    BaseHasher.load(tmp_path / "m.npz")
    assert old.exists()  # only a writer, which would replace it, removes aged live temps
    clean_stale_temps(tmp_path / "m.npz")
    assert not old.exists()


def dead_pid():
    """The pid of a process that has exited."""
    child = start_python("print('ready', flush=True)", ".")
    wait_ready(child)
    child.wait(timeout=30)
    return child.pid


def test_stale_temps_only_of_dead_or_old_writers_are_removed(tmp_path):
    target = tmp_path / "out.json"
    live = tmp_path / f".out.json.{os.getpid()}-aaaa.tmp"  # a running writer (this process)
    old = tmp_path / f".out.json.{os.getpid()}-bbbb.tmp"  # same pid, but older than a day
    other = tmp_path / ".other.json.999999999-cccc.tmp"  # another file's temp
    for path in (live, old, other):
        path.write_text("partial")
    past = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(old, (past, past))
    assert clean_stale_temps(target) == [old]
    assert live.exists() and other.exists() and not old.exists()


def test_failure_inside_the_writer_keeps_the_old_file(tmp_path):
    target = tmp_path / "result.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target) as handle:
            handle.write(b'{"v": 2')
            raise RuntimeError("boom")
    assert json.loads(target.read_text()) == {"v": 1} and temps(tmp_path) == []


@pytest.mark.slow
def test_cli_output_is_a_directory_or_under_a_file(workdir):
    assert fit(workdir).returncode == 0
    (workdir / "adir").mkdir()
    (workdir / "afile").write_text("x")
    enc = ["encode", "--model", "model.npz", "--data", "small.npy", "--quiet", "--output"]
    one_line_error(run_cli([*enc, "adir"], workdir), "adir", "is a directory")
    one_line_error(run_cli([*enc, "afile/c.npy"], workdir), "afile", "is a file, not a folder")
    with pytest.raises(HashlearnFileError, match="is a directory"):
        write_json_atomic(workdir / "adir", {})


@pytest.mark.slow
def test_cli_existing_file_as_run_directory_is_one_line(workdir):
    (workdir / "run").write_text("not a folder")
    args = ["train", "--dataset", "digits", "--backbone", "mlp", "--bits", "8", "--epochs", "1",
            "--output", "run", "--quiet"]  # fmt: skip
    one_line_error(run_cli(args, workdir), "run", "File exists")
    assert (workdir / "run").read_text() == "not a folder"
