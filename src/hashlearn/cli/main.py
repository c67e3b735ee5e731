"""``hashlearn`` console script: dispatches to one module per sub-command.

Each sub-command module in :mod:`hashlearn.cli` exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (called with the parsed arguments, returning an exit code).
Logging is set up here, once: log lines go to stderr through tqdm's writer, so they never
break a progress bar, and ``--quiet`` silences both.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from hashlearn import __version__
from hashlearn._io import HashlearnFileError
from hashlearn.cli import (
    compress,
    datasets,
    encode,
    evaluate,
    export,
    fit,
    index,
    methods,
    reproduce,
    search,
    train,
)
from hashlearn.cli._common import HelpFormatter, configure_logging
from hashlearn.cli._flags import as_flags, set_command_flags

COMMANDS = (
    evaluate,
    methods,
    datasets,
    train,
    fit,
    encode,
    compress,
    export,
    search,
    index,
    reproduce,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashlearn",
        formatter_class=HelpFormatter,
        description="Learning to hash: train hashing methods, encode, search and evaluate. "
        "`hashlearn methods` lists every method, loss, dataset and protocol by name; "
        "`hashlearn COMMAND --help` shows a command's options with their defaults.",
    )
    parser.add_argument("--version", action="version", version=f"hashlearn {__version__}")
    parser.set_defaults(quiet=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for command in COMMANDS:
        command.register(subparsers)
    set_command_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(quiet=args.quiet)
    try:
        try:
            return int(args.func(args) or 0)
        except Exception as exc:
            if not _input_or_file_error(exc):
                raise
            # Library messages name Python arguments (n_bits=...); say the command's flags.
            message = as_flags(str(exc), getattr(args, "flags", None) or {})
            print(f"hashlearn {args.command}: error: {message}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print("hashlearn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into e.g. `head`, which closed early: not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:  # disk full, a folder where a file should be, permissions, ...
        print(f"hashlearn {args.command}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1


def _input_or_file_error(exc: BaseException) -> bool:
    """A hashlearn input or file error (imported here: ``_validation`` loads scikit-learn,
    which start-up must not wait for; a command that raised one has loaded it already)."""
    from hashlearn._validation import HashlearnInputError

    return isinstance(exc, (HashlearnInputError, HashlearnFileError))


def describe_os_error(exc: OSError) -> str:
    """One line naming the path(s) and the cause of an OS error, e.g.
    ``runs/a: File exists [EEXIST]``."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    name = errno.errorcode.get(exc.errno or 0)
    if name:
        cause = f"{cause} [{name}]"
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {cause}" if paths else cause


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
