"""Hostile numbers: non-finite and complex input is refused at load (exit 2, file and key
named); overflow and singular stage equations during a solve are reported (exit 1, the step
named); unbounded problems and stationary points that are not minima are never reported as
converged, and the checks that say so stay quiet on problems with a known minimum."""

import importlib.util
import json
import math

import numpy as np
import pytest

from ocgen.cli import main
from ocgen.errors import InputError, OcgenError
from ocgen.problem import OptimalControlProblem, load_problem
from ocgen.solve import (_safe_weights, generated_module, kkt_residual, smallest_curvature,
                         solve)

HAS_CASADI = importlib.util.find_spec("casadi") is not None
BACKENDS = ["numpy", pytest.param("casadi", marks=pytest.mark.skipif(
    not HAS_CASADI, reason="casadi not installed"))]

# Hager's LQ problem (MATH.md 5); each case below changes one key.
LQ = {"states": '["y"]', "controls": '["u"]', "horizon": "[0, 1]", "initial_state": "[1]",
      "dynamics": '["y/2 + u"]', "running_cost": '"(u**2 + 2*y**2)/2"'}


def problem_file(tmp_path, name="case", bounds=None, **changes) -> str:
    """A problem file: LQ with ``changes`` (a value None drops the key) and ``bounds``."""
    keys = {**LQ, **changes}
    text = "\n".join(f"{k} = {v}" for k, v in keys.items() if v is not None)
    if bounds:
        text += "\n[bounds]\n" + "\n".join(f"{k} = {v}" for k, v in bounds.items())
    path = tmp_path / f"{name}.toml"
    path.write_text(text + "\n")
    return str(path)


def tableau_file(tmp_path, A: str, b: str, name="odd") -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\nA = {A}\nb = {b}\n')
    return str(path)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity (RFC 8259)."""
    def refuse(token):
        raise ValueError(f"non-standard JSON constant {token}")
    return json.loads(text, parse_constant=refuse)


def assert_one_error_line(err: str, *parts: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocgen: error:"), err
    for part in parts:
        assert part in lines[0], (part, err)


# -- item 7: refused at load -------------------------------------------------------------------
REFUSED = [
    ({"bounds": {"u": '["inf", "inf"]'}}, "bounds.u"),
    ({"bounds": {"u": '["-inf", "-inf"]'}}, "bounds.u"),
    ({"horizon": '[0, "1e400"]'}, "horizon[1]"),
    ({"horizon": '["-1e308", "1e308"]'}, "horizon"),  # finite ends, infinite length
    ({"initial_state": '["1e400"]'}, "initial_state[0]"),
    ({"initial_state": '["-exp(1000)"]'}, "initial_state[0]"),
    ({"running_cost": '"log(-1)*u**2"'}, "running_cost"),
    ({"running_cost": '"sqrt(-2)*u**2 + y**2"'}, "running_cost"),
    ({"dynamics": '["y*sqrt(1 - sqrt(5)) + u"]'}, "dynamics[0]"),
    ({"running_cost": '"exp(exp(exp(1000)))*u**2"'}, "running_cost"),
    ({"terminal_cost": '"exp(800)*y"'}, "terminal_cost"),  # e^800 > 1.8e308
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("change,key", REFUSED)
def test_non_finite_and_complex_problem_values_are_refused(tmp_path, capsys, change, key,
                                                           backend):
    path = problem_file(tmp_path, **change)
    code, out, err = run(capsys, "solve", "--tableau", "rk4", "--problem", path, "--steps", 4,
                         "--backend", backend)
    assert code == 2 and out == ""
    assert_one_error_line(err, "case.toml", key)


def test_member_parameters_must_be_finite(tmp_path, capsys):
    path = problem_file(tmp_path, initial_state=None, initial_states="[[1], [2]]",
                        running_cost='"c*u**2 + y**2"')
    with open(path, "a") as f:
        f.write('[member_parameters]\nc = [1, "1e400"]\n')
    code, _, err = run(capsys, "solve", "--tableau", "rk4", "--problem", path, "--steps", 4)
    assert code == 2
    assert_one_error_line(err, "member_parameters.c[1]")


@pytest.mark.parametrize("entry", ["1" + "0" * 400, '"1e400"', '"sqrt(-1)"'])
def test_tableau_entries_must_be_finite_reals(tmp_path, capsys, entry):
    path = tableau_file(tmp_path, f"[[0, 0], [{entry}, 0]]", "[0.5, 0.5]")
    code, _, err = run(capsys, "solve", "--tableau", path, "--problem", "lq", "--steps", 4)
    assert code == 2
    assert_one_error_line(err, "odd.toml", "A[1][0]")


@pytest.mark.parametrize("field,value", [("T", math.inf), ("t0", -math.inf),
                                         ("initial_states", ((math.nan,),))])
def test_python_problems_must_be_finite_too(field, value):
    lq = load_problem("lq")
    values = {f: getattr(lq, f) for f in ("name", "time", "states", "controls", "dynamics",
                                           "running_cost", "terminal_cost", "t0", "T",
                                           "initial_states")}
    with pytest.raises(InputError):
        OptimalControlProblem(**{**values, field: value})


def test_absurd_step_counts_are_refused(capsys):
    code, _, err = run(capsys, "solve", "--tableau", "rk4", "--problem", "lq", "--steps",
                       "99999999999999999999")
    assert code == 2
    assert_one_error_line(err, "--steps")


def test_given_step_sizes_must_be_finite():
    with pytest.raises(OcgenError, match="finite positive step sizes"):
        solve("rk4", "lq", 2, h=[0.5, math.inf])


# -- item 6: numerical failures during the solve -----------------------------------------------
def rk4_overflow_step(f, y0: float, h: float) -> int:
    """First step n after which classical RK4 on y' = f(y) (double precision) is not finite."""
    y, n = np.float64(y0), 0
    with np.errstate(over="ignore", invalid="ignore"):
        while True:
            k1 = f(y)
            k2 = f(y + h / 2 * k1)
            k3 = f(y + h / 2 * k2)
            k4 = f(y + h * k3)
            if not all(np.isfinite([k1, k2, k3, k4])):
                return n
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            if not np.isfinite(y):
                return n
            n += 1


@pytest.mark.parametrize("initial", ["[10]", "[[10], [11]]"])
def test_finite_time_blow_up_names_the_step(tmp_path, capsys, initial):
    """y' = y² from 10 blows up at t = 0.1; RK4 with h = 0.05 overflows a few steps later."""
    key = "initial_state" if initial.count("[") == 1 else "initial_states"
    path = problem_file(tmp_path, dynamics='["y**2 + u"]', **{"initial_state": None, key: initial})
    code, out, err = run(capsys, "solve", "--tableau", "rk4", "--problem", path, "--steps", 20)
    n = rk4_overflow_step(lambda y: y * y, 10.0, 0.05)
    assert code == 1 and out == ""
    assert_one_error_line(err, "at the initial controls", f"overflowed at step n = {n} ",
                          f"t = {n * 0.05:.6g},")


@pytest.mark.parametrize("change,message", [
    ({"initial_state": "[1e200]"}, "the cost J_h overflowed"),  # y² = 1e400
    ({"initial_state": "[1e5]", "running_cost": '"(y + 1)**64*u**2 + u**2"'},
     "the cost J_h overflowed"),
    ({"horizon": "[0, 1e300]"}, "the state overflowed at step n = 0 "),  # y_1 ≈ h y / 2
])
def test_overflow_is_reported_not_raised(tmp_path, capsys, change, message):
    path = problem_file(tmp_path, **change)
    code, out, err = run(capsys, "solve", "--tableau", "rk4", "--problem", path, "--steps", 10)
    assert code == 1 and out == ""
    assert_one_error_line(err, message)


def test_exponents_past_the_cap_fail_cleanly(tmp_path, capsys):
    """(y+1)**64 four times is (y+1)**256: refused by the parser or reported as overflow."""
    path = problem_file(tmp_path, dynamics='["y + 20 + u"]',
                        running_cost='"(y+1)**64*(y+1)**64*(y+1)**64*(y+1)**64*u**2"')
    code, out, err = run(capsys, "solve", "--tableau", "rk4", "--problem", path, "--steps", 10)
    assert code in (1, 2) and out == ""
    assert_one_error_line(err)


def test_huge_tableau_entry_overflows_cleanly(tmp_path, capsys):
    path = tableau_file(tmp_path, "[[0, 0], [1e308, 0]]", "[0.5, 0.5]")
    code, out, err = run(capsys, "solve", "--tableau", path, "--problem", "lq", "--steps", 4)
    assert code == 1 and out == ""
    assert_one_error_line(err, "overflowed")


@pytest.mark.parametrize("tableau,problem_change,steps", [
    # backward Euler on y' = y + u: Y = y_0 + h (Y + u) has 1 - h = 0 for h = 1
    ("backward_euler", {"dynamics": '["y + u"]'}, 1),
    # A = [[1, 1], [1, 1]] on y' = y/2 + u: det(I - (h/2) A) = 1 - h = 0 for h = 1
    ("singular", {}, 1),
])
def test_singular_stage_equations_are_reported(tmp_path, capsys, tableau, problem_change, steps):
    if tableau == "singular":
        tableau = tableau_file(tmp_path, "[[1, 1], [1, 1]]", "[0.5, 0.5]", name="singular")
    path = problem_file(tmp_path, **problem_change)
    code, out, err = run(capsys, "solve", "--tableau", tableau, "--problem", path, "--steps",
                         steps)
    assert code == 1 and out == ""
    assert_one_error_line(err, "singular at step n = 0 ", "h = 1)")
    # two steps (h = 1/2) make the same stage equations regular
    code, out, _ = run(capsys, "solve", "--tableau", tableau, "--problem", path, "--steps", 2)
    assert code == 0 and "converged" in out


def test_fixed_controls_are_a_forward_solve(tmp_path, capsys):
    """u = 1/2 fixed by its bounds: y = 2 e^{t/2} - 1, J = ∫ y² = 4(e - 1) - 8(√e - 1) + 1."""
    path = problem_file(tmp_path, running_cost='"y**2"', bounds={"u": "[0.5, 0.5]"})
    code, out, _ = run(capsys, "solve", "--tableau", "rk4", "--problem", path, "--steps", 20,
                       "--json")
    data = strict_json(out)
    assert code == 0 and data["converged"] and data["iterations"] == 0
    assert np.all(np.array(data["controls"]) == 0.5)
    exact = 4 * (math.e - 1) - 8 * (math.sqrt(math.e) - 1) + 1
    assert abs(data["objective"] - exact) < 1e-6  # RK4, h = 1/20


def test_ipopt_failures_exit_like_unconverged_solves(tmp_path, capsys):
    pytest.importorskip("casadi")
    path = problem_file(tmp_path, running_cost='"-u**2"')
    code, out, err = run(capsys, "solve", "--tableau", "rk4", "--problem", path, "--steps", 4,
                         "--backend", "casadi")
    assert code == 1 and out == ""
    assert_one_error_line(err, "Diverging_Iterates")


# -- item 5: unbounded problems and saddle points ----------------------------------------------
@pytest.mark.parametrize("tableau,change,bounds,reason", [
    ("rk4", {"running_cost": '"-u**2"'}, None, "stationary point is not a minimum"),
    # bounded, but u = 0 is the maximum; the minima are at the bounds
    ("rk4", {"running_cost": '"-u**2 + y**2"'}, {"u": "[-1, 1]"},
     "stationary point is not a minimum"),
    # J = y(T) - y0 + ∫ (y² - y/2) dt with y(T) free: no minimum
    ("rk4", {"running_cost": '"u + y**2"'}, None, "objective unbounded below"),
    # MATH.md 3.3: negative weights make the discrete problem unbounded below
    ("dopri5", {}, None, "objective unbounded below"),
])
def test_no_minimum_is_not_converged(tmp_path, capsys, tableau, change, bounds, reason):
    path = problem_file(tmp_path, bounds=bounds, **change)
    code, out, err = run(capsys, "solve", "--tableau", tableau, "--problem", path, "--steps", 5,
                         "--json")
    data = strict_json(out)
    assert code == 1 and not data["converged"] and data["message"].startswith(reason)


def test_saddle_reached_by_symmetry_is_not_converged(tmp_path, capsys):
    """J is even in v, so ∂J/∂v = 0 along v = 0 and L-BFGS-B minimises over u alone; the point
    it reaches is a saddle (-v², v in [-1, 1]) although the iterations moved."""
    path = problem_file(tmp_path, controls='["u", "v"]', bounds={"v": "[-1, 1]"},
                        running_cost='"(u**2 + 2*y**2)/2 - v**2"')
    code, out, _ = run(capsys, "solve", "--tableau", "rk4", "--problem", path, "--steps", 5)
    assert code == 1 and "NOT converged" in out and "negative curvature" in out
    assert "in 0 iterations" not in out


def test_casadi_stationary_maximum_is_not_converged(tmp_path, capsys):
    """IPOPT stops at once at u = 0, a maximum of J = -Σ h b u² (y' = u does not enter J)."""
    pytest.importorskip("casadi")
    path = problem_file(tmp_path, dynamics='["u"]', running_cost='"-u**2"')
    code, out, _ = run(capsys, "solve", "--tableau", "rk4", "--problem", path, "--steps", 5,
                       "--backend", "casadi", "--json")
    data = strict_json(out)
    assert code == 1 and not data["converged"]
    assert data["message"].startswith("stationary point is not a minimum")


def casadi_curvature(tableau, path, steps):
    """reduced_curvature at the CasADi solution, over all controls (none is at a bound)."""
    from ocgen.solve_casadi import reduced_curvature, solve_casadi
    solution = solve_casadi(tableau, path, steps)
    module = generated_module(tableau, path, backend="casadi")[0]
    return reduced_curvature(module, steps, "MX", solution.nlp_x, solution.nlp_lam_g,
                             solution.h, np.ones(solution.controls.size, dtype=bool))


def test_casadi_reduced_hessian_of_a_maximum_is_exact(tmp_path):
    """One RK4 step of y' = u with L = -u²: J = -Σ_i b_i u_i², so ∇²J = diag(-2 b_i) and
    λ_min = -2 max b_i = -2/3, formed exactly (4 controls)."""
    pytest.importorskip("casadi")
    path = problem_file(tmp_path, dynamics='["u"]', running_cost='"-u**2"')
    smallest, size = casadi_curvature("rk4", path, 1)
    assert smallest == pytest.approx(-2 / 3, rel=1e-12) and size == pytest.approx(2 / 3)


@pytest.mark.parametrize("tableau", ["rk4", "gauss2"])
def test_casadi_reduced_hessian_matches_numpy_differences(tableau):
    """The reduced Hessian Zᵀ∇²ℒZ of the CasADi NLP equals the Hessian of J_h(θ) from
    differences of the NumPy backend's exact gradient (lq is quadratic: differences are exact
    up to rounding)."""
    pytest.importorskip("casadi")
    steps = 1 if tableau == "rk4" else 2  # 4 controls: the matrix is formed, not Lanczos'd
    module = generated_module(tableau, "lq")[0]
    theta = np.zeros((steps, module.N_GROUPS, module.CONTROL_DIM))
    h = module.uniform_steps(steps)
    n, step = theta.size, 1e-3
    gradient = lambda t: module.objective_and_gradient(t.reshape(theta.shape), h)[1].ravel()  # noqa: E731
    H = np.column_stack([(gradient(step * e) - gradient(-step * e)) / (2 * step)
                         for e in np.eye(n)])
    smallest, _ = casadi_curvature(tableau, "lq", steps)
    assert smallest == pytest.approx(np.linalg.eigvalsh((H + H.T) / 2)[0], rel=1e-9)


# -- the checks stay quiet where the minimum is known ------------------------------------------
def curvature_at(solution, module):
    """smallest_curvature at a solution, in the solver's scaled controls z = √(h w) θ."""
    h = solution.h
    scale = np.sqrt(h[:, None, None] * _safe_weights(module)[None, :, None])
    scale = scale * np.ones(solution.controls.shape)

    def gradient(z):
        theta = z.reshape(scale.shape) / scale
        return (module.objective_and_gradient(theta, h)[1] / scale).ravel()

    z = (solution.controls * scale).ravel()
    return smallest_curvature(gradient, z, gradient(z), np.ones(z.size, dtype=bool))


@pytest.mark.parametrize("tableau,steps", [("rk4", 3), ("rk4", 20), ("gauss2", 10),
                                           ("kutta3", 20)])
def test_lq_hessian_has_smallest_eigenvalue_one(module_for, tableau, steps):
    """For lq, J(z) = |z|²/2 + ∫ y² with y linear in z: ∇²J = I + PSD, and the last stage
    control moves only y_N, which has no cost, so λ_min = 1 exactly."""
    solution = solve(tableau, "lq", steps)
    smallest, size = curvature_at(solution, module_for(tableau, "lq"))
    assert smallest == pytest.approx(1, abs=0.05) and size >= smallest


def test_negative_curvature_of_a_maximum_is_found(module_for, tmp_path):
    """J = -Σ h b u² = -|z|² in the scaled controls: every eigenvalue is -2."""
    path = problem_file(tmp_path, running_cost='"-u**2"')
    solution = solve("rk4", path, 5)
    smallest, size = curvature_at(solution, module_for("rk4", path))
    assert smallest == pytest.approx(-2, rel=1e-3) and size == pytest.approx(2, rel=1e-3)


# MATH.md 5: discrete optimal costs of lq with stage controls, N = 20
LQ_N20 = {"rk4": 0.864164469019550, "gauss2": 0.864164481477353,
          "kutta3": 0.864150596902335, "euler": 0.885669427155641}


@pytest.mark.parametrize("tableau", sorted(LQ_N20))
def test_known_minima_pass_the_checks(tableau):
    solution = solve(tableau, "lq", 20)
    assert solution.converged, solution.message
    assert abs(solution.objective - LQ_N20[tableau]) < 1e-10


@pytest.mark.parametrize("tableau,problem,steps,controls", [
    ("rk4", "nl", 10, "stage"), ("gauss2", "vdp", 10, "stage"),
    ("rk4", "tanh_ensemble", 5, "stage"), ("ssprk3", "tanh_ensemble", 5, "step"),
    ("midpoint", "lq", 10, "step"),
    ("midpoint", "lq", 10, "stage"),  # zero weight b_1: a control with no cost of its own
])
def test_converged_points_are_local_minima(tableau, problem, steps, controls):
    """Independent of the Hessian check: J_h does not decrease along random directions."""
    solution = solve(tableau, problem, steps, controls)
    assert solution.converged, solution.message
    module = generated_module(tableau, problem, controls)[0]
    J = lambda theta: module.forward(theta, solution.h)["objective"]  # noqa: E731
    rng = np.random.default_rng(1)
    for _ in range(5):
        direction = rng.standard_normal(solution.controls.shape)
        for delta in (1e-2, 1e-3):
            assert J(solution.controls + delta * direction) >= solution.objective - 1e-12


def test_nl_discrete_cost_is_near_the_continuous_optimum():
    """MATH.md 5: J* = tan(1)(1 + ln cos 1) - 1/2; RK4 with N = 20 is within 1e-6."""
    solution = solve("rk4", "nl", 20)
    exact = math.tan(1) * (1 + math.log(math.cos(1))) - 0.5
    assert solution.converged and abs(solution.objective - exact) < 1e-6


def test_kkt_residual_keeps_its_precision_at_large_controls(module_for):
    """P(θ - d) - θ for θ = -1e17 and d = 1: the unit step must not vanish in rounding."""
    module = module_for("rk4", "lq")
    theta = np.full((2, module.N_GROUPS, 1), -1e17)
    h = np.full(2, 0.5)
    gradient = h[:, None, None] * _safe_weights(module)[None, :, None] * np.ones(theta.shape)
    assert kkt_residual(module, theta, gradient, h) == 1.0


def test_verify_says_which_solves_did_not_converge(capsys):
    """DOPRI5's negative weight makes lq with stage controls unbounded below (MATH.md 3.3):
    the study's table must not read as if its solves had succeeded."""
    code, out, _ = run(capsys, "verify", "--tableau", "dopri5", "--problem", "lq", "--steps",
                       "10,20")
    assert code == 0  # outside the theory is no failed verdict
    assert "NOT converged at N = 10, 20: objective unbounded below" in out


@pytest.mark.parametrize("backend", BACKENDS)
def test_identically_zero_objective(tmp_path, capsys, backend):
    """No running or terminal cost: J_h ≡ 0, every control is optimal (CasADi needs a dense
    objective even when it is structurally zero)."""
    path = problem_file(tmp_path, running_cost=None)
    code, out, err = run(capsys, "solve", "--tableau", "rk4", "--problem", path, "--steps", 3,
                         "--backend", backend, "--json")
    data = strict_json(out)
    assert code == 0 and data["converged"] and data["objective"] == 0 and "Traceback" not in err
