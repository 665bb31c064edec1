"""What users read: stage times, the converged flag, the verdict rule, Hager's formulas, the
generated module's declarations and input hash, the module cache, Newton's stage values."""

import dataclasses
import json
import math

import numpy as np
import pytest
import sympy as sp

from hager import hager_table
from ocgen.cli import main
from ocgen.codegen import generate, input_hash
from ocgen.order import classical_order, control_order, format_certificate
from ocgen.problem import load_problem
from ocgen.solve import generated_module, solve
from ocgen.tableau import ButcherTableau, load_tableau
from ocgen.verify import ORDER_TOLERANCE, QUANTITIES, _verdict, observed_order, verify


# -- stage times -------------------------------------------------------------------------------
def test_stage_times_are_t_n_plus_c_i_h_n():
    """Gauss-2 nodes c = 1/2 ∓ √3/6 (Butcher 1964), on a non-uniform grid."""
    h = np.array([0.1, 0.2, 0.3, 0.4])
    data = solve("gauss2", "lq", 4, h=h).to_json()
    t = np.concatenate([[0.0], np.cumsum(h)])
    c = np.array([0.5 - math.sqrt(3) / 6, 0.5 + math.sqrt(3) / 6])
    assert np.allclose(data["t"], t, rtol=0, atol=1e-15)
    assert np.allclose(data["stage_times"], t[:-1, None] + h[:, None] * c, rtol=0, atol=1e-15)


def test_stage_times_from_the_command_line(capsys):
    """Heun-2 has c = (0, 1): its stages sit at t_n and t_{n+1}."""
    assert main(["solve", "--tableau", "heun2", "--problem", "lq", "--steps", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    t = np.linspace(0, 1, 5)
    assert np.allclose(data["stage_times"], np.column_stack([t[:-1], t[1:]]), rtol=0, atol=1e-15)


# -- the converged flag ------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "casadi"])
def test_not_converged_within_max_iterations(backend, capsys):
    """vdp is nonlinear: one optimiser iteration cannot reach the KKT tolerance."""
    if backend == "casadi":
        pytest.importorskip("casadi")
    base = ["solve", "--tableau", "rk4", "--problem", "vdp", "--steps", "10", "--backend",
            backend, "--json"]
    assert main(base + ["--max-iterations", "1"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["converged"] is False and data["iterations"] <= 1
    if backend == "numpy":
        assert data["kkt_residual"] > 1e-6
    else:
        assert "iteration limit" in data["message"]
    assert main(base) == 0  # the same solve without the limit converges
    data = json.loads(capsys.readouterr().out)
    assert data["converged"] is True and data["kkt_residual"] <= 1e-10


def test_max_iterations_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(["solve", "--tableau", "rk4", "--problem", "lq", "--steps", "4",
              "--max-iterations", "0"])
    assert exit_status.value.code == 2
    assert "--max-iterations" in capsys.readouterr().err


# -- the verdict rule --------------------------------------------------------------------------
def test_default_verdict_rule_with_constructed_errors():
    """README: a quantity passes when observed ≥ predicted − 0.3. Errors C h^q with q just
    above and just below 4 − 0.3, fitted like a study, judged with the default tolerance."""
    assert ORDER_TOLERANCE == 0.3
    h = [0.1, 0.05, 0.025, 0.0125]
    floors = [1e-14] * 4

    def judged(q):
        errors = [2.0 * x**q for x in h]
        slope, _ = observed_order(h, errors, floors)
        assert slope == pytest.approx(q, abs=1e-9)
        every = dict.fromkeys(QUANTITIES)
        verdict = _verdict({**every, "state": slope}, {**every, "state": 4},
                           {**{q: [None] for q in QUANTITIES}, "state": errors}, True,
                           ORDER_TOLERANCE)
        return verdict["state"], verdict["comparison"]["state"]

    assert judged(3.72) == ("pass", "matches")
    assert judged(3.68) == ("fail", "below")
    assert judged(4.28) == ("pass", "matches")
    assert judged(4.32) == ("pass", "exceeds")


def test_verify_uses_the_default_tolerance():
    v = verify("heun2", "lq", (8, 16))
    assert v.verdict["tolerance"] == 0.3 and "predicted - 0.3" in v.verdict["rule"]
    assert v.to_json()["verdict"]["tolerance"] == 0.3


# -- Hager's formulas --------------------------------------------------------------------------
def test_order_four_failure_is_reported_as_hagers_formulas():
    """Kutta-3 has optimal-control order 3 (MATH.md 4): its order-4 failures are printed as
    the formulas of Hager's table, with their exact values."""
    kutta3 = load_tableau("kutta3")
    failing = [(f, v, e) for q, f, v, e in hager_table(kutta3) if q == 4 and v != e]
    assert len(failing) == 4
    result = control_order(kutta3, max_order=4)
    assert result.order == 3 and not result.at_least
    assert [(c.formula, c.value, c.expected) for c in result.failed] == failing
    assert all(c.kind == "control" and c.order == 4 for c in result.failed)
    text = format_certificate(kutta3)
    control_part = text.split("Optimal-control order:")[1]
    for formula, value, expected in failing[:3]:
        assert f"{formula} = {value}, needs {expected}" in control_part
    assert "… and 1 more" in control_part


# -- exact verdicts on surds -------------------------------------------------------------------
def test_irrational_part_of_a_residual_counts():
    """b = (1/2 + √2, 1/2 − √2)... sums to 1, but b = (1 + √2) alone does not: the rational
    part of Σ b_j − 1 vanishes, its √2 part does not."""
    one_stage = ButcherTableau(name="surd", A=sp.Matrix([[0]]), b=[1 + sp.sqrt(2)])
    assert classical_order(one_stage, max_order=2).order == 0
    assert control_order(one_stage, max_order=2).order == 0
    # Σ b = 1 and Σ b c = 1/2 + √2/4 ≠ 1/2: order 1 exactly
    c2 = sp.Rational(1, 2) + sp.sqrt(2) / 4
    two = ButcherTableau(name="surd2", A=sp.Matrix([[0, 0], [c2, 0]]), b=[0, 1])
    assert classical_order(two, max_order=3).order == 1
    failed = classical_order(two, max_order=3).failed
    assert len(failed) == 1 and sp.simplify(failed[0].value - c2) == 0


# -- the generated module ----------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "casadi"])
@pytest.mark.parametrize("controls,groups", [("stage", 4), ("tied", 3), ("step", 1)])
def test_generated_module_declares_its_controls_and_backend(backend, controls, groups):
    """RK4 has c = (0, 1/2, 1/2, 1): 4 stage controls, 3 tied ones, 1 per step (MATH.md 2)."""
    text = generate("rk4", "lq", controls, backend)
    header = text.split('"""')[1]
    assert f"Controls: {controls} ({groups} control parameter" in header
    assert f"\nCONTROLS = '{controls}'\n" in text
    assert f"\nN_GROUPS = {groups}\n" in text
    expected_hash = input_hash(load_tableau("rk4"), load_problem("lq"), controls, backend)
    assert f"\nINPUT_HASH = \"{expected_hash}\"" in text
    imports = {line for line in text.splitlines() if line.startswith("import ")}
    expected = {"import numpy"} if backend == "numpy" else {"import casadi", "import numpy"}
    assert imports == expected


def test_input_hash_changes_with_every_input():
    rk4, lq = load_tableau("rk4"), load_problem("lq")
    vdp = load_problem("vdp")
    base = input_hash(rk4, lq, "stage", "numpy")
    y, = lq.states
    u, = lq.controls
    t = lq.time
    z = sp.Symbol("z", real=True)
    variants = {
        "backend": input_hash(rk4, lq, "stage", "casadi"),
        "controls mode": input_hash(rk4, lq, "step", "numpy"),
        "tableau": input_hash(load_tableau("rk38"), lq, "stage", "numpy"),
        "tableau b": input_hash(dataclasses.replace(
            rk4, b=[sp.Rational(1, 6), sp.Rational(1, 6), sp.Rational(1, 2), sp.Rational(1, 6)]),
            lq, "stage", "numpy"),
        "tableau name": input_hash(dataclasses.replace(rk4, name="RK4 copy"), lq, "stage",
                                   "numpy"),
    }
    problems = {
        "name": dict(name="lq2"),
        "time": dict(time=sp.Symbol("s", real=True)),
        "states": dict(states=(z,), dynamics=(z / 2 + u,), running_cost=(u**2 + 2 * z**2) / 2),
        "controls": dict(controls=(z,), dynamics=(y / 2 + z,), running_cost=(z**2 + 2 * y**2) / 2),
        "dynamics": dict(dynamics=(y / 3 + u,)),
        "running_cost": dict(running_cost=(u**2 + 3 * y**2) / 2),
        "terminal_cost": dict(terminal_cost=y**2),
        "t0": dict(t0=-0.5),
        "T": dict(T=2.0),
        "control_bounds": dict(control_bounds=((-1.0, 1.0),)),
        "member_parameters": dict(member_parameters=((sp.Symbol("c", real=True), (1.0,)),)),
        "explicit time": dict(dynamics=(y / 2 + u + t,)),
    }
    for key, change in problems.items():
        variants[key] = input_hash(rk4, dataclasses.replace(lq, **change), "stage", "numpy")
    variants["another problem"] = input_hash(rk4, vdp, "stage", "numpy")
    two = dataclasses.replace(lq, initial_states=((1.0,), (2.0,)), solution=None)
    variants["members (casadi)"] = input_hash(rk4, two, "stage", "casadi")
    assert base not in variants.values(), [k for k, v in variants.items() if v == base]
    assert len(set(variants.values())) == len(variants)
    # and nothing else: the same inputs give the same hash, whatever the closed form says
    assert input_hash(rk4, dataclasses.replace(lq, solution=None), "stage", "numpy") == base
    # nor the data, which are arguments of the generated code: the initial states, the member
    # parameters' values, and (NumPy) the number of members
    assert input_hash(rk4, dataclasses.replace(lq, initial_states=((2.0,),)), "stage",
                      "numpy") == base
    c = sp.Symbol("c", real=True)
    assert input_hash(rk4, dataclasses.replace(lq, member_parameters=((c, (1.0,)),)), "stage",
                      "numpy") == input_hash(rk4, dataclasses.replace(
                          lq, member_parameters=((c, (3.0,)),)), "stage", "numpy")
    assert input_hash(rk4, two, "stage", "numpy") == base
    assert input_hash(rk4, dataclasses.replace(two, initial_states=((5.0,), (2.0,))), "stage",
                      "casadi") == variants["members (casadi)"]


@pytest.mark.parametrize("first", ["stage", "step"])
def test_module_cache_distinguishes_controls_modes(first, module_for):
    """Loading one parametrisation first must not hand it out for another."""
    order = [first] + [m for m in ("stage", "tied", "step") if m != first]
    groups = {"stage": 4, "tied": 3, "step": 1}
    for mode in order:
        module, _ = generated_module("rk4", "lq", mode)
        assert module.CONTROLS == mode and module.N_GROUPS == groups[mode]
        assert module_for("rk4", "lq", mode).CONTROLS == mode
    modules = {mode: generated_module("rk4", "lq", mode)[0] for mode in order}
    assert len({id(m) for m in modules.values()}) == 3
    # the step module's single control drives all four stages
    theta = np.ones((5, 1, 1))
    assert modules["step"].stage_controls(theta).shape == (5, 4, 1)


# -- Newton's method for implicit stages -------------------------------------------------------
NEWTON_PROBLEM = """
name = "riccati"
states = ["y"]
controls = ["u"]
horizon = [0, 12]
initial_state = [3]
dynamics = ["-y**2 + u*sin(t)"]
running_cost = "u**2/2"
"""


def test_newton_returns_converged_stage_values(tmp_path):
    """Implicit midpoint (Gauss-1) on y' = −y² + u sin t: the stage equation
    Y = y_n + (h/2)(−Y² + u sin τ) has the root Y = (−1 + √(1 + 2h(y_n + h u sin τ/2)))/h, and
    h = 0.5 makes Newton from Y = y_n take several steps. The returned stage values must be
    that root to rounding level (a Newton step left out would leave an error of its size)."""
    import mpmath

    path = tmp_path / "riccati.toml"
    path.write_text(NEWTON_PROBLEM)
    module, _ = generated_module("gauss1", str(path), "stage")
    steps = 24
    h = module.uniform_steps(steps)
    theta = np.random.default_rng(3).uniform(-2, 2, (steps, 1, 1))
    trajectory = module.forward(theta, h)
    Y, y, t = trajectory["Y"][:, 0, 0, 0], trajectory["y"][:-1, 0, 0], trajectory["t"]
    mpmath.mp.dps = 40
    worst = 0.0
    for n in range(steps):
        hn, u = mpmath.mpf(h[n]), mpmath.mpf(theta[n, 0, 0])
        tau = mpmath.mpf(t[n]) + hn / 2
        root = (-1 + mpmath.sqrt(1 + 2 * hn * (mpmath.mpf(y[n]) + hn * u * mpmath.sin(tau) / 2)))
        root /= hn
        worst = max(worst, float(abs(root - mpmath.mpf(Y[n])) / (1 + abs(root))))
    assert worst <= 4 * np.finfo(float).eps, worst
