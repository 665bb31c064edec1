"""What a worker runs: one training run or one consistency study, never raising.

:func:`execute` is the only function the executors send to a worker (a process of the local
pool or a Dask worker). It returns a JSON-ready dict, so a failure is a result like any other:
``{"status": "failed", "error": …}``, recorded by the store while the other runs go on.
"""

from __future__ import annotations

import time
import traceback

from ..errors import OcgenError


def execute(kind: str, payload: dict) -> dict:
    """Run one task; ``{"status": "ok", "result": …[, "model": …], "wall_time": s}`` or
    ``{"status": "failed", "error", "error_type"[, "traceback"], "wall_time"}``."""
    start = time.perf_counter()
    try:
        if kind == "train":
            outcome = _train(payload)
        elif kind == "consistency":
            outcome = _consistency(payload)
        else:
            raise ValueError(f"unknown task kind {kind!r}")
        outcome["status"] = "ok"
    except OcgenError as err:  # bad options for this run, or a training that failed
        outcome = {"status": "failed", "error": str(err), "error_type": type(err).__name__}
    except Exception as err:  # anything else is a bug: keep the traceback to report it
        outcome = {"status": "failed", "error": f"{type(err).__name__}: {err}",
                   "error_type": type(err).__name__, "traceback": traceback.format_exc()}
    outcome["wall_time"] = time.perf_counter() - start
    return outcome


def _train(payload: dict) -> dict:
    from ..nets import train
    options = dict(payload)
    dataset, tableau, layers = (options.pop(k) for k in ("dataset", "tableau", "layers"))
    result = train(dataset, tableau, layers, **options)
    return {"result": result.to_json(), "model": result.network.to_json()}


def _consistency(payload: dict) -> dict:
    from .consistency import consistency_study
    return {"result": consistency_study(payload["tableau"], payload["layers"])}
