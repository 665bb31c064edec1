"""Discrete optima against MATH.md section 5 (values computed independently there)."""

import dataclasses

import numpy as np
import pytest

from ocgen.problem import load_problem
from ocgen.solve import solve

# MATH.md 5: discrete optimal costs of lq with stage controls, N = 20.
LQ_N20 = {"rk4": 0.864164469019550, "gauss2": 0.864164481477353,
          "kutta3": 0.864150596902335, "euler": 0.885669427155641}


@pytest.mark.parametrize("name", sorted(LQ_N20))
def test_lq_discrete_optimum(name):
    solution = solve(name, "lq", 20)
    assert abs(solution.objective - LQ_N20[name]) <= 1e-10
    assert solution.converged
    # H_u = 0 at every stage: the scaled gradient vanishes at the optimum
    assert solution.kkt_residual <= 1e-9


def test_lq_rk4_errors_match_math_md():
    """MATH.md 5: RK4, N = 20: max state error 3.85e-7, costate 1.37e-7."""
    solution = solve("rk4", "lq", 20)
    t = solution.t
    e3 = np.exp(3.0)
    y = (2 * np.exp(3 * t) + e3) / (np.exp(1.5 * t) * (2 + e3))
    p = -2 * (np.exp(3 * t) - e3) / (np.exp(1.5 * t) * (2 + e3))
    assert np.max(np.abs(solution.states[:, 0, 0] - y)) == pytest.approx(3.85e-7, rel=0.01)
    assert np.max(np.abs(solution.costates[:, 0, 0] - p)) == pytest.approx(1.37e-7, rel=0.01)
    assert np.allclose(solution.grid_control[:, 0, 0], -solution.costates[:, 0, 0])


def test_bounds_are_respected():
    lq = load_problem("lq")
    bounded = dataclasses.replace(lq, name="lq_bounded", control_bounds=((-0.3, 0.3),),
                                  solution=None)
    solution = solve("rk4", bounded, 20)
    assert solution.converged
    assert np.all(solution.controls >= -0.3) and np.all(solution.controls <= 0.3)
    at_lower = np.isclose(solution.controls, -0.3)
    assert np.any(at_lower)  # the unbounded optimum starts at u ≈ -1.3
    assert solution.extra["active_bounds"]["controls"]["lower"] == int(np.sum(at_lower))
    assert solution.objective > LQ_N20["rk4"]
    # discrete KKT (MATH.md 3.2): ∂J_h/∂u_ni = h b_i (u_ni + P_ni) for H = L + p(y/2 + u), so
    # the bounded optimum minimises H stage by stage: u_ni = clip(−P_ni, −0.3, 0.3)
    stage_costates = solution.stage_costates[:, :, 0, 0]
    assert np.max(np.abs(solution.stage_controls[:, :, 0]
                         - np.clip(-stage_costates, -0.3, 0.3))) < 1e-8
    assert np.any(-stage_costates < -0.3) and np.any(np.abs(stage_costates) < 0.3)


def test_json_schema_keys():
    data = solve("rk4", "lq", 5).to_json()
    for key in ("objective", "t", "states", "costates", "controls", "grid_control",
                "iterations", "converged", "kkt_residual", "timings", "stage_values",
                "active_bounds"):
        assert key in data
    assert len(data["t"]) == 6 and np.shape(data["states"]) == (6, 1)
    assert np.shape(data["controls"]) == (5, 4, 1)


def test_ensemble_solution_keeps_member_axis():
    data = solve("rk4", "tanh_ensemble", 5).to_json()
    assert np.shape(data["states"]) == (6, 2, 8)
    assert data["grid_control"] is None


TWO_CONTROLS = """
name = "two_controls"
states = ["x", "z"]
controls = ["u", "v"]
horizon = [0, 1]
initial_state = [1, 0]
dynamics = ["u + z*v", "-x + v"]
running_cost = "(u**2 + v**2)*(1 + x**2)/2 + x**2/2"
terminal_cost = "z**2"
"""


def test_grid_control_of_two_coupled_controls(tmp_path):
    """H_u = 0 gives u = -p_x/(1 + x²), v = -(p_x z + p_z)/(1 + x²), solved here by hand."""
    path = tmp_path / "two.toml"
    path.write_text(TWO_CONTROLS)
    solution = solve("rk4", str(path), 10)
    assert solution.converged
    x, z = solution.states[:, 0, 0], solution.states[:, 1, 0]
    px, pz = solution.costates[:, 0, 0], solution.costates[:, 1, 0]
    expected = np.stack([-px / (1 + x**2), -(px * z + pz) / (1 + x**2)], axis=1)
    assert np.allclose(solution.grid_control[:, :, 0], expected, rtol=1e-13, atol=1e-15)
