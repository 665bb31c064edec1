"""The module cache (ocgen.cache): a private folder, text checked before it runs, safe writes."""

import hashlib
import importlib.util
import inspect
import marshal
import os
import pickle
import signal
import struct
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from ocgen import cache
from ocgen.cli import main
from ocgen.errors import OcgenError

ROOT = Path(__file__).resolve().parents[1]

SOURCE = '''"""A stand-in for a generated module."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    x: float


def fail():
    raise ValueError("boom")


VALUE = 42
'''


def entry(folder: Path, text: str = SOURCE) -> Path:
    """The cache file that holds ``text``."""
    return folder / f"ocgen_{hashlib.sha256(text.encode()).hexdigest()}.py"


def payload(marker: Path) -> str:
    """Source that creates ``marker`` when it runs, and sets VALUE to something else."""
    return f"open({str(marker)!r}, 'w').close()\nVALUE = 0\n"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A cache folder not yet created, selected through OCGEN_CACHE, and an empty memo."""
    path = tmp_path / "cache"
    monkeypatch.setenv("OCGEN_CACHE", str(path))
    monkeypatch.setattr(cache, "_MODULES", {})
    return path


def test_module_is_a_private_file_that_behaves_like_an_import(folder):
    module = cache.import_source(SOURCE)
    assert module.VALUE == 42
    assert folder.stat().st_mode & 0o777 == 0o700
    assert entry(folder).read_text(encoding="utf-8") == SOURCE
    assert module.__file__ == str(entry(folder))
    assert inspect.getsource(module) == SOURCE
    point = module.Point(1.5)
    assert pickle.loads(pickle.dumps(point)) == point
    with pytest.raises(ValueError) as info:
        module.fail()
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (last.filename, last.line) == (str(entry(folder)), 'raise ValueError("boom")')
    assert cache.import_source(SOURCE) is module  # memoised in the process


def plant_pyc(py: Path, code: str) -> Path:
    """A .pyc for ``py`` whose header matches its mtime and size but which holds ``code``."""
    info = py.stat()
    header = importlib.util.MAGIC_NUMBER + struct.pack(
        "<III", 0, int(info.st_mtime) & 0xFFFFFFFF, info.st_size & 0xFFFFFFFF)
    pyc = Path(importlib.util.cache_from_source(str(py)))
    pyc.parent.mkdir(exist_ok=True)
    pyc.write_bytes(header + marshal.dumps(compile(code, str(py), "exec")))
    return pyc


def import_in_subprocess(folder: Path, **env: str) -> subprocess.CompletedProcess:
    """Run import_source(SOURCE) in a fresh interpreter using ``folder`` as the cache."""
    return subprocess.run(
        [sys.executable, "-c",
         "import sys; from ocgen.cache import import_source; "
         "print(import_source(sys.stdin.read()).VALUE)"],
        input=SOURCE, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OCGEN_CACHE": str(folder), **env})


@pytest.mark.parametrize("env", [{}, {"PYTHONDONTWRITEBYTECODE": "1"}])
def test_planted_pyc_is_never_executed(folder, tmp_path, env):
    marker = tmp_path / "PWNED"
    folder.mkdir(mode=0o700)
    py = entry(folder)
    py.write_text(SOURCE, encoding="utf-8")
    plant_pyc(py, payload(marker))
    # the plant is good: Python's own import of the file runs it
    spec = importlib.util.spec_from_file_location("planted", py)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert marker.exists()
    marker.unlink()

    assert import_in_subprocess(folder, **env).stdout.strip() == "42"
    assert not marker.exists()


def test_corrupt_pyc_is_ignored(folder):
    folder.mkdir(mode=0o700)
    py = entry(folder)
    py.write_text(SOURCE, encoding="utf-8")
    pyc = plant_pyc(py, "VALUE = 0\n")
    pyc.write_bytes(pyc.read_bytes()[:16] + b"\x00garbage")  # valid header, bad marshal data
    assert import_in_subprocess(folder).stdout.strip() == "42"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder away needs root")
def test_folder_owned_by_another_user_is_refused(folder):
    folder.mkdir(mode=0o700)
    os.chown(folder, 12345, -1)
    with pytest.raises(OcgenError, match="belongs to another user") as info:
        cache.import_source(SOURCE)
    assert str(folder) in str(info.value) and "OCGEN_CACHE" in str(info.value)
    assert not entry(folder).exists()


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702], ids=oct)
def test_folder_writable_by_others_is_refused(folder, mode):
    folder.mkdir()
    folder.chmod(mode)
    with pytest.raises(OcgenError, match="writable by other users") as info:
        cache.import_source(SOURCE)
    assert f"chmod 700 {folder}" in str(info.value)
    assert not entry(folder).exists()


def test_existing_folder_readable_by_others_is_kept(folder):
    folder.mkdir()
    folder.chmod(0o755)
    assert cache.import_source(SOURCE).VALUE == 42
    assert folder.stat().st_mode & 0o777 == 0o755


def test_symlinks_at_predictable_names_are_not_followed(folder, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n", encoding="utf-8")
    folder.mkdir(mode=0o700)
    py = entry(folder)
    links = [py.with_suffix(f".{os.getpid()}.tmp"), py]  # the former temp name, the entry
    for link in links:
        link.symlink_to(victim)
    assert cache.import_source(SOURCE).VALUE == 42
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert not py.is_symlink() and py.read_text(encoding="utf-8") == SOURCE


@pytest.mark.parametrize("content", [
    b"\x00\x01garbage\xfe",
    b"VALUE = '\xff\xfe not UTF-8'\n",
    SOURCE.encode()[:40],
    (SOURCE + "VALUE = 0\n").encode(),
], ids=["garbage", "invalid-utf8", "truncated", "wrong-text"])
def test_corrupt_entry_is_rebuilt(folder, content):
    folder.mkdir(mode=0o700)
    entry(folder).write_bytes(content)
    assert cache.import_source(SOURCE).VALUE == 42
    assert entry(folder).read_text(encoding="utf-8") == SOURCE


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_entry_that_is_not_a_file_is_rebuilt(folder, kind):
    """A folder at the entry's name, or a FIFO (whose open() would block forever)."""
    folder.mkdir(mode=0o700)
    if kind == "folder":
        entry(folder).mkdir()
        (entry(folder) / "inside.py").write_text("VALUE = 0\n")
    else:
        os.mkfifo(entry(folder))
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("reading the cache entry blocked"))
    signal.alarm(20)
    try:
        assert cache.import_source(SOURCE).VALUE == 42
    finally:
        signal.alarm(0)
    assert entry(folder).read_text(encoding="utf-8") == SOURCE


def test_planted_source_never_runs(folder, tmp_path):
    marker = tmp_path / "PWNED"
    folder.mkdir(mode=0o700)
    entry(folder).write_text(payload(marker), encoding="utf-8")
    assert cache.import_source(SOURCE).VALUE == 42
    assert not marker.exists()


def test_empty_variable_means_the_default_folder(folder, tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("OCGEN_CACHE", "")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert cache.cache_dir() == home / ".cache" / "ocgen"
    assert cache.import_source(SOURCE).VALUE == 42
    assert entry(home / ".cache" / "ocgen").is_file()
    assert list(work.iterdir()) == []


def test_variable_naming_a_file_is_a_clear_error(tmp_path, monkeypatch, capsys):
    target = tmp_path / "not-a-folder"
    target.write_text("", encoding="utf-8")
    monkeypatch.setenv("OCGEN_CACHE", str(target))
    monkeypatch.setattr(cache, "_MODULES", {})
    code = main(["solve", "--tableau", "euler", "--problem", "lq", "--steps", "2"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.splitlines() == [f"ocgen: error: {target}: the module cache must be a folder, "
                                "but this is a file; set OCGEN_CACHE to a folder"]
