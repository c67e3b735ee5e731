"""One vocabulary per choice: the CLI, the config checks and the library accept the same values,
and every evaluation default is the one of :mod:`hashlearn.vocab`."""

import argparse
import inspect
import json

import numpy as np
import pytest

from hashlearn import evaluation, vocab
from hashlearn._validation import HashlearnInputError
from hashlearn.cli import train as train_cli
from hashlearn.cli.evaluate import parse_topk
from hashlearn.cli.main import build_parser, main
from hashlearn.data import load_dataset
from hashlearn.metrics import evaluate_retrieval
from hashlearn.reproduce.config import parse_config

CODES = np.array([[1, -1, 1], [-1, 1, 1], [1, 1, -1], [-1, -1, -1]])
LABELS = np.array([0, 1, 0, 1])
# Values close to the real ones, each refused everywhere.
WRONG = {"ties": ["average", "Stable", "random"], "no_relevant": ["none", "exclude", "Zero"]}


def _subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _option(parser: argparse.ArgumentParser, dest: str) -> argparse.Action:
    return next(a for a in parser._actions if a.dest == dest)


def _config(**evaluation):
    return parse_config(
        {
            "dataset": {"name": "digits"},
            "evaluation": evaluation,
            "shallow": [{"methods": ["sign"], "bits": [8]}],
        }
    )


def _metrics_accept(option: str, value: str) -> bool:
    kwargs = {option: value}
    if option == "ties" and value == "continuous":
        kwargs.update(query_embeddings=CODES, db_embeddings=CODES)
    try:
        evaluate_retrieval(CODES, CODES, LABELS, LABELS, k=2, **kwargs)
    except HashlearnInputError:
        return False
    return True


def _config_accepts(option: str, value: str) -> bool:
    try:
        _config(**{option: value})
    except HashlearnInputError:
        return False
    return True


@pytest.mark.parametrize(
    ("option", "table"), [("ties", vocab.TIES), ("no_relevant", vocab.NO_RELEVANT)]
)
def test_cli_config_and_metrics_accept_the_same_values(option, table):
    cli = _option(_subparser("evaluate"), option)
    assert tuple(cli.choices) == table
    for value in table:
        assert _config_accepts(option, value), value
        assert _metrics_accept(option, value), value
    for value in WRONG[option]:
        assert not _config_accepts(option, value), value
        assert not _metrics_accept(option, value), value


def test_topk_rules_are_one_table():
    dataset = load_dataset("digits")
    for rule in vocab.TOPK_RULES:
        assert parse_topk(rule) == rule
        assert _config(topk=rule)["evaluation"]["topk"] == rule
        dataset.resolve_topk(rule)  # accepted
    for wrong in ("best", "none"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_topk(wrong)
        with pytest.raises(HashlearnInputError):
            _config(topk=wrong)
        with pytest.raises(HashlearnInputError):
            dataset.resolve_topk(wrong)


def _defaults(function) -> dict:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def test_evaluation_defaults_are_written_once():
    defaults = dict(vocab.EVALUATION_DEFAULTS)
    assert _config()["evaluation"] == defaults
    parser = _subparser("evaluate")
    cli = {key: _option(parser, key).default for key in ("topk", "k", "ties", "no_relevant")}
    assert cli == {key: defaults[key] for key in cli}
    encoder = _defaults(evaluation.evaluate_encoder)
    assert {key: encoder[key] for key in defaults} == defaults
    method = _defaults(evaluation.evaluate_method)
    assert {key: method[key] for key in ("topk", "k", "ties")} == {
        key: defaults[key] for key in ("topk", "k", "ties")
    }
    assert _defaults(evaluation.evaluate_run)["topk"] == defaults["topk"]
    # The metrics see only codes: mAP over the whole database unless told otherwise.
    metric = _defaults(evaluate_retrieval)
    assert metric["topk"] is None
    assert {key: metric[key] for key in ("k", "ties", "radius", "no_relevant")} == {
        key: defaults[key] for key in ("k", "ties", "radius", "no_relevant")
    }


def test_quantizations_and_backbones_are_one_table():
    pytest.importorskip("torch")
    from hashlearn.deep import QUANTIZATIONS, backbones, quantization
    from hashlearn.deep.two_stage import ROTATION_FILES

    assert QUANTIZATIONS is vocab.QUANTIZATIONS
    assert quantization.QUANTIZATIONS is vocab.QUANTIZATIONS
    assert backbones.BACKBONES is vocab.BACKBONES
    assert set(backbones._TORCHVISION) <= set(vocab.PRETRAINED_BACKBONES)
    assert set(vocab.TWO_STAGE) <= set(vocab.QUANTIZATIONS)
    assert dict(ROTATION_FILES) == dict(vocab.TWO_STAGE)
    # `hashlearn train` passes its values to TrainConfig, which checks them against the table.
    assert train_cli._quantizations() is vocab.QUANTIZATIONS
    assert train_cli._backbones() is vocab.BACKBONES
    for value in vocab.QUANTIZATIONS:
        block = {"losses": ["dpsh"], "quantization": [value], "bits": [8]}
        parse_config({"dataset": {"name": "digits"}, "deep": [block]})
    with pytest.raises(HashlearnInputError, match="quantization"):
        block = {"losses": ["dpsh"], "quantization": ["ITQ"], "bits": [8]}
        parse_config({"dataset": {"name": "digits"}, "deep": [block]})
    for value in vocab.PRETRAINED_BACKBONES:
        parse_config(
            {
                "dataset": {"name": "digits", "features": value},
                "shallow": [{"methods": ["sign"], "bits": [8]}],
            }
        )


@pytest.mark.parametrize("ties", vocab.TIES)
def test_cli_evaluate_runs_every_tie_rule(tmp_path, ties):
    out = tmp_path / "r.json"
    args = ["evaluate", "--dataset", "digits", "--method", "itq", "--bits", "8", "--quiet"]
    args += ["--ties", ties, "--no-relevant", "zero", "--output", str(out)]
    assert main(args) == 0
    (record,) = json.loads(out.read_text())["results"]
    assert (record["ties"], record["no_relevant"], record["n_excluded"]) == (ties, "zero", 0)
