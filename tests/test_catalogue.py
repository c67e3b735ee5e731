"""The method and dataset catalogues: every shipped name, look-ups, loading saved models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.catalogue import (
    available_methods,
    first_line,
    load_model,
    make_method,
    method_description,
)
from hashlearn.data import available_datasets, dataset_info
from hashlearn.registry import register_method, registered_methods
from hashlearn.shallow import SSAH

SRC = Path(__file__).resolve().parents[1] / "src"

SHIPPED = {
    "sign", "lsh", "pcah", "itq", "h2q", "h2q-l1", "h2q-min-entry", "h2q-bit-var",
    "random-rotation", "ssah", "ssah-svd", "sdh", "fsdh", "ksh", "cca-itq",
}  # fmt: skip


def test_catalogue_holds_every_shipped_method_with_a_description():
    assert set(available_methods()) == SHIPPED
    for name in SHIPPED:
        text = method_description(name)
        assert text and "\n" not in text, name
        assert make_method(name, n_bits=8).method_name == name
    assert {"digits", "fashion-mnist"} <= set(available_datasets())
    assert dataset_info("fashion_mnist").name == "fashion-mnist"


def test_unknown_names_and_parameters_are_clear_errors():
    with pytest.raises(HashlearnInputError, match="unknown method 'nope'.*hashlearn methods"):
        make_method("nope")
    with pytest.raises(HashlearnInputError, match="no parameter 'n_anchor'.*n_anchors"):
        make_method("ssah", n_anchor=3)
    with pytest.raises(HashlearnInputError, match="unknown dataset 'nope'"):
        dataset_info("nope")


def test_a_name_registers_once():
    with pytest.raises(RuntimeError, match="'sign' registered twice"):
        register_method("sign")(type("Other", (), {}))
    assert registered_methods()["sign"].__name__ == "SignQuantizer"
    with pytest.raises(TypeError):
        registered_methods()["x"] = object  # read-only view


def test_first_line():
    assert first_line("\n  Sign of centred features.\n\n  More.") == "Sign of centred features."
    assert first_line(None) == ""


def test_load_model_loads_any_method(digits, tmp_path):
    model = SSAH(n_bits=8, n_anchors=50, max_iter=2, random_state=0)
    model.fit(digits.train.X, digits.train.y)
    model.save(tmp_path / "ssah.npz")
    loaded = load_model(tmp_path / "ssah.npz")
    assert type(loaded) is SSAH
    assert (loaded.encode(digits.query.X) == model.encode(digits.query.X)).all()


def test_base_load_names_the_catalogue_when_the_method_is_not_imported(digits, tmp_path):
    path = tmp_path / "ssah.npz"
    SSAH(n_bits=8, n_anchors=50, max_iter=2, random_state=0).fit(
        digits.train.X, digits.train.y
    ).save(path)
    # A fresh interpreter that imported only the quantizers, not the shallow methods.
    code = (
        "import hashlearn.quantize\nfrom hashlearn.base import BaseHasher\n"
        f"BaseHasher.load({str(path)!r})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=False,
    )
    assert result.returncode != 0
    assert HashlearnFileError.__name__ in result.stderr
    assert "'ssah' model" in result.stderr and "hashlearn.catalogue.load_model" in result.stderr
