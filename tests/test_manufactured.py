"""Problems with explicit time and manufactured solutions (tv_tracking, tv_oscillator).

The shipped problem files are checked against the SymPy derivation of tests/manufactured.py,
their closed forms against Pontryagin's system written out here (MATH.md 1), and the discrete
optima against the closed forms with the orders MATH.md 4 gives per tableau family. With f
and L depending on t, a stage evaluated at the wrong time τ_i ≠ t_n + c_i h shows up as a
lost order.
"""

import functools
import math

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import quad

from manufactured import PROBLEMS, t
from ocgen.problem import load_problem
from ocgen.verify import format_verification, verify

NAMES = sorted(PROBLEMS)
SAMPLES = tuple(sp.Rational(k, 16) for k in (0, 2, 5, 8, 11, 15, 16))


def _close(a, b, digits=25) -> bool:
    return abs(sp.N(a - b, 40)) < 10.0 ** (-digits)


def _substitute(problem, expr, values):
    """expr with the problem's own time, states and controls replaced by ``values``."""
    names = {"t": problem.time, **{s.name: s for s in (*problem.states, *problem.controls)}}
    return expr.xreplace({names[k]: v for k, v in values.items()})


@pytest.mark.parametrize("name", NAMES)
def test_files_are_the_derived_problems(name):
    """The data file holds what the derivation produces (regenerate it with
    ``python tests/manufactured.py ocgen/data/problems``)."""
    derived, problem = PROBLEMS[name](), load_problem(name)
    assert [s.name for s in problem.states] == [s.name for s in derived.states]
    assert problem.is_autonomous is False
    rng = np.random.default_rng(7)
    for _ in range(3):
        point = {"t": sp.Rational(int(rng.integers(0, 1000)), 1000),
                 **{s.name: sp.Float(rng.normal(), 30) for s in (*derived.states,
                                                                 *derived.controls)}}
        mine = {t: point["t"], **{s: point[s.name] for s in (*derived.states, *derived.controls)}}
        for ours, theirs in [*zip(problem.dynamics, derived.dynamics),
                             (problem.running_cost, derived.running_cost),
                             (problem.terminal_cost, derived.terminal_cost)]:
            assert _close(_substitute(problem, ours, point), theirs.xreplace(mine))
    for ours, theirs in [*zip(problem.solution.state, derived.state),
                         *zip(problem.solution.costate, derived.costate),
                         *zip(problem.solution.control, derived.control)]:
        for s in SAMPLES:
            assert _close(_substitute(problem, ours, {"t": s}), theirs.subs(t, s))
    # J* is checked by quadrature in test_closed_form_solves_pontryagins_system


@pytest.mark.parametrize("name", NAMES)
def test_closed_form_solves_pontryagins_system(name):
    """y*' = f, p*' = −∇_y H, ∇_u H = 0 along the closed form, y*(0) = y0, p*(T) = ∇Φ(y*(T)),
    and J* = Φ(y*(T)) + ∫ L dt by adaptive quadrature (MATH.md 1)."""
    problem = load_problem(name)
    sol, time = problem.solution, problem.time
    y, u = sp.Matrix(problem.states), sp.Matrix(problem.controls)
    p = sp.Matrix(sp.symbols(f"p0:{len(y)}", real=True))
    f = sp.Matrix(problem.dynamics)
    H = problem.running_cost + (p.T * f)[0]
    path = {**dict(zip(problem.states, sol.state)), **dict(zip(problem.controls, sol.control)),
            **dict(zip(p, sol.costate))}
    residuals = [sp.diff(sol.state[k], time) - f[k] for k in range(len(y))]
    residuals += [sp.diff(sol.costate[k], time) + sp.diff(H, y[k]) for k in range(len(y))]
    residuals += [sp.diff(H, u[l]) for l in range(len(u))]
    for r in residuals:
        r = r.xreplace(path)
        for s in SAMPLES:
            assert abs(sp.N(r.subs(time, s), 30)) < 1e-25
    T = sp.nsimplify(problem.T)
    y_T = [e.subs(time, T) for e in sol.state]
    for k in range(len(y)):
        assert _close(sol.state[k].subs(time, problem.t0), problem.initial_states[0][k])
        assert _close(sol.costate[k].subs(time, T),
                      sp.diff(problem.terminal_cost, y[k]).xreplace(dict(zip(y, y_T))))
    running = sp.lambdify(time, problem.running_cost.xreplace(path), "math")
    integral, error = quad(running, problem.t0, problem.T, epsabs=1e-14, epsrel=1e-14)
    terminal = float(problem.terminal_cost.xreplace(dict(zip(y, y_T))))
    assert error < 1e-12
    assert float(sol.objective) == pytest.approx(terminal + integral, abs=1e-12)
    # convex: f is linear in (y, u), L convex, Φ convex, so this is the global optimum
    assert all(sp.diff(e, v, 2) == 0 for e in problem.dynamics for v in (*y, *u))
    variables = [*y, *u]
    assert sp.Matrix([problem.running_cost]).jacobian(variables).jacobian(
        variables).is_positive_definite


# MATH.md 4: optimal-control orders with stage controls (literature values, Hager 2000 for the
# explicit methods, Gauss-s 2s, Radau IIA-s 2s − 1, Lobatto IIIC-s 2s − 2)
FAMILIES = {"rk4": 4, "kutta3": 3, "heun2": 2, "ssprk3": 2, "gauss2": 4, "radauiia2": 3,
            "lobattoiiic3": 4}
STEPS = (8, 16, 32)
SLOPE_TOLERANCE = 0.15


@functools.cache
def study(tableau, problem):
    return verify(tableau, problem, STEPS)


@pytest.mark.parametrize("tableau", sorted(FAMILIES))
def test_time_dependent_orders_per_family(tableau):
    v = study(tableau, "tv_tracking")
    for q in ("state", "costate", "grid_control", "objective"):
        assert v.observed_order[q] == pytest.approx(FAMILIES[tableau], abs=SLOPE_TOLERANCE), \
            (q, v.errors[q])
    assert v.verdict["overall"] == "pass", format_verification(v)


@pytest.mark.parametrize("tableau", ["rk4", "ssprk3"])
def test_time_dependent_two_state_orders(tableau):
    """On tv_oscillator J_h − J* changes sign between N = 8 and 32 for some methods, so only
    the trajectories are judged here."""
    v = study(tableau, "tv_oscillator")
    for q in ("state", "costate", "grid_control"):
        assert v.observed_order[q] == pytest.approx(FAMILIES[tableau], abs=SLOPE_TOLERANCE), \
            (q, v.errors[q])


def test_stage_controls_sit_at_the_stage_times():
    """Gauss-2's raw stage controls approximate u*(t_n + c_i h) with order 3 (MATH.md 5): on a
    problem whose control varies in time, stage times t_n or t_n + h would cap this at 1."""
    v = study("gauss2", "tv_tracking")
    assert v.observed_order["stage_control"] == pytest.approx(3, abs=SLOPE_TOLERANCE)
    assert math.isclose(v.h[0], 1 / STEPS[0])
