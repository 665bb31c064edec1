"""Deep learning as optimal control (MATH.md 6): a network is an ensemble problem.

Data points are ensemble members, layers are steps with step controls (K_n, β_n), and the
output weights W, μ are free parameters of the terminal cost. Gradients come from
:mod:`ocgen.derive` and the generated module like every other problem's.

    >>> from ocgen import nets
    >>> result = nets.train("spiral", "rk4", layers=20, iterations=2000)
    >>> result.final["validation_accuracy"], result.network.predict([[0.1, 0.2]])
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {"train": "api", "Architecture": "model", "Network": "model",
            "load_network": "model", "Dataset": "datasets", "TrainingResult": "training"}
"""Names of the package and their modules, imported on first use: ``ocgen --help`` and the
option lists of ``ocgen train`` (:mod:`ocgen.nets.names`) need none of SymPy, SciPy or
Matplotlib."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
