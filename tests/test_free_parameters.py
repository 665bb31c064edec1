"""Free parameters q of a problem: ∂J_h/∂q is derived (MATH.md 3.1, ∂Φ/∂q + Σ_n ∂ℓ_n/∂q), checked
by Taylor tests, by the partner form, by a closed-form optimum and across the two backends."""

import numpy as np
import pytest

from ocgen.errors import InputError
from ocgen.problem import load_problem, problem_from_dict
from ocgen.solve import generated_module, solve
from ocgen.solve_casadi import solve_casadi
from ocgen.taylor import taylor_test

# q enters the dynamics, the running cost and the terminal cost, with explicit time
ESTIMATION = {
    "name": "decay_estimation", "states": ["y"], "controls": ["u"], "horizon": [0, 1],
    "initial_states": [[1.0], [0.5]], "dynamics": ["-a*y + u*t"],
    "running_cost": "u**2/2 + (y - exp(-t))**2",
    "terminal_cost": "w*(y - d)**2/2 + (w - 1)**2",
    "member_parameters": {"d": [0.3, 0.1]}, "free_parameters": {"a": 0.5, "w": "3/2"},
}
ESTIMATION_PROBLEM = problem_from_dict(ESTIMATION, "estimation.toml")


@pytest.mark.parametrize("tableau", ["rk4", "kutta3", "gauss2", "sdirk23", "explicit_midpoint"])
def test_parameter_gradient_passes_a_taylor_test(tableau):
    module, _ = generated_module(tableau, ESTIMATION_PROBLEM, "stage")
    rng = np.random.default_rng(3)
    theta = rng.normal(size=(5, module.N_GROUPS, 1))
    free = np.array([0.7, 1.2])
    co = module.costate(theta, module.forward(theta, free=free), free=free)
    J = lambda q: module.forward(theta, free=q)["objective"]  # noqa: E731
    result = taylor_test(J, free, co["gradient_free"], rng.normal(size=2), epsilon=1e-1)
    assert result.min_rate >= 1.95, result
    # the controls' gradient is unchanged in meaning with q away from its initial value
    J = lambda x: module.forward(x, free=free)["objective"]  # noqa: E731
    assert taylor_test(J, theta, co["gradient"], rng.normal(size=theta.shape)).min_rate >= 1.95


@pytest.mark.parametrize("tableau", ["rk4", "gauss2", "radau_iia2"])
def test_partner_form_gives_the_same_parameter_gradient(tableau):
    module, _ = generated_module(tableau, ESTIMATION_PROBLEM, "stage")
    theta = np.random.default_rng(4).normal(size=(4, module.N_GROUPS, 1))
    free = np.array([-0.3, 2.0])
    trajectory = module.forward(theta, free=free)
    multiplier = module.costate(theta, trajectory, free=free)["gradient_free"]
    partner = module.costate(theta, trajectory, form="partner", free=free)["gradient_free"]
    assert np.allclose(partner, multiplier, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("tableau", ["euler", "rk4", "gauss2"])
@pytest.mark.parametrize("backend", ["numpy", "casadi"])
def test_closed_form_optimum_of_a_parameter_estimation(tableau, backend):
    """y' = u, y(0) = 0, J = ∫u²/2 + (y(1) − q)²/2 + (q − 2)²/2: u = 2/3, q = 4/3, J = 2/3,
    exact for every consistent tableau since f = u is integrated exactly."""
    problem = load_problem("examples/parameter_estimation.toml")
    run = solve if backend == "numpy" else solve_casadi
    solution = run(tableau, problem, 6)
    assert solution.converged
    assert solution.free_parameters == pytest.approx([4 / 3], abs=1e-9)
    assert solution.objective == pytest.approx(2 / 3, abs=1e-12)
    assert np.allclose(solution.controls, 2 / 3, atol=1e-9)
    assert solution.to_json()["free_parameters"] == {"q": pytest.approx(4 / 3, abs=1e-9)}


@pytest.mark.parametrize("tableau", ["rk4", "gauss2"])
def test_backends_agree_on_a_nonlinear_estimation(tableau):
    numpy_solution = solve(tableau, ESTIMATION_PROBLEM, 8)
    casadi_solution = solve_casadi(tableau, ESTIMATION_PROBLEM, 8)
    assert numpy_solution.converged and casadi_solution.converged
    assert np.allclose(numpy_solution.free_parameters, casadi_solution.free_parameters,
                       atol=1e-8)
    assert numpy_solution.objective == pytest.approx(casadi_solution.objective, abs=1e-12)
    assert np.allclose(numpy_solution.costates, casadi_solution.costates, atol=1e-8)


def test_casadi_multipliers_give_the_derived_parameter_gradient():
    module, _ = generated_module("rk4", ESTIMATION_PROBLEM, "stage", "casadi")
    solution = module.solve(6)
    assert solution["success"]
    # at the optimum dJ/dq = 0, and the NumPy module's gradient at IPOPT's point agrees
    numpy_module, _ = generated_module("rk4", ESTIMATION_PROBLEM, "stage")
    theta, free = solution["theta"], solution["free"]
    co = numpy_module.costate(theta, numpy_module.forward(theta, free=free), free=free)
    assert np.allclose(co["gradient_free"], solution["gradient_free"], atol=1e-9)
    assert np.max(np.abs(co["gradient_free"])) < 1e-8


def test_casadi_parameter_gradient_adds_the_running_and_terminal_parts():
    """∂J_h/∂q = Σ_n ∂ℓ_n/∂q + ∂Φ/∂q (MATH.md 3.1). With q in the running cost (q·y²) and in
    the terminal cost ((q − 1)²), neither part vanishes at the optimum, only their sum: the
    CasADi module's gradient from IPOPT's multipliers is the NumPy module's, zero."""
    problem = problem_from_dict({
        "name": "both_parts", "states": ["y"], "controls": ["u"], "horizon": [0, 1],
        "initial_state": [1.0], "dynamics": ["-y + u"], "running_cost": "u**2/2 + q*y**2",
        "terminal_cost": "(q - 1)**2", "free_parameters": {"q": 0.5}}, "both_parts.toml")
    solution = generated_module("rk4", problem, "stage", "casadi")[0].solve(6)
    assert solution["success"]
    numpy_module, _ = generated_module("rk4", problem, "stage")
    theta, free = solution["theta"], solution["free"]
    terminal_part = 2 * (free[0] - 1)
    assert abs(terminal_part) > 0.1  # so the running part is −terminal_part
    co = numpy_module.costate(theta, numpy_module.forward(theta, free=free), free=free)
    assert np.allclose(solution["gradient_free"], co["gradient_free"], atol=1e-9)
    assert np.max(np.abs(solution["gradient_free"])) < 1e-8


@pytest.mark.parametrize("value, message", [
    (float("inf"), "finite"), ("nan", "unknown name 'nan'"), ([1, 2], "found list"),
    ("a*2", "unknown name 'a'"), ("sqrt(-1)", "real number"),
])
def test_bad_free_parameter_values_name_the_key(value, message):
    data = {**ESTIMATION, "free_parameters": {"a": value, "w": 1}}
    with pytest.raises(InputError, match=rf"estimation.toml: free_parameters.a: .*{message}"):
        problem_from_dict(data, "estimation.toml")


def test_a_free_parameter_may_not_reuse_a_name():
    data = {**ESTIMATION, "free_parameters": {"y": 1.0, "a": 1.0, "w": 1.0}}
    with pytest.raises(InputError, match="y declared twice|used twice"):
        problem_from_dict(data, "estimation.toml")
    with pytest.raises(InputError, match="free_parameters: expected a table"):
        problem_from_dict({**ESTIMATION, "free_parameters": [1]}, "estimation.toml")


@pytest.mark.parametrize("members", [1, 3])
def test_parameter_gradient_with_one_member_and_several_parameters(members):
    """A single trajectory runs on floats, several members on arrays: both sum dl/dq right."""
    data = {**ESTIMATION, "initial_states": [[1.0 - 0.2 * k] for k in range(members)],
            "member_parameters": {"d": [0.3 + 0.1 * k for k in range(members)]}}
    problem = problem_from_dict(data, "estimation.toml")
    module, _ = generated_module("rk4", problem, "stage")
    theta = np.random.default_rng(6).normal(size=(4, module.N_GROUPS, 1))
    free = np.array([0.4, 1.7])
    g = module.costate(theta, module.forward(theta, free=free), free=free)["gradient_free"]
    J = lambda q: module.forward(theta, free=q)["objective"]  # noqa: E731
    for j in range(2):
        e = np.zeros(2)
        e[j] = 1e-6
        assert g[j] == pytest.approx((J(free + e) - J(free - e)) / 2e-6, rel=1e-7)
