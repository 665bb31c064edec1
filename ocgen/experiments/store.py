"""The run store: every finished task's files under ``DIR/runs/<hash>/``, keyed by the hash of
its configuration.

    DIR/runs/<hash>/record.json   the task's kind, configuration, status ("ok" or "failed"),
                                  error (when failed), wall time and ocgen version
    DIR/runs/<hash>/result.json   the JSON of ``ocgen train --json`` (or of the consistency study)
    DIR/runs/<hash>/model.json    the trained network (Network.save), for training runs
    DIR/log.jsonl                 one line per task run by any invocation, in order

Every file is written whole or not at all, and ``record.json`` last: a task is finished exactly
when its record exists, so an experiment killed at any moment resumes with the tasks that had
no record. The log counts how often each task was actually run.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path

from .. import __version__
from ..errors import OcgenError
from ..files import write_text_atomic


def json_ready(value):
    """``value`` with every non-finite float replaced by None (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def dump(value) -> str:
    return json.dumps(json_ready(value), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


class RunStore:
    """The finished tasks of one output folder."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.runs = self.folder / "runs"
        self.log = self.folder / "log.jsonl"

    def path(self, key: str, name: str = "") -> Path:
        return self.runs / key / name if name else self.runs / key

    def record(self, key: str) -> dict | None:
        """The record of a finished task, or None (not run, or a record that cannot be read)."""
        try:
            record = json.loads(self.path(key, "record.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("key") == key else None

    def is_finished(self, key: str, retry_failed: bool = False) -> bool:
        record = self.record(key)
        return record is not None and not (retry_failed and record.get("status") != "ok")

    def result(self, key: str) -> dict | None:
        try:
            return json.loads(self.path(key, "result.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def save(self, task, outcome: dict) -> dict:
        """Write the files of a finished task (the record last) and log it; its record."""
        folder = self.path(task.key)
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for name in ("result", "model"):
            if name in outcome:
                write_text_atomic(folder / f"{name}.json", dump(outcome[name]))
                files[name] = f"{name}.json"
        record = {"key": task.key, "kind": task.kind, "config": task.config,
                  "status": outcome["status"], "wall_time": outcome.get("wall_time"),
                  "files": files, "ocgen": __version__}
        for name in ("error", "error_type", "traceback"):
            if name in outcome:
                record[name] = outcome[name]
        write_text_atomic(folder / "record.json", dump(record))
        entry = {"key": task.key, "kind": task.kind, "status": outcome["status"],
                 "wall_time": outcome.get("wall_time"),
                 "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with self.log.open("a", encoding="utf-8") as log:
            log.write(json.dumps(json_ready(entry)) + "\n")
        return record

    def log_entries(self) -> list[dict]:
        """The log, oldest first (lines that cannot be read are skipped)."""
        entries = []
        try:
            lines = self.log.read_text(encoding="utf-8").splitlines()
        except OSError:
            return entries
        for line in lines:
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries

    @contextmanager
    def locked(self):
        """Hold ``DIR/.lock`` so that two experiments never write one folder at once."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            yield
            return
        handle = open(self.folder / ".lock", "a")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise OcgenError(f"{self.folder}: another `ocgen experiment` is writing this "
                                 "folder; wait for it or choose another --out") from None
            yield
        finally:
            handle.close()


def check_folder(folder: str | Path) -> Path:
    """The output folder, checked but not created: an existing writable folder, or a new one
    whose parent exists and is writable. OcgenError naming it otherwise."""
    path = Path(folder)
    if not str(folder):
        raise OcgenError("the output folder is empty; give a folder name")
    if path.exists() and not path.is_dir():
        raise OcgenError(f"{path}: is not a folder")
    target = path if path.exists() else path.parent
    if not target.is_dir():
        raise OcgenError(f"{path}: the folder {path.parent} does not exist")
    if not os.access(target, os.W_OK | os.X_OK):
        raise OcgenError(f"{path}: permission denied")
    return path


def create_folder(path: Path) -> Path:
    try:
        path.mkdir(exist_ok=True)
    except OSError as err:
        raise OcgenError(f"{path}: cannot create the folder: {err.strerror or err}") from None
    return path
