"""CasADi backend: IPOPT on the generated transcription reaches the NumPy backend's optimum, the
costates recovered from IPOPT's multipliers equal the derived discrete costates, bounds are
honoured and reported, failures are never silent, and the generated module is deterministic
and runs without ocgen."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("casadi")

from ocgen.codegen import generate  # noqa: E402
from ocgen.errors import OcgenError  # noqa: E402
from ocgen.problem import load_problem  # noqa: E402
from ocgen.solve import solve  # noqa: E402
from ocgen.solve_casadi import CasadiSolution, IpoptError, solve_casadi  # noqa: E402
from ocgen.tableau import builtin_tableaux  # noqa: E402

POSITIVE = [t.source[:-5] for t in builtin_tableaux() if t.weights_positive]
# explicit, Gauss (symplectic), explicit order 3, Radau IIA, Lobatto IIIC, SDIRK
REPRESENTATIVE = ["rk4", "gauss2", "kutta3", "radau_iia2", "lobatto_iiic2", "sdirk23"]

LQ_BOUNDED = """
name = "lq_bounded"
states = ["y"]
controls = ["u"]
horizon = [0, 1]
initial_state = [1]
dynamics = ["y/2 + u"]
running_cost = "(u**2 + 2*y**2)/2"

[bounds]
u = [-0.3, 0.3]
"""

TIME_DEPENDENT = """
name = "tracking"
states = ["y"]
controls = ["u"]
horizon = [0, 2]
initial_state = [1]
dynamics = ["-y + u*cos(t)"]
running_cost = "(u**2 + 4*(y - sin(3*t))**2)/2"
terminal_cost = "y**2"
"""

UNDEFINED = """
name = "undefined"
states = ["y"]
controls = ["u"]
horizon = [0, 1]
initial_state = [0]
dynamics = ["u"]
running_cost = "u**2/2 + sqrt(y - 1)"
"""


def compare(module_for, solution, reference, tableau, problem, controls, objective_tol=1e-9):
    """Objective against the NumPy optimum; costates against the derived discrete costates
    (multiplier form of the NumPy module) at the CasADi solution."""
    assert solution.converged, solution.message
    assert abs(solution.objective - reference.objective) <= objective_tol * abs(reference.objective)
    module = module_for(tableau, problem, controls)
    trajectory = module.forward(solution.controls, solution.h)
    derived = module.costate(solution.controls, trajectory, solution.h)
    assert np.max(np.abs(trajectory["y"] - solution.states)) <= 1e-9
    difference = abs(trajectory["objective"] - solution.objective)
    assert difference <= 1e-12 * abs(solution.objective) + 1e-14
    assert np.max(np.abs(derived["p"] - solution.costates)) <= 1e-7
    assert np.max(np.abs(derived["stage_costates"] - solution.stage_costates)) <= 1e-7
    if "stage_multipliers" in derived:
        assert np.max(np.abs(derived["stage_multipliers"] - solution.stage_multipliers)) <= 1e-7
    assert solution.extra["multiplier_residual"] <= 1e-8
    assert solution.extra["constraint_violation"] <= 1e-9  # IPOPT's tol 1e-10, scaled


@pytest.mark.parametrize("name", POSITIVE)
def test_every_positive_weight_tableau_on_lq(module_for, name):
    solution = solve_casadi(name, "lq", 8)
    compare(module_for, solution, solve(name, "lq", 8), name, "lq", "stage")
    assert solution.iterations <= 10  # a QP


@pytest.mark.parametrize("problem", ["nl", "vdp"])
@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_representative_tableaux_on_nonlinear_problems(module_for, name, problem):
    solution = solve_casadi(name, problem, 10)
    compare(module_for, solution, solve(name, problem, 10), name, problem, "stage")


@pytest.mark.parametrize("controls", ["tied", "step"])
def test_control_parametrisations(module_for, controls):
    solution = solve_casadi("rk4", "vdp", 10, controls)
    assert solution.controls.shape == (10, 3 if controls == "tied" else 1, 1)
    compare(module_for, solution, solve("rk4", "vdp", 10, controls), "rk4", "vdp", controls)


def test_rk4_lq_matches_math_md():
    solution = solve_casadi("rk4", "lq", 20)
    assert abs(solution.objective - 0.864164469019550) <= 1e-10
    assert solution.converged and solution.message == "Solve_Succeeded"
    assert solution.iterations <= 10
    lq = load_problem("lq")
    p = np.array([float(lq.solution.costate[0].subs(lq.time, t)) for t in solution.t])
    assert np.max(np.abs(solution.costates[:, 0, 0] - p)) == pytest.approx(1.37e-7, rel=0.01)


def test_same_schema_and_shapes_as_numpy_backend():
    solution = solve_casadi("gauss2", "vdp", 12)
    reference = solve("gauss2", "vdp", 12)
    assert isinstance(solution, CasadiSolution) and solution.backend == "casadi"
    for field in ("t", "h", "states", "costates", "stage_values", "stage_costates", "controls",
                  "stage_controls", "grid_control"):
        assert getattr(solution, field).shape == getattr(reference, field).shape, field
    data, ref = solution.to_json(), reference.to_json()
    assert set(ref) <= set(data)
    assert {"ipopt_status", "active_bounds"} <= set(data)
    assert {"derive", "generate", "setup", "solve"} <= set(data["timings"])
    json.dumps(data)
    assert np.max(np.abs(solution.grid_control - reference.grid_control)) <= 1e-7


def test_nonuniform_steps_and_time_dependent_problem(module_for, tmp_path):
    path = tmp_path / "tracking.toml"
    path.write_text(TIME_DEPENDENT)
    h = np.linspace(1, 2, 12)
    h *= 2 / h.sum()
    for name in ("rk4", "radau_iia2"):
        solution = solve_casadi(name, str(path), 12, h=h)
        assert np.allclose(solution.h, h) and np.isclose(solution.t[-1], 2.0)
        compare(module_for, solution, solve(name, str(path), 12, h=h), name, str(path), "stage")


def test_ensemble_from_numpy_initial_guess(module_for):
    reference = solve("rk4", "tanh_ensemble", 6, "step")
    solution = solve_casadi("rk4", "tanh_ensemble", 6, "step", initial_guess=reference)
    assert solution.states.shape == (7, 2, 8)
    compare(module_for, solution, reference, "rk4", "tanh_ensemble", "step", objective_tol=1e-8)


def test_control_bounds_are_honoured_and_reported(module_for, tmp_path):
    path = tmp_path / "lq_bounded.toml"
    path.write_text(LQ_BOUNDED)
    solution = solve_casadi("rk4", str(path), 20)
    assert np.all(solution.controls >= -0.3) and np.all(solution.controls <= 0.3)
    active = solution.extra["active_bounds"]["controls"]
    assert active["lower"] > 0 and active["upper"] == 0
    assert len(active["entries"]) == active["lower"]
    for n, g, l, side in active["entries"]:
        assert side == "lower" and abs(solution.controls[n, g, l] + 0.3) <= 1e-6
    # bounds stay active at the start, where the unbounded optimum is u(0) = -1.73
    assert [n for n, *_ in active["entries"]][:3] == [0, 0, 0]
    compare(module_for, solution, solve("rk4", str(path), 20), "rk4", str(path), "stage",
            objective_tol=1e-8)


def test_state_bounds_are_honoured_and_reported():
    free = solve_casadi("rk4", "vdp", 30)
    assert free.states[:, 1].min() < -0.45
    solution = solve_casadi("rk4", "vdp", 30, state_bounds=([-np.inf, -0.4], [np.inf, np.inf]))
    assert solution.converged
    assert solution.states[:, 1].min() >= -0.4
    active = solution.extra["active_bounds"]["states"]
    assert active["lower"] > 0 and active["upper"] == 0
    assert all(component == 1 and 1 <= n <= 30 for n, component, _, _ in active["entries"])
    assert solution.objective > free.objective


def test_infeasible_bounds_raise(tmp_path):
    path = tmp_path / "lq_bounded.toml"
    path.write_text(LQ_BOUNDED)
    # y' = y/2 + u >= 0.2 at y = 1 with u >= -0.3: y cannot stay below 0.5
    with pytest.raises(IpoptError, match="Infeasible_Problem_Detected") as err:
        solve_casadi("rk4", str(path), 10, state_bounds=([-np.inf], [0.5]))
    assert err.value.status == "Infeasible_Problem_Detected"
    assert isinstance(err.value, OcgenError)


def test_nan_in_the_model_raises(tmp_path):
    path = tmp_path / "undefined.toml"
    path.write_text(UNDEFINED)
    with pytest.raises(IpoptError, match="NaN"):
        solve_casadi("rk4", str(path), 6)


def test_iteration_limit_is_flagged():
    solution = solve_casadi("gauss2", "vdp", 20, max_iterations=1)
    assert not solution.converged
    assert solution.message.startswith("Maximum_Iterations_Exceeded")
    assert solution.extra["ipopt_status"] == "Maximum_Iterations_Exceeded"


def test_warm_start_and_sx_transcription():
    first = solve_casadi("gauss2", "vdp", 20)
    again = solve_casadi("gauss2", "vdp", 20, warm_start=first)
    assert again.converged and again.iterations <= 2
    assert abs(again.objective - first.objective) <= 1e-12
    expanded = solve_casadi("gauss2", "vdp", 20, symbolic="SX")
    assert abs(expanded.objective - first.objective) <= 1e-12
    assert np.max(np.abs(expanded.costates - first.costates)) <= 1e-9
    with pytest.raises(OcgenError, match="warm_start"):
        solve_casadi("gauss2", "vdp", 10, warm_start=first)


def test_bad_arguments():
    with pytest.raises(OcgenError, match="steps"):
        solve_casadi("rk4", "lq", 0)
    with pytest.raises(OcgenError, match="h must"):
        solve_casadi("rk4", "lq", 4, h=[0.5, 0.5])
    with pytest.raises(OcgenError, match="state_bounds"):
        solve_casadi("rk4", "lq", 4, state_bounds=([1.0], [0.0]))
    with pytest.raises(OcgenError, match="initial_guess"):
        solve_casadi("rk4", "lq", 4, initial_guess={"controls": np.zeros(3)})


def test_generated_module_is_deterministic_and_standalone(tmp_path):
    text = generate("rk4", "lq", "stage", "casadi")
    assert text == generate("rk4", "lq", "stage", "casadi")
    other_seed = subprocess.run(
        [sys.executable, "-c", "import sys; from ocgen.codegen import generate; "
         "sys.stdout.write(generate('rk4', 'lq', 'stage', 'casadi'))"],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout
    assert other_seed == text
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import casadi", "import numpy"]
    (tmp_path / "rk4_lq_casadi.py").write_text(text)
    script = textwrap.dedent("""
        import json, sys
        sys.modules["ocgen"] = None  # importing ocgen now fails
        import rk4_lq_casadi as m
        r = m.solve(20, y0=[[1.0]])
        print(json.dumps({"objective": r["objective"], "status": r["status"],
                          "p0": float(r["p"][0, 0, 0]), "shape": list(r["y"].shape)}))
    """)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=tmp_path, env=env)
    result = json.loads(out.stdout)
    assert result["status"] == "Solve_Succeeded" and result["shape"] == [21, 1, 1]
    assert abs(result["objective"] - 0.864164469019550) <= 1e-10
    assert abs(result["p0"] - solve_casadi("rk4", "lq", 20).costates[0, 0, 0]) <= 1e-12


def test_bounded_problem_built_in_python(module_for):
    """Bounds given through the Python API (dataclasses.replace) reach the transcription."""
    bounded = dataclasses.replace(load_problem("lq"), control_bounds=((-np.inf, -0.5),),
                                  name="lq_capped")
    solution = solve_casadi("gauss2", bounded, 10)
    assert np.all(solution.controls <= -0.5)
    active = solution.extra["active_bounds"]["controls"]
    assert active["upper"] > 0 and active["lower"] == 0
    assert active["entries"][-1] == [9, 1, 0, "upper"]  # u* -> 0 at t = 1
    compare(module_for, solution, solve("gauss2", bounded, 10), "gauss2", bounded, "stage",
            objective_tol=1e-8)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_learned_steps_transcribe_the_same_nlp(tmp_path, n):
    """transcription(learn_steps=True) makes the steps variables, with t_n = t_0 + h_0 + … +
    h_{n−1}: at the same point its cost and constraints equal those of the transcription with
    the steps given, on a problem whose f and L depend on t and whose horizon starts at ½."""
    import casadi

    from ocgen.solve import generated_module
    from test_generated import LATE  # f and L depend on t; the horizon is [½, 3/2]
    path = tmp_path / "forced_late.toml"
    path.write_text(LATE)
    module = generated_module("rk4", str(path), "stage", "casadi")[0]
    rng = np.random.default_rng(7)
    h = (1 + 0.5 * rng.uniform(size=n)) / n
    assert module.sizes(n)["h"] == 0 and module.sizes(n, learn_steps=True)["h"] == n
    x = rng.normal(size=sum(module.sizes(n).values()))  # theta, Y, y, free
    y0 = np.array([[1.0], [0.5]])
    given, learned = (module.transcription(n, "SX", learn) for learn in (False, True))
    f_given, g_given = casadi.Function("given", [given["x"], given["p"]],
                                       [given["f"], given["g"]])(x, module.parameters(h, y0))
    f_learned, g_learned = casadi.Function("learned", [learned["x"], learned["p"]],
                                           [learned["f"], learned["g"]])(
        np.concatenate([x, h]), module.parameters(None, y0))
    assert float(f_learned) == pytest.approx(float(f_given), rel=1e-14)
    np.testing.assert_allclose(np.array(g_learned), np.array(g_given), rtol=1e-13, atol=1e-14)


def test_ipopt_options_of_the_generated_module():
    """Silent at print level 0 (no timing table either), IPOPT's defaults replaced by tolerance
    1e-10 and 3000 iterations, bounds held exactly; options given with or without the
    "ipopt." prefix override them."""
    from ocgen.solve import generated_module
    module = generated_module("rk4", "lq", "stage", "casadi")[0]
    assert module.ipopt_options() == {
        "print_time": False, "ipopt.print_level": 0, "ipopt.sb": "yes", "ipopt.tol": 1e-10,
        "ipopt.max_iter": 3000, "ipopt.bound_relax_factor": 0.0,
        "ipopt.honor_original_bounds": "yes"}
    verbose = module.ipopt_options(1e-6, 20, 1, {"mu_strategy": "adaptive", "ipopt.tol": 1e-8})
    assert verbose["print_time"] is True and verbose["ipopt.print_level"] == 1
    assert (verbose["ipopt.tol"], verbose["ipopt.max_iter"]) == (1e-8, 20)
    assert verbose["ipopt.mu_strategy"] == "adaptive"
