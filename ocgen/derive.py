"""Symbolic derivation of the continuous and discrete optimality systems.

Continuous (MATH.md 1): H = L + pᵀf, p' = −∇_y H, 0 = ∇_u H, u = φ(y, p).

Discrete (MATH.md 2–3), for one generic step n with step size h, start time t, state y,
stage values Y_i, control parameters u_g (stage i uses group g(i)) and the multipliers
p (of the equation defining y_{n+1}, so p ≈ p(t_{n+1})) and Λ_i (of the stage equations):

    ℓ = h Σ_i b_i L(τ_i, Y_i, u_g(i)) + pᵀ(y + h Σ_i b_i f_i) + Σ_i Λ_iᵀ(y + h Σ_j a_ij f_j − Y_i)
        + ρ (t + h)

(ρ multiplies the time step t_{n+1} = t_n + h_n, so it carries the time shifts of MATH.md 3.1.)
Every discrete optimality condition is obtained by differentiating ℓ: ∂ℓ/∂Y_i = 0 gives the
stage multipliers Λ_i, p_n = ∂ℓ/∂y, ρ_n = ∂ℓ/∂t, ∂J_h/∂u_g = ∂ℓ/∂u_g, ∂J_h/∂h_n = ∂ℓ/∂h,
and for free parameters q, ∂J_h/∂q = ∂Φ/∂q + Σ_n ∂ℓ_n/∂q.
The partner form applies the partner tableau Ã to p' = −∇_y H (MATH.md 3.2).

A partitioned pair (ocgen.pair; ADDENDA.md 1) is a tableau per state component: component k
of the problem's ``partition`` part π(k) uses that part's (A, b) in its stage and step
equations, so ℓ has a_ij, b_i replaced by a^(k)_ij, b^(k)_i in the terms of component k. Time
and the running cost are components of the first part: stage times τ_i = t + c_i h and cost
weights b_i are the first part's. Its partner form applies the partner pair.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp

from .errors import InputError, OcgenError, user_stacklevel
from .pair import PartitionedTableau
from .problem import PARTS, OptimalControlProblem
from .tableau import ButcherTableau, is_zero

CONTROL_MODES = ("stage", "tied", "step")


class InternalSymbol(sp.Symbol):
    """A symbol of ocgen's own: stage values, costates, step size, time, CSE temporaries.

    SymPy compares symbols by class, name and assumptions, so an internal symbol never equals a
    user's symbol of the same name. Every user symbol is renamed into internal ones in one
    simultaneous substitution (:func:`_step_names`), so a problem may call its parameters
    ``y_0``, ``p_y`` or ``h`` without changing what is derived.
    """


class OutsideTheoryWarning(UserWarning):
    """Stage controls with zero or negative weights: the discrete problem is ill-posed."""


# -- continuous optimality system -------------------------------------------------------------
@dataclass(frozen=True)
class ContinuousSystem:
    """H, ∇_y H, ∇_u H and, when H_u = 0 can be solved in closed form, u = φ(t, y, p)."""

    problem: OptimalControlProblem
    costates: tuple[sp.Symbol, ...]
    hamiltonian: sp.Expr
    H_y: tuple[sp.Expr, ...]
    H_u: tuple[sp.Expr, ...]
    control_law: tuple[sp.Expr, ...] | None
    control_law_note: str


@cache
def continuous_system(problem: OptimalControlProblem) -> ContinuousSystem:
    """Pontryagin's system (MATH.md 1), with φ from solving H_u = 0 where SymPy can."""
    taken = {s.name for s in (problem.time, *problem.states, *problem.controls,
                              *(q for q, _ in problem.member_parameters),
                              *problem.free_parameter_symbols)}
    costates = []
    for y in problem.states:
        name = f"p_{y.name}"
        while name in taken:  # a readable name; equality is settled by InternalSymbol
            name = "_" + name
        costates.append(InternalSymbol(name, real=True))
    H = problem.running_cost + sum(p * f for p, f in zip(costates, problem.dynamics))
    H_y = tuple(sp.diff(H, y) for y in problem.states)
    H_u = tuple(sp.diff(H, u) for u in problem.controls)
    law, note = _control_law(H, H_u, problem.controls)
    return ContinuousSystem(problem, tuple(costates), H, H_y, H_u, law, note)


def _control_law(H, H_u, controls):
    if not all(e.is_polynomial(*controls) for e in H_u):
        return None, "H_u is not polynomial in the controls; u = φ(y, p) is not solved for"
    try:
        solutions = sp.solve(list(H_u), list(controls), dict=True)
    except (NotImplementedError, ValueError) as err:
        return None, f"SymPy cannot solve H_u = 0 for the controls ({err})"
    if len(solutions) != 1 or set(solutions[0]) != set(controls):
        return None, (f"H_u = 0 has {len(solutions)} closed-form solutions for the controls; "
                      "no unique u = φ(y, p)")
    law = tuple(sp.simplify(solutions[0][u]) for u in controls)
    Huu = sp.hessian(H, controls).subs(dict(zip(controls, law)))
    convex = all(sp.simplify(Huu[:k, :k].det()).is_positive for k in range(1, len(controls) + 1))
    note = "u = φ(y, p) from H_u = 0" + ("; H_uu > 0 (a minimum)" if convex else
                                          "; H_uu > 0 could not be confirmed")
    return law, note


# -- methods: one tableau, or a pair of tableaux -------------------------------------------------
Method = ButcherTableau | PartitionedTableau


def component_tableaux(problem: OptimalControlProblem,
                       method: Method) -> tuple[ButcherTableau, ...]:
    """The tableau of each state component: ``method`` itself, or for a pair the part that the
    problem's ``partition`` assigns to the component. InputError when a pair meets a problem
    whose states are not split into parts."""
    if isinstance(method, ButcherTableau):
        return (method,) * problem.state_dim
    if not problem.partition:
        raise InputError(f"{method.name} is a partitioned pair, but the problem {problem.name} "
                         "does not split its states into parts: give the problem a table "
                         "parts = {first = [...], second = [...]} (or use a single tableau)",
                         source=problem.source or None, key="parts")
    return tuple(method.parts[k] for k in problem.partition)


def clock(method: Method) -> ButcherTableau:
    """The tableau of time and of the running cost: ``method``, or a pair's first part (t' = 1
    and the cost y⁰' = L are components of the first part), so stage times τ_i = t + c_i h and
    cost weights b_i are its."""
    return method if isinstance(method, ButcherTableau) else method.first


def _weighted_parts(method: Method) -> list[tuple[str, ButcherTableau]]:
    """(name of the weights, tableau) of each part: [("b", A)] or [("b", A), ("b̂", Â)]."""
    if isinstance(method, ButcherTableau):
        return [("b", method)]
    return [("b", method.first), ("b̂", method.second)]


# -- control parametrisations -----------------------------------------------------------------
def control_groups(tableau: Method, mode: str) -> tuple[int, ...]:
    """The control parameter each stage uses (MATH.md 2): stage i → group g(i).

    ``stage``: one per stage; ``tied``: stages with equal c_i (for a pair: equal c_i and ĉ_i)
    share one; ``step``: one per step.
    """
    s = tableau.stages
    if mode == "stage":
        return tuple(range(s))
    if mode == "step":
        return (0,) * s
    if mode == "tied":
        parts = [part for _, part in _weighted_parts(tableau)]
        firsts: list[int] = []
        groups = []
        for i in range(s):
            same = [g for g, j in enumerate(firsts)
                    if all(is_zero(part.c[i] - part.c[j], tableau.tolerance) for part in parts)]
            if not same:
                firsts.append(i)
                same = [len(firsts) - 1]
            groups.append(same[0])
        return tuple(groups)
    raise OcgenError(f"unknown control parametrisation {mode!r} (choose from "
                     f"{', '.join(CONTROL_MODES)})")


def outside_theory_reason(tableau: Method, mode: str) -> str | None:
    """Why the discrete problem is ill-posed (MATH.md 3.3) or the method inconsistent, or None.
    For a pair, the weights of both parts count."""
    parts = _weighted_parts(tableau)
    for label, part in parts:
        total = sum(part.b)
        if not is_zero(total - 1, part.tolerance):
            return (f"{tableau.name} has Σ {label}_i = {total} ≠ 1: the method is not consistent "
                    "(order 0), so the discrete problem does not approximate the continuous one")
    if mode == "step" or all(part.weights_positive for _, part in parts):
        return None
    zero = ", ".join(f"{label}_{i + 1} = 0" for label, part in parts for i in part.zero_weights)
    negative = ", ".join(f"{label}_{i + 1} = {part.b[i]}" for label, part in parts
                         for i in part.negative_weights)
    reasons = []
    if zero:
        reasons.append(f"{zero}: those stage controls carry no running cost, the discrete problem "
                     "loses coercivity and need not converge (controls grow like 1/h)")
    if negative:
        reasons.append(f"{negative}: negative weights make the discrete problem unbounded below")
    return (f"{tableau.name} with {mode} controls is outside the theory of RK discretisations "
            f"of optimal control (MATH.md 3.3): {'; '.join(reasons)}. Use --controls step "
            "(one control per step), which converges with order 2.")


# -- one generic step ------------------------------------------------------------------------
def _vec(prefix: str, n: int) -> tuple[sp.Symbol, ...]:
    return tuple(InternalSymbol(f"{prefix}_{k}", real=True) for k in range(n))


def _mat(prefix: str, rows: int, cols: int) -> tuple[tuple[sp.Symbol, ...], ...]:
    return tuple(_vec(f"{prefix}_{i}", cols) for i in range(rows))


@dataclass(frozen=True)
class StepSymbols:
    """Names of one step's quantities in generated code (indices from 0).

    ``y`` state at t_n; ``Y[i]`` stage values; ``F[i]`` stage slopes f(τ_i, Y_i, u_g(i));
    ``u[g]`` control parameters; ``p`` costate p_{n+1}; ``lam[i]`` stage multipliers Λ_i;
    ``P[i]`` partner-form stage costates; ``params`` per-member parameters; ``free`` the
    free parameters; ``rho`` the multiplier ρ_{n+1} of the time step t_{n+1} = t_n + h_n (the
    costate of time).
    """

    t: sp.Symbol
    h: sp.Symbol
    y: tuple
    Y: tuple
    F: tuple
    u: tuple
    p: tuple
    lam: tuple
    P: tuple
    params: tuple
    free: tuple
    rho: sp.Symbol


@dataclass(frozen=True)
class LinearStages:
    """Unknown stage vectors U (s×d) defined by equations linear in U.

    Either ``sequence`` (explicit methods: assignments in evaluation order, each using only
    earlier ones) or ``matrix``·U = ``rhs`` (flattened stage-major, one system per member).
    """

    unknowns: tuple
    sequence: tuple[tuple[sp.Symbol, sp.Expr], ...] | None
    matrix: sp.ImmutableMatrix | None
    rhs: sp.ImmutableMatrix | None


@dataclass(frozen=True)
class Discretisation:
    """The discrete optimality system of (problem, tableau, controls), for one generic step.

    ``tableau`` is a ButcherTableau or a PartitionedTableau (a tableau per component).
    Forward: explicit methods have ``stage_sequence`` (Y_i, F_i in order); implicit ones
    ``stage_residual`` R(Y) = Y_i − y − h Σ_j a_ij f_j and its Jacobian, then ``slopes``.
    A pair is explicit on a problem when its stage equations can be ordered so that each uses
    earlier ones only (Störmer–Verlet on separable problems). ``inverse_sequence``: for a pair
    whose step can be undone explicitly on this problem, the assignments computing Y_i, F_i and
    y_n from y_{n+1} (symbols ``y_next``); else None. ``partner_note`` says why there is no
    partner form when ``partner`` is None.
    """

    problem: OptimalControlProblem
    tableau: Method
    controls: str
    groups: tuple[int, ...]
    symbols: StepSymbols
    system: ContinuousSystem
    stage_sequence: tuple[tuple[sp.Symbol, sp.Expr], ...] | None
    stage_residual: sp.ImmutableMatrix | None
    stage_jacobian: sp.ImmutableMatrix | None
    slopes: tuple[tuple[sp.Symbol, sp.Expr], ...]
    next_state: tuple[sp.Expr, ...]
    step_cost: sp.Expr
    terminal_cost: sp.Expr
    terminal_costate: tuple[sp.Expr, ...]
    terminal_parameter_gradient: tuple[sp.Expr, ...]
    lagrangian: sp.Expr
    multiplier: "CostateStep"
    partner: "CostateStep | None"
    grid_control: tuple[sp.Expr, ...] | None
    outside_theory: str | None
    inverse_sequence: tuple[tuple[sp.Symbol, sp.Expr], ...] | None = None
    next_symbols: tuple[sp.Symbol, ...] = ()
    partner_note: str | None = None

    @property
    def n_groups(self) -> int:
        return max(self.groups) + 1

    @property
    def stage_times(self) -> tuple[sp.Expr, ...]:
        """c: stage i runs at τ_i = t + c_i h (for a pair, the first part's c)."""
        return clock(self.tableau).c

    @property
    def group_weights(self) -> tuple[sp.Expr, ...]:
        """w_g = Σ_{i: g(i)=g} b_i: the quadrature weight of each control parameter, so that
        ∂J_h/∂u_g ≈ h w_g H_u (MATH.md 3.2); for a pair, the first part's weights b."""
        b = clock(self.tableau).b
        return tuple(sum((b[i] for i, g in enumerate(self.groups) if g == group), sp.S.Zero)
                     for group in range(self.n_groups))

    @property
    def implicit(self) -> bool:
        return self.stage_sequence is None


@dataclass(frozen=True)
class CostateStep:
    """One backward step: stage unknowns, then p_n, stage costates and gradients.

    ``previous_costate`` is p_n; ``stage_costates`` P_i (≈ p at τ̃_i); ``control_gradient``
    ∂J_h/∂u_g (G×m); ``parameter_gradient`` this step's part ∂ℓ/∂q of ∂J_h/∂q;
    ``step_gradient`` ∂J_h/∂h_n = ∂ℓ/∂h (which holds ρ_{n+1}, the time shift of all later
    steps); ``previous_time_costate`` ρ_n = ∂ℓ/∂t.
    """

    stages: LinearStages
    previous_costate: tuple[sp.Expr, ...]
    stage_costates: tuple[tuple[sp.Expr, ...], ...]
    control_gradient: tuple[tuple[sp.Expr, ...], ...]
    parameter_gradient: tuple[sp.Expr, ...]
    step_gradient: sp.Expr
    previous_time_costate: sp.Expr


def step_symbols(problem: OptimalControlProblem, tableau: ButcherTableau,
                 n_groups: int) -> StepSymbols:
    s, d, m = tableau.stages, problem.state_dim, problem.control_dim
    return StepSymbols(
        t=InternalSymbol("t", real=True), h=InternalSymbol("h", positive=True),
        y=_vec("y", d), Y=_mat("Y", s, d), F=_mat("F", s, d), u=_mat("u", n_groups, m),
        p=_vec("p", d), lam=_mat("lam", s, d), P=_mat("P", s, d),
        params=_vec("q", len(problem.member_parameters)),
        free=_vec("w", len(problem.free_parameters)), rho=InternalSymbol("rho", real=True))


def _step_names(problem, sym, system, time, states, controls=(), costates=()) -> dict:
    """One simultaneous renaming of the problem's symbols (time, states, controls, member and
    free parameters, costates) into internal expressions: no user symbol survives, and none can
    be renamed into another."""
    return {problem.time: time, **dict(zip(problem.states, states)),
            **dict(zip(problem.controls, controls)),
            **dict(zip((q for q, _ in problem.member_parameters), sym.params)),
            **dict(zip(problem.free_parameter_symbols, sym.free)),
            **dict(zip(system.costates, costates))}


def _at(problem, tableau, sym, groups, i, expr, costate=(), system=None):
    """expr(t, y, u[, p]) evaluated at stage i: τ_i = t + c_i h, Y_i, u_g(i)[, P_i]."""
    return expr.xreplace(_step_names(problem, sym, system, sym.t + tableau.c[i] * sym.h,
                                     sym.Y[i], sym.u[groups[i]], costate))


def _ordered(assignments) -> tuple[tuple[sp.Symbol, sp.Expr], ...] | None:
    """The assignments (x, e) in an order in which each e uses only earlier targets — the
    given order, taking the first ready assignment each time — or None when some depend on
    each other cyclically (then the equations are implicit)."""
    targets = {x for x, _ in assignments}
    pending = [(x, e, e.free_symbols & targets) for x, e in assignments]
    done: set = set()
    ordered = []
    while pending:
        for index, (x, e, needs) in enumerate(pending):
            if needs <= done:
                break
        else:
            return None
        ordered.append((x, e))
        done.add(x)
        del pending[index]
    return tuple(ordered)


def _gradient(expr, symbols) -> dict:
    """{x: ∂expr/∂x} for a sum, each term differentiated only by the symbols it holds (the
    same sum sp.diff builds, which walks every term for every symbol)."""
    terms = sp.Add.make_args(expr)
    held = [term.free_symbols for term in terms]
    return {x: sp.Add(*(_derivative(term, x) for term, names in zip(terms, held)
                        if x in names)) for x in symbols}


def _derivative(expr, x):
    """∂expr/∂x as sp.diff computes it: sums and products by the rules sp.diff applies to
    them (Add._eval_derivative; Mul._eval_derivative_n_times, Leibniz's rule for n = 1), the
    rest by sp.diff. Skipped: sp.diff's pass over its result at every node, which only
    canonicalises unevaluated Derivatives, and the derivation has none."""
    if x not in expr.free_symbols:
        return sp.S.Zero
    if expr.is_Add:
        return expr.func(*[_derivative(a, x) for a in expr.args])
    if expr.is_Mul:
        args = expr.args
        return sp.Add(*(sp.Mul(*args[:i], _derivative(a, x), *args[i + 1:])
                        for i, a in enumerate(args)))
    return sp.diff(expr, x)


def _solve_linear(equations, unknowns, sequential: bool) -> LinearStages:
    """Solve E(U) = 0, linear in U with E = −U + (terms in the other unknowns): by substitution
    in dependency order (last stage first where possible), or as M U = r."""
    flat_u = [x for row in unknowns for x in row]
    flat_e = [e for row in equations for e in row]
    if sequential:
        sequence = _ordered([(x, e + x) for row_u, row_e in zip(reversed(unknowns),
                                                                 reversed(equations))
                             for x, e in zip(row_u, row_e)])
        if sequence is not None:
            return LinearStages(unknowns, sequence, None, None)
    zero = dict.fromkeys(flat_u, 0)
    M = -sp.Matrix(flat_e).jacobian(flat_u)
    r = sp.Matrix([e.xreplace(zero) for e in flat_e])
    return LinearStages(unknowns, None, sp.ImmutableMatrix(M.applyfunc(sp.expand)),
                        sp.ImmutableMatrix(r.applyfunc(sp.expand)))


def discretise(problem: OptimalControlProblem, tableau: Method,
               controls: str = "stage") -> Discretisation:
    """Derive the discrete optimality system of ``problem`` under ``tableau`` (a Butcher
    tableau, or a partitioned pair for a problem whose states are split into parts;
    MATH.md 2–3).

    Warns (OutsideTheoryWarning) when stage controls meet zero or negative weights.
    """
    disc = _discretise(problem, tableau, controls)
    if disc.outside_theory:
        warnings.warn(disc.outside_theory, OutsideTheoryWarning, stacklevel=user_stacklevel())
    return disc


@cache
def _discretise(problem, tableau, controls) -> Discretisation:
    parts = component_tableaux(problem, tableau)
    groups = control_groups(tableau, controls)
    reason = outside_theory_reason(tableau, controls)
    system = continuous_system(problem)
    sym = step_symbols(problem, tableau, max(groups) + 1)
    s, d = tableau.stages, problem.state_dim
    A, b = [part.A for part in parts], [part.b for part in parts]  # per component
    weights = clock(tableau).b  # of the running cost
    at = lambda i, e, **kw: _at(problem, clock(tableau), sym, groups, i, e, system=system,  # noqa: E731
                                **kw)
    f = [[at(i, fk) for fk in problem.dynamics] for i in range(s)]
    L = [at(i, problem.running_cost) for i in range(s)]
    nonzero = lambda x: not is_zero(x, tableau.tolerance)  # noqa: E731

    def combination(k, coefficients, values):
        """Σ_j coefficients[j] values[j] over the non-zero coefficients, for component k."""
        return sum((coefficients[j] * values[j][k] for j in range(s)
                    if nonzero(coefficients[j])), sp.S.Zero)

    # forward: stage equations and the step
    canonical = []
    for i in range(s):
        canonical += [(sym.Y[i][k], sym.y[k] + sym.h * combination(k, A[k].row(i), sym.F))
                      for k in range(d)]
        canonical += [(sym.F[i][k], f[i][k]) for k in range(d)]
    if isinstance(tableau, ButcherTableau):
        stage_sequence = tuple(canonical) if tableau.is_explicit else None
    else:
        stage_sequence = _ordered(canonical)
    residual = jacobian = None
    if stage_sequence is None:
        residual = sp.ImmutableMatrix([sym.Y[i][k] - sym.y[k] - sym.h * combination(
            k, A[k].row(i), f) for i in range(s) for k in range(d)])
        flat_Y = [x for row in sym.Y for x in row]
        jacobian = sp.ImmutableMatrix(residual.jacobian(flat_Y))
    slopes = tuple((sym.F[i][k], f[i][k]) for i in range(s) for k in range(d))
    next_state = tuple(sym.y[k] + sym.h * combination(k, b[k], sym.F) for k in range(d))
    step_cost = sym.h * sum((weights[i] * L[i] for i in range(s) if nonzero(weights[i])),
                            sp.S.Zero)
    terminal = problem.terminal_cost.xreplace(_step_names(problem, sym, system, sym.t, sym.y))
    terminal_costate = tuple(sp.diff(terminal, yk) for yk in sym.y)
    terminal_parameter_gradient = tuple(sp.diff(terminal, q) for q in sym.free)

    # the step Lagrangian and its stationarity conditions (multiplier form, MATH.md 3.1)
    step_map = [sym.y[k] + sym.h * combination(k, b[k], f) for k in range(d)]
    stage_map = [[sym.y[k] + sym.h * combination(k, A[k].row(i), f) - sym.Y[i][k]
                  for k in range(d)] for i in range(s)]
    lagrangian = (step_cost + sum(pk * e for pk, e in zip(sym.p, step_map))
                  + sum(sym.lam[i][k] * stage_map[i][k] for i in range(s) for k in range(d))
                  + sym.rho * (sym.t + sym.h))
    grad = _gradient(lagrangian, [x for row in sym.Y for x in row] + list(sym.y)
                     + [u for row in sym.u for u in row] + list(sym.free) + [sym.h, sym.t])
    stationarity = [[grad[sym.Y[i][k]] for k in range(d)] for i in range(s)]
    multiplier_stages = _solve_linear(stationarity, sym.lam, stage_sequence is not None)
    W = [[b[k][i] * sym.p[k] + combination(k, A[k].col(i), sym.lam) for k in range(d)]
         for i in range(s)]
    stage_costates = tuple(tuple(W[i][k] / b[k][i] if nonzero(b[k][i]) else (W[i][k] / sym.h)
                                 for k in range(d)) for i in range(s))
    multiplier = CostateStep(
        stages=multiplier_stages,
        previous_costate=tuple(grad[yk] for yk in sym.y),
        stage_costates=stage_costates,
        control_gradient=tuple(tuple(grad[ul] for ul in row) for row in sym.u),
        parameter_gradient=tuple(grad[q] for q in sym.free),
        step_gradient=grad[sym.h],
        previous_time_costate=grad[sym.t])

    partner_note = _partner_obstacle(problem, tableau)
    partner = None if partner_note else _partner_form(problem, tableau, sym, groups, system,
                                                      at, stage_sequence is not None)
    inverse, next_symbols = None, ()
    if isinstance(tableau, PartitionedTableau) and stage_sequence is not None:
        next_symbols = _vec("y_next", d)
        inverse = _inverse_step(sym, next_symbols, A, b, f, combination)
    # φ(y, p) is the law of an unconstrained control of one trajectory: with bounds it is not
    # the minimiser of H, and for an ensemble the shared control solves Σ_k H_u = 0 instead.
    grid = None
    bounded = any(np.isfinite(b).any() for b in problem.bounds_arrays())
    if system.control_law is not None and problem.members == 1 and not bounded:
        names = _step_names(problem, sym, system, sym.t, sym.y, costates=sym.p)
        grid = tuple(u.xreplace(names) for u in system.control_law)
    return Discretisation(
        problem=problem, tableau=tableau, controls=controls, groups=groups, symbols=sym,
        system=system, stage_sequence=stage_sequence, stage_residual=residual,
        stage_jacobian=jacobian, slopes=slopes, next_state=next_state, step_cost=step_cost,
        terminal_cost=terminal, terminal_costate=terminal_costate,
        terminal_parameter_gradient=terminal_parameter_gradient, lagrangian=lagrangian,
        multiplier=multiplier, partner=partner, grid_control=grid, outside_theory=reason,
        inverse_sequence=inverse, next_symbols=next_symbols if inverse else (),
        partner_note=partner_note)


def _inverse_step(sym, y_next, A, b, f, combination):
    """The step undone: from y_{n+1}, Y_i = y_{n+1} + h Σ_j (a_ij − b_j) F_j, F_i = f(τ_i, Y_i,
    u_g(i)) and y_n = y_{n+1} − h Σ_i b_i F_i (the stage equations with y_n eliminated), in an
    order that is explicit — or None when it is not (the step is then undone only by solving
    equations)."""
    s, d = len(sym.Y), len(sym.y)
    assignments = []
    for i in range(s):
        assignments += [(sym.Y[i][k], y_next[k] + sym.h * combination(
            k, [A[k][i, j] - b[k][j] for j in range(s)], sym.F)) for k in range(d)]
        assignments += [(sym.F[i][k], f[i][k]) for k in range(d)]
    assignments += [(sym.y[k], y_next[k] - sym.h * combination(k, b[k], sym.F))
                    for k in range(d)]
    return _ordered(assignments)


def _partner_obstacle(problem, tableau) -> str | None:
    """Why the partner form (MATH.md 3.2, ADDENDA.md 1) cannot be written, or None.

    It needs every weight non-zero. For a pair with b ≠ b̂ the partner pair integrates p_k with
    the other part's weights w, so every f_l and L that depends on state k must carry those
    weights: f_l of the other part only (separable dynamics) and L only through the states of
    the second part (the cost has the first part's weights).
    """
    zeros = [f"{label}_{i + 1} = 0" for label, part in _weighted_parts(tableau)
             for i in part.zero_weights]
    if zeros:
        return (f"{tableau.name} has {', '.join(zeros)}: the partner form divides by every "
                "weight; use the multiplier form (MATH.md 3.3)")
    if isinstance(tableau, ButcherTableau) or tableau.same_weights:
        return None
    for k, (y, part) in enumerate(zip(problem.states, problem.partition)):
        same = [problem.states[l] for l, other in enumerate(problem.partition)
                if other == part and y in problem.dynamics[l].free_symbols]
        if same:
            return (f"{tableau.name} has b ≠ b̂, so its partner pair is the costate scheme of "
                    f"separable problems only, but the dynamics of {same[0]} depend on {y} "
                    f"(both in the {PARTS[part]} part); use the multiplier form (ADDENDA.md 1)")
        if part == 0 and y in problem.running_cost.free_symbols:
            return (f"{tableau.name} has b ≠ b̂, so the costate of {y} (first part) has the "
                    f"weights b̂, but the running cost, with the weights b, depends on {y}; use "
                    "the multiplier form (ADDENDA.md 1)")
    return None


def _partner_form(problem, tableau, sym, groups, system, at, sequential) -> CostateStep:
    """The partner PRK on p' = −∇_y H, solved backwards (MATH.md 3.2):

    P_i = p_{n+1} + h Σ_j (b_j − ã_ij) ∇_y H(j),  p_n = p_{n+1} + h Σ_i b_i ∇_y H(i),
    ∂J_h/∂u_g = Σ_{i: g(i)=g} h b_i ∇_u H(i),  ∂J_h/∂h = Σ_i b_i H(i) (+ ∂/∂t shifts),
    and this step's part of ∂J_h/∂q, Σ_i h b_i ∂H/∂q(i).

    For a pair, component k uses the part of the partner pair (:meth:`PartitionedTableau.
    partner`) of its state, with its weights w^(k) in place of b (ADDENDA.md 1). Where the
    weights differ (b ≠ b̂) the gradients weigh each term by its own part:
    b_i H(i) becomes β_i L(i) + Σ_k b^(k)_i P_ik f_k(i), β the cost weights.
    """
    s, d = tableau.stages, problem.state_dim
    b = clock(tableau).b
    if isinstance(tableau, ButcherTableau):
        partners = (tableau.partner(),) * d
    else:
        partners = tuple(tableau.partner().parts[k] for k in problem.partition)
    Hy = [[at(i, e, costate=sym.P[i]) for e in system.H_y] for i in range(s)]
    coeff = [[[sp.expand(partners[k].b[j] - partners[k].A[i, j]) for j in range(s)]
              for i in range(s)] for k in range(d)]
    equations = [[sym.p[k] + sym.h * sum(coeff[k][i][j] * Hy[j][k] for j in range(s)
                                         if not is_zero(coeff[k][i][j], tableau.tolerance))
                  - sym.P[i][k] for k in range(d)] for i in range(s)]
    stages = _solve_linear(equations, sym.P, sequential)
    previous = tuple(sym.p[k] + sym.h * sum(partners[k].b[i] * Hy[i][k] for i in range(s))
                     for k in range(d))
    if isinstance(tableau, ButcherTableau) or tableau.same_weights:
        weight = b

        def part(i, derivative):  # ∂H(i), weighed by b_i
            return at(i, derivative(system.hamiltonian), costate=sym.P[i])
    else:
        own = [t.b for t in component_tableaux(problem, tableau)]
        weight = (sp.S.One,) * s

        def part(i, derivative):  # β_i ∂L(i) + Σ_k b^(k)_i P_ik ∂f_k(i)
            return (b[i] * at(i, derivative(problem.running_cost))
                    + sum(own[k][i] * sym.P[i][k] * at(i, derivative(fk))
                          for k, fk in enumerate(problem.dynamics)))

    by = lambda x: (lambda e: sp.diff(e, x))  # noqa: E731
    gradient = tuple(tuple(sum((sym.h * weight[i] * part(i, by(u)) for i in range(s)
                                if groups[i] == g), sp.S.Zero) for u in problem.controls)
                     for g in range(max(groups) + 1))
    H = [part(i, lambda e: e) for i in range(s)]
    H_t = [part(i, by(problem.time)) for i in range(s)]
    c = clock(tableau).c
    return CostateStep(
        stages=stages,
        previous_costate=previous,
        stage_costates=sym.P,
        control_gradient=gradient,
        parameter_gradient=tuple(sum((sym.h * weight[i] * part(i, by(q)) for i in range(s)),
                                     sp.S.Zero) for q in problem.free_parameter_symbols),
        step_gradient=sym.rho + sum((weight[i] * (H[i] + sym.h * c[i] * H_t[i])
                                     for i in range(s)), sp.S.Zero),
        previous_time_costate=sym.rho + sum((sym.h * weight[i] * H_t[i] for i in range(s)),
                                            sp.S.Zero))
