"""Verification: convergence of discrete optima to the continuous optimality system.

For a sequence of step counts N the discrete problem is solved (ocgen.solve, or CasADi/IPOPT)
and its state y_n, costate p_n ≈ p(t_n), grid control u(t_n, y_n, p_n), raw stage controls
u_ni (at τ_ni = t_n + c_i h) and objective J_h are compared with the continuous solution:
the problem's closed form when it has one, otherwise a reference solution of Pontryagin's
two-point boundary value problem (MATH.md 1),

    y' = f(t, y, φ(t, y, p)),  p' = −∇_y H(t, y, φ, p),  y(t0) = y0,  p(T) = ∇Φ(y(T)),

built from the derived symbols (ocgen.derive.continuous_system) and solved with
scipy.integrate.solve_bvp; its accuracy is estimated from a second solve at a tenfold
tighter tolerance and reported.

Observed orders are least-squares slopes of log(error) against log(h) over the last
``fit_points`` step counts whose errors lie above the rounding/reference floor; they are
judged against the order certificate (MATH.md 4–5): the optimal-control order for stage and
tied controls, min(classical order, 2) for step controls. Stage controls with zero or negative
weights are outside the theory (MATH.md 3.3): no slope is fitted, the errors are shown as they
are. Like pyadjoint's Taylor test this is an API offered to users, not only a test helper.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import sympy as sp

from .derive import CONTROL_MODES, InternalSymbol, Method, OutsideTheoryWarning, clock, \
    continuous_system, control_groups, discretise, outside_theory_reason
from .errors import OcgenError, SolveError
from .limits import check_memory
from .pair import PartitionedTableau, load_method
from .problem import OptimalControlProblem, load_problem
from .tableau import ButcherTableau

__all__ = ["QUANTITIES", "JUDGED", "Verification", "Reference", "verify", "reference_solution",
           "ensemble_control_law", "rates",
           "observed_order", "format_verification", "plot_verification"]

QUANTITIES = ("state", "costate", "grid_control", "stage_control", "objective")
"""Error quantities, in table order."""
JUDGED = ("state", "costate", "grid_control", "objective")
"""Quantities the verdict is taken on; raw stage controls are reported, not judged (MATH.md 5:
they converge more slowly, e.g. RK4 2, Gauss-2 3, Ralston-3/SSPRK3 1)."""

ORDER_TOLERANCE = 0.3
ROUNDING_FLOOR = 1e-12
BACKENDS = ("numpy", "casadi")


# -- the continuous reference -----------------------------------------------------------------
@dataclass
class Reference:
    """The continuous solution evaluated on demand.

    ``state(t)``, ``costate(t)`` have shape (len(t), D, K); ``control(t)`` (len(t), M) (the
    ensemble shares one control); ``objective`` J*. ``info`` is the JSON ``reference`` entry:
    {"kind": "closed form"} or {"kind": "bvp", "estimated_error": …, "tolerance": …, …}.
    """

    state: Any
    costate: Any
    control: Any
    objective: float
    info: dict

    @property
    def estimated_error(self) -> float:
        return float(self.info.get("estimated_error") or 0.0)


def _lambdify(args, exprs):
    """Vectorised NumPy function of our derived SymPy expressions (never of user text).

    A list gives shape (len, *broadcast shape of the arguments); a Matrix (rows, cols, …).
    """
    leading = (exprs.rows, exprs.cols) if isinstance(exprs, sp.MatrixBase) else (len(exprs),)
    fn = sp.lambdify(args, list(exprs), modules="numpy")

    def evaluate(*values):
        shape = np.broadcast(*values).shape if values else ()
        out = np.array([np.broadcast_to(np.asarray(v, dtype=float), shape)
                        for v in fn(*values)], dtype=float)
        return out.reshape(leading + shape)
    return evaluate


def _closed_form_reference(problem: OptimalControlProblem) -> Reference:
    sol, t = problem.solution, problem.time
    state, costate, control = (_lambdify([t], e) for e in (sol.state, sol.costate, sol.control))
    K = problem.members

    def member_axis(fn):
        return lambda s: np.repeat(fn(np.asarray(s, dtype=float)).T[:, :, None], K, axis=2)
    return Reference(state=member_axis(state), costate=member_axis(costate),
                     control=lambda s: control(np.asarray(s, dtype=float)).T,
                     objective=float(sp.N(sol.objective, 17)),
                     info={"kind": "closed form"})


@dataclass(frozen=True)
class _EnsembleSystem:
    """Pontryagin's system for all K members at once, with the shared control eliminated.

    z = (y^1 … y^K, p^1 … p^K, c) with c' = Σ_k L_k (the running cost, so that J* = c(T) +
    Σ_k Φ_k(y^k(T))). ``law`` maps (t, y, p) to the control solving Σ_k ∇_u H_k = 0.
    """

    rhs: Any
    jacobian: Any
    law: Any
    terminal_cost: Any
    terminal_costate: Any
    jacobian_terminal: Any
    D: int
    K: int
    M: int


@cache
def _ensemble_system(problem: OptimalControlProblem) -> _EnsembleSystem:
    system = continuous_system(problem)
    if system.control_law is None:
        raise OcgenError(f"no continuous reference for {problem.name}: it has no closed-form "
                         f"solution and u = φ(y, p) is unknown ({system.control_law_note}), "
                         "so the boundary value problem cannot be written down")
    if problem.control_bounds and any(math.isfinite(v) for pair in problem.control_bounds
                                      for v in pair):
        raise OcgenError(f"no continuous reference for {problem.name}: it has no closed-form "
                         "solution and its control bounds make u = φ(y, p) non-smooth; the BVP "
                         "reference needs an unbounded control")
    D, K, M = problem.state_dim, problem.members, problem.control_dim
    t = InternalSymbol("t", real=True)
    ys = [[InternalSymbol(f"y{d}_{k}", real=True) for d in range(D)] for k in range(K)]
    ps = [[InternalSymbol(f"p{d}_{k}", real=True) for d in range(D)] for k in range(K)]
    u = list(problem.controls)
    values = problem.member_parameter_arrays()

    def member(expr, k, costate=False):
        mapping = {problem.time: t, **dict(zip(problem.states, ys[k]))}
        mapping.update({sym: sp.Float(values[sym.name][k], 17)
                        for sym, _ in problem.member_parameters})
        if costate:
            mapping.update(zip(system.costates, ps[k]))
        return expr.xreplace(mapping)

    if K == 1:
        law = [member(e, 0, costate=True) for e in system.control_law]
    else:
        # the members share u: Σ_k H_u(y^k, u, p^k) = 0
        H_u = [sum((member(e, k, costate=True) for k in range(K)), sp.S.Zero)
               for e in system.H_u]
        try:
            found = sp.solve(H_u, u, dict=True)
        except (NotImplementedError, ValueError):
            found = []
        if len(found) != 1 or set(found[0]) != set(u):
            raise OcgenError(f"no continuous reference for {problem.name}: the shared control "
                             "of the ensemble cannot be solved from Σ_k H_u = 0 in closed form")
        law = [found[0][c] for c in u]
    use_law = dict(zip(u, law))
    rhs = []
    for k in range(K):
        rhs += [member(f, k).xreplace(use_law) for f in problem.dynamics]
    for k in range(K):
        rhs += [-member(e, k, costate=True).xreplace(use_law) for e in system.H_y]
    rhs.append(sum((member(problem.running_cost, k).xreplace(use_law) for k in range(K)),
                   sp.S.Zero))
    z = [x for row in ys for x in row] + [x for row in ps for x in row]
    cost = InternalSymbol("c_running", real=True)
    terminal = [member(problem.terminal_cost, k) for k in range(K)]
    grad_terminal = [sp.diff(terminal[k], y) for k in range(K) for y in ys[k]]
    flat_y = [x for row in ys for x in row]
    return _EnsembleSystem(
        rhs=_lambdify([t, *z, cost], rhs),
        jacobian=_lambdify([t, *z, cost], sp.Matrix(rhs).jacobian([*z, cost])),
        law=_lambdify([t, *z], law),
        terminal_cost=_lambdify(flat_y, [sum(terminal, sp.S.Zero)]),
        terminal_costate=_lambdify(flat_y, grad_terminal),
        jacobian_terminal=_lambdify(flat_y, sp.Matrix(grad_terminal).jacobian(flat_y)),
        D=D, K=K, M=M)


def _pack(states: np.ndarray, costates: np.ndarray) -> np.ndarray:
    """(n, D, K) states and costates → (2DK, n), member-major as in _EnsembleSystem."""
    n = states.shape[0]
    return np.concatenate([states.transpose(2, 1, 0).reshape(-1, n),
                           costates.transpose(2, 1, 0).reshape(-1, n)])


def _unpack(z: np.ndarray, D: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    n = z.shape[-1]
    y = z[:D * K].reshape(K, D, n).transpose(2, 1, 0)
    p = z[D * K:2 * D * K].reshape(K, D, n).transpose(2, 1, 0)
    return y, p


def ensemble_control_law(problem: OptimalControlProblem):
    """u(t, y, p) for y, p of shape (n, D, K) → (n, M): the shared control from Σ_k H_u = 0."""
    system = _ensemble_system(problem)

    def law(t, y, p):
        z = _pack(np.asarray(y, dtype=float), np.asarray(p, dtype=float))
        return system.law(np.asarray(t, dtype=float), *z).T
    return law


def reference_solution(problem, guess=None, tolerance: float = 1e-10,
                       max_nodes: int = 200_000) -> Reference:
    """A reference solution of the continuous BVP, with its estimated accuracy.

    ``guess``: a discrete :class:`ocgen.solve.Solution` (its grid, states and costates start
    the collocation); without one, y ≡ y0 and p ≡ 0 on 21 nodes. solve_bvp runs at
    ``tolerance``, then again at ``tolerance``/10 from the first mesh refined by halving; the
    second solution is the reference and max |difference| over y, p, u (on the nodes of both)
    and J its ``estimated_error``.
    """
    from scipy.integrate import solve_bvp

    problem = load_problem(problem)
    system = _ensemble_system(problem)
    D, K = system.D, system.K
    y0 = problem.initial_state_array()  # (D, K)
    n_z = 2 * D * K + 1

    def fun(x, z):
        return system.rhs(x, *z)

    def fun_jac(x, z):
        return system.jacobian(x, *z)

    def bc(za, zb):
        y_end = zb[:D * K]
        return np.concatenate([za[:D * K] - y0.T.ravel(), [za[-1]],
                               zb[D * K:2 * D * K] - system.terminal_costate(*y_end)])

    def bc_jac(za, zb):
        ja, jb = np.zeros((n_z, n_z)), np.zeros((n_z, n_z))
        DK = D * K
        ja[:DK, :DK] = np.eye(DK)
        ja[DK, -1] = 1.0
        jb[DK + 1:, DK:2 * DK] = np.eye(DK)
        jb[DK + 1:, :DK] = -system.jacobian_terminal(*zb[:DK])
        return ja, jb

    if guess is not None:
        x = np.asarray(guess.t, dtype=float)
        z = np.vstack([_pack(guess.states, guess.costates), np.zeros(x.size)])
        running = fun(x, z)[-1]
        z[-1] = np.concatenate([[0.0], np.cumsum(np.diff(x) * (running[1:] + running[:-1]) / 2)])
    else:
        x = np.linspace(problem.t0, problem.T, 21)
        z = np.zeros((n_z, x.size))
        z[:D * K] = y0.T.reshape(-1, 1)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        first = solve_bvp(fun, bc, x, z, fun_jac=fun_jac, bc_jac=bc_jac, tol=tolerance,
                          max_nodes=max_nodes)
        if first.status != 0:
            raise SolveError(f"the BVP reference for {problem.name} did not converge at tol "
                             f"{tolerance:g}: {first.message}")
        x2 = np.sort(np.concatenate([first.x, (first.x[1:] + first.x[:-1]) / 2]))
        second = solve_bvp(fun, bc, x2, first.sol(x2), fun_jac=fun_jac, bc_jac=bc_jac,
                           tol=tolerance / 10, max_nodes=max_nodes)
    elapsed = time.perf_counter() - start
    best = second if second.status == 0 else first
    check = np.union1d(first.x, second.x)
    za, zb = first.sol(check), second.sol(check)
    ya, pa = _unpack(za, D, K)
    yb, pb = _unpack(zb, D, K)

    def objective(s):
        end = s.sol(problem.T)
        return float(end[-1] + system.terminal_cost(*end[:D * K])[0])

    diffs = {"state": float(np.max(np.abs(ya - yb))),
             "costate": float(np.max(np.abs(pa - pb))),
             "control": float(np.max(np.abs(system.law(check, *za[:-1]) -
                                             system.law(check, *zb[:-1])))),
             "objective": abs(objective(first) - objective(second))}

    def state(s):
        return _unpack(best.sol(np.asarray(s, dtype=float)), D, K)[0]

    def costate(s):
        return _unpack(best.sol(np.asarray(s, dtype=float)), D, K)[1]

    def control(s):
        zs = best.sol(np.asarray(s, dtype=float))
        return system.law(np.asarray(s, dtype=float), *zs[:-1]).T

    info = {"kind": "bvp", "method": "scipy.integrate.solve_bvp (4th-order collocation)",
            "tolerance": tolerance / 10 if best is second else tolerance,
            "nodes": int(best.x.size),
            "estimated_error": max(diffs.values()),
            "estimated_errors": diffs,
            "estimate": f"max difference from a solve at tol {tolerance:g} "
                        f"({first.x.size} nodes)",
            "converged": bool(best.status == 0),
            "message": str(best.message),
            "max_rms_residual": float(np.max(best.rms_residuals)),
            "seconds": elapsed}
    return Reference(state=state, costate=costate, control=control,
                     objective=objective(best), info=info)


# -- fitting ----------------------------------------------------------------------------------
def rates(h: Sequence[float], errors: Sequence[float | None]) -> list[float | None]:
    """Per-refinement rates log(e_k/e_{k+1}) / log(h_k/h_{k+1})."""
    out = []
    for k in range(len(h) - 1):
        a, b = errors[k], errors[k + 1]
        if a is None or b is None or not (a > 0 and b > 0) or h[k] == h[k + 1]:
            out.append(None)
        else:
            out.append(math.log(a / b) / math.log(h[k] / h[k + 1]))
    return out


def observed_order(h: Sequence[float], errors: Sequence[float | None],
                   floors: Sequence[float], fit_points: int = 3) -> tuple[float | None, list[int]]:
    """Least-squares slope of log(error) over log(h) on the last ``fit_points`` points whose
    error exceeds its floor; (None, []) when fewer than two such points remain."""
    keep = [k for k, e in enumerate(errors)
            if e is not None and math.isfinite(e) and e > floors[k]]
    keep = keep[-fit_points:]
    if len(keep) < 2:
        return None, keep
    x = np.log([h[k] for k in keep])
    y = np.log([errors[k] for k in keep])
    slope = float(np.polyfit(x, y, 1)[0])
    return slope, keep


# -- the study --------------------------------------------------------------------------------
@dataclass
class Verification:
    """A convergence study; :meth:`to_json` is the documented ``ocgen verify --json`` object."""

    tableau: str
    problem: str
    controls: str
    backend: str
    steps: list[int]
    h: list[float]
    errors: dict[str, list[float | None]]
    rates: dict[str, list[float | None]]
    observed_order: dict[str, float | None]
    fit_steps: dict[str, list[int]]
    predicted_order: dict[str, int | None]
    prediction: str
    verdict: dict[str, Any]
    theory_applies: bool
    reason: str | None
    reference: dict
    residuals: list[dict]
    solver: list[dict]
    objective: list[float]
    exact_objective: float
    timings: dict
    members: int = 1
    order_tolerance: float = ORDER_TOLERANCE
    fit_points: int = 3

    def to_json(self) -> dict:
        data = {
            "tableau": self.tableau, "problem": self.problem, "controls": self.controls,
            "backend": self.backend, "members": self.members, "steps": self.steps,
            "h": self.h,
            "errors": self.errors, "rates": self.rates,
            "observed_order": self.observed_order,
            "fit": {"points": self.fit_points, "steps": self.fit_steps,
                    "rule": f"least squares of log(error) on log(h) over the last "
                            f"{self.fit_points} step counts whose error exceeds "
                            f"max({ROUNDING_FLOOR:g}·max(1, |reference|), 10·reference "
                            "error, KKT residual)"},
            "predicted_order": self.predicted_order, "prediction": self.prediction,
            "verdict": self.verdict, "theory_applies": self.theory_applies,
            "reason": self.reason, "reference": self.reference,
            "objective": self.objective, "exact_objective": self.exact_objective,
            "residuals": self.residuals, "solver": self.solver, "timings": self.timings,
        }
        return _json_safe(data)

    @property
    def passed(self) -> bool:
        return self.verdict.get("overall") == "pass"


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _solver(backend: str):
    if backend == "numpy":
        from .solve import solve
        return solve
    if backend == "casadi":
        try:
            from .solve_casadi import solve_casadi
        except ImportError as err:
            raise OcgenError(f"the casadi backend is not available ({err}); reinstall ocgen "
                             "with its dependencies or use --backend numpy") from None
        return solve_casadi
    raise OcgenError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")


def _predicted(tableau: Method, controls: str,
               problem: OptimalControlProblem) -> tuple[int | None, str]:
    """The predicted order: the optimal-control order for stage and tied controls, min(order,
    2) for step controls (for a pair, its order on separable problems when the problem is
    separable for its parts)."""
    if isinstance(tableau, PartitionedTableau):
        from .pair_order import classical_order, control_order, separable_order
        separable = problem.is_separable
        order_of = separable_order if separable else classical_order
        which = "order on separable problems" if separable else "classical order"
    else:
        from .order import classical_order, control_order
        order_of, which = classical_order, "classical order"
    if controls == "step":
        p = order_of(tableau).order
        return min(p, 2), (f"step controls: min({which} {p}, 2) (MATH.md 2, 5; equal to "
                           "min(control order, 2) whenever the control order is defined)")
    result = control_order(tableau)
    if result.order is None:
        return None, f"optimal-control order undefined: {result.reason}"
    more = " or more" if getattr(result, "at_least", False) else ""
    return result.order, (f"{controls} controls: optimal-control order {result.order}{more} "
                          "(MATH.md 4)")


def _warm_start(previous, tableau: Method, groups: tuple[int, ...], steps: int,
                T0: float, T: float) -> np.ndarray:
    """The coarser optimum's controls interpolated to the new grid (times t_n + c̄_g h)."""
    c = np.array([float(x) for x in clock(tableau).c])
    G = max(groups) + 1
    cg = np.array([c[[i for i, g in enumerate(groups) if g == k]].mean() for k in range(G)])
    old_t = (previous.t[:-1, None] + previous.h[:, None] * cg[None, :]).ravel()
    h = (T - T0) / steps
    new_t = (T0 + h * np.arange(steps)[:, None] + h * cg[None, :]).ravel()
    order = np.argsort(old_t, kind="stable")
    theta = previous.controls.reshape(-1, previous.controls.shape[-1])[order]
    out = np.stack([np.interp(new_t, old_t[order], theta[:, m]) for m in range(theta.shape[1])],
                   axis=-1)
    return out.reshape(steps, G, -1)


def _symplecticity(tableau: Method) -> float | None:
    """max |b_i ã_ij + w_j a_ji − b_i w_j| over the couples (A, b; Ã, w) of each component's
    tableau with its partner (w = b for a tableau or b = b̂), in floating point (exactly 0);
    None without a partner."""
    if isinstance(tableau, ButcherTableau):
        if tableau.zero_weights:
            return None
        couples = [(tableau, tableau.partner())]
    else:
        if tableau.first.zero_weights or tableau.second.zero_weights:
            return None
        couples = list(zip(tableau.parts, tableau.partner().parts))
    s, defect = tableau.stages, 0.0
    for part, partner in couples:
        b, w = [float(x) for x in part.b], [float(x) for x in partner.b]
        A = [[float(part.A[i, j]) for j in range(s)] for i in range(s)]
        Ap = [[float(partner.A[i, j]) for j in range(s)] for i in range(s)]
        defect = max(defect, max(abs(b[i] * Ap[i][j] + w[j] * A[j][i] - b[i] * w[j])
                                 for i in range(s) for j in range(s)))
    return defect


def verify(tableau, problem, steps: Sequence[int] = (10, 20, 40, 80, 160),
           controls: str = "stage", backend: str = "numpy", *,
           order_tolerance: float = ORDER_TOLERANCE, fit_points: int = 3,
           bvp_tolerance: float = 1e-10, warm_start: bool = True,
           progress: Callable[[list[int]], Iterable[int]] = iter) -> Verification:
    """Convergence study of ``tableau`` on ``problem``: errors, rates, observed vs predicted
    orders, the verdict, and the discrete optimality residuals at each N.

    ``progress`` wraps the step counts as they are solved (e.g. in a progress bar)."""
    started = time.perf_counter()
    tableau, problem = load_method(tableau), load_problem(problem)
    if controls not in CONTROL_MODES:
        raise OcgenError(f"unknown control parametrisation {controls!r} (choose from "
                         f"{', '.join(CONTROL_MODES)})")
    steps = [int(n) for n in steps]
    if not steps or any(n < 1 for n in steps) or len(set(steps)) != len(steps):
        raise OcgenError(f"--steps must be distinct positive integers, found {steps}")
    steps = sorted(steps)
    solve_fn = _solver(backend)
    check_memory(tableau, problem, steps[-1], backend)
    reason = outside_theory_reason(tableau, controls)
    theory = reason is None
    predicted, prediction = _predicted(tableau, controls, problem)
    if theory and predicted is None:  # pragma: no cover - control order undefined otherwise
        theory, reason = False, prediction
    groups = control_groups(tableau, controls)
    if problem.solution is None:
        _ensemble_system(problem)  # fail before solving when no reference can be built

    # discrete solves
    solutions = []
    for n in progress(steps):
        options = {}
        if warm_start and theory and solutions:  # start from the coarser optimum
            initial = _warm_start(solutions[-1], tableau, groups, n, problem.t0, problem.T)
            options = ({"initial_controls": initial} if backend == "numpy" else
                       {"initial_guess": {"controls": initial}})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OutsideTheoryWarning)
            solutions.append(solve_fn(tableau, problem, n, controls, **options))

    # the continuous solution
    t_ref = time.perf_counter()
    if problem.solution is not None:
        reference = _closed_form_reference(problem)
    else:
        guess = solutions[-1]
        if not theory:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OutsideTheoryWarning)
                guess = _solver("numpy")(tableau, problem, steps[-1], "step")
        reference = reference_solution(problem, guess, tolerance=bvp_tolerance)
    reference_seconds = time.perf_counter() - t_ref

    # errors and residuals
    t_res = time.perf_counter()
    errors = {q: [] for q in QUANTITIES}
    floors = {q: [] for q in QUANTITIES}
    residuals, solver_info = [], []
    law = None
    if problem.members > 1:  # the members share u: Σ_k H_u = 0, not each member's φ
        try:
            law = ensemble_control_law(problem)
        except OcgenError:
            law = None
    c = np.array([float(x) for x in clock(tableau).c])
    symplectic = _symplecticity(tableau)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideTheoryWarning)
        has_partner = discretise(problem, tableau, controls).partner is not None
    module = None
    if backend != "numpy" or has_partner:
        from .solve import generated_module, numerical_failures, sweep
        module = generated_module(tableau, problem, controls)[0]
    ref_error = reference.estimated_error
    for sol in solutions:
        t = sol.t
        y_ref, p_ref = reference.state(t), reference.costate(t)
        u_ref = reference.control(t)  # (n, M)
        tau = (t[:-1, None] + sol.h[:, None] * c[None, :])
        u_tau = reference.control(tau.ravel()).reshape(tau.shape + (-1,))  # (N, S, M)
        grid = sol.grid_control
        if problem.members > 1:
            grid = None if law is None else law(t, sol.states, sol.costates)[:, :, None]
        errs = {
            "state": np.max(np.abs(sol.states - y_ref)),
            "costate": np.max(np.abs(sol.costates - p_ref)),
            "grid_control": (None if grid is None else
                             np.max(np.abs(grid - u_ref[:, :, None]))),
            "stage_control": np.max(np.abs(sol.stage_controls - u_tau)),
            "objective": abs(sol.objective - reference.objective),
        }
        scales = {"state": np.max(np.abs(y_ref)), "costate": np.max(np.abs(p_ref)),
                  "grid_control": np.max(np.abs(u_ref)), "stage_control": np.max(np.abs(u_tau)),
                  "objective": abs(reference.objective)}
        for q in QUANTITIES:
            e = errs[q]
            errors[q].append(None if e is None else float(e))
            floors[q].append(max(ROUNDING_FLOOR * max(1.0, float(scales[q])), 10 * ref_error,
                                 float(sol.kkt_residual)))
        forms = None
        backend_gap = None
        if module is not None:
            with numerical_failures(module, sol.controls, sol.h,
                                    f"the costates of the {sol.steps}-step solution"):
                p_mult = sweep(module, sol.controls, sol.h)[1]["p"]
                if has_partner:
                    p_part = sweep(module, sol.controls, sol.h, form="partner")[1]["p"]
                    forms = float(np.max(np.abs(p_mult - p_part)))
            if backend != "numpy":
                backend_gap = float(np.max(np.abs(sol.costates - p_mult)))
        entry = {"steps": sol.steps, "kkt": float(sol.kkt_residual),
                 "symplecticity": symplectic, "costate_forms": forms}
        if backend != "numpy":
            entry["costate_backend_vs_multiplier"] = backend_gap
        residuals.append(entry)
        solver_info.append({"steps": sol.steps, "converged": bool(sol.converged),
                            "iterations": int(sol.iterations), "message": sol.message})
    residual_seconds = time.perf_counter() - t_res

    h = [float(sol.h[0]) if np.allclose(sol.h, sol.h[0]) else float(np.max(sol.h))
         for sol in solutions]
    rate = {q: rates(h, errors[q]) for q in QUANTITIES}
    observed, used = {}, {}
    for q in QUANTITIES:
        if theory:
            observed[q], keep = observed_order(h, errors[q], floors[q], fit_points)
            used[q] = [steps[k] for k in keep] if observed[q] is not None else []
        else:
            observed[q], used[q] = None, []
    predicted_orders = {q: (predicted if q in JUDGED and theory else None) for q in QUANTITIES}
    verdict = _verdict(observed, predicted_orders, errors, theory, order_tolerance)

    totals = {"derive": 0.0, "generate": 0.0, "solve": 0.0}
    for sol in solutions:
        for key in totals:
            totals[key] += float(sol.timings.get(key, 0.0))
    timings = {**totals, "reference": reference_seconds, "residuals": residual_seconds,
               "total": time.perf_counter() - started,
               "per_step_count": [{"steps": sol.steps, **{k: float(v) for k, v in
                                                            sol.timings.items()}}
                                  for sol in solutions]}
    return Verification(
        tableau=tableau.name, problem=problem.name, controls=controls, backend=backend,
        steps=steps, h=h, errors=errors, rates=rate, observed_order=observed, fit_steps=used,
        predicted_order=predicted_orders, prediction=prediction, verdict=verdict,
        theory_applies=theory, reason=reason, reference=reference.info,
        residuals=residuals, solver=solver_info,
        objective=[float(sol.objective) for sol in solutions],
        exact_objective=reference.objective, timings=timings,
        members=problem.members, order_tolerance=order_tolerance, fit_points=fit_points)


def _verdict(observed, predicted, errors, theory: bool, tolerance: float) -> dict:
    rule = (f"pass when observed order >= predicted - {tolerance:g} (faster convergence "
            f"passes; 'matches' when |observed - predicted| <= {tolerance:g}); raw stage "
            "controls are reported, not judged (MATH.md 5)")
    verdict: dict[str, Any] = {"rule": rule, "tolerance": tolerance}
    comparison: dict[str, str | None] = {}
    if not theory:
        for q in QUANTITIES:
            e = [x for x in errors[q] if x is not None]
            verdict[q] = "outside theory"
            comparison[q] = None if not e else (
                "errors decrease" if e[-1] < 0.5 * e[0] else "errors do not decrease")
        verdict["overall"] = "outside theory"
        verdict["comparison"] = comparison
        return verdict
    judged = []
    for q in QUANTITIES:
        if q not in JUDGED:
            verdict[q] = "not judged"
            comparison[q] = None
        elif observed[q] is None or predicted[q] is None:
            verdict[q] = "no data" if all(e is None for e in errors[q]) else "inconclusive"
            comparison[q] = None
        else:
            diff = observed[q] - predicted[q]
            verdict[q] = "pass" if diff >= -tolerance else "fail"
            comparison[q] = ("matches" if abs(diff) <= tolerance else
                             "exceeds" if diff > 0 else "below")
            judged.append(verdict[q])
    verdict["comparison"] = comparison
    if "fail" in judged:
        verdict["overall"] = "fail"
    elif judged:
        verdict["overall"] = "pass"
    else:
        verdict["overall"] = "inconclusive"
    return verdict


# -- presentation -----------------------------------------------------------------------------
_LABELS = {"state": "state y_n", "costate": "costate p_n", "grid_control": "grid u(y_n,p_n)",
           "stage_control": "stage u_ni", "objective": "objective J_h"}


def _fmt(x, spec=".2e", width=9):
    return f"{'—' if x is None else format(x, spec):>{width}}"


def format_verification(v: Verification) -> str:
    """A readable table: one row per N (h, errors, rates), then orders and the verdict."""
    ref = v.reference
    ref_text = ("closed form" if ref.get("kind") == "closed form" else
                f"BVP (solve_bvp, tol {ref.get('tolerance', 0):g}, {ref.get('nodes')} nodes, "
                f"estimated error {ref.get('estimated_error', 0):.1e})")
    lines = [f"Verification of {v.tableau} on {v.problem} ({v.controls} controls, {v.backend} "
             f"backend) against the {ref_text}"]
    qs = [q for q in QUANTITIES if any(e is not None for e in v.errors[q])]
    head = f"{'N':>5} {'h':>9}" + "".join(f" {q[:13]:>13} {'rate':>5}" for q in qs) + \
        f" {'KKT':>8} {'forms':>8}"
    where = "grid points" + (f" and {v.members} ensemble members" if v.members > 1 else "")
    lines += ["", f"max errors over the {where}; rates per refinement", head]
    for k, n in enumerate(v.steps):
        row = f"{n:>5} {v.h[k]:>9.3e}"
        for q in qs:
            r = v.rates[q][k - 1] if k else None
            row += f" {_fmt(v.errors[q][k], '.3e', 13)} {_fmt(r, '.2f', 5)}"
        res = v.residuals[k]
        row += f" {_fmt(res['kkt'], '.1e', 8)} {_fmt(res['costate_forms'], '.1e', 8)}"
        lines.append(row)
    sym = v.residuals[0]["symplecticity"] if v.residuals else None
    lines.append(f"KKT = max |dJ_h/du_ni| / (h b_i); forms = max |p_multiplier - p_partner|; "
                 f"symplecticity of the pair: {_fmt(sym, '.1e', 0).strip()}")
    gaps = [r.get("costate_backend_vs_multiplier") for r in v.residuals]
    if any(g is not None for g in gaps):
        lines.append(f"{v.backend} costates vs the NumPy multiplier form at its controls: max "
                     f"{max(g for g in gaps if g is not None):.1e}")
    failed = [run for run in v.solver if not run["converged"]]
    if failed:
        lines.append(f"NOT converged at N = {', '.join(str(run['steps']) for run in failed)}: "
                     f"{failed[0]['message']}")
    lines.append("")
    if not v.theory_applies:
        lines.append("OUTSIDE THE THEORY — no orders fitted.")
        lines.append(f"  {v.reason}")
        for q in qs:
            e = v.errors[q]
            lines.append(f"  {q:<14} error {e[0]:.3g} (N = {v.steps[0]}) -> {e[-1]:.3g} "
                         f"(N = {v.steps[-1]}): {v.verdict['comparison'][q]}")
        lines.append("verdict: outside theory")
        return "\n".join(lines)
    lines.append(f"predicted: {v.prediction}")
    lines.append(f"{'quantity':<14} {'observed':>8} {'predicted':>9}  verdict   fitted on N =")
    for q in QUANTITIES:
        o, p = v.observed_order[q], v.predicted_order[q]
        verdict = v.verdict[q]
        cmp = v.verdict["comparison"].get(q)
        lines.append(f"{q:<14} {_fmt(o, '.2f', 8)} {_fmt(p, 'd', 9)}  "
                     f"{verdict + (f' ({cmp})' if cmp else ''):<20} "
                     f"{', '.join(map(str, v.fit_steps[q])) or '—'}")
    lines.append(f"rule: {v.verdict['rule']}")
    lines.append(f"verdict: {v.verdict['overall']}")
    return "\n".join(lines)


def plot_verification(v: Verification, path):
    """Log–log errors against h, one line per quantity, dashed reference slopes O(h^p);
    written as PNG to ``path``. Returns the matplotlib Figure (Agg canvas, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    h = np.array(v.h)
    markers = dict(zip(QUANTITIES, "osd^v"))
    finest = []
    for q in QUANTITIES:
        e = np.array([np.nan if x is None or x <= 0 else x for x in v.errors[q]], dtype=float)
        if np.all(np.isnan(e)):
            continue
        o = v.observed_order[q]
        label = _LABELS[q] + (f" (observed {o:.2f})" if o is not None else "")
        ax.loglog(h, e, marker=markers[q], linestyle="-", label=label, gid=f"quantity:{q}")
        good = e[~np.isnan(e)]
        finest.append(good[-1])
    slopes = set()
    if v.theory_applies and v.predicted_order.get("state") is not None:
        slopes.add(int(v.predicted_order["state"]))
    for q in QUANTITIES:
        if v.observed_order.get(q) is not None:
            slopes.add(int(round(v.observed_order[q])))
    if not v.theory_applies:
        slopes = {1, 2}
    slopes.discard(0)
    anchor = float(np.exp(np.mean(np.log(finest)))) if finest else 1.0
    for p in sorted(slopes):
        ref = anchor * (h / h[-1]) ** p
        ax.loglog(h, ref, linestyle="--", color="0.5", linewidth=1, label=f"O(h^{p}) reference",
                  gid=f"slope:{p}")
    ax.set_xlabel("step size h")
    ax.set_ylabel("max error")
    title = f"{v.tableau} on {v.problem}, {v.controls} controls"
    if not v.theory_applies:
        title += " — outside the theory"
    ax.set_title(title, parse_math=False)  # user names may hold $
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(str(path), format="png")
    except OSError as err:
        raise OcgenError(f"{path}: cannot write the plot: {err.strerror or err}") from None
    return fig
