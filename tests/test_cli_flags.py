"""Library errors name Python arguments; the CLI rewrites the ones it has flags for."""

from __future__ import annotations

import argparse

import pytest

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError
from hashlearn.cli._flags import as_flags, errors_as_flags, parser_flags


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bits", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--device")
    parser.add_argument("--output")
    parser.add_argument("--resume", action="store_true")
    return parser


def test_parser_flags_map_python_names_and_aliases_to_options():
    flags = parser_flags(_parser(), n_bits="bits", run_dir="output")
    assert flags["batch_size"] == "--batch-size" and flags["resume"] == "--resume"
    assert flags["n_bits"] == "--bits" and flags["run_dir"] == "--output"
    assert "help" not in flags


def test_as_flags_rewrites_known_arguments_only():
    flags = parser_flags(_parser(), n_bits="bits", run_dir="output")
    message = (
        "pass `resume=True`, or choose a new `run_dir`; use `device='cpu'`; `batch_size` must "
        "be at least 2; see `n_bits=8` and `lr` and `load_run(...).encode`."
    )
    assert as_flags(message, flags) == (
        "pass `--resume`, or choose a new `--output`; use `--device cpu`; `--batch-size` must "
        "be at least 2; see `--bits 8` and `lr` and `load_run(...).encode`."
    )


@pytest.mark.parametrize("error", [HashlearnInputError, HashlearnFileError])
def test_errors_as_flags_keeps_the_error_type(error):
    with pytest.raises(error, match="^use `--device cpu`$"):
        with errors_as_flags({"device": "--device"}):
            raise error("use `device='cpu'`")
    with pytest.raises(ValueError, match="`device='cpu'`"):  # not ours: untouched
        with errors_as_flags({"device": "--device"}):
            raise ValueError("`device='cpu'`")
