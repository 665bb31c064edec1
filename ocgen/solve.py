"""Solving the discrete problem: L-BFGS-B on the generated NumPy gradient (MATH.md 2–3).

The generated module (cached on disk, imported, never ``exec``'d from a string) supplies J_h and
∂J_h/∂u from one forward and one costate sweep. Controls are rescaled by the square root of
their quadrature weight h_n w_g so that the optimiser sees an O(1)-conditioned problem.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
from scipy.optimize import minimize, root

from .codegen import generate
from .derive import OutsideTheoryWarning, discretise
from .errors import OcgenError
from .limits import check_memory
from .problem import OptimalControlProblem, load_problem
from .tableau import ButcherTableau, load_tableau

_MODULES: dict[str, ModuleType] = {}


def cache_dir() -> Path:
    """Where generated modules are kept for import: $OCGEN_CACHE or ~/.cache/ocgen."""
    return Path(os.environ.get("OCGEN_CACHE", Path.home() / ".cache" / "ocgen"))


def import_source(text: str) -> ModuleType:
    """Import generated source through a file in :func:`cache_dir` (one module per text)."""
    key = hashlib.sha256(text.encode()).hexdigest()[:20]
    if key not in _MODULES:
        path = cache_dir() / f"ocgen_{key}.py"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        spec = importlib.util.spec_from_file_location(f"ocgen_generated_{key}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        _MODULES[key] = module
    return _MODULES[key]


def generated_module(tableau, problem, controls: str = "stage",
                     backend: str = "numpy") -> tuple[ModuleType, dict[str, float]]:
    """The imported generated module and the seconds spent deriving and generating it."""
    tableau, problem = load_tableau(tableau), load_problem(problem)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideTheoryWarning)
        discretise(problem, tableau, controls)
        derived = time.perf_counter()
        module = import_source(generate(tableau, problem, controls, backend))
    return module, {"derive": derived - start, "generate": time.perf_counter() - derived}


@dataclass
class Solution:
    """A discrete optimum. Arrays keep a trailing member axis K (1 for ordinary problems).

    states (N+1, D, K); costates p_n ≈ p(t_n) (N+1, D, K); stage_values and stage_costates
    (N, S, D, K); controls = parameters (N, G, M); stage_controls (N, S, M); grid_control
    u(t_n, y_n, p_n) (N+1, M, K) or None when φ is not known in closed form.
    """

    tableau: ButcherTableau
    problem: OptimalControlProblem
    controls_mode: str
    backend: str
    objective: float
    t: np.ndarray
    h: np.ndarray
    states: np.ndarray
    costates: np.ndarray
    stage_values: np.ndarray
    stage_costates: np.ndarray
    controls: np.ndarray
    stage_controls: np.ndarray
    grid_control: np.ndarray | None
    iterations: int
    converged: bool
    message: str
    kkt_residual: float
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.h)

    def to_json(self) -> dict:
        """The documented ``ocgen solve --json`` object (member axis dropped when K = 1)."""
        squeeze = (lambda a: a[..., 0]) if self.problem.members == 1 else (lambda a: a)
        data = {
            "tableau": self.tableau.name, "problem": self.problem.name,
            "controls_mode": self.controls_mode, "backend": self.backend,
            "steps": self.steps, "members": self.problem.members,
            "objective": float(self.objective),
            "exact_objective": (float(self.problem.solution.objective.evalf(17))
                                if self.problem.solution else None),
            "t": self.t.tolist(), "h": self.h.tolist(),
            "states": squeeze(self.states).tolist(),
            "costates": squeeze(self.costates).tolist(),
            "controls": self.controls.tolist(),
            "stage_controls": self.stage_controls.tolist(),
            "stage_times": (self.t[:-1, None] + self.h[:, None] *
                            np.array([float(c) for c in self.tableau.c])).tolist(),
            "stage_values": squeeze(self.stage_values).tolist(),
            "stage_costates": squeeze(self.stage_costates).tolist(),
            "grid_control": (squeeze(self.grid_control).tolist()
                             if self.grid_control is not None else None),
            "iterations": self.iterations, "converged": self.converged,
            "message": self.message, "kkt_residual": self.kkt_residual,
            "timings": self.timings,
        }
        data.update(self.extra)
        return data


def kkt_residual(module: ModuleType, theta: np.ndarray, gradient: np.ndarray,
                 h: np.ndarray) -> float:
    """max |θ − P(θ − ∂J_h/∂θ / (h w))|: the discrete H_u (MATH.md 3.2), projected on the bounds.

    Without bounds this is max |∂J_h/∂u_g| / (h_n w_g). At a bound only the part of the step
    that stays feasible counts, so a control left short of an active bound is measured by its
    distance to it.
    """
    if not gradient.size:
        return 0.0
    weights = h[:, None, None] * _safe_weights(module)[None, :, None]
    step = np.clip(theta - gradient / weights, module.CONTROL_LOWER, module.CONTROL_UPPER)
    return float(np.max(np.abs(theta - step)))


def active_bounds(values: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                  tolerance: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Masks of entries within ``tolerance``·(1 + |bound|) of their lower / upper bound."""
    with np.errstate(invalid="ignore"):
        at_lower = np.isfinite(lower) & (values - lower <= tolerance * (1 + np.abs(lower)))
        at_upper = np.isfinite(upper) & (upper - values <= tolerance * (1 + np.abs(upper)))
    return at_lower, at_upper


def bound_entries(at_lower: np.ndarray, at_upper: np.ndarray) -> dict:
    """Counts and [index..., "lower"|"upper"] entries of the active bounds."""
    entries = sorted([*([*map(int, i), "lower"] for i in np.argwhere(at_lower)),
                      *([*map(int, i), "upper"] for i in np.argwhere(at_upper))])
    return {"lower": int(at_lower.sum()), "upper": int(at_upper.sum()), "entries": entries}


def _safe_weights(module: ModuleType) -> np.ndarray:
    """Group weights, with zero/negative weights replaced by 1/S (their controls have no cost)."""
    w = np.asarray(module.GROUP_WEIGHTS, dtype=float)
    return np.where(w > 0, w, 1.0 / module.STAGES)


def check_steps(steps, tableau: ButcherTableau, problem: OptimalControlProblem,
                backend: str = "numpy") -> None:
    """The number of steps N must be a positive integer (not a bool, not a float), and the
    solve's arrays must fit in memory (:func:`ocgen.limits.check_memory`)."""
    if not (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps >= 1):
        raise OcgenError(f"--steps must be a positive integer, found {steps!r}")
    check_memory(tableau, problem, int(steps), backend)


def _polish(fun, z, bounds, gradient_tolerance):
    """Newton–Krylov on ∇J = 0 over the controls strictly inside their bounds.

    L-BFGS-B stops once J no longer decreases in floating point, which can leave |H_u| near
    1e-8; the gradient is still accurate there, so a root finder on it reaches rounding level.
    """
    lower = np.array([-np.inf if a is None else a for a, _ in bounds])
    upper = np.array([np.inf if b is None else b for _, b in bounds])
    free = (z > lower) & (z < upper)
    if not free.any():
        return z

    def gradient(z_free):
        full = z.copy()
        full[free] = z_free
        return fun(full)[1][free]

    try:
        with warnings.catch_warnings():  # a failed polish is handled below, not printed
            warnings.simplefilter("ignore", RuntimeWarning)
            found = root(gradient, z[free], method="krylov",
                         options={"fatol": gradient_tolerance, "maxiter": 50})
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return z
    if not np.all(np.isfinite(found.x)):
        return z
    polished = z.copy()
    polished[free] = np.clip(found.x, lower[free], upper[free])
    return polished if fun(polished)[0] <= fun(z)[0] + 1e-14 * abs(fun(z)[0]) else z


def solve(tableau, problem, steps: int, controls: str = "stage", *, h=None,
          initial_controls=None, tolerance: float = 1e-10, max_iterations: int = 5000,
          form: str = "multiplier") -> Solution:
    """Minimise J_h over the controls with SciPy's L-BFGS-B on the generated exact gradient."""
    tableau, problem = load_tableau(tableau), load_problem(problem)
    check_steps(steps, tableau, problem)
    module, timings = generated_module(tableau, problem, controls)
    h = module.uniform_steps(steps) if h is None else np.asarray(h, dtype=float)
    shape = (steps, module.N_GROUPS, module.CONTROL_DIM)
    lower = np.broadcast_to(module.CONTROL_LOWER, shape)
    upper = np.broadcast_to(module.CONTROL_UPPER, shape)
    theta0 = np.zeros(shape) if initial_controls is None else np.asarray(initial_controls,
                                                                         dtype=float)
    theta0 = np.clip(theta0.reshape(shape), lower, upper)
    scale = np.sqrt(h[:, None, None] * _safe_weights(module)[None, :, None]) * np.ones(shape)

    def fun(z):
        theta = z.reshape(shape) / scale
        J, g = module.objective_and_gradient(theta, h, form=form)
        return J, (g / scale).ravel()

    bounds = list(zip((lower * scale).ravel(), (upper * scale).ravel()))
    bounds = [(None if np.isinf(a) else a, None if np.isinf(b) else b) for a, b in bounds]
    start = time.perf_counter()
    result = minimize(fun, (theta0 * scale).ravel(), jac=True, method="L-BFGS-B",
                      bounds=bounds, options={"maxiter": max_iterations,
                                              "maxfun": 4 * max_iterations,
                                              "ftol": 0.0, "gtol": tolerance * 1e-2,
                                              "maxcor": 30})
    z, message = result.x, f"L-BFGS-B: {str(result.message).rstrip(': ')}"
    if kkt_residual(module, z.reshape(shape) / scale, fun(z)[1].reshape(shape) * scale, h) \
            > tolerance:
        polished = _polish(fun, z, bounds, tolerance * float(np.min(scale)) / 2)
        if polished is not z:
            z, message = polished, message + "; then Newton-Krylov on the gradient"
    # L-BFGS-B keeps active bounds exactly in the scaled variables; undo the scaling there
    # without rounding off the bound
    theta = np.where(z.reshape(shape) <= lower * scale, lower,
                     np.where(z.reshape(shape) >= upper * scale, upper, z.reshape(shape) / scale))
    trajectory = module.forward(theta, h)
    co = module.costate(theta, trajectory, h, form=form)
    timings["solve"] = time.perf_counter() - start
    residual = kkt_residual(module, theta, co["gradient"], h)
    active = {"controls": bound_entries(*active_bounds(theta, lower, upper))}
    grid = (module.grid_control(trajectory["t"], trajectory["y"], co["p"])
            if hasattr(module, "grid_control") else None)
    return Solution(
        tableau=tableau, problem=problem, controls_mode=controls, backend="numpy",
        objective=float(trajectory["objective"]), t=trajectory["t"], h=h,
        states=trajectory["y"], costates=co["p"], stage_values=trajectory["Y"],
        stage_costates=co["stage_costates"], controls=theta,
        stage_controls=module.stage_controls(theta), grid_control=grid,
        iterations=int(result.nit), converged=bool(residual <= tolerance),
        message=message, kkt_residual=residual, timings=timings,
        extra={"active_bounds": active})
