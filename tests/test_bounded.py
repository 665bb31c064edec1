"""A control bound that becomes active, against a closed-form optimum (problem `saturated`).

minimise ∫₀¹ (u²/2 − 2eᵗ y) dt, y' = u, y(0) = 0, −1 ≤ u ≤ 1. Pontryagin (MATH.md 1):
p' = −H_y = 2eᵗ, p(1) = 0, so p = 2(eᵗ − e); H = u²/2 + pu + … is minimised over [−1, 1] by
u = min(−p, 1), which leaves the bound at t_s = log(e − 1/2), where p = −1. The problem is
convex (f linear, L convex in (y, u)), so this is the optimum; J* is checked by quadrature.
"""

import functools
import math

import numpy as np
import pytest
from scipy.integrate import quad

from ocgen.problem import load_problem
from ocgen.solve import solve

E = math.e
SWITCH = math.log(E - 0.5)
STEPS = (10, 20, 40)


def u_star(t):
    return min(2 * (E - math.exp(t)), 1.0)


def exact_objective() -> float:
    """J* = ∫ u*²/2 − 2eᵗ y* dt with y*(t) = ∫₀ᵗ u*, both by adaptive quadrature."""
    def y(t):
        return quad(u_star, 0, t, points=[SWITCH] if t > SWITCH else None, epsabs=1e-14)[0]
    return quad(lambda t: u_star(t) ** 2 / 2 - 2 * math.exp(t) * y(t), 0, 1, points=[SWITCH],
                epsabs=1e-13, epsrel=1e-13)[0]


def test_closed_form_in_the_problem_file():
    problem = load_problem("saturated")
    sol = problem.solution
    assert float(sol.objective) == pytest.approx(exact_objective(), abs=1e-12)
    for s in np.linspace(0, 1, 17):
        assert float(sol.control[0].subs(problem.time, s)) == pytest.approx(u_star(s), abs=1e-14)
        assert float(sol.costate[0].subs(problem.time, s)) == \
            pytest.approx(2 * (math.exp(s) - E), abs=1e-14)
        y = quad(u_star, 0, s, points=[SWITCH] if s > SWITCH else None, epsabs=1e-14)[0]
        assert float(sol.state[0].subs(problem.time, s)) == pytest.approx(y, abs=1e-12)
    assert problem.control_bounds == ((-1.0, 1.0),)


def _solver(backend):
    if backend == "casadi":
        pytest.importorskip("casadi")
        from ocgen.solve_casadi import solve_casadi
        return solve_casadi
    return solve


@functools.cache
def _solutions(tableau, backend):
    return [_solver(backend)(tableau, "saturated", n) for n in STEPS]


def switching_time(sol) -> float:
    """Where the discrete costate crosses −1 (u = min(−p, 1) leaves its bound): the root of a
    cubic through the four grid values of p_n around the crossing (interpolation error O(h⁴))."""
    p, t = sol.costates[:, 0, 0], sol.t
    k = int(np.argmax(p > -1))
    near = slice(k - 2, k + 2)
    roots = np.roots(np.polyfit(t[near] - t[k], p[near] + 1, 3))
    roots = roots[np.isreal(roots)].real + t[k]
    return float(roots[np.argmin(np.abs(roots - t[k]))])


def _order(errors):
    return np.polyfit(np.log([1 / n for n in STEPS]), np.log(np.abs(errors)), 1)[0]


@pytest.mark.parametrize("backend", ["numpy", "casadi"])
def test_heun2_converges_to_the_saturated_optimum(backend):
    """Heun-2 (OC order 2, MATH.md 4): J_h and the switching time converge with order 2."""
    solutions = _solutions("heun2", backend)
    J = exact_objective()
    assert all(sol.converged for sol in solutions)
    objective_errors = [sol.objective - J for sol in solutions]
    switch_errors = [switching_time(sol) - SWITCH for sol in solutions]
    assert _order(objective_errors) == pytest.approx(2, abs=0.15), objective_errors
    assert _order(switch_errors) == pytest.approx(2, abs=0.15), switch_errors
    assert abs(objective_errors[-1]) < 1e-3 and abs(switch_errors[-1]) < 1e-4
    for sol in solutions:
        tau = sol.t[:-1, None] + sol.h[:, None] * np.array([0.0, 1.0])
        u = sol.stage_controls[:, :, 0]
        # saturated before the switch, free (below 1) after it, up to one step
        assert np.all(np.abs(u[tau < SWITCH - sol.h[0]] - 1) < 1e-7)
        assert np.all(u[tau > SWITCH + sol.h[0]] < 1 - 1e-3)
        bounds = sol.to_json()["active_bounds"]["controls"]
        assert bounds["lower"] == 0 and bounds["upper"] >= int(0.7 * sol.steps)


@pytest.mark.parametrize("backend", ["numpy", "casadi"])
def test_rk4_switching_time_converges(backend):
    """RK4: the costate (independent of u here) has order 4; the switching time read off it
    converges with order ≥ 3, and J_h, limited by the kink of u*, stays within h²/1000."""
    solutions = _solutions("rk4", backend)
    switch_errors = [switching_time(sol) - SWITCH for sol in solutions]
    assert _order(switch_errors) > 2.8, switch_errors
    J = exact_objective()
    for sol in solutions:
        assert sol.converged
        assert abs(sol.objective - J) < 1e-3 * sol.h[0] ** 2
