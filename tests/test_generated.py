"""Generated NumPy modules: exact gradients (Taylor tests), the two costate forms agree,
deterministic output, and the modules run without ocgen."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ocgen.codegen import generate
from ocgen.tableau import builtin_tableaux, load_tableau
from ocgen.taylor import taylor_test

ALL = [t.source[:-5] for t in builtin_tableaux()]
# explicit, DIRK, fully implicit, and b_1 = 0
REPRESENTATIVE = ["rk4", "sdirk23", "gauss2", "explicit_midpoint"]


def random_point(module, n_steps=4, seed=0):
    rng = np.random.default_rng(seed)
    theta = 0.3 * rng.normal(size=(n_steps, module.N_GROUPS, module.CONTROL_DIM))
    h = module.uniform_steps(n_steps) * (1 + 0.3 * rng.uniform(size=n_steps))
    y0 = module.data["y0"] + 0.1 * rng.normal(size=module.data["y0"].shape)
    return rng, theta, h, y0


def check_gradients(module, seed=0):
    rng, theta, h, y0 = random_point(module, seed=seed)
    trajectory = module.forward(theta, h, y0)
    co = module.costate(theta, trajectory, h)
    cases = {
        "controls": (lambda x: module.forward(x, h, y0)["objective"], theta, co["gradient"]),
        "step sizes": (lambda x: module.forward(theta, x, y0)["objective"], h, co["gradient_h"]),
        "initial state": (lambda x: module.forward(theta, h, x)["objective"], y0,
                          co["gradient_y0"]),
    }
    for name, (J, x, g) in cases.items():
        size = float(np.sqrt(np.mean(np.square(x))))  # perturb by about 1% of x
        result = taylor_test(J, x, g, rng.normal(size=np.shape(x)), epsilon=1e-2 * size)
        assert result.min_rate >= 1.95, (name, result)
    return theta, h, y0, trajectory, co


def check_partner_form(module, theta, h, trajectory, multiplier):
    if not hasattr(module, "_costate_step_partner"):
        return
    partner = module.costate(theta, trajectory, h, form="partner")
    for key in ("p", "stage_costates", "gradient", "gradient_h"):
        scale = max(1.0, np.max(np.abs(multiplier[key])))
        assert np.max(np.abs(partner[key] - multiplier[key])) <= 1e-12 * scale, key


@pytest.mark.parametrize("controls", ["stage", "step"])
@pytest.mark.parametrize("name", ALL)
def test_every_builtin_tableau_on_lq(module_for, name, controls):
    module = module_for(name, "lq", controls)
    theta, h, _, trajectory, co = check_gradients(module)
    check_partner_form(module, theta, h, trajectory, co)
    assert (not load_tableau(name).zero_weights) == hasattr(module, "_costate_step_partner")


@pytest.mark.parametrize("controls", ["stage", "tied", "step"])
@pytest.mark.parametrize("problem", ["nl", "vdp", "tanh_ensemble"])
@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_representative_tableaux_on_other_problems(module_for, name, problem, controls):
    module = module_for(name, problem, controls)
    theta, h, _, trajectory, co = check_gradients(module, seed=1)
    check_partner_form(module, theta, h, trajectory, co)


def test_wrong_gradient_fails_the_taylor_test(module_for):
    """The check can fail: a gradient off by 1% gives rate 1, not 2."""
    module = module_for("rk4", "vdp")
    rng, theta, h, y0 = random_point(module)
    trajectory = module.forward(theta, h, y0)
    g = module.costate(theta, trajectory, h)["gradient"] * 1.01
    J = lambda x: module.forward(x, h, y0)["objective"]  # noqa: E731
    assert taylor_test(J, theta, g, rng.normal(size=theta.shape)).min_rate < 1.2


def test_ensemble_gradient_is_the_sum_over_members(module_for):
    module = module_for("rk4", "tanh_ensemble")
    _, theta, h, y0 = random_point(module)
    q = module.data["params"]
    total = module.costate(theta, module.forward(theta, h, y0, q), h, q)["gradient"]
    parts = sum(module.costate(theta, module.forward(theta, h, y0[:, [k]], q[:, [k]]), h,
                               q[:, [k]])["gradient"] for k in range(y0.shape[1]))
    assert np.allclose(total, parts, rtol=1e-13, atol=1e-15)


def _generate_in_fresh_process(seed):
    code = ("import sys; from ocgen.codegen import generate; "
            "sys.stdout.write(generate('gauss2', 'vdp', 'tied') "
            "+ generate('rk4', 'tanh_ensemble'))")
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout


def test_generation_is_byte_identical_across_processes():
    first, second = _generate_in_fresh_process(1), _generate_in_fresh_process(2)
    assert first == second
    assert first.startswith(generate("gauss2", "vdp", "tied"))


def test_generated_module_runs_without_ocgen(tmp_path):
    path = tmp_path / "gauss2_vdp.py"
    path.write_text(generate("gauss2", "vdp"))
    script = textwrap.dedent(f"""
        import sys, runpy
        sys.modules["ocgen"] = None  # any import of ocgen now fails
        m = runpy.run_path({str(path)!r})
        import numpy
        theta = numpy.zeros((5, m["N_GROUPS"], m["CONTROL_DIM"]))
        try:
            m["forward"](theta)
        except ValueError as err:
            assert "y0" in str(err) and "no data" in str(err), err
        else:
            raise AssertionError("ran without initial states")
        J, g = m["objective_and_gradient"](theta, None, [[2.0], [0.0]])
        print(J, g.shape)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    J, _ = out.stdout.split(" ", 1)
    assert float(J) > 0


def test_header_names_inputs():
    text = generate("rk4", "lq", "tied")
    header = text.split('"""')[1]
    for word in ("RK4", "lq", "tied", "Inputs:", "ocgen"):
        assert word in header
    assert "import ocgen" not in text and "from ocgen" not in text


def problem_file(tmp_path_factory, text: str) -> str:
    """The path of a problem file holding ``text``, in a folder of its own."""
    path = tmp_path_factory.mktemp("problem") / "problem.toml"
    path.write_text(text)
    return str(path)


TIME_DEPENDENT = """
name = "forced"
states = ["x", "z"]
controls = ["u"]
horizon = [0, 1]
initial_state = [1, 0.5]
dynamics = ["z + sin(2*t)*u", "-x*t + u"]
running_cost = "(u**2 + x**2)*(1 + t**2)/2 + cos(t)*z"
terminal_cost = "z**2"
"""


@pytest.mark.parametrize("controls", ["stage", "step"])
@pytest.mark.parametrize("name", ["rk4", "ssprk3", "radau_iia2", "explicit_midpoint"])
def test_time_dependent_problem(module_for, tmp_path_factory, name, controls):
    """f and L depend on t: ∂J/∂h needs ∂ℓ/∂t of every later step (MATH.md 3.1)."""
    module = module_for(name, problem_file(tmp_path_factory, TIME_DEPENDENT), controls)
    theta, h, _, trajectory, co = check_gradients(module, seed=2)
    check_partner_form(module, theta, h, trajectory, co)


LATE = TIME_DEPENDENT.replace("horizon = [0, 1]", "horizon = [0.5, 1.5]")
EARLY = TIME_DEPENDENT.replace("sin(2*t)", "sin(2*(t + 1/2))").replace(
    "-x*t", "-x*(t + 1/2)").replace("(1 + t**2)", "(1 + (t + 1/2)**2)").replace(
    "cos(t)", "cos(t + 1/2)")


@pytest.mark.parametrize("name", ["rk4", "radau_iia2"])
def test_a_later_horizon_is_a_shift_in_time(module_for, tmp_path_factory, name):
    """The problem on [½, 3/2] is the one on [0, 1] with t replaced by t + ½: for the same
    controls and steps, J_h, the costates, every gradient and the control law agree to
    rounding, and uniform steps cover [T0, T_END]."""
    assert "t + 1/2" in EARLY and "sin(2*t)" not in EARLY
    late_path, early_path = (problem_file(tmp_path_factory, text) for text in (LATE, EARLY))
    late, early = module_for(name, late_path), module_for(name, early_path)
    assert (late.T0, late.T_END) == (0.5, 1.5)
    assert np.allclose(late.uniform_steps(5), 0.2, rtol=1e-15)
    assert late.time_grid(late.uniform_steps(5))[-1] == pytest.approx(1.5, rel=1e-15)
    rng = np.random.default_rng(4)
    theta = 0.3 * rng.normal(size=(5, late.N_GROUPS, late.CONTROL_DIM))
    h = late.uniform_steps(5) * (1 + 0.3 * rng.uniform(size=5))
    y0 = np.array([[1.0], [0.5]])
    a, b = late.forward(theta, h, y0), early.forward(theta, h, y0)
    np.testing.assert_allclose(a["t"], b["t"] + 0.5, rtol=1e-15)
    assert a["objective"] == pytest.approx(b["objective"], rel=1e-13)
    ca, cb = late.costate(theta, a, h), early.costate(theta, b, h)
    for key in ("p", "gradient", "gradient_h", "gradient_y0"):
        np.testing.assert_allclose(ca[key], cb[key], rtol=1e-12, atol=1e-14, err_msg=key)
    law = late.grid_control(a["t"], a["y"], ca["p"])
    assert law.shape == (6, 1, 1)
    np.testing.assert_allclose(law, early.grid_control(b["t"], b["y"], cb["p"]), rtol=1e-12)
    # the CasADi module: its optimum on uniform steps, and that of the numpy module
    from ocgen.solve import generated_module, solve
    casadi_late = generated_module(name, late_path, "stage", "casadi")[0]
    casadi_early = generated_module(name, early_path, "stage", "casadi")[0]
    np.testing.assert_allclose(casadi_late.uniform_steps(5), 0.2, rtol=1e-15)
    optimum_late, optimum_early = casadi_late.solve(5), casadi_early.solve(5)
    assert optimum_late["success"] and optimum_early["success"]
    np.testing.assert_allclose(optimum_late["t"], optimum_early["t"] + 0.5, rtol=1e-15)
    assert optimum_late["objective"] == pytest.approx(optimum_early["objective"], rel=1e-9)
    for key in ("p", "stage_costates"):  # from IPOPT's multipliers
        np.testing.assert_allclose(optimum_late[key], optimum_early[key], atol=1e-8)
    # the stage and step equations at IPOPT's answer, evaluated at t_n = T0 + h_0 + …
    assert casadi_late.constraint_violation(optimum_late["x"], optimum_late["h"]) <= 1e-9
    assert solve(name, late_path, 5).objective == pytest.approx(optimum_late["objective"],
                                                                  rel=1e-8)


def test_module_inputs_are_checked(module_for):
    """A generated module refuses inputs of the wrong shape with a message naming the
    shape it needs."""
    module = module_for("rk4", "vdp")
    theta, y0 = np.zeros((3, module.N_GROUPS, module.CONTROL_DIM)), [[1.0], [0.5]]
    assert np.isfinite(module.forward(theta, None, y0)["objective"])
    wrong = {"theta ndim": (np.zeros((3, module.N_GROUPS * module.CONTROL_DIM)), None, y0),
             "theta groups": (np.zeros((3, module.N_GROUPS + 1, module.CONTROL_DIM)), None, y0),
             "theta controls": (np.zeros((3, module.N_GROUPS, module.CONTROL_DIM + 1)), None,
                                y0),
             "h": (theta, np.full(2, 0.5), y0)}
    messages = {"h": r"^h must have shape \(3,\), got \(2,\)$"}
    for case, args in wrong.items():
        expected = messages.get(case, r"^theta must have shape \(N, 4, 1\), got ")
        with pytest.raises(ValueError, match=expected):
            module.forward(*args)
    with pytest.raises(ValueError, match=r"^free must have shape \(0,\), got \(1,\)$"):
        module.forward(theta, None, y0, free=[1.0])


@pytest.mark.parametrize("name", ["rk4", "gauss2"])
def test_stage_multipliers_step_the_costate(module_for, name):
    """MATH.md 3.1: p_n = p_{n+1} + Σ_i Λ_ni for every step n, with the stage multipliers
    returned in step order (steps of unequal size, so an order reversed would show)."""
    module = module_for(name, "vdp")
    rng, theta, h, y0 = random_point(module, n_steps=5, seed=6)
    co = module.costate(theta, module.forward(theta, h, y0), h)
    Lambda, p = co["stage_multipliers"], co["p"]
    assert Lambda.shape == (5, module.STAGES, module.STATE_DIM, 1)
    np.testing.assert_allclose(p[:-1] - p[1:], Lambda.sum(axis=1), rtol=1e-12, atol=1e-14)


RATIONAL = """
name = "rational"
states = ["x", "z"]
controls = ["u"]
horizon = [0, 1]
initial_state = [0.8, 0.3]
dynamics = ["u/(1 + x**2) - z", "x/(2 + z)**3 + u"]
running_cost = "u**2/2 + 1/(1 + z**2)"
terminal_cost = "x**2 + 1/(2 + z)"
"""


@pytest.mark.parametrize("controls", ["stage", "step"])
@pytest.mark.parametrize("name", ["rk4", "gauss2"])
def test_negative_powers(module_for, tmp_path_factory, name, controls):
    """Reciprocals and their derivatives, (1 + x²)⁻², (2 + z)⁻⁴, …, printed as 1/(…)**k."""
    module = module_for(name, problem_file(tmp_path_factory, RATIONAL), controls)
    source = Path(module.__file__).read_text(encoding="utf-8")
    assert "1/(" in source and "**-" not in source
    theta, h, _, trajectory, co = check_gradients(module, seed=3)
    check_partner_form(module, theta, h, trajectory, co)


def test_module_file_names():
    """tableau_problem_controls_backend in lower-case ASCII: '*' spelled out, accents dropped,
    at most 48 characters per part, and a fallback when nothing is left."""
    import dataclasses

    from ocgen.codegen import _slug, module_name
    from ocgen.problem import load_problem
    from ocgen.tableau import ButcherTableau
    lq = load_problem("lq")

    def named(name):
        return ButcherTableau(name, A=[[0]], b=[1])
    assert module_name(load_tableau("Lobatto IIIC* 3"), lq, "stage", "numpy") == \
        "lobattoiiicstar3_lq_stage_numpy"
    assert module_name(named("αβγ"), lq, "step", "casadi") == "tableau_lq_step_casadi"
    assert module_name(named("x" * 60 + "!"), lq, "step", "numpy") == "x" * 48 + "_lq_step_numpy"
    assert module_name(load_tableau("rk4"), dataclasses.replace(lq, name="—"), "tied",
                       "numpy") == "rk4_problem_tied_numpy"
    assert _slug("__Störmer, b__", "f") == "stormer_b"
    assert _slug("a" * 47 + " b", "f") == "a" * 47          # cut at 48, then no trailing _

