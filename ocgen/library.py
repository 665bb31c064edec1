"""The built-in library: TOML files in ``ocgen/data/<folder>/``, found by their names."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path


def normalise_name(name: str) -> str:
    """Lookup key: lower case without spaces, '-', '_', '.', '(' and ')'."""
    return re.sub(r"[\s\-_.()]", "", name).lower()


def data_texts(folder: str) -> dict[str, str]:
    """File stem → text of the TOML files in ``ocgen/data/<folder>``, in file-name order."""
    entries = resources.files("ocgen") / "data" / folder
    return {entry.name[:-5]: entry.read_text(encoding="utf-8")
            for entry in sorted(entries.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".toml")}


def build_one(texts: dict[str, str], stem: str, build):
    """``build(table, source=<stem>.toml)`` of the built-in TOML text ``texts[stem]``."""
    from .files import tomllib
    return build(tomllib.loads(texts[stem]), source=f"{stem}.toml")


def find_builtin(name: str, stems, one, index):
    """The built-in item called ``name``: a file's own name builds that file alone
    (``one(stem)``), so that looking up one method does not parse the library; any other name
    or alias is looked up in ``index()``. None if there is none."""
    key = normalise_name(name)
    stem = next((stem for stem in stems if normalise_name(stem) == key), None)
    return one(stem) if stem is not None else index().get(key)


def name_index(items, what: str) -> dict:
    """Normalised name, file stem and aliases of each built-in item → the item; a key used by
    two items is a packaging bug."""
    index: dict = {}
    for item in items:
        for key in {normalise_name(n) for n in (item.name, Path(item.source).stem,
                                                 *item.aliases)}:
            if key in index and index[key] is not item:
                raise RuntimeError(f"built-in {what} name {key!r} used twice")
            index[key] = item
    return index
