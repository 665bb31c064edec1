"""Running an experiment: check everything, run what is not finished, write the report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import executors
from .report import build_results, prepare_report, write_report
from .spec import Spec, load_spec
from .store import RunStore, check_folder, create_folder


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` did: the parsed spec, the folder and results.json's content."""

    spec: Spec
    folder: Path
    results: dict

    @property
    def failed(self) -> int:
        return self.results["counts"]["failed"]

    @property
    def report(self) -> Path:
        return self.folder / "REPORT.md"


def default_folder(spec: Spec) -> Path:
    """``ocgen-<name>`` (``ocgen-<name>-quick`` with --quick) in the current folder."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in spec.name) or "spec"
    return Path(f"ocgen-{safe}{'-quick' if spec.quick else ''}")


def run_experiment(spec, out=None, *, workers: int | None = None,
                   scheduler: str | None = None, quick: bool = False,
                   overrides: dict | None = None, retry_failed: bool = False,
                   progress: Callable[[int, int, int], None] | None = None,
                   announce: Callable | None = None,
                   connect_timeout: float | None = None) -> ExperimentResult:
    """Run the experiment ``spec`` (a built-in name, a spec file or a :class:`Spec`) and write
    its report to ``out``.

    The spec, the output folder and the executor (``scheduler``: a Dask scheduler address;
    else a local pool of ``workers`` processes) are checked before any run starts. Finished
    runs in ``out`` are skipped, failed ones too unless ``retry_failed``. ``connect_timeout``:
    seconds to wait for the scheduler (default executors.DEFAULT_CONNECT_TIMEOUT). ``progress(done,
    total, failed)`` is called as tasks finish; ``announce(spec, folder, executor, pending)``
    once everything is checked, before the first run.
    """
    start = time.perf_counter()
    if not isinstance(spec, Spec):
        spec = load_spec(spec, quick=quick, overrides=overrides)
    folder = check_folder(default_folder(spec) if out is None else out)
    executor = executors.make_executor(
        workers, scheduler,
        executors.DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout)
    try:
        store = RunStore(create_folder(folder))
        with store.locked():
            pending = [t for t in spec.tasks if not store.is_finished(t.key, retry_failed)]
            waiting = {t.key for t in pending}
            done = len(spec.tasks) - len(pending)
            failed = sum(1 for t in spec.tasks if t.key not in waiting
                         and (store.record(t.key) or {}).get("status") != "ok")
            if announce is not None:
                announce(spec, folder, executor.describe(), len(pending))
            if progress is not None:
                progress(done, len(spec.tasks), failed)
            ran = 0
            for task, outcome in executor.run(pending, lambda: prepare_report(spec)):
                store.save(task, outcome)
                ran += 1
                done += 1
                failed += outcome["status"] != "ok"
                if progress is not None:
                    progress(done, len(spec.tasks), failed)
            counts = {"tasks": len(spec.tasks), "ran": ran,
                      "skipped": len(spec.tasks) - len(pending), "failed": failed}
            results = build_results(spec, store, executor.describe(), counts,
                                    time.perf_counter() - start)
            results = write_report(results, spec, store, folder)
    finally:
        executor.close()
    return ExperimentResult(spec, folder, results)
