"""A generated module bound to the data of one problem.

Generated modules hold code, not data: their functions take the initial states ``y0`` (D, K)
and the member parameters ``params`` (P, K) as arguments, so one module serves every data set
of the same problem. :class:`BoundModule` passes the problem's own values (from its file)
wherever a caller leaves them out or gives None; everything else is the module's.
"""

from __future__ import annotations

import functools
import inspect
from types import ModuleType

import numpy as np

from .problem import OptimalControlProblem

DATA_ARGUMENTS = ("y0", "params")


class BoundModule:
    """``module`` with ``problem``'s initial states and member parameters as the default of
    every ``y0`` and ``params`` argument (``module.forward(theta, h)`` runs the problem's
    ensemble); ``data`` holds them."""

    def __init__(self, module: ModuleType, problem: OptimalControlProblem):
        self.module = module
        self._functions: dict = {}
        values = problem.member_parameter_arrays()
        self.data = {"y0": problem.initial_state_array(),
                     "params": np.array([values[name] for name in module.PARAMETER_NAMES],
                                        dtype=float).reshape(-1, problem.members)}

    def __getattr__(self, name):
        if name in self._functions:
            return self._functions[name]
        value = getattr(self.module, name)
        if not inspect.isfunction(value):
            return value
        signature = inspect.signature(value)
        taken = [key for key in DATA_ARGUMENTS if key in signature.parameters]
        if taken:
            value = self._with_data(value, signature, taken)
        self._functions[name] = value
        return value

    def _with_data(self, function, signature, taken):
        """``function`` with the problem's data wherever ``taken`` arguments are None."""
        @functools.wraps(function)
        def with_data(*args, **kwargs):
            bound = signature.bind_partial(*args, **kwargs)
            for key in taken:
                if bound.arguments.get(key) is None:
                    bound.arguments[key] = self.data[key]
            return function(*bound.args, **bound.kwargs)
        return with_data

    def __repr__(self) -> str:
        return f"<{self.module.__name__} bound to its problem's data>"
