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


# Python values that a flag spells differently (``topk=None`` is ``--topk all``).
CLI_VALUES: dict[str, dict[str, str]] = {"topk": {"None": "all"}}


def _flag_text(flag: str, name: str, value: str | None) -> str:
    """How the CLI says ``name=value``: ``--flag``, ``--flag VALUE``, ``without --no-flag``."""
    if value is not None:
        value = value.strip(chr(39) + chr(34))
        value = CLI_VALUES.get(name, {}).get(value, value)
    negated = flag.startswith("--no-")
    if value is None or value == ("False" if negated else "True"):
        return f"`{flag}`"
    if value == ("True" if negated else "False"):
        return f"without `{flag}`"
    return f"`{flag} {value}`"


# Python names the library uses for what a command calls by another flag (``n_bits=...`` is
# ``--bits``), applied to every command that has that flag.
ALIASES = {
    "n_bits": "bits",
    "labels_path": "labels",
    "csv_labels": "no_csv_labels",
    "download": "no_download",  # `reproduce --no-download` (dest no_download)
}


def set_command_flags(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` and each of its sub-commands a ``flags`` default (see
    :func:`parser_flags`, with :data:`ALIASES` where the command has the flag) unless it sets
    its own; :func:`hashlearn.cli.main.main` rewrites every error with it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                set_command_flags(sub)
    if parser.get_default("flags") is None:
        dests = {a.dest for a in parser._actions}
        aliases = {name: dest for name, dest in ALIASES.items() if dest in dests}
        parser.set_defaults(flags=parser_flags(parser, **aliases))


def as_flags(message: str, flags: Mapping[str, str]) -> str:
    """``message`` with the Python arguments in ``flags`` written as flags.

    Rewrites backquoted arguments (```name``` or ```name=value```) and, for the names in
    ``flags`` only, bare ``name=value`` and comparisons such as ``name <= 64`` (``use n_bits <=
    64`` becomes ``use `--bits` <= 64``; ``download=True`` becomes ``without `--no-download```).
    """

    def rewrite(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        if name not in flags:
            return match.group(0)
        return _flag_text(flags[name], name, value)

    message = _ARGUMENT.sub(rewrite, message)
    names = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))
    if not names:
        return message
    before = r"(?<![\w`.\-])"
    value = r"'[^']*'|\"[^\"]*\"|[^\s,;:)`]*[^\s,;:)`.]"
    assignment = re.compile(before + rf"({names})=({value})")
    message = assignment.sub(lambda m: _flag_text(flags[m.group(1)], *m.groups()), message)
    comparison = re.compile(before + rf"({names})(?= ?(?:<=|>=|<|>|==) ?\d)")
    return comparison.sub(lambda m: f"`{flags[m.group(1)]}`", message)


@contextmanager
def errors_as_flags(flags: Mapping[str, str]) -> Iterator[None]:
    """Re-raise hashlearn's input and file errors with their arguments written as flags."""
    from hashlearn._validation import HashlearnInputError

    try:
        yield
    except (HashlearnInputError, HashlearnFileError) as exc:
        message = as_flags(str(exc), flags)
        if message == str(exc):
            raise
        raise type(exc)(message) from None
