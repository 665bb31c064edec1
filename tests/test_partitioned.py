"""Problems with partitioned states under PRK pairs (ADDENDA.md 1): the harmonic closed form,
observed orders of Störmer–Verlet and Lobatto IIIA–IIIB 3, exact gradients (Taylor tests),
multiplier and partner forms, NumPy and CasADi, the reversible costate sweep, and the
``parts`` table of problem files."""

import warnings

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import quad

from ocgen.cli import main
from ocgen.derive import OutsideTheoryWarning, continuous_system, discretise
from ocgen.errors import InputError
from ocgen.pair import load_pair
from ocgen.problem import load_problem, problem_from_dict
from ocgen.verify import verify

from test_generated import check_gradients, check_partner_form

# Non-separable (f depends on q, g on p) and time-dependent, with a running cost in q and p:
# the pair is implicit here, and every term of ADDENDA.md 1 is exercised.
PENDULUM = {
    "name": "forced_pendulum", "states": ["q", "p"], "controls": ["u"], "horizon": [0, 1],
    "initial_state": [0.5, 0.1],
    "dynamics": ["p*(1 + q**2/4) + sin(t)/5", "-sin(q) - p/10 + u*cos(q)"],
    "running_cost": "(u**2 + q**2 + p*q)/2 + t*p/3", "terminal_cost": "q**2 + p**2/2",
    "parts": {"first": ["q"], "second": ["p"]}}


@pytest.fixture(scope="module")
def pendulum():
    return problem_from_dict(PENDULUM, "pendulum.toml")


def module_of(module_for, pair, problem, controls="stage"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideTheoryWarning)
        return module_for(pair, problem, controls)


# -- the closed form ---------------------------------------------------------------------------
def test_harmonic_closed_form_solves_pontryagins_system():
    """ARE AᵀS + SA − SBBᵀS + Q = 0 has S = I, so p = x, u = −p, J* = |x0|²/2 (module doc
    of harmonic.toml); checked here against H of the problem, not against that argument."""
    problem = load_problem("harmonic")
    A, B, Q = sp.Matrix([[0, 1], [-1, 0]]), sp.Matrix([0, 1]), sp.diag(0, 1)
    assert A.T + A - B * B.T + Q == sp.zeros(2)  # S = I solves the Riccati equation
    system, sol, t = continuous_system(problem), problem.solution, problem.time
    on_path = {**dict(zip(problem.states, sol.state)), **dict(zip(problem.controls, sol.control)),
               **dict(zip(system.costates, sol.costate))}
    for k in range(2):
        assert sp.simplify(sp.diff(sol.state[k], t) - problem.dynamics[k].xreplace(on_path)) == 0
        assert sp.simplify(sp.diff(sol.costate[k], t) + system.H_y[k].xreplace(on_path)) == 0
        assert float(sol.state[k].subs(t, 0)) == problem.initial_states[0][k]
        terminal = sp.diff(problem.terminal_cost, problem.states[k]).xreplace(on_path)
        assert sp.simplify((terminal - sol.costate[k]).subs(t, 2)) == 0
    assert sp.simplify(system.control_law[0].xreplace(on_path) - sol.control[0]) == 0
    running = sp.lambdify(t, problem.running_cost.xreplace(on_path))
    end = float(problem.terminal_cost.xreplace(on_path).subs(t, 2))
    assert abs(quad(running, 0, 2, epsabs=1e-14)[0] + end - float(sol.objective)) < 1e-12


# -- orders observed by ocgen verify -----------------------------------------------------------
@pytest.mark.parametrize("pair, steps, order", [("stormer_verlet", (10, 20, 40), 2),
                                                ("lobatto_iiia_iiib3", (10, 20, 40), 4)])
def test_verify_observes_the_control_order(pair, steps, order):
    result = verify(pair, "harmonic", steps)
    assert result.passed, result.verdict
    for quantity in ("state", "costate", "grid_control", "objective"):
        assert result.predicted_order[quantity] == order
        assert abs(result.observed_order[quantity] - order) < 0.2, quantity
    assert max(r["costate_forms"] for r in result.residuals) < 1e-12


def test_cli_solve_and_verify_accept_pairs(capsys):
    assert main(["solve", "--tableau", "verlet", "--problem", "harmonic", "--steps", "8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Störmer–Verlet on harmonic: 8 steps")
    assert main(["verify", "--tableau", "velocity Verlet", "--problem", "harmonic", "--steps",
                 "8,16", "--controls", "step"]) == 0
    assert "predicted: step controls: min(order on separable problems 2, 2)" in \
        capsys.readouterr().out


def test_generation_of_a_pair_is_byte_identical_across_processes():
    import os
    import subprocess
    import sys
    from ocgen.codegen import generate
    code = ("import sys; from ocgen.codegen import generate; "
            "sys.stdout.write(generate('verlet', 'harmonic'))")
    env = {**os.environ, "PYTHONHASHSEED": "7"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True).stdout
    assert other == generate("verlet", "harmonic")


def test_generated_file_name_of_a_pair():
    from ocgen.codegen import module_name
    assert module_name(load_pair("verlet"), load_problem("harmonic"), "stage",
                       "numpy") == "stormer_verlet_harmonic_stage_numpy"


def test_a_pair_needs_a_problem_with_parts(capsys):
    assert main(["solve", "--tableau", "verlet", "--problem", "lq", "--steps", "4"]) == 2
    err = capsys.readouterr().err
    assert "parts: Störmer–Verlet is a partitioned pair, but the problem lq does not split" in err


# -- the derivation: explicit where the pair is, exact gradients, both costate forms ----------
def test_verlet_is_explicit_and_reversible_on_separable_problems_only(pendulum):
    verlet = load_pair("verlet")
    separable = discretise(load_problem("harmonic"), verlet)
    assert load_problem("harmonic").is_separable and not pendulum.is_separable
    assert separable.stage_sequence is not None and separable.inverse_sequence is not None
    general = discretise(pendulum, verlet)
    assert general.stage_sequence is None and general.inverse_sequence is None
    assert discretise(load_problem("harmonic"), load_pair("lobatto_iiia_iiib3")).implicit


PAIRS = ["stormer_verlet", "stormer_verlet_iiib_iiia", "lobatto_iiia_iiib3", "symplectic_euler",
         "ruth3"]


@pytest.mark.parametrize("controls", ["stage", "step"])
@pytest.mark.parametrize("pair", PAIRS)
def test_taylor_tests_and_costate_forms(module_for, pendulum, pair, controls):
    """Gradients in the controls, step sizes and initial state have Taylor rate 2, and the
    partner form (from the partner pair of ocgen.pair) equals the multiplier form (from
    sympy.diff of the step Lagrangian) wherever it exists."""
    for problem in ("harmonic", pendulum):
        module = module_of(module_for, pair, problem, controls)
        theta, h, _, trajectory, co = check_gradients(module, seed=5)
        check_partner_form(module, theta, h, trajectory, co)


def test_where_the_partner_form_exists(pendulum):
    """Ruth 3 (b ≠ b̂) on a separable problem with the cost on the second part only: the
    partner pair; on a non-separable one: none. Forest–Ruth 4 has b̂_4 = 0: none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideTheoryWarning)
        assert discretise(load_problem("harmonic"), load_pair("ruth3")).partner is not None
        general = discretise(pendulum, load_pair("ruth3"))
        zero = discretise(load_problem("harmonic"), load_pair("forest_ruth4"))
    assert general.partner is None and "separable problems only" in general.partner_note
    assert zero.partner is None and "b̂_4 = 0" in zero.partner_note


def test_numpy_and_casadi_reach_the_same_discrete_optimum(module_for):
    pytest.importorskip("casadi")
    from ocgen.solve import solve
    from ocgen.solve_casadi import solve_casadi
    for pair in ("stormer_verlet", "lobatto_iiia_iiib3"):
        reference = solve(pair, "harmonic", 12)
        solution = solve_casadi(pair, "harmonic", 12)
        assert reference.converged and solution.converged, solution.message
        assert abs(solution.objective - reference.objective) < 1e-12
        assert np.max(np.abs(solution.states - reference.states)) < 1e-8
        assert np.max(np.abs(solution.costates - reference.costates)) < 1e-8
        assert np.max(np.abs(solution.stage_costates - reference.stage_costates)) < 1e-8


# -- the reversible costate sweep -------------------------------------------------------------
STIFFNESS = """
name = "stiffness"
states = ["q", "p"]
controls = ["u"]
horizon = [0, 2]
initial_state = [1, 0]
dynamics = ["p", "-w*q + u"]
running_cost = "(p**2 + u**2)/2"
terminal_cost = "(q**2 + p**2)/2"

[parts]
first = ["q"]
second = ["p"]

[free_parameters]
w = 1.5
"""


@pytest.mark.parametrize("pair", ["stormer_verlet", "symplectic_euler", "ruth3"])
def test_reversible_sweep_equals_the_stored_one(module_for, tmp_path, pair):
    """Also for the gradient in a free parameter (the stiffness w of q' = p, p' = −wq + u)."""
    problem = tmp_path / "stiffness.toml"
    problem.write_text(STIFFNESS)
    module = module_of(module_for, pair, str(problem))
    assert module.REVERSIBLE
    rng = np.random.default_rng(4)
    theta = rng.normal(size=(300, module.N_GROUPS, 1))
    h = module.uniform_steps(300) * (1 + 0.2 * rng.uniform(size=300))
    y0 = rng.normal(size=(2, 3))
    trajectory = module.forward(theta, h, y0)
    stored = module.costate(theta, trajectory, h)
    end = module.forward(theta, h, y0, keep=False)
    assert set(end) == {"t", "y_end", "objective", "terminal_cost"}
    for key in ("objective", "terminal_cost"):
        assert end[key] == pytest.approx(trajectory[key], rel=1e-13), key
    np.testing.assert_array_equal(end["y_end"], trajectory["y"][-1])
    # from the final state alone, or from a stored trajectory (which it then reads y_N of)
    for rebuilt in (module.costate(theta, end, h, reversible=True),
                    module.costate(theta, trajectory, h, reversible=True)):
        for key in ("gradient", "gradient_y0", "gradient_h", "gradient_free"):
            assert np.max(np.abs(rebuilt[key] - stored[key])) < 1e-10, key
        assert np.max(np.abs(stored["gradient_free"])) > 1e-3  # w matters
        assert np.max(np.abs(rebuilt["y0"] - y0)) < 1e-12


def test_the_generated_header_names_the_pair_its_kind_and_parts():
    from ocgen.codegen import generate
    for pair, kind in (("lobatto_iiia_iiib3", "implicit"), ("stormer_verlet", "explicit")):
        text = generate(load_pair(pair), load_problem("harmonic"), "stage")
        parts = [part.name for part in load_pair(pair).parts]
        assert f"stages, partitioned pair, {kind} on this problem)" in text.splitlines()[2]
        assert text.splitlines()[3] == (f"Parts:    first part ({parts[0]}): q; second part "
                                        f"({parts[1]}): p")


def test_implicit_pairs_have_no_reversible_sweep(module_for):
    module = module_for("lobatto_iiia_iiib3", "harmonic")
    assert not module.REVERSIBLE
    with pytest.raises(TypeError):
        module.forward(np.zeros((2, module.N_GROUPS, 1)), keep=False)


# -- the parts table of problem files ----------------------------------------------------------
@pytest.mark.parametrize("parts, key, message", [
    ("parts = 3", "parts", "expected a table"),
    ("[parts]\nfirst = [\"q\"]\nthird = [\"p\"]", "parts.third", "unknown key"),
    ("[parts]\nfirst = [\"q\"]", "parts", "missing key 'second'"),
    ("[parts]\nfirst = [\"q\"]\nsecond = []", "parts.second", "non-empty list"),
    ("[parts]\nfirst = [\"q\"]\nsecond = [\"x\"]", "parts.second[0]", "'x' is not a declared"),
    ("[parts]\nfirst = [\"q\", \"p\"]\nsecond = [\"q\"]", "parts.second[0]",
     "already in the first part"),
    ("[parts]\nfirst = [\"q\"]\nsecond = [\"r\"]", "parts", "not cover the state: p is in no part"),
])
def test_bad_parts_name_file_and_key(tmp_path, parts, key, message):
    path = tmp_path / "bad.toml"
    path.write_text('states = ["q", "p", "r"]\ncontrols = ["u"]\nhorizon = [0, 1]\n'
                    'initial_state = [1, 0, 0]\ndynamics = ["p", "-q + u", "r"]\n' + parts)
    with pytest.raises(InputError) as err:
        load_problem(path)
    assert err.value.source == str(path) and err.value.key == key
    assert message in err.value.detail
