"""Reading user data files (TOML or JSON) into plain dicts, with located errors.

Writing goes through :func:`write_text_atomic`: a file is replaced whole or not at all.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import InputError


def read_data_file(path: str | Path) -> dict:
    """The top-level table of a ``.toml`` or ``.json`` file; else InputError naming the file."""
    path = Path(path)
    source = str(path)
    if path.suffix.lower() not in (".toml", ".json"):
        raise InputError("expected a .toml or .json file", source=source)
    try:
        text = path.read_text(encoding="utf-8")
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
            raise InputError(f"invalid JSON: {err}", source=source) from None
        _reject_non_finite(data, source)
    if not isinstance(data, dict):
        raise InputError(f"expected a table/object at top level, found {type(data).__name__}",
                         source=source)
    return data


class _NonFinite(str):
    """Placeholder for JSON's NaN/Infinity/-Infinity, located and rejected after parsing."""


def _reject_non_finite(data, source: str) -> None:
    """InputError naming the key (e.g. ``A[1][0]``) of the first NaN or Infinity in ``data``."""
    stack = [("", data)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, _NonFinite):
            raise InputError(f"invalid JSON constant {value} (numbers must be finite)",
                             source=source, key=key)
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}" if key else str(k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{key}[{i}]", v) for i, v in reversed(list(enumerate(value))))


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


def _umask() -> int:
    """The process's file mode creation mask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
