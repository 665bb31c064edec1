"""Where the tasks run: a local process pool, or a Dask distributed cluster.

Both send :func:`ocgen.experiments.tasks.execute` with a task's payload to a worker and hand
back ``(task, outcome)`` pairs as they finish; the results are the same whichever runs them
(every run is deterministic given its configuration, and workers keep no state between runs).
Only the process that called them writes files: workers need no access to the output folder,
so a cluster without a shared file system works too.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator

from ..errors import InputError, OcgenError
from .tasks import execute

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a Dask scheduler before giving up."""


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class LocalPool:
    """``workers`` processes on this machine (started fresh, not forked, so that each run sees
    a clean interpreter as a Dask worker would)."""

    def __init__(self, workers: int | None = None):
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                    or workers < 1):
            raise InputError(f"expected a positive number of workers, found {workers!r}",
                             key="--workers")
        self.workers = workers or default_workers()

    def describe(self) -> dict:
        return {"executor": "process pool", "workers": self.workers}

    def run(self, tasks: Iterable, while_waiting: Callable[[], None] | None = None
            ) -> Iterator[tuple]:
        """(task, outcome) as the tasks finish; ``while_waiting()`` is called once, after all
        are submitted (the caller's own work, done while the workers run)."""
        import multiprocessing
        tasks = list(tasks)
        if not tasks:
            return
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)),
                                   mp_context=multiprocessing.get_context("spawn"))
        pending = {pool.submit(execute, t.kind, t.payload): t for t in tasks}
        finished = False
        try:
            if while_waiting is not None:
                while_waiting()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        raise OcgenError("a worker process died (killed, or out of memory); "
                                         "the finished runs are kept: run the experiment "
                                         "again to resume") from None
                    yield task, outcome
            finished = True
        finally:
            if finished:
                pool.shutdown(wait=True)
            else:  # interrupted: stop the workers now rather than after their current run
                pool.shutdown(wait=False, cancel_futures=True)
                _terminate(pool)

    def close(self) -> None:
        pass


def _terminate(pool: ProcessPoolExecutor) -> None:
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.join(timeout=5)


class DaskCluster:
    """A Dask distributed scheduler at ``address`` (``tcp://host:port``), connected at once so
    that an unreachable scheduler is reported before any run starts."""

    def __init__(self, address: str, timeout: float = DEFAULT_CONNECT_TIMEOUT):
        try:
            from distributed import Client
        except ImportError:
            raise InputError("needs dask.distributed: pip install 'dask[distributed]'",
                             key="--scheduler") from None
        if not (isinstance(address, str) and "://" in address):
            raise InputError(f"expected a scheduler address such as tcp://host:8786, found "
                             f"{address!r}", key="--scheduler")
        self.address = address
        try:
            self.client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            raise InputError(f"cannot reach the Dask scheduler at {address}: {err}",
                             key="--scheduler") from None

    def describe(self) -> dict:
        try:
            workers = len(self.client.scheduler_info(n_workers=-1).get("workers", {}))
        except TypeError:  # older distributed: no n_workers argument
            workers = len(self.client.scheduler_info().get("workers", {}))
        except Exception:  # the scheduler went away: describe what we know
            workers = None
        return {"executor": "dask", "scheduler": self.address, "workers": workers}

    def run(self, tasks: Iterable, while_waiting: Callable[[], None] | None = None
            ) -> Iterator[tuple]:
        """As :meth:`LocalPool.run`."""
        from distributed import as_completed
        tasks = list(tasks)
        if not tasks:
            return
        futures = {}
        for task in tasks:
            future = self.client.submit(execute, task.kind, task.payload, pure=False,
                                        key=f"ocgen-{task.kind}-{task.key}-{os.urandom(4).hex()}")
            futures[future.key] = (future, task)
        remaining = dict(futures)
        try:
            if while_waiting is not None:
                while_waiting()
            for future in as_completed([f for f, _ in futures.values()],
                                       loop=self.client.loop):
                task = remaining.pop(future.key)[1]
                try:
                    outcome = future.result()
                except Exception as err:  # the worker died, or the task could not be run
                    outcome = {"status": "failed", "error_type": type(err).__name__,
                               "error": f"the Dask cluster could not run it: "
                                        f"{type(err).__name__}: {err}"}
                yield task, outcome
        finally:
            if remaining:
                self.client.cancel([f for f, _ in remaining.values()])

    def close(self) -> None:
        self.client.close()


def make_executor(workers: int | None = None, scheduler: str | None = None,
                  timeout: float = DEFAULT_CONNECT_TIMEOUT):
    """The Dask cluster at ``scheduler`` if given, else a local pool of ``workers``."""
    if scheduler is not None:
        if workers is not None:
            raise InputError("--workers is for the local pool; the Dask cluster has its own "
                             "workers", key="--workers")
        return DaskCluster(scheduler, timeout)
    return LocalPool(workers)
