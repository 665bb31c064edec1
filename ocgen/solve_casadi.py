"""Solving the discrete problem with IPOPT on the generated CasADi transcription (MATH.md 2–3).

The generated module (``ocgen generate --backend casadi``) transcribes the problem with states
y_1..y_N, stage values Y_ni and control parameters θ as unknowns and the stage and step
equations as equality constraints written "next − step = 0":

    g_stage = Y_ni − (y_n + h_n Σ_j a_ij f_nj) = 0,
    g_step  = y_{n+1} − (y_n + h_n Σ_i b_i f_ni) = 0.

**Costates from the multipliers.** CasADi's Lagrangian is J_h + lam_gᵀg; MATH.md 3.1 adjoins
p_{n+1}ᵀ(step − next) and Λ_niᵀ(stage − next) to the same J_h. The two Lagrangians are equal
when lam_g = −(p, Λ), so

    p_{n+1} = −lam_g[g_step of step n],   Λ_ni = −lam_g[g_stage of stage (n, i)]   (no scaling),

summed over nothing: each ensemble member has its own constraints and multipliers. p_0 is
p_1 + Σ_i Λ_0i (stationarity in y_0 = ∂J_h/∂y_0) and the stage costates P_ni = W_ni/b_i are
the derived multiplier-form expressions, evaluated at these multipliers by the generated
``costate_function``; so is ∂J_h/∂θ, from which the KKT residual is computed as in
:func:`ocgen.solve.kkt_residual`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from .errors import OcgenError, SolveError
from .problem import load_problem
from .solve import (Solution, active_bounds, bound_entries, check_steps, generated_module,
                    kkt_residual, negative_curvature, smallest_eigenvalue, step_sizes)
from .pair import load_method

#: IPOPT statuses with no usable iterate: solve_casadi raises :class:`IpoptError`.
IPOPT_ERRORS = {
    "Infeasible_Problem_Detected": "the constraints and bounds admit no solution; check the "
                                   "state and control bounds",
    "Invalid_Number_Detected": "the model evaluated to NaN or infinity; check that f, L and Phi "
                               "are defined at the initial guess and along the iterates",
    "Diverging_Iterates": "the iterates diverged; the discrete problem may be unbounded below",
    "Not_Enough_Degrees_Of_Freedom": "more equality constraints than unknowns",
    "Invalid_Problem_Definition": "IPOPT rejected the problem definition",
    "Invalid_Option": "an IPOPT option is invalid",
    "Internal_Error": "IPOPT reported an internal error",
    "Insufficient_Memory": "IPOPT ran out of memory",
    "Unrecoverable_Exception": "IPOPT hit an unrecoverable exception",
    "NonIpopt_Exception_Thrown": "an exception was thrown during the solve",
}

#: Other IPOPT statuses give a Solution with converged=False and this explanation.
IPOPT_NOT_CONVERGED = {
    "Maximum_Iterations_Exceeded": "iteration limit reached; raise max_iterations",
    "Maximum_CpuTime_Exceeded": "CPU time limit reached",
    "Maximum_WallTime_Exceeded": "wall time limit reached",
    "Solved_To_Acceptable_Level": "only IPOPT's acceptable tolerance was met",
    "Search_Direction_Becomes_Too_Small": "the search direction became too small",
    "Restoration_Failed": "the feasibility restoration phase failed",
    "Error_In_Step_Computation": "the step computation failed (singular KKT matrix?)",
    "User_Requested_Stop": "stopped on request",
    "Feasible_Point_Found": "a feasible point was found",
}

#: IPOPT options applied when warm-starting from a previous primal-dual point.
WARM_START_OPTIONS = {"warm_start_init_point": "yes", "warm_start_bound_push": 1e-9,
                      "warm_start_slack_bound_push": 1e-9, "warm_start_mult_bound_push": 1e-9,
                      "mu_init": 1e-9}


class IpoptError(SolveError):
    """IPOPT stopped without a usable answer; ``status`` is IPOPT's return status."""

    def __init__(self, message: str, status: str | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class CasadiSolution(Solution):
    """A :class:`~ocgen.solve.Solution` that also keeps the stage multipliers Λ (N, S, D, K)
    and IPOPT's primal-dual point (``nlp_x``, ``nlp_lam_x``, ``nlp_lam_g``) for warm starts."""

    stage_multipliers: np.ndarray | None = None
    nlp_x: np.ndarray | None = None
    nlp_lam_x: np.ndarray | None = None
    nlp_lam_g: np.ndarray | None = None


def _initial_point(module: ModuleType, steps: int, guess) -> np.ndarray:
    """x0 from a Solution or a dict with any of controls/theta, states/y, stage_values/Y."""
    if guess is None:
        return module.initial_point(steps)
    if isinstance(guess, Solution):
        guess = {"controls": guess.controls, "states": guess.states,
                 "stage_values": guess.stage_values}
    if not isinstance(guess, dict):
        raise OcgenError("initial_guess must be a Solution or a dict of arrays (controls, "
                         f"states, stage_values), found {type(guess).__name__}")
    known = {"controls", "theta", "states", "y", "stage_values", "Y"}
    if set(guess) - known:
        raise OcgenError(f"initial_guess: unknown keys {sorted(set(guess) - known)} "
                         f"(expected some of {sorted(known)})")
    parts = {}
    for name, keys, shape in (
            ("theta", ("controls", "theta"), (steps, module.N_GROUPS, module.CONTROL_DIM)),
            ("y", ("states", "y"), (steps + 1, module.STATE_DIM, module.MEMBERS)),
            ("Y", ("stage_values", "Y"),
             (steps, module.STAGES, module.STATE_DIM, module.MEMBERS))):
        value = next((guess[k] for k in keys if guess.get(k) is not None), None)
        if value is None:
            continue
        value = np.asarray(value, dtype=float)
        if value.size != np.prod(shape):
            raise OcgenError(f"initial_guess: {keys[0]} has shape {value.shape}, expected "
                             f"{shape} for {steps} steps")
        parts[name] = value.reshape(shape)
    if "theta" in parts:
        parts["theta"] = np.clip(parts["theta"], module.CONTROL_LOWER, module.CONTROL_UPPER)
    return module.initial_point(steps, **parts)


def _warm_start(warm_start, size: dict) -> dict:
    if isinstance(warm_start, CasadiSolution):
        warm_start = {"x": warm_start.nlp_x, "lam_x": warm_start.nlp_lam_x,
                      "lam_g": warm_start.nlp_lam_g}
    if not (isinstance(warm_start, dict) and all(warm_start.get(k) is not None
                                                  for k in ("x", "lam_x", "lam_g"))):
        raise OcgenError("warm_start must be a solution of solve_casadi (or a dict with x, "
                         "lam_x and lam_g)")
    n_x = size["theta"] + size["Y"] + size["y"]
    n_g = size["Y"] + size["y"]
    x, lam_x, lam_g = (np.asarray(warm_start[k], dtype=float).ravel()
                       for k in ("x", "lam_x", "lam_g"))
    if x.size != n_x or lam_x.size != n_x or lam_g.size != n_g:
        raise OcgenError(f"warm_start has {x.size} unknowns and {lam_g.size} constraints; "
                         f"this problem has {n_x} and {n_g} (same steps and controls needed)")
    return {"x0": x, "lam_x0": lam_x, "lam_g0": lam_g}


def solve_casadi(tableau, problem, steps: int, controls: str = "stage", *, h=None,
                 initial_guess=None, tolerance: float = 1e-10, max_iterations: int = 3000,
                 print_level: int = 0, ipopt_options: dict | None = None, warm_start=None,
                 state_bounds=None, symbolic: str = "MX") -> CasadiSolution:
    """Minimise J_h with IPOPT on the generated CasADi transcription; costates from lam_g.

    ``initial_guess``: a Solution (e.g. of :func:`ocgen.solve.solve`) or a dict with any of
    ``controls`` (N, G, M), ``states`` (N+1, D, K), ``stage_values`` (N, S, D, K); missing
    parts start at zero controls and constant states. ``warm_start``: a previous result of this
    function (same problem, steps, controls), whose primal-dual point starts IPOPT with
    :data:`WARM_START_OPTIONS`. ``state_bounds``: (lower, upper), each of shape (D,), imposed
    on y_1..y_N. ``ipopt_options``: IPOPT option names and values, applied last.
    ``symbolic``: "MX" (default; matrix operations, fast set-up) or "SX" (scalar operations:
    set-up grows with N, iterations sometimes faster).

    Raises :class:`IpoptError` when IPOPT finds the problem infeasible, meets NaN/inf, diverges
    or fails outright; returns ``converged=False`` with IPOPT's status as ``message`` when it
    stops early (iteration limit, acceptable level, restoration failure, ...).
    """
    tableau, problem = load_method(tableau), load_problem(problem)
    check_steps(steps, tableau, problem, "casadi")
    if symbolic not in ("MX", "SX"):
        raise OcgenError(f"symbolic must be 'MX' or 'SX', found {symbolic!r}")
    steps = int(steps)
    module, timings = generated_module(tableau, problem, controls, backend="casadi")
    h = step_sizes(module, steps, h)
    state_lower = state_upper = None
    if state_bounds is not None:
        try:
            state_lower, state_upper = (np.broadcast_to(np.asarray(b, dtype=float),
                                                        (module.STATE_DIM,)).copy()
                                        for b in state_bounds)
        except (TypeError, ValueError) as err:
            raise OcgenError(f"state_bounds must be (lower, upper) with {module.STATE_DIM} "
                             f"entries each: {err}") from None
        if np.any(state_lower > state_upper):
            raise OcgenError(f"state_bounds: lower {state_lower} exceeds upper {state_upper}")

    start = time.perf_counter()
    options = dict(ipopt_options or {})
    size = module.sizes(steps)
    arguments = {"x0": _initial_point(module, steps, initial_guess)}
    if warm_start is not None:
        arguments.update(_warm_start(warm_start, size))
        options = {**WARM_START_OPTIONS, **options}
    nlp = module.solver(steps, module.ipopt_options(tolerance, max_iterations, print_level,
                                                    options), symbolic)
    bounds = module.bounds(steps, state_lower, state_upper)
    timings["setup"] = time.perf_counter() - start

    start = time.perf_counter()
    try:
        result = nlp(p=module.parameters(h), **bounds, **arguments)
    except RuntimeError as err:
        raise IpoptError(f"IPOPT failed on {problem.name} with {tableau.name} ({steps} steps): "
                         f"{str(err).strip().splitlines()[-1]}") from None
    timings["solve"] = time.perf_counter() - start
    stats = nlp.stats()
    status = str(stats.get("return_status", "unknown"))
    where = f"{problem.name} with {tableau.name}, {controls} controls, {steps} steps"
    if status in IPOPT_ERRORS:
        raise IpoptError(f"IPOPT: {status} on {where}: {IPOPT_ERRORS[status]}", status)

    start = time.perf_counter()
    x = result["x"].full().ravel()
    lam_x = result["lam_x"].full().ravel()
    lam_g = result["lam_g"].full().ravel()
    objective = float(result["f"])
    if not (np.isfinite(objective) and np.all(np.isfinite(x)) and np.all(np.isfinite(lam_g))):
        raise IpoptError(f"IPOPT: {status} on {where}, but the result is not finite", status)
    parts = module.unpack(x, steps)
    co = module.costates(x, lam_g, h)
    theta, y = parts["theta"], parts["y"]

    shape = theta.shape
    lower = np.broadcast_to(module.CONTROL_LOWER, shape)
    upper = np.broadcast_to(module.CONTROL_UPPER, shape)
    at_lower, at_upper = active_bounds(theta, lower, upper)
    residual = kkt_residual(module, theta, co["gradient"], h, co["gradient_free"])
    active = {"controls": bound_entries(at_lower, at_upper)}
    if state_bounds is not None:
        states = y[1:]  # (N, D, K): entries are [n - 1, component, member]
        s_lower, s_upper = active_bounds(states, state_lower[None, :, None],
                                         state_upper[None, :, None])
        active["states"] = bound_entries(s_lower, s_upper)
        for item in active["states"]["entries"]:
            item[0] += 1  # index n of y_n

    violation = module.constraint_violation(x, h)
    grid = module.grid_control(module.time_grid(h), y, co["p"], free=parts["free"]) \
        if hasattr(module, "grid_control") else None
    timings["costates"] = time.perf_counter() - start
    converged = status == "Solve_Succeeded"
    message = status if converged else f"{status}: {IPOPT_NOT_CONVERGED.get(status, 'not solved')}"
    # second-order condition over the free controls; with active state bounds the reduced
    # problem is smaller than the control space, so it is left to IPOPT there
    if converged and not (state_bounds is not None and active["states"]["entries"]):
        checked = time.perf_counter()
        free = np.concatenate([~(at_lower | at_upper).ravel(),
                               np.ones(module.sizes(steps)["free"], dtype=bool)])
        reason = negative_curvature(*reduced_curvature(module, steps, symbolic, x, lam_g, h,
                                                        free))
        timings["second_order"] = time.perf_counter() - checked
        if reason:
            converged, message = False, f"{reason} ({status})"
    return CasadiSolution(
        tableau=tableau, problem=problem, controls_mode=controls, backend="casadi",
        objective=objective, t=module.time_grid(h), h=h, states=y, costates=co["p"],
        stage_values=parts["Y"], stage_costates=co["stage_costates"], controls=theta,
        stage_controls=module.stage_controls(theta), grid_control=grid,
        iterations=int(stats.get("iter_count", 0)), converged=converged, message=message,
        kkt_residual=residual, timings=timings,
        extra={"ipopt_status": status, "active_bounds": active,
               "constraint_violation": violation,
               "multiplier_residual": float(co["multiplier_residual"])},
        stage_multipliers=co["stage_multipliers"], nlp_x=x, nlp_lam_x=lam_x, nlp_lam_g=lam_g,
        free_parameters=parts["free"])


def reduced_curvature(module: ModuleType, steps: int, symbolic: str, x: np.ndarray,
                      lam_g: np.ndarray, h: np.ndarray, free: np.ndarray) -> tuple[float, float]:
    """(λ_min, scale) of the reduced Hessian Zᵀ ∇²ₓₓℒ Z over the free controls and free
    parameters (mask ``free`` over θ then q) at (x, lam_g), with ℒ = J_h + lam_gᵀg the NLP's
    Lagrangian.

    x holds θ = (controls, free parameters) and s = (stage values, states); the constraints
    g(θ, s) = 0 make s a function of θ, so Z = [I; −J_s⁻¹ J_θ] spans the null space of the
    constraint Jacobian J = [J_θ J_s] and Zᵀ ∇²ₓₓℒ Z is the Hessian of J_h(θ). Products
    v ↦ Zᵀ ∇²ₓₓℒ Z v use one sparse LU of J_s and go to
    :func:`ocgen.solve.smallest_eigenvalue`. A singular J_s (stage equations without a unique
    solution) gives (inf, 0): no verdict.
    """
    import casadi
    from scipy.sparse.linalg import splu

    nlp = module.transcription(steps, symbolic)
    lam = type(nlp["x"]).sym("lam_g", nlp["g"].shape[0])
    lagrangian = nlp["f"] + casadi.dot(lam, nlp["g"])
    second_order = casadi.Function("second_order", [nlp["x"], nlp["p"], lam],
                                   [casadi.hessian(lagrangian, nlp["x"])[0],
                                    casadi.jacobian(nlp["g"], nlp["x"])])
    H, J = (_scipy_sparse(m) for m in second_order(x, module.parameters(h), lam_g))
    size = module.sizes(steps)
    decision = np.r_[0:size["theta"], x.size - size["free"]:x.size]
    state = np.r_[size["theta"]:x.size - size["free"]]
    order = np.concatenate([decision, state])
    H, J = H[order][:, order].tocsr(), J[:, order].tocsr()
    n = decision.size
    J_theta, J_s = J[:, :n], J[:, n:].tocsc()
    try:
        lu = splu(J_s)
    except RuntimeError:  # exactly singular
        return np.inf, 0.0

    def product(v):
        v_theta = np.zeros(n)
        v_theta[free] = v
        moved = H @ np.concatenate([v_theta, -lu.solve(J_theta @ v_theta)])
        reduced = moved[:n] - J_theta.T @ lu.solve(moved[n:], trans="T")
        return reduced[free]

    return smallest_eigenvalue(product, int(np.count_nonzero(free)))


def _scipy_sparse(matrix):
    """A casadi.DM as a scipy.sparse CSC matrix (same nonzero pattern)."""
    from scipy.sparse import csc_matrix
    colind, row = matrix.sparsity().get_ccs()
    return csc_matrix((np.array(matrix.nonzeros()), row, colind), shape=matrix.shape)
