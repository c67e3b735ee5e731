"""What every ``hashlearn`` command shares: help layout, logging, common options, value parsing."""

from __future__ import annotations

import argparse
import ast
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("hashlearn")


class LazyHelp(str):
    """Help text computed when ``--help`` is shown, not when the parser is built.

    Listing registered names (methods, losses) imports their modules; building every
    sub-command's parser at start-up must not pay for that. ``str(help)`` is a placeholder;
    :class:`HelpFormatter` calls :meth:`render`.
    """

    def __new__(cls, render: Callable[[], str]) -> LazyHelp:
        text = super().__new__(cls, "(computed on --help)")
        text.render = render  # type: ignore[attr-defined]
        return text


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (unless it is unset or a flag) and renders :class:`LazyHelp`."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if isinstance(text, LazyHelp):
            text = text.render().replace("%", "%%")  # type: ignore[attr-defined]
        default = action.default
        if (
            "%(default)" in text
            or "default:" in text
            or not action.option_strings
            or action.nargs == 0  # a flag: --quiet, --no-download
            or default is None
            or default is argparse.SUPPRESS
            or default == []
        ):
            return text
        return f"{text} (default: %(default)s)"


def add_command(subparsers: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """Add a sub-command parser with hashlearn's help layout and a ``--quiet`` flag."""
    parser = subparsers.add_parser(name, formatter_class=HelpFormatter, **kwargs)
    # SUPPRESS: a nested command's own flag must not reset a --quiet given before it
    # (`hashlearn index --quiet build`); the top-level parser holds the default, False.
    parser.add_argument(
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bars or log lines on stderr",
    )
    return parser


def missing_optional(exc: ModuleNotFoundError) -> bool:
    """True when ``exc`` is about an optional third-party package (torch, ...), not ours."""
    return exc.name is not None and exc.name.split(".")[0] != "hashlearn"


def one_of(names: Iterable[str]) -> str:
    return "one of: " + ", ".join(names)


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """``--labels``, ``--split-seed``, ``--protocol``, ``--data-dir`` and ``--no-download``."""

    def protocols() -> str:
        from hashlearn.data import available_datasets, dataset_info

        return "dataset split protocol, default: the dataset's own; " + "; ".join(
            f"{name}: {', '.join(dataset_info(name).protocols)}" for name in available_datasets()
        )

    parser.add_argument(
        "--labels",
        default=None,
        help="labels file (.npy, .csv, .txt; one per row or multi-hot) for a --dataset "
        "features file without labels (.npy, or .csv whose columns are all features)",
    )
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the dataset split")
    parser.add_argument("--protocol", default=None, help=LazyHelp(protocols))
    parser.add_argument(
        "--data-dir",
        default=None,
        help="look for dataset files only in this folder (default: $HASHLEARN_DATA, the user "
        "cache, system packages)",
    )
    parser.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never download: fail with instructions when the dataset files are not found",
    )


def dataset_names() -> str:
    from hashlearn.data import available_datasets

    return (
        f"registered dataset ({one_of(available_datasets())}) "
        "or the path of a .npz/.npy/.csv features file"
    )


def method_names() -> str:
    from hashlearn.catalogue import available_methods

    return one_of(available_methods()) + " (see `hashlearn methods`)"


class _TqdmHandler(logging.Handler):
    """Writes log lines through ``tqdm.write``, so they never break a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


_HANDLER = _TqdmHandler()
_HANDLER.setFormatter(logging.Formatter("%(message)s"))


def configure_logging(quiet: bool) -> None:
    """The CLI's one logging set-up: ``hashlearn`` loggers print INFO (WARNING when quiet)."""
    logger = logging.getLogger("hashlearn")
    if _HANDLER not in logger.handlers:
        logger.addHandler(_HANDLER)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def parse_int_list(text: str, name: str) -> list[int]:
    """``"16,32,64"`` -> ``[16, 32, 64]`` (positive integers)."""
    from hashlearn._validation import HashlearnInputError

    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise HashlearnInputError(
            f"{name} must be comma-separated integers such as 16,32,64, got {text!r}."
        ) from None
    if not values or any(v < 1 for v in values):
        raise HashlearnInputError(f"{name} must list positive integers, got {text!r}.")
    return values


def parse_params(items: list[str]) -> dict[str, Any]:
    """``["n_anchors=300", "loss=l1"]`` -> ``{"n_anchors": 300, "loss": "l1"}``."""
    from hashlearn._validation import HashlearnInputError

    params: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise HashlearnInputError(f"--param expects NAME=VALUE, got {item!r}.")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a bare word such as loss=l1
        params[name.strip()] = value
    return params
