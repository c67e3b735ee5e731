"""Milvus Lite 3.x dropped BINARY_VECTOR / HAMMING: MilvusBinaryIndex says so in one line.

Runs only where milvus-lite >= 3 is installed (hashlearn's extras pin milvus-lite < 3, so CI
runs tests/test_index.py's Milvus tests on 2.5 instead); checked with milvus-lite 3.2.2.
"""

from importlib.metadata import PackageNotFoundError, version

import pytest

from hashlearn._validation import HashlearnInputError


def _major() -> int:
    try:
        return int(version("milvus-lite").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return 0


@pytest.mark.skipif(_major() < 3, reason="needs milvus-lite >= 3 (the pinned 2.5 has binary)")
def test_milvus_lite_3_refuses_binary_vectors_with_a_clear_line(tmp_path):
    from hashlearn.index.milvus import MilvusBinaryIndex

    with pytest.raises(HashlearnInputError, match=r"milvus-lite<3") as info:
        MilvusBinaryIndex(32, uri=str(tmp_path / "m.db"), collection="codes")
    assert "BINARY_VECTOR" in str(info.value) and "\n" not in str(info.value)
