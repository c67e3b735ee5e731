"""The on-disk code store: round trips, memory-mapped search, crash-safe append, damage, locks."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.index import HammingIndex, MIHIndex, _store, read_index

SRC = str(Path(__file__).resolve().parent.parent / "src")


def codes(seed, n, n_bits=64):
    return np.packbits(np.random.default_rng(seed).integers(0, 2, (n, n_bits)), axis=1)


def assert_same(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("with_ids", [False, True])
def test_round_trip_and_mmap_search_in_blocks(tmp_path, monkeypatch, with_ids):
    import hashlearn.index.hamming as hamming

    database = codes(0, 5000, 40)
    index = HammingIndex(40)
    if with_ids:
        index.add_with_ids(database, np.arange(5000)[::-1] * 3)
    else:
        index.add(database)
    path = tmp_path / "store.hlx"
    index.save(path)
    loaded = HammingIndex.load(path)
    np.testing.assert_array_equal(loaded.codes, database)
    np.testing.assert_array_equal(loaded.ids, index.ids)
    monkeypatch.setattr(hamming, "MMAP_BLOCK_BYTES", 777 * 5)  # many blocks, ties across blocks
    mapped = HammingIndex.load(path, mmap=True)
    queries = np.concatenate([database[:10], codes(1, 10, 40)])
    for k in (1, 13, 5000):
        assert_same(mapped.search(queries, k), index.search(queries, k))
    assert_same(mapped.range_search(queries, 12), index.range_search(queries, 12))
    with pytest.raises(HashlearnInputError, match="read-only"):
        mapped.add(database[:1])


def test_append_grows_the_store_and_keeps_ids(tmp_path):
    path = tmp_path / "store.hlx"
    first, second = HammingIndex(64), HammingIndex(64)
    first.add_with_ids(codes(0, 300), np.arange(300) + 1000)
    second.add_with_ids(codes(1, 200), np.arange(200) + 5000)
    first.append_to(path)  # creates the store
    second.append_to(path)
    loaded = HammingIndex.load(path)
    np.testing.assert_array_equal(loaded.codes, np.concatenate([first.codes, second.codes]))
    np.testing.assert_array_equal(loaded.ids, np.concatenate([first.ids, second.ids]))
    with pytest.raises(HashlearnFileError, match="already holds id 5000"):
        second.append_to(path)
    plain = HammingIndex(64)
    plain.add(codes(2, 5))
    with pytest.raises(HashlearnFileError, match="explicit ids"):
        plain.append_to(path)
    wrong = HammingIndex(32)
    wrong.add(codes(2, 5, 32))
    with pytest.raises(HashlearnFileError, match="64-bit"):
        wrong.append_to(path)


def test_removed_ids_round_trip(tmp_path):
    index = MIHIndex(64)
    index.add(codes(3, 400))
    assert index.remove_ids([0, 5, 399, 10**9]) == 3
    index.save(tmp_path / "s.hlx")
    loaded = read_index(tmp_path / "s.hlx")
    assert isinstance(loaded, MIHIndex)
    np.testing.assert_array_equal(loaded.ids, index.ids)
    assert 5 not in loaded.ids and len(loaded) == 397
    assert_same(loaded.search(codes(4, 6), 8), index.search(codes(4, 6), 8))


APPEND_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from hashlearn.index import HammingIndex, _store
    real_fsync = os.fsync
    def stall(fd):  # the new records are written; the header is not yet
        real_fsync(fd)
        open(sys.argv[2], "w").close()
        time.sleep(60)
    if sys.argv[3] == "stall":
        _store.os.fsync = stall
    index = HammingIndex(64)
    index.add(np.random.default_rng(9).integers(0, 256, (int(sys.argv[4]), 8), dtype=np.uint8))
    index.append_to(sys.argv[1])
    """
)


def run_append(path, marker, mode, n):
    env = dict(os.environ, PYTHONPATH=SRC)
    cmd = [sys.executable, "-c", APPEND_SCRIPT, str(path), str(marker), mode, str(n)]
    return subprocess.Popen(cmd, env=env)


def test_store_survives_append_killed_mid_write(tmp_path):
    path, marker = tmp_path / "store.hlx", tmp_path / "ready"
    base = HammingIndex(64)
    base.add(codes(5, 1000))
    base.save(path)
    proc = run_append(path, marker, "stall", 50_000)
    deadline = time.time() + 120
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the appending process never reached its write"
    assert path.stat().st_size > _store.DATA_OFFSET + 1000 * 8  # records were written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    survived = HammingIndex.load(path)
    np.testing.assert_array_equal(survived.codes, base.codes)
    more = HammingIndex(64)
    more.add(codes(6, 10))
    more.append_to(path)  # the stray records are overwritten
    np.testing.assert_array_equal(HammingIndex.load(path).codes[1000:], more.codes)


def test_store_loads_after_kill_at_any_moment(tmp_path):
    path = tmp_path / "store.hlx"
    base = HammingIndex(64)
    base.add(codes(7, 500))
    base.save(path)
    proc = run_append(path, tmp_path / "unused", "plain", 2_000_000)
    start_size = path.stat().st_size
    deadline = time.time() + 120
    while path.stat().st_size == start_size and proc.poll() is None and time.time() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    loaded = HammingIndex.load(path)  # whichever state was committed, it is whole
    assert len(loaded) in (500, 2_000_500)
    np.testing.assert_array_equal(loaded.codes[:500], base.codes)


def test_torn_header_falls_back_to_previous_state(tmp_path):
    path = tmp_path / "store.hlx"
    index = HammingIndex(64)
    index.add(codes(8, 100))
    index.save(path)
    index.append_to(path)  # seq 2 goes to the second slot
    assert len(HammingIndex.load(path)) == 200
    with open(path, "r+b") as handle:  # tear the newest slot
        handle.seek(_store.SLOTS[1] + 20)
        handle.write(b"\xff\xff")
    assert len(HammingIndex.load(path)) == 100


def test_truncated_and_corrupted_files_are_refused(tmp_path):
    path = tmp_path / "store.hlx"
    index = HammingIndex(64)
    index.add(codes(9, 1000))
    index.save(path)
    data = path.read_bytes()
    (tmp_path / "short.hlx").write_bytes(data[:-8])
    with pytest.raises(HashlearnFileError, match=r"short\.hlx is truncated"):
        HammingIndex.load(tmp_path / "short.hlx")
    flipped = bytearray(data)
    flipped[_store.DATA_OFFSET + 4321] ^= 0x10
    (tmp_path / "flip.hlx").write_bytes(bytes(flipped))
    for mmap in (False, True):
        with pytest.raises(HashlearnFileError, match=r"flip\.hlx failed its checksum"):
            HammingIndex.load(tmp_path / "flip.hlx", mmap=mmap)
    (tmp_path / "junk.hlx").write_bytes(b"not a store" * 100)
    with pytest.raises(HashlearnFileError, match=r"junk\.hlx is not a hashlearn code store"):
        HammingIndex.load(tmp_path / "junk.hlx")
    header = bytearray(data)
    header[30] ^= 1
    (tmp_path / "head.hlx").write_bytes(bytes(header))
    with pytest.raises(HashlearnFileError, match=r"head\.hlx has no valid header"):
        HammingIndex.load(tmp_path / "head.hlx")


def test_second_writer_gets_a_clear_error(tmp_path):
    path = tmp_path / "store.hlx"
    index = HammingIndex(64)
    index.add(codes(10, 10))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), str(tmp_path / "go")],
        env=dict(os.environ, PYTHONPATH=SRC),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(HashlearnFileError, match=rf"another process \(pid {holder.pid}\)"):
            index.save(path, timeout=0)
        with pytest.raises(HashlearnFileError, match=r"another process .*\(waited 0\.2 s\)"):
            index.append_to(path, timeout=0.2)
    finally:
        (tmp_path / "go").touch()
        holder.wait(timeout=60)
    index.save(path)  # the lock is released
    assert len(HammingIndex.load(path)) == 10


HOLD_LOCK = textwrap.dedent(
    """
    import os, sys, time
    from hashlearn._io import file_lock
    with file_lock(sys.argv[1]):
        print("locked", flush=True)
        end = time.time() + 60
        while not os.path.exists(sys.argv[2]) and time.time() < end:
            time.sleep(0.02)
    """
)


def test_npz_format_still_reads_and_writes(tmp_path):
    index = HammingIndex(64)
    index.add(codes(13, 50))
    index.save(tmp_path / "old.npz")
    loaded = read_index(tmp_path / "old.npz")
    np.testing.assert_array_equal(loaded.codes, index.codes)
    with pytest.raises(HashlearnInputError, match="cannot be memory-mapped"):
        HammingIndex.load(tmp_path / "old.npz", mmap=True)
    with pytest.raises(HashlearnInputError, match="append_to needs a code store"):
        index.append_to(tmp_path / "old.npz")
    index.remove_ids([3])
    with pytest.raises(HashlearnInputError, match="holds no ids"):
        index.save(tmp_path / "ids.npz")


def test_cli_build_and_search(tmp_path, capsys):
    from hashlearn.cli.main import main

    database, queries = codes(11, 800), codes(12, 4)
    np.save(tmp_path / "c.npy", database)
    np.save(tmp_path / "q.npy", queries)
    np.save(tmp_path / "ids.npy", np.arange(800, dtype=np.int64) * 2)
    reference = HammingIndex(64)
    reference.add_with_ids(database, np.arange(800) * 2)
    for kind in ("flat", "mih"):
        out = tmp_path / f"{kind}.hlx"
        assert (
            main(
                [
                    "index",
                    "build",
                    "--codes",
                    str(tmp_path / "c.npy"),
                    "--ids",
                    str(tmp_path / "ids.npy"),
                    "--kind",
                    kind,
                    "--output",
                    str(out),
                ]
            )
            == 0
        )
        hits = tmp_path / f"{kind}.json"
        argv = ["index", "search", "--index", str(out), "--queries", str(tmp_path / "q.npy")]
        assert main([*argv, "-k", "5", "--output", str(hits)]) == 0
        import json

        record = json.loads(hits.read_text())
        d, i = reference.search(queries, 5)
        assert record["ids"] == i.tolist() and record["distances"] == d.tolist()
        assert main([*argv, "--radius", "25", "--output", str(hits)]) == 0
        record = json.loads(hits.read_text())
        lims, d, i = reference.range_search(queries, 25)
        assert sum(len(r) for r in record["ids"]) == lims[-1]
        assert record["ids"][1] == i[lims[1] : lims[2]].tolist()
        assert main([*argv, "-k", "801"]) == 2
        assert "larger than the 800" in capsys.readouterr().err
