"""Experiments: grids of training runs, run in parallel, resumable, with a written report.

A spec (a built-in name or a TOML file, :mod:`~ocgen.experiments.spec`) declares a grid over
the options of ``ocgen train``; each run is stored under the hash of its configuration
(:mod:`~ocgen.experiments.store`), runs on a local process pool or a Dask cluster
(:mod:`~ocgen.experiments.executors`), and the report gathers them
(:mod:`~ocgen.experiments.report`). The gradient-consistency study of ``beyond-paper`` is
:mod:`~ocgen.experiments.consistency`.

    >>> from ocgen.experiments import run_experiment
    >>> result = run_experiment("paper-rk", "out", quick=True, workers=2)
    >>> result.results["runs"][0]["validation_accuracy"], result.report
"""

from __future__ import annotations

from .consistency import consistency_study, predicted_orders
from .runner import ExperimentResult, run_experiment
from .spec import Spec, Task, builtin_specs, load_spec

__all__ = ["ExperimentResult", "Spec", "Task", "builtin_specs", "consistency_study",
           "load_spec", "predicted_orders", "run_experiment"]
