"""``hashlearn`` console script: dispatches to one module per sub-command.

Each sub-command module in :mod:`hashlearn.cli` exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (called with the parsed arguments, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from hashlearn import __version__
from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError

SUBCOMMANDS = ("evaluate", "datasets", "train", "fit", "encode", "search")

log = logging.getLogger("hashlearn")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashlearn",
        description="Learning to hash: train hashing methods, encode, search and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"hashlearn {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"hashlearn.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("hashlearn.cli"):
                continue  # sub-command not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except (HashlearnInputError, HashlearnFileError) as exc:
        print(f"hashlearn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hashlearn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into e.g. `head`, which closed early: not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
