"""Library errors name Python arguments; the CLI shows its flags instead.

Library messages write an argument in backquotes, as a Python caller would pass it:
```resume=True```, ```lr```, ```device='cpu'```. :func:`as_flags` rewrites the arguments a
command knows (``flags`` maps a Python name to the command's flag) and leaves the rest alone:
``resume=True`` becomes ``--resume``, ``device='cpu'`` becomes ``--device cpu``, ``lr`` becomes
``--lr``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError

_ARGUMENT = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)(?:=([^`]*))?`")


def parser_flags(parser: argparse.ArgumentParser, **aliases: str) -> dict[str, str]:
    """Python name -> flag for every option of ``parser`` (by its ``dest``), plus ``aliases``
    (Python name -> ``dest``) for arguments the library names differently (``n_bits=...`` for
    ``--bits``)."""
    flags = {
        action.dest: action.option_strings[-1]
        for action in parser._actions
        if action.option_strings and action.dest != "help"
    }
    flags.update({name: flags[dest] for name, dest in aliases.items()})
    return flags


def as_flags(message: str, flags: Mapping[str, str]) -> str:
    """``message`` with the backquoted Python arguments in ``flags`` written as flags."""

    def rewrite(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        if name not in flags:
            return match.group(0)
        flag = flags[name]
        if value is None or value == "True":
            return f"`{flag}`"
        return f"`{flag} {value.strip(chr(39) + chr(34))}`"

    return _ARGUMENT.sub(rewrite, message)


@contextmanager
def errors_as_flags(flags: Mapping[str, str]) -> Iterator[None]:
    """Re-raise hashlearn's input and file errors with their arguments written as flags."""
    try:
        yield
    except (HashlearnInputError, HashlearnFileError) as exc:
        message = as_flags(str(exc), flags)
        if message == str(exc):
            raise
        raise type(exc)(message) from None
