"""User text on its way out: the one place that decides what may reach generated source or a
terminal.

Names, citations and descriptions come from untrusted files. They are checked once when they
are read (:func:`check_text`: printable, no control or escape characters, bounded length), and
every piece of user text in a generated module passes through :func:`python_string` (string
literals) or :func:`docstring_text` (docstrings); error messages reach the terminal through
:func:`terminal_text`. Symbols of a problem file must be plain
ASCII identifiers (:func:`is_symbol_name`); the generated code never uses them anyway, since
the derivation renames every user symbol into its own namespace (``ocgen.derive``).
"""

from __future__ import annotations

import keyword
import re

from .errors import InputError

_SYMBOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_symbol_name(name) -> bool:
    """An ASCII identifier ``[A-Za-z_][A-Za-z0-9_]*`` that is not a Python keyword."""
    return isinstance(name, str) and bool(_SYMBOL_NAME.match(name)) \
        and not keyword.iskeyword(name)


def check_text(value: str, *, source: str | None, key: str, multiline: bool = False) -> str:
    """``value`` unchanged if every character is printable (newlines too when ``multiline``).

    Refuses control characters (NUL, ESC of terminal escape sequences, carriage returns …)
    and line or paragraph separators, naming the position of the first one.
    """
    for position, char in enumerate(value):
        if not (char.isprintable() or (multiline and char == "\n")):
            raise InputError(f"character {position} is {char!r}, which is not printable text",
                             source=source, key=key)
    return value


def docstring_text(value: str) -> str:
    """``value`` safe inside a triple-quoted docstring: printable characters only, with no
    backslash (no escape sequences) and no double quote (no end of the string)."""
    return "".join(char if char.isprintable() and char not in '\\"' else "?" for char in value)


def terminal_text(value: str) -> str:
    """``value`` with every non-printable character shown as its escape (``\\x1b``): a message
    quoting a file's key or value cannot move the cursor, recolour or clear a terminal."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in value)


def python_string(value: str) -> str:
    """A Python string literal that evaluates to ``value``."""
    return repr(str(value))
