"""Damaged and edited model / index files, and two processes writing one store.

A flipped byte, an edited array or edited metadata must fail on load with an error naming the
file; metadata that was rewritten consistently (checksums recomputed) must still be checked
against the arrays; a second writer of a locked store gets a clear error and no append is lost.
"""

import hashlib
import json
import signal
import threading
import time
import zlib

import numpy as np
import pytest
from _proc import one_line_error, run_cli, run_python, start_python, wait_ready

from hashlearn._io import HashlearnFileError, file_lock, load_arrays, save_arrays
from hashlearn.base import BaseHasher
from hashlearn.catalogue import load_model
from hashlearn.index import HammingIndex, read_index
from hashlearn.quantize import ITQ


@pytest.fixture
def model_file(tmp_path):
    X = np.random.default_rng(0).standard_normal((200, 32))
    path = tmp_path / "itq16.npz"
    ITQ(16, random_state=0).fit(X).save(path)
    return path


def raw_entries(path):
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def test_flipped_byte_in_an_array_is_refused(model_file):
    blob = bytearray(model_file.read_bytes())
    rotation = np.ascontiguousarray(raw_entries(model_file)["rotation_"]).tobytes()
    offset = blob.find(rotation[:64])
    blob[offset + 10] ^= 0x01
    model_file.write_bytes(bytes(blob))
    with pytest.raises(HashlearnFileError, match="corrupted") as info:
        BaseHasher.load(model_file)
    assert str(model_file) in str(info.value)


def test_edited_array_is_refused_by_its_checksum(model_file):
    entries = raw_entries(model_file)
    entries["rotation_"] = entries["rotation_"] * -1.0  # same shape, other codes
    np.savez(model_file, **entries)  # rewritten without updating the checksums
    with pytest.raises(HashlearnFileError, match=r"checksums .*array 'rotation_'") as info:
        BaseHasher.load(model_file)
    assert str(model_file) in str(info.value)


def test_edited_metadata_is_refused_by_its_checksum(model_file):
    entries = raw_entries(model_file)
    meta = json.loads(entries["__meta__"].tobytes())
    meta["params"]["n_bits"] = 32
    entries["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(model_file, **entries)
    with pytest.raises(HashlearnFileError, match=r"checksums .*metadata"):
        BaseHasher.load(model_file)


def edit_consistently(path, change):
    """Rewrite ``path`` with edited metadata/arrays and freshly computed checksums."""
    arrays, meta = load_arrays(path)
    change(arrays, meta)
    save_arrays(path, arrays, meta)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a, m: m["params"].update(n_bits=32), "n_bits=32 disagrees"),
        (lambda a, m: m["scalars"].update(n_bits_=32), "n_bits=16 disagrees with the fitted"),
        (
            lambda a, m: m["scalars"].update(n_bits_=32) or m["params"].update(n_bits=32),
            "claims 32-bit codes but its arrays give 16",
        ),
        (lambda a, m: a.update(rotation_=np.eye(20)), "arrays do not fit together"),
        (lambda a, m: a.update(rotation_=np.eye(16)[:, :12]), "claims 16-bit codes"),
        (lambda a, m: m.update(method="lsh"), "names method 'lsh'"),
        (lambda a, m: m.update(method="lsh", **{"class": "LSH"}), "not parameters of LSH"),
        (lambda a, m: m.update(method="no-such"), "unknown method 'no-such'"),
    ],
)
def test_consistently_edited_model_is_checked_against_its_arrays(model_file, change, message):
    edit_consistently(model_file, change)
    with pytest.raises(HashlearnFileError, match=message) as info:
        load_model(model_file)  # the catalogue knows every method, whatever ran before
    assert str(model_file) in str(info.value)


@pytest.mark.parametrize("version, fix", [(2, "newer hashlearn; upgrade"), (0, "re-create it")])
def test_model_of_another_format_version_names_both_versions(model_file, version, fix):
    edit_consistently(model_file, lambda a, m: m.update(format_version=version))
    with pytest.raises(HashlearnFileError, match=rf"model of format version {version}, but "
                       rf"hashlearn .* reads format version 1 only; .*{fix}"):  # fmt: skip
        load_model(model_file)


@pytest.mark.parametrize("version", [2, 7])
def test_code_store_of_a_newer_format_version_names_both_versions(tmp_path, version):
    from hashlearn.index import _store

    path = tmp_path / "db.hlx"
    index = HammingIndex(64)
    index.add(np.random.default_rng(2).integers(0, 256, (10, 8), dtype=np.uint8))
    index.save(path)
    blob = bytearray(path.read_bytes())
    for offset in _store.SLOTS:  # rewrite both header slots as a newer release would
        body = blob[offset : offset + _store._SLOT.size]
        fields = list(_store._SLOT.unpack(body))
        fields[1] = version
        body = _store._SLOT.pack(*fields)
        blob[offset : offset + len(body)] = body
        blob[offset + len(body) : offset + len(body) + 4] = _store._SLOT_CRC.pack(zlib.crc32(body))
    path.write_bytes(bytes(blob))
    message = rf"{path.name} is a code store of format version {version}, but .* reads format "
    for load in (HammingIndex.load, lambda p: HammingIndex.load(p, mmap=True), read_index):
        with pytest.raises(HashlearnFileError, match=message + "version 1 only; .* upgrade"):
            load(path)


@pytest.mark.parametrize("strip_array_sums", [True, False])
def test_file_with_stripped_checksums_is_refused(model_file, tmp_path, strip_array_sums):
    entries = raw_entries(model_file)
    meta = json.loads(entries.pop("__meta__").tobytes())
    if strip_array_sums:
        meta.pop("_checksums")
    meta["params"]["n_bits"] = 32  # an edit the stripped checksums would have caught
    del entries["__meta_sha256__"]
    stripped = tmp_path / "stripped.npz"
    np.savez(stripped, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **entries)
    for load in (BaseHasher.load, load_model, HammingIndex.load):
        with pytest.raises(HashlearnFileError, match=r"stripped\.npz has no checksums .* cannot "
                           r"be verified; the file was edited or corrupted"):  # fmt: skip
            load(stripped)


@pytest.fixture
def index_file(tmp_path):
    index = HammingIndex(64)
    index.add(np.random.default_rng(2).integers(0, 256, (100, 8), dtype=np.uint8))
    path = tmp_path / "db.npz"
    index.save(path)
    return path


def test_index_n_bits_edited_64_to_60(index_file):
    original = index_file.read_bytes()
    entries = raw_entries(index_file)
    meta = json.loads(entries["__meta__"].tobytes())
    meta["n_bits"] = 60
    entries["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(index_file, **entries)
    with pytest.raises(HashlearnFileError, match="checksums"):
        HammingIndex.load(index_file)
    index_file.write_bytes(original)
    edit_consistently(index_file, lambda a, m: m.update(n_bits=60))
    with pytest.raises(HashlearnFileError, match="bits beyond 60") as info:
        HammingIndex.load(index_file)
    assert str(index_file) in str(info.value)
    edit_consistently(index_file, lambda a, m: m.update(n_bits=72))
    with pytest.raises(HashlearnFileError, match="n_bits=72"):
        HammingIndex.load(index_file)


def test_checksums_are_sha256_of_each_array(index_file):
    arrays, _ = load_arrays(index_file)
    meta = json.loads(raw_entries(index_file)["__meta__"].tobytes())
    codes = arrays["codes"]
    expected = hashlib.sha256(f"{codes.dtype.str}{codes.shape}".encode() + codes.tobytes())
    assert meta["_checksums"] == {"codes": expected.hexdigest()}


HOLD_LOCK = (  # holds the lock until the test creates the file "go" (or {sleep} s pass)
    "import os, time\n"
    "from hashlearn._io import file_lock\n"
    "from hashlearn.index import HammingIndex\n"
    "import numpy as np\n"
    "with file_lock('db.npz'):\n"
    "    i = HammingIndex.load('db.npz')\n"
    "    i.add(np.full((5, 8), 7, dtype=np.uint8))\n"
    "    print('ready', flush=True)\n"
    "    end = time.time() + {sleep}\n"
    "    while not os.path.exists('go') and time.time() < end:\n"
    "        time.sleep(0.02)\n"
    "    i.save('db.npz')\n"
)


def test_second_writer_of_a_locked_index_gets_a_clear_error(index_file):
    before = HammingIndex.load(index_file).codes
    child = start_python(HOLD_LOCK.format(sleep=60), index_file.parent)
    wait_ready(child)
    other = HammingIndex(64)
    other.add(np.zeros((1, 8), dtype=np.uint8))
    with pytest.raises(HashlearnFileError, match=rf"another process \(pid {child.pid}\) is writ"):
        other.save(index_file, timeout=0)
    (index_file.parent / "go").touch()
    assert child.wait(timeout=60) == 0, child.stderr.read()
    after = HammingIndex.load(index_file).codes  # the first writer's append survived
    np.testing.assert_array_equal(after[:100], before)
    assert len(after) == 105 and (after[100:] == 7).all()


def test_second_writer_waits_for_the_lock_then_saves(index_file):
    child = start_python(HOLD_LOCK.format(sleep=60), index_file.parent)
    wait_ready(child)
    mine = HammingIndex(64)
    mine.add(np.full((3, 8), 9, dtype=np.uint8))
    with pytest.raises(HashlearnFileError, match=r"is writing .*db\.npz \(waited 0\.5 s\)"):
        mine.save(index_file, timeout=0.5)
    release = threading.Timer(1.0, (index_file.parent / "go").touch)
    release.start()
    for path in (index_file, index_file.with_suffix(".hlx")):
        mine.save(path)  # the default timeout waits for the child's save to finish
    assert child.wait(timeout=60) == 0, child.stderr.read()
    release.join()
    for path in (index_file, index_file.with_suffix(".hlx")):  # ours came after the child's
        np.testing.assert_array_equal(HammingIndex.load(path).codes, mine.codes)


def test_cli_refuses_at_once_while_another_process_writes(index_file, tmp_path):
    np.save(tmp_path / "codes.npy", np.zeros((4, 8), dtype=np.uint8))
    build = ["index", "build", "--codes", "codes.npy", "--output", "db.npz", "--quiet"]
    with file_lock(index_file):
        start = time.monotonic()
        result = run_cli(build, tmp_path)
    assert time.monotonic() - start < 30  # no 60 s wait
    one_line_error(result, "another process", "db.npz")
    assert len(HammingIndex.load(index_file)) == 100


def test_lock_of_a_killed_writer_is_released(index_file):
    child = start_python(HOLD_LOCK.format(sleep=60), index_file.parent)
    wait_ready(child)
    with pytest.raises(HashlearnFileError, match="another process"):
        with file_lock(index_file):
            pass
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    with file_lock(index_file, timeout=5):  # the kernel dropped the dead writer's lock
        assert len(HammingIndex.load(index_file)) == 100  # and its unsaved append never landed


@pytest.mark.slow
def test_racing_locked_appends_lose_nothing(index_file):
    append = (
        "import numpy as np, sys\n"
        "from hashlearn._io import file_lock\n"
        "from hashlearn.index import HammingIndex\n"
        "for step in range(5):\n"
        "    with file_lock('db.npz', timeout=120):\n"
        "        i = HammingIndex.load('db.npz')\n"
        "        i.add(np.full((1, 8), int(sys.argv[1]), dtype=np.uint8))\n"
        "        i.save('db.npz')\n"
    )
    children = [
        start_python(append.replace("sys.argv[1]", str(value)), index_file.parent)
        for value in (11, 13)
    ]
    for child in children:
        assert child.wait(timeout=240) == 0, child.stderr.read()
    codes = HammingIndex.load(index_file).codes
    assert len(codes) == 110
    assert sorted(np.unique(codes[100:, 0]).tolist()) == [11, 13]
    assert (codes[100:, 0] == 11).sum() == 5 and (codes[100:, 0] == 13).sum() == 5


def test_unlocked_child_sees_a_held_lock(index_file):
    with file_lock(index_file):
        code = (
            "import numpy as np\n"
            "from hashlearn.index import HammingIndex\n"
            "HammingIndex(64).save('db.npz', timeout=0)\n"
        )
        result = run_python(code, index_file.parent)
    assert result.returncode != 0 and "another process" in result.stderr
    assert len(HammingIndex.load(index_file)) == 100
