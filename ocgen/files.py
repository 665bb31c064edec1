"""Reading user data files (TOML or JSON) into plain dicts, with located errors.

Writing goes through :func:`write_text_atomic` (or :func:`write_bytes_atomic`): a file is
replaced whole or not at all.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from . import limits
from .errors import InputError

NAME_KEYS = ("name", "time", "states", "controls", "aliases")
"""Top-level keys whose strings are names (held to MAX_NAME_LENGTH, as are table keys)."""


def read_data_file(path: str | Path, limit: int = limits.MAX_FILE_BYTES) -> dict:
    """The top-level table of a ``.toml`` or ``.json`` file of at most ``limit`` bytes; else
    InputError naming the file."""
    path = Path(path)
    source = str(path)
    if path.suffix.lower() not in (".toml", ".json"):
        raise InputError("expected a .toml or .json file", source=source)
    try:
        text = read_bytes(path, limit).decode("utf-8")
    except FileNotFoundError:
        raise InputError("no such file", source=source) from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read file ({err})", source=source) from None
    if not text.strip():
        raise InputError("the file is empty", source=source)
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise InputError(f"invalid TOML: {err}", source=source) from None
        except ValueError as err:  # e.g. an integer beyond Python's digit limit
            raise InputError(f"invalid TOML: {_first_clause(err)}", source=source) from None
        except RecursionError:
            raise InputError("invalid TOML: nested too deeply", source=source) from None
    else:
        try:
            data = json.loads(text, parse_constant=_NonFinite)
        except json.JSONDecodeError as err:
            raise InputError(
                f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}", source=source
            ) from None
        except (ValueError, RecursionError) as err:
            raise InputError(f"invalid JSON: {_first_clause(err)}", source=source) from None
        _reject_non_finite(data, source)
    if not isinstance(data, dict):
        raise InputError(f"expected a table/object at top level, found {type(data).__name__}",
                         source=source)
    _check_sizes(data, source)
    return data


class _NonFinite(str):
    """Placeholder for JSON's NaN/Infinity/-Infinity, located and rejected after parsing."""


def _reject_non_finite(data, source: str) -> None:
    """InputError naming the key (e.g. ``A[1][0]``) of the first NaN or Infinity in ``data``."""
    for key, value in _walk(data):
        if isinstance(value, _NonFinite):
            raise InputError(f"invalid JSON constant {value} (numbers must be finite)",
                             source=source, key=key)


def read_bytes(path: Path, limit: int) -> bytes:
    """The file's bytes, reading no more than ``limit`` from a regular file (not a device
    such as /dev/zero, nor a FIFO that would block); else InputError naming the file.

    OSError (e.g. FileNotFoundError) propagates for the caller to word.
    """
    if not stat.S_ISREG(path.stat().st_mode):
        raise InputError("not a regular file", source=str(path))
    with path.open("rb") as file:
        raw = file.read(limit + 1)
    if len(raw) > limit:
        raise InputError(f"file larger than the limit of {limit} bytes", source=str(path))
    return raw


def _first_clause(err: Exception) -> str:
    """The message of ``err`` without advice after a ';' (Python's digit-limit error has some)."""
    return str(err).split(";")[0]


def _walk(data):
    """(key, value) for every value nested in ``data``, keys like ``A[1][0]`` or ``bounds.u``."""
    stack = [("", data)]
    while stack:
        key, value = stack.pop()
        yield key, value
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}" if key else str(k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{key}[{i}]", v) for i, v in reversed(list(enumerate(value))))


def written_in_place(path: Path) -> bool:
    """Whether an output ``path`` is written in place: a device such as /dev/stdout or
    /dev/null, which :func:`write_text_atomic` must not replace by a regular file."""
    return path.exists() and not path.is_file()


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a new temp file beside it, then a rename.

    A symlink at ``path`` is replaced, never followed. On any failure the temp file is removed,
    a previous file at ``path`` is unchanged, and the OSError propagates.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # the mode a plain open() would have given
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """:func:`write_text_atomic` for bytes (e.g. an image): whole or not at all."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    """The process's file mode creation mask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_sizes(data: dict, source: str) -> None:
    """InputError naming the first list, name or text longer than its limit (ocgen.limits)."""
    for key, value in _walk(data):
        if isinstance(value, (list, dict)):
            limits.check_count(len(value), limits.MAX_LIST_LENGTH, "entries", source=source,
                               key=key or None)
        if isinstance(value, dict):
            for name in value:
                shown = f"{key}.{name[:40]}..." if key else f"{name[:40]}..."
                limits.check_count(len(name), limits.MAX_NAME_LENGTH, "characters in a name",
                                   source=source, key=shown)
        elif isinstance(value, str):
            is_name = key.split("[")[0] in NAME_KEYS
            limit = limits.MAX_NAME_LENGTH if is_name else limits.MAX_TEXT_LENGTH
            limits.check_count(len(value), limit, "characters", source=source, key=key)
