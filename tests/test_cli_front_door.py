"""The front door: `hashlearn methods`, self-explaining --help, table headers, logging, flags."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys

import pytest
from tqdm.auto import tqdm

from hashlearn.catalogue import available_methods
from hashlearn.cli._common import HelpFormatter, LazyHelp
from hashlearn.cli.main import build_parser, main
from hashlearn.data import available_datasets, dataset_info
from hashlearn.deep.backbones import BACKBONES
from hashlearn.deep.losses import available_losses
from hashlearn.deep.quantization import QUANTIZATIONS


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _methods_json(capsys, command: str = "methods") -> dict[str, dict[str, str]]:
    assert main([command, "--json"]) == 0
    sections = json.loads(capsys.readouterr().out)
    return {s["title"]: {e["name"]: e["description"] for e in s["entries"]} for s in sections}


def test_methods_lists_every_registered_name_with_one_line(capsys):
    sections = _methods_json(capsys)
    protocols = {f"{d}/{p}" for d in available_datasets() for p in dataset_info(d).protocols}
    expected = {
        "hashing methods": set(available_methods()),
        "deep similarity losses": set(available_losses()),
        "quantization strategies": set(QUANTIZATIONS),
        "backbones": set(BACKBONES),
        "datasets": set(available_datasets()),
    }
    for title, names in expected.items():
        assert set(sections[title]) == names, title
    listed = {n.removesuffix(" (default)") for n in sections["split protocols (dataset/protocol)"]}
    assert listed == protocols
    for title, entries in sections.items():
        for name, text in entries.items():
            assert text.strip() and "\n" not in text, (title, name)
            assert "``" not in text and ":class:" not in text, (title, name, text)
    # `list` is the same command.
    assert _methods_json(capsys, "list") == sections


def test_methods_text_names_the_flag_of_each_section(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for flag in ("--method", "--loss", "--quantization", "--backbone", "--dataset", "--protocol"):
        assert flag in out
    assert re.search(r"^  ssah\s+Scalable Supervised Asymmetric Hashing", out, re.M)


def _help(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_help().split())


def test_every_command_help_shows_defaults_and_choices():
    commands = _subparsers(build_parser())
    assert {"evaluate", "methods", "list", "datasets", "train", "fit", "encode", "search"} <= set(
        commands
    )
    for name, parser in commands.items():
        assert parser.formatter_class is HelpFormatter, name
        text = _help(parser)
        assert "(computed on --help)" not in text, name
        assert "--quiet" in text, name
        for action in parser._actions:
            default = action.default
            if (
                not action.option_strings
                or action.nargs == 0
                or default in (None, [], "==SUPPRESS==")
            ):
                continue
            assert f"default: {default}" in text, (name, action.dest)
            if action.choices:
                assert "{" + ",".join(action.choices) + "}" in text, (name, action.dest)
    evaluate, train = _help(commands["evaluate"]), _help(commands["train"])
    assert all(m in evaluate for m in available_methods())
    assert all(d in evaluate for d in available_datasets())
    for names in (available_losses(), QUANTIZATIONS, BACKBONES):
        assert "one of: " + ", ".join(names) in train


def test_lazy_help_is_rendered_only_when_shown():
    calls = []

    def render() -> str:
        calls.append(1)
        return "50% of the names"

    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--x", default=3, help=LazyHelp(render))
    assert parser.parse_args([]).x == 3 and not calls
    assert "50% of the names (default: 3)" in _help(parser) and calls


def test_results_table_names_its_cut_offs(capsys):
    argv = ["evaluate", "--dataset", "digits", "--method", "sign", "--bits", "8",
            "--k", "50", "--topk", "100", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    header = capsys.readouterr().out.splitlines()[1].split()
    assert header[:7] == ["method", "bits", "mAP@100", "P@50", "R@50", "P(r<=2)", "fit"]
    assert main(argv[:-5] + ["--quiet"]) == 0
    assert "mAP@all" in capsys.readouterr().out


def test_log_lines_do_not_break_progress_bars(capsys):
    main(["methods"])  # installs the CLI's logging once
    main(["methods"])
    capsys.readouterr()
    logger = logging.getLogger("hashlearn")
    assert sum(type(h).__name__ == "_TqdmHandler" for h in logger.handlers) == 1
    with tqdm(total=3, desc="work", file=sys.stderr) as bar:
        bar.update(1)
        logger.info("a log line")
        bar.update(1)
    err = capsys.readouterr().err
    before = err.split("a log line")[0].split("\r")[-1]
    assert before.strip() == "", repr(before)  # the bar was cleared, the line starts clean


def test_quiet_silences_log_lines(tmp_path, capsys):
    import numpy as np

    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32))
    argv = ["fit", "--method", "sign", "--bits", "8", "--data", str(data),
            "--output", str(tmp_path / "m.npz")]  # fmt: skip
    assert main(argv) == 0
    assert "saved sign model" in capsys.readouterr().err
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "argv, quiet",
    [
        (["index", "--quiet", "build", "--codes", "c.npy", "--output", "i"], True),
        (["index", "build", "--codes", "c.npy", "--output", "i", "--quiet"], True),
        (["index", "build", "--codes", "c.npy", "--output", "i"], False),
        (["evaluate", "--dataset", "digits", "--quiet"], True),
        (["evaluate", "--dataset", "digits"], False),
    ],
)
def test_quiet_given_at_any_level_of_a_nested_command(argv, quiet):
    assert build_parser().parse_args(argv).quiet is quiet


@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_no_download_reaches_the_loader(command, tmp_path, capsys):
    argv = [command, "--dataset", "fashion-mnist", "--data-dir", str(tmp_path), "--no-download",
            "--quiet"]  # fmt: skip
    if command == "train":
        argv += ["--output", str(tmp_path / "run"), "--epochs", "1", "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Fashion-MNIST files not found" in err and str(tmp_path) in err
    assert not any(tmp_path.iterdir())  # nothing was downloaded into --data-dir
