"""The module cache: generated source kept as files on disk and loaded back only as checked text.

Each generated text lives in ``ocgen_<key>.py`` (key: its SHA-256) inside a private folder, so
tracebacks and ``inspect`` show a real file. Loading never goes through import's bytecode
cache: the file is compared with the expected text, rewritten when it differs, and the
expected text itself is compiled and executed. A ``.pyc`` planted beside it is never read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
from pathlib import Path
from types import ModuleType

from .errors import OcgenError
from .files import write_text_atomic

_MODULES: dict[str, ModuleType] = {}


def cache_dir() -> Path:
    """Where generated modules are kept: $OCGEN_CACHE if set and not empty, else ~/.cache/ocgen."""
    return Path(os.environ.get("OCGEN_CACHE") or Path.home() / ".cache" / "ocgen")


def _private_folder(folder: Path) -> Path:
    """``folder``, created with mode 0700 when missing; OcgenError unless only we can write it."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise OcgenError(f"{folder}: the module cache must be a folder, but this is a file; "
                         "set OCGEN_CACHE to a folder") from None
    except OSError as err:
        raise OcgenError(f"{folder}: cannot create the module cache folder: "
                         f"{err.strerror or err}; set OCGEN_CACHE to a folder of yours") from None
    if os.name != "posix":  # owners and mode bits below are POSIX notions
        return folder
    info = folder.stat()
    if info.st_uid != os.getuid():
        raise OcgenError(f"{folder}: the module cache folder belongs to another user "
                         f"(uid {info.st_uid}); set OCGEN_CACHE to a folder of your own")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise OcgenError(f"{folder}: the module cache folder is writable by other users; "
                         f"run `chmod 700 {folder}` or set OCGEN_CACHE to a private folder")
    return folder


def import_source(text: str) -> ModuleType:
    """The module made from generated ``text``, kept in :func:`cache_dir` (one per text)."""
    data = text.encode("utf-8")
    key = hashlib.sha256(data).hexdigest()
    if key not in _MODULES:
        path = _private_folder(cache_dir()) / f"ocgen_{key}.py"
        if not _holds(path, data):
            try:
                write_text_atomic(path, text)
            except OSError as err:
                raise OcgenError(f"{path}: cannot write the module cache entry: "
                                 f"{err.strerror or err}") from None
        _MODULES[key] = _execute(text, path, f"ocgen_generated_{key}")
    return _MODULES[key]


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a regular file holding exactly ``data``. Anything else found there
    (a folder, a FIFO that would block a read, a symlink) is removed, so the entry is rebuilt."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(info.st_mode):
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(path)
        else:
            path.unlink()
        return False
    try:
        with open(path, "rb") as file:
            return file.read(len(data) + 1) == data
    except OSError:
        return False


def _execute(text: str, path: Path, name: str) -> ModuleType:
    """A fresh module ``name`` (registered in sys.modules) running ``text`` compiled as ``path``."""
    module = ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # dataclasses and pickle look classes up here
    try:
        exec(compile(text, str(path), "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module
