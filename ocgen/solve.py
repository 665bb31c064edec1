"""Solving the discrete problem: L-BFGS-B on the generated NumPy gradient (MATH.md 2–3).

The generated module (loaded through :mod:`ocgen.cache`) supplies J_h and ∂J_h/∂u from one
forward and one costate sweep. Controls are rescaled by the square root of their quadrature
weight h_n w_g so that the optimiser sees an O(1)-conditioned problem.

A sweep that fails (overflow, singular implicit stage equations) is a :class:`SolveError`
naming the step, never a traceback. A solve counts as converged only at a KKT point where J_h
has not run off to −∞ and the reduced Hessian over the free controls has no negative
curvature; otherwise ``converged`` is False and ``message`` says why.
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
from scipy.linalg import eigvalsh
from scipy.optimize import minimize, root
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh

from .bound import BoundModule
from .cache import import_source
from .codegen import generate
from .derive import Method, OutsideTheoryWarning, clock, discretise
from .errors import OcgenError, SolveError
from .limits import check_memory
from .pair import load_method
from .problem import OptimalControlProblem, load_problem


def generated_module(tableau, problem, controls: str = "stage",
                     backend: str = "numpy") -> tuple[ModuleType, dict[str, float]]:
    """The imported generated module, bound to the problem's data (:class:`BoundModule`),
    and the seconds spent deriving and generating it (``tableau``: a tableau or a pair)."""
    tableau, problem = load_method(tableau), load_problem(problem)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideTheoryWarning)
        discretise(problem, tableau, controls)
        derived = time.perf_counter()
        module = BoundModule(import_source(generate(tableau, problem, controls, backend)),
                             problem)
    return module, {"derive": derived - start, "generate": time.perf_counter() - derived}


@dataclass
class Solution:
    """A discrete optimum. Arrays keep a trailing member axis K (1 for ordinary problems).

    states (N+1, D, K); costates p_n ≈ p(t_n) (N+1, D, K); stage_values and stage_costates
    (N, S, D, K); controls = parameters (N, G, M); stage_controls (N, S, M); grid_control
    u(t_n, y_n, p_n) (N+1, M, K) or None when φ is not known in closed form.
    """

    tableau: Method
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
    free_parameters: np.ndarray = field(default_factory=lambda: np.zeros(0))

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
                            np.array([float(c) for c in clock(self.tableau).c])).tolist(),
            "stage_values": squeeze(self.stage_values).tolist(),
            "stage_costates": squeeze(self.stage_costates).tolist(),
            "grid_control": (squeeze(self.grid_control).tolist()
                             if self.grid_control is not None else None),
            "free_parameters": {q.name: float(v) for (q, _), v in
                                zip(self.problem.free_parameters, self.free_parameters)},
            "iterations": self.iterations, "converged": self.converged,
            "message": self.message, "kkt_residual": self.kkt_residual,
            "timings": self.timings,
        }
        data.update(self.extra)
        return data


def kkt_residual(module: ModuleType, theta: np.ndarray, gradient: np.ndarray,
                 h: np.ndarray, free_gradient=()) -> float:
    """max |θ − P(θ − ∂J_h/∂θ / (h w))|: the discrete H_u (MATH.md 3.2), projected on the bounds,
    and max |∂J_h/∂q| over the free parameters q.

    Without bounds this is max |∂J_h/∂u_g| / (h_n w_g). At a bound only the part of the step
    that stays feasible counts, so a control left short of an active bound is measured by its
    distance to it.
    """
    free = float(np.max(np.abs(free_gradient), initial=0.0))
    if not gradient.size:
        return free
    weights = h[:, None, None] * _safe_weights(module)[None, :, None]
    # P(θ − d) − θ = clip(−d, lower − θ, upper − θ), free of the cancellation at large |θ|
    step = np.clip(-gradient / weights, module.CONTROL_LOWER - theta, module.CONTROL_UPPER - theta)
    return max(float(np.max(np.abs(step))), free)


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


def check_steps(steps, tableau: Method, problem: OptimalControlProblem,
                backend: str = "numpy") -> None:
    """The number of steps N must be a positive integer (not a bool, not a float), and the
    solve's arrays must fit in memory (:func:`ocgen.limits.check_memory`)."""
    if not (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps >= 1):
        raise OcgenError(f"--steps must be a positive integer, found {steps!r}")
    check_memory(tableau, problem, int(steps), backend)


def step_sizes(module: ModuleType, steps: int, h=None) -> np.ndarray:
    """h_n, n < N: uniform over the horizon by default; given ones must be finite and positive."""
    h = module.uniform_steps(steps) if h is None else np.asarray(h, dtype=float).ravel()
    if h.shape != (steps,) or not np.all(np.isfinite(h)) or np.any(h <= 0):
        raise OcgenError(f"h must hold {steps} finite positive step sizes, found "
                         f"{np.array2string(h, threshold=6)}")
    return h


# -- floating-point failures of the generated module ------------------------------------------
NUMERIC_ERRORS = (ArithmeticError, np.linalg.LinAlgError, RuntimeError)
"""What the generated module raises when a sweep fails: OverflowError (one member runs on
Python floats), LinAlgError (singular implicit stage equations), RuntimeError (Newton's method
on them did not converge), FloatingPointError from :func:`sweep`."""


def sweep(module: ModuleType, theta: np.ndarray, h: np.ndarray, form: str = "multiplier",
          full: bool = True, free=None) -> tuple[dict, dict]:
    """Forward sweep (states, J_h; MATH.md 2) then costate sweep (p, ∂J_h/∂θ, ∂J_h/∂q;
    MATH.md 3) at controls θ and free parameters q (``free``; default: their initial values).

    Raises one of :data:`NUMERIC_ERRORS`, FloatingPointError when J_h or a gradient is not
    finite.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        trajectory = module.forward(theta, h, free=free)
        if not np.isfinite(trajectory["objective"]):
            raise FloatingPointError("J_h is not finite")
        co = module.costate(theta, trajectory, h, form=form, full=full, free=free)
    if not (np.all(np.isfinite(co["gradient"])) and np.all(np.isfinite(co["gradient_free"]))):
        raise FloatingPointError("dJ_h/dtheta is not finite")
    return trajectory, co


@contextmanager
def numerical_failures(module: ModuleType, theta: np.ndarray, h: np.ndarray, when: str,
                       free=None):
    """Calls into the generated module at controls θ (and free parameters); a failure becomes a
    SolveError saying ``when`` it happened and, from :func:`describe_failure`, where and why."""
    try:
        yield
    except NUMERIC_ERRORS as err:
        raise SolveError(f"{when}: {describe_failure(module, theta, h, err, free)}") from None


def describe_failure(module: ModuleType, theta: np.ndarray, h: np.ndarray,
                     err: BaseException, free=None) -> str:
    """Where a sweep at θ fails: the first failing step of the forward sweep, else the cost,
    else the costate sweep (which ``err`` came from)."""
    t = module.time_grid(h)
    found = _first_failing_step(module, theta, h, free)
    if found is not None:
        n, cause = found
        where = f"step n = {n} (t = {t[n]:.6g}, h = {h[n]:.6g})"
        if isinstance(cause, np.linalg.LinAlgError):
            return (f"the implicit stage equations are singular at {where}: the stage values "
                    "are not unique; try another number of steps")
        if isinstance(cause, RuntimeError):
            return (f"Newton's method for the implicit stage equations did not converge at "
                    f"{where}; try more steps")
        return (f"the state overflowed at {where}: the trajectory blows up; start from other "
                "controls or use the casadi backend, which need not integrate its initial guess")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        trajectory = module.forward(*_array_members(module, theta, h), free=free)
    if not np.isfinite(trajectory["objective"]):
        return (f"the cost J_h overflowed while the states stay finite (largest |y_n| = "
                f"{np.max(np.abs(trajectory['y'])):.3g})")
    return f"the costate sweep failed ({type(err).__name__}: {err})"


def _array_members(module: ModuleType, theta: np.ndarray, h: np.ndarray) -> tuple:
    """forward() arguments running every member twice: with arrays over the members an
    overflow gives inf instead of raising, so a trajectory shows where it stops being finite."""
    y0 = np.repeat(module.data["y0"], 2, axis=-1)
    params = np.repeat(module.data["params"], 2, axis=-1)
    return theta, h, y0, params


def _first_failing_step(module: ModuleType, theta: np.ndarray, h: np.ndarray,
                        free=None) -> tuple[int, BaseException | None] | None:
    """(n, cause): step n is the first whose stage values or next state cannot be computed or
    are not finite (bisection over the first k steps, k = 1..N); None when all N are fine."""
    def failure(k):
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                trajectory = module.forward(*_array_members(module, theta[:k], h[:k]),
                                            free=free)
        except NUMERIC_ERRORS as err:
            return err
        finite = np.all(np.isfinite(trajectory["y"])) and np.all(np.isfinite(trajectory["Y"]))
        return None if finite else FloatingPointError("not finite")

    cause = failure(len(h))
    if cause is None:
        return None
    good, bad = 0, len(h)
    while bad - good > 1:
        middle = (good + bad) // 2
        found = failure(middle)
        if found is None:
            good = middle
        else:
            bad, cause = middle, found
    return bad - 1, cause


def _polish(fun, z, bounds, gradient_tolerance, max_iterations=50):
    """Newton–Krylov on ∇J = 0 over the controls strictly inside their bounds, at most
    ``max_iterations`` Newton steps.

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
                         options={"fatol": gradient_tolerance, "maxiter": max_iterations})
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return z
    if not np.all(np.isfinite(found.x)):
        return z
    polished = z.copy()
    polished[free] = np.clip(found.x, lower[free], upper[free])
    return polished if fun(polished)[0] <= fun(z)[0] + 1e-14 * abs(fun(z)[0]) else z


UNBOUNDED = 1e12
"""J_h below J(θ₀) − UNBOUNDED·(1 + |J(θ₀)|) is taken as running to −∞: the solve stops there."""

CURVATURE_TOLERANCE = 1e-6
"""Curvature below −CURVATURE_TOLERANCE·‖∇²J‖ is negative (finite-difference Hessian-vector
products of the exact gradient are good to about 1e-8 of ‖∇²J‖)."""

LANCZOS_VECTORS = 6
"""Krylov basis size of the Lanczos iteration; up to this many free controls the reduced
Hessian is formed column by column instead."""


def smallest_curvature(gradient, z: np.ndarray, g0: np.ndarray,
                       free: np.ndarray) -> tuple[float, float]:
    """(λ_min, ‖∇²J‖ estimate) of the Hessian of J restricted to the entries ``free`` of z.

    Hessian-vector products by forward differences of the exact gradient (g0 = ∇J(z)),
    ∇²J v ≈ (∇J(z + εv) − g0)/ε with ε = √ε_mach (1 + ‖z‖∞), handed to
    :func:`smallest_eigenvalue`.
    """
    step = np.sqrt(np.finfo(float).eps) * (1.0 + np.max(np.abs(z)))

    def product(v):
        dz = np.zeros_like(z)
        dz[free] = v
        return (gradient(z + step * dz)[free] - g0[free]) / step

    return smallest_eigenvalue(product, int(np.count_nonzero(free)))


def smallest_eigenvalue(product, n: int) -> tuple[float, float]:
    """(λ_min, scale) of the symmetric n×n operator v ↦ ``product(v)``.

    λ_min from the Lanczos iteration (ARPACK's eigsh, smallest algebraic eigenvalue, to 10 %:
    only its sign matters) or, for few entries, from the formed matrix. The scale is the
    largest ‖Hv‖/‖v‖ met, a lower bound on ‖H‖.
    """
    gains = []

    def measured(v):
        v = np.ravel(v)
        hv = product(v)
        gains.append(np.linalg.norm(hv) / np.linalg.norm(v))
        return hv

    if n == 0:
        return np.inf, 0.0
    if n <= LANCZOS_VECTORS:
        H = np.column_stack([measured(e) for e in np.eye(n)])
        eigenvalues = eigvalsh((H + H.T) / 2)
        return float(eigenvalues[0]), float(np.max(np.abs(eigenvalues)))
    operator = LinearOperator((n, n), matvec=measured, dtype=float)
    start = np.random.default_rng(0).standard_normal(n)
    try:
        smallest = eigsh(operator, k=1, which="SA", v0=start, tol=0.1, ncv=LANCZOS_VECTORS,
                         maxiter=10)[0][0]
    except ArpackNoConvergence as err:  # the Ritz values found so far still bound λ_min above
        smallest = min(err.eigenvalues, default=np.inf)
    except ArpackError:  # no Krylov space to search, e.g. ∇²J v₀ = 0: nothing negative found
        smallest = np.inf
    return float(smallest), float(max(gains))


def negative_curvature(smallest: float, size: float) -> str | None:
    """The reason a stationary point is not a minimum, when λ_min < −CURVATURE_TOLERANCE·‖H‖."""
    if smallest < -CURVATURE_TOLERANCE * size:
        return (f"stationary point is not a minimum: negative curvature (smallest eigenvalue "
                f"{smallest:.3g} of the reduced Hessian over the free controls, largest seen "
                f"{size:.3g}): J_h decreases from here, perhaps without bound")
    return None


def _verdict(objective: float, start: float, residual: float, tolerance: float,
             theta: np.ndarray, curvature) -> tuple[bool, str | None]:
    """(converged, reason if not): unbounded below, KKT residual, then second-order condition."""
    if objective < start - UNBOUNDED * (1 + abs(start)):
        return False, (f"objective unbounded below: J_h fell from {start:.6g} at the initial "
                       f"controls to {objective:.3g}, with controls up to "
                       f"{np.max(np.abs(theta)):.3g}; the discrete problem appears to have no "
                       "minimum")
    if residual > tolerance:
        return False, None
    reason = negative_curvature(*curvature())
    return reason is None, reason


def solve(tableau, problem, steps: int, controls: str = "stage", *, h=None,
          initial_controls=None, tolerance: float = 1e-10, max_iterations: int = 5000,
          form: str = "multiplier") -> Solution:
    """Minimise J_h over the controls with SciPy's L-BFGS-B on the generated exact gradient
    (at most ``max_iterations`` iterations, then at most min(50, ``max_iterations``) Newton–Krylov
    steps of the polish).

    Not converged (with the reason in ``message``) when the KKT residual exceeds ``tolerance``,
    when J_h runs to −∞ (:data:`UNBOUNDED`) or when the reduced Hessian over the free controls
    has negative curvature (:func:`smallest_curvature`). Raises :class:`SolveError` when the
    sweeps fail at the initial controls (overflow, singular stage equations).
    """
    tableau, problem = load_method(tableau), load_problem(problem)
    check_steps(steps, tableau, problem)
    module, timings = generated_module(tableau, problem, controls)
    h = step_sizes(module, steps, h)
    shape = (steps, module.N_GROUPS, module.CONTROL_DIM)
    lower = np.broadcast_to(module.CONTROL_LOWER, shape)
    upper = np.broadcast_to(module.CONTROL_UPPER, shape)
    theta0 = np.zeros(shape) if initial_controls is None else np.asarray(initial_controls,
                                                                         dtype=float)
    if not np.all(np.isfinite(theta0)):
        raise OcgenError("initial_controls must be finite")
    theta0 = np.clip(theta0.reshape(shape), lower, upper)
    scale = np.sqrt(h[:, None, None] * _safe_weights(module)[None, :, None]) * np.ones(shape)
    n_theta = scale.size
    failed = 0

    def split(z):  # z = (θ·scale, q): scaled controls, then the free parameters
        return z[:n_theta].reshape(shape) / scale, z[n_theta:]

    def evaluate(z):
        theta, free = split(z)
        trajectory, co = sweep(module, theta, h, form, full=False, free=free)
        return trajectory["objective"], np.concatenate([(co["gradient"] / scale).ravel(),
                                                        co["gradient_free"]])

    def fun(z):  # a trial point where the sweeps fail is infinitely bad for the line search
        nonlocal failed
        try:
            return evaluate(z)
        except NUMERIC_ERRORS:
            failed += 1
            return np.inf, np.full(z.size, np.nan)

    bounds = list(zip((lower * scale).ravel(), (upper * scale).ravel()))
    bounds = [(None if np.isinf(a) else a, None if np.isinf(b) else b) for a, b in bounds]
    bounds += [(None, None)] * len(module.FREE_NAMES)
    start = time.perf_counter()
    z = np.concatenate([(theta0 * scale).ravel(), module.FREE_VALUES])
    where = f"{problem.name} with {tableau.name}, {controls} controls, {steps} steps"
    with numerical_failures(module, theta0, h, f"{where}, at the initial controls"):
        J0 = evaluate(z)[0]
    floor = J0 - UNBOUNDED * (1 + abs(J0))

    def stop_when_unbounded(intermediate_result):
        if intermediate_result.fun < floor:
            raise StopIteration

    result = minimize(fun, z, jac=True, method="L-BFGS-B", bounds=bounds,
                      callback=stop_when_unbounded,
                      options={"maxiter": max_iterations, "maxfun": 4 * max_iterations,
                               "ftol": 0.0, "gtol": tolerance * 1e-2, "maxcor": 30})
    z, message = result.x, f"L-BFGS-B: {str(result.message).rstrip(': ')}"
    if result.fun < floor:
        message = f"L-BFGS-B stopped after {result.nit} iterations"
    elif kkt_residual(module, split(z)[0], fun(z)[1][:n_theta].reshape(shape) * scale, h,
                      fun(z)[1][n_theta:]) > tolerance:
        polished = _polish(fun, z, bounds, tolerance * float(np.min(scale)) / 2,
                           min(50, max_iterations))
        if polished is not z:
            z, message = polished, message + "; then Newton-Krylov on the gradient"
    if failed:
        message += f"; {failed} trial points where the sweeps failed were rejected"
    # L-BFGS-B keeps active bounds exactly in the scaled variables; undo the scaling there
    # without rounding off the bound
    scaled, free = z[:n_theta].reshape(shape), z[n_theta:]
    theta = np.where(scaled <= lower * scale, lower,
                     np.where(scaled >= upper * scale, upper, scaled / scale))
    with numerical_failures(module, theta, h, f"{where}, at the solution", free):
        trajectory, co = sweep(module, theta, h, form, free=free)
        timings["solve"] = time.perf_counter() - start
        residual = kkt_residual(module, theta, co["gradient"], h, co["gradient_free"])
        at_lower, at_upper = active_bounds(theta, lower, upper)
        checked = time.perf_counter()
        unbounded = np.ones(free.size, dtype=bool)
        converged, reason = _verdict(
            trajectory["objective"], J0, residual, tolerance, theta,
            lambda: smallest_curvature(
                lambda v: evaluate(v)[1], np.concatenate([(theta * scale).ravel(), free]),
                np.concatenate([(co["gradient"] / scale).ravel(), co["gradient_free"]]),
                np.concatenate([~(at_lower | at_upper).ravel(), unbounded])))
        timings["second_order"] = time.perf_counter() - checked
    grid = (module.grid_control(trajectory["t"], trajectory["y"], co["p"], free=free)
            if hasattr(module, "grid_control") else None)
    return Solution(
        tableau=tableau, problem=problem, controls_mode=controls, backend="numpy",
        objective=float(trajectory["objective"]), t=trajectory["t"], h=h,
        states=trajectory["y"], costates=co["p"], stage_values=trajectory["Y"],
        stage_costates=co["stage_costates"], controls=theta,
        stage_controls=module.stage_controls(theta), grid_control=grid,
        iterations=int(result.get("nit", 0)), converged=converged,
        message=f"{reason} ({message})" if reason else message, kkt_residual=residual,
        timings=timings, extra={"active_bounds": {"controls": bound_entries(at_lower, at_upper)}},
        free_parameters=free)
