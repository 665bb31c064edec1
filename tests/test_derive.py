"""The derivation against MATH.md written out independently with SymPy matrices."""

import os
import warnings
from pathlib import Path

import pytest
import sympy as sp

from ocgen.derive import (OutsideTheoryWarning, _derivative, _gradient, continuous_system,
                          control_groups, discretise)
from ocgen.problem import load_problem
from ocgen.tableau import load_tableau


def math_md_step(disc):
    """Λ_i = h[f_y(i)ᵀ W_i + b_i ∇_y L(i)], W_i = b_i p + Σ_j a_ji Λ_j, p_n = p + Σ Λ_i,
    ∂J/∂u_g = Σ_{i∈g} h[f_u(i)ᵀ W_i + b_i ∇_u L(i)]   (MATH.md 3.1), as SymPy matrices."""
    problem, tableau, sym = disc.problem, disc.tableau, disc.symbols
    s, d = tableau.stages, problem.state_dim
    A, b, h = tableau.A, tableau.b, sym.h
    f = sp.Matrix(problem.dynamics)
    L = sp.Matrix([problem.running_cost])
    y, u = sp.Matrix(problem.states), sp.Matrix(problem.controls)
    lam = [sp.Matrix(row) for row in sym.lam]
    p = sp.Matrix(sym.p)

    def at(expr, i):
        mapping = {problem.time: sym.t + tableau.c[i] * h,
                   **dict(zip(problem.states, sym.Y[i])),
                   **dict(zip(problem.controls, sym.u[disc.groups[i]]))}
        return expr.xreplace(mapping)

    W = [b[i] * p + sum((A[j, i] * lam[j] for j in range(s)), sp.zeros(d, 1)) for i in range(s)]
    Lam = [h * (at(f.jacobian(y), i).T * W[i] + b[i] * at(L.jacobian(y), i).T) for i in range(s)]
    grad = [sp.zeros(len(problem.controls), 1) for _ in range(disc.n_groups)]
    for i in range(s):
        grad[disc.groups[i]] += h * (at(f.jacobian(u), i).T * W[i] + b[i] * at(L.jacobian(u), i).T)
    p_prev = p + sum(lam, sp.zeros(d, 1))
    return Lam, grad, p_prev


def is_zero(expr):
    return sp.simplify(sp.expand(expr)) == 0


@pytest.mark.parametrize("tableau", ["rk4", "kutta3", "gauss2", "sdirk23", "explicit_midpoint"])
@pytest.mark.parametrize("problem", ["vdp", "nl"])
@pytest.mark.parametrize("controls", ["stage", "step"])
def test_stationarity_matches_math_md(tableau, problem, controls):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideTheoryWarning)
        disc = discretise(load_problem(problem), load_tableau(tableau), controls)
    Lam, grad, p_prev = math_md_step(disc)
    stages = disc.multiplier.stages
    lam = [x for row in disc.symbols.lam for x in row]
    expected = [e for vec in Lam for e in vec]
    if stages.sequence is not None:  # explicit: Λ_i = … by back substitution
        values = {}
        for target, expr in stages.sequence:
            values[target] = expr.xreplace(values)
        for x, e in zip(lam, expected):
            assert is_zero(values[x] - e.xreplace(values)), x
    else:  # implicit: M Λ = r must be the same linear system as Λ = Λ(Λ)
        lam_vector = sp.Matrix(lam)
        residual = stages.matrix * lam_vector - stages.rhs - (lam_vector - sp.Matrix(expected))
        assert all(is_zero(e) for e in residual)
    for g, row in enumerate(disc.multiplier.control_gradient):
        for l, e in enumerate(row):
            assert is_zero(e - grad[g][l])
    for k, e in enumerate(disc.multiplier.previous_costate):
        assert is_zero(e - p_prev[k])


def test_continuous_system_of_lq():
    system = continuous_system(load_problem("lq"))
    p, = system.costates
    y, = load_problem("lq").states
    assert system.control_law == (-p,)
    assert is_zero(system.H_y[0] - (2 * y + p / 2))


def test_control_law_not_available_is_reported():
    system = continuous_system(load_problem("tanh_ensemble"))
    assert system.control_law is None
    assert "not" in system.control_law_note


def test_control_groups():
    rk4 = load_tableau("rk4")
    assert control_groups(rk4, "stage") == (0, 1, 2, 3)
    assert control_groups(rk4, "tied") == (0, 1, 1, 2)
    assert control_groups(rk4, "step") == (0, 0, 0, 0)


@pytest.mark.parametrize("name", ["explicit_midpoint", "heun3", "dopri5"])
def test_zero_or_negative_weights_warn_with_stage_controls(name):
    with pytest.warns(OutsideTheoryWarning, match="--controls step"):
        discretise(load_problem("lq"), load_tableau(name), "stage")
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutsideTheoryWarning)
        discretise(load_problem("lq"), load_tableau(name), "step")


def test_the_warning_points_at_the_caller():
    """The outside-the-theory warning shows the user's line, not ocgen's: for discretise
    called directly and for generate, which calls it two frames deeper. (Under mutmut the
    first frame outside ocgen is mutmut's trampoline, between the test and ocgen.)"""
    import ocgen
    from ocgen.codegen import generate
    from ocgen.tableau import ButcherTableau
    package = str(Path(ocgen.__file__).resolve().parent)
    # a midpoint of its own name: generate caches its output per tableau
    midpoint = ButcherTableau("caller-test midpoint", A=[[0, 0], [sp.Rational(1, 2), 0]],
                              b=[0, 1])
    for call in (lambda: discretise(load_problem("lq"), load_tableau("midpoint"), "stage"),
                 lambda: generate(midpoint, "lq", "stage")):
        with pytest.warns(OutsideTheoryWarning) as caught:
            call()
        [shown] = [w.filename for w in caught if issubclass(w.category, OutsideTheoryWarning)]
        assert not str(Path(shown).resolve()).startswith(package)
        if not os.environ.get("MUTANT_UNDER_TEST"):
            assert Path(shown).name == Path(__file__).name


def test_outside_theory_reasons_whole():
    """MATH.md 3.3: zero weights lose coercivity, negative ones unboundedness; stage indices
    are 1-based, as in the literature; step controls are inside the theory."""
    from ocgen.derive import outside_theory_reason
    from ocgen.tableau import ButcherTableau
    tail = ("those stage controls carry no running cost, the discrete problem loses "
            "coercivity and need not converge (controls grow like 1/h)")
    advice = ". Use --controls step (one control per step), which converges with order 2."
    assert outside_theory_reason(load_tableau("midpoint"), "stage") == (
        "Explicit midpoint with stage controls is outside the theory of RK discretisations of "
        f"optimal control (MATH.md 3.3): b_1 = 0: {tail}{advice}")
    both = ButcherTableau("zn", A=[[0, 0, 0], [1, 0, 0], [0, 1, 0]],
                          b=[0, sp.Rational(5, 4), sp.Rational(-1, 4)])
    assert outside_theory_reason(both, "tied") == (
        "zn with tied controls is outside the theory of RK discretisations of optimal control "
        f"(MATH.md 3.3): b_1 = 0: {tail}; b_3 = -1/4: negative weights make the discrete "
        f"problem unbounded below{advice}")
    assert outside_theory_reason(both, "step") is None
    zeros = ButcherTableau("zz", A=[[0, 0, 0], [1, 0, 0], [0, 1, 0]], b=[0, 0, 1])
    negatives = ButcherTableau("nn", A=[[0, 0, 0], [1, 0, 0], [0, 1, 0]],
                               b=[sp.Rational(3, 2), sp.Rational(-1, 4), sp.Rational(-1, 4)])
    assert f": b_1 = 0, b_2 = 0: {tail}{advice}" in outside_theory_reason(zeros, "stage")
    assert (": b_2 = -1/4, b_3 = -1/4: negative weights make the discrete problem unbounded "
            f"below{advice}") in outside_theory_reason(negatives, "stage")


def test_inconsistent_tableau_is_reported():
    from ocgen.tableau import ButcherTableau
    half = ButcherTableau(name="half", A=sp.Matrix([[0, 0], [1, 0]]),
                          b=[sp.Rational(1, 4), sp.Rational(1, 4)])
    with pytest.warns(OutsideTheoryWarning, match="not consistent"):
        discretise(load_problem("lq"), half, "step")


@pytest.mark.parametrize("tableau,problem", [("rk4", "tv_tracking"), ("gauss2", "tv_oscillator")])
def test_stationarity_with_explicit_time(tableau, problem):
    """f and L depend on t: the conditions must evaluate them at τ_i = t_n + c_i h (MATH.md 2),
    as math_md_step does. Both costate forms are compared, so a time shift written the same
    way in both cannot hide behind their agreement."""
    test_stationarity_matches_math_md(tableau, problem, "stage")
    disc = discretise(load_problem(problem), load_tableau(tableau), "stage")
    sym, tab = disc.symbols, disc.tableau
    # partner form: ∂J_h/∂u_i = h b_i ∇_u H(τ_i, Y_i, u_i, P_i)  (MATH.md 3.2)
    H_u = continuous_system(disc.problem).H_u
    names = disc.problem
    for i in range(tab.stages):
        mapping = {names.time: sym.t + tab.c[i] * sym.h,
                   **dict(zip(names.states, sym.Y[i])),
                   **dict(zip(names.controls, sym.u[disc.groups[i]])),
                   **dict(zip(continuous_system(names).costates, sym.P[i]))}
        for l, e in enumerate(H_u):
            assert is_zero(disc.partner.control_gradient[i][l]
                           - sym.h * tab.b[i] * e.xreplace(mapping))


PENDULUM = """
name = "forced_pendulum"
states = ["q", "p"]
controls = ["u"]
horizon = [0, 1]
initial_state = [1, 0]
dynamics = ["p + sin(t)*u", "-sin(q) + u*cos(t)"]
running_cost = "(p**2 + u**2)/2"
terminal_cost = "q**2"

[parts]
first = ["q"]
second = ["p"]
"""


def _run(sequence, known):
    """Assignments (target, expression) evaluated in order, to 30 digits."""
    env = dict(known)
    for target, value in sequence:
        env[target] = value.xreplace(env).evalf(30)
    return env


@pytest.mark.parametrize("pair", ["stormer_verlet", "symplectic_euler", "ruth3"])
def test_inverse_step_undoes_the_step(tmp_path, pair):
    """On a separable, time-dependent problem the derived inverse step, run from y_{n+1},
    gives back y_n and every Y_i, F_i of the forward step (numbers, to rounding)."""
    from ocgen.pair import load_pair
    path = tmp_path / "pendulum.toml"
    path.write_text(PENDULUM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideTheoryWarning)
        disc = discretise(load_problem(str(path)), load_pair(pair), "stage")
    assert disc.stage_sequence is not None and disc.inverse_sequence is not None
    sym = disc.symbols
    start = {sym.t: sp.Float(0.3), sym.h: sp.Float(0.2), sym.y[0]: sp.Float(0.7),
             sym.y[1]: sp.Float(-0.4)}
    start.update({u: sp.Float(0.1 * (k + 1)) for k, row in enumerate(sym.u) for u in row})

    forward = _run(disc.stage_sequence, start)
    y_next = [e.xreplace(forward).evalf(30) for e in disc.next_state]
    known = {k: v for k, v in start.items() if k not in sym.y}
    backward = _run(disc.inverse_sequence, {**known, **dict(zip(disc.next_symbols, y_next))})
    for x in (*sym.y, *(v for row in (*sym.Y, *sym.F) for v in row)):
        assert abs(backward[x] - (start | forward)[x]) < 1e-25, x
    single = discretise(load_problem(str(path)), load_tableau("rk4"), "stage")
    assert single.inverse_sequence is None and single.next_symbols == ()


def _numbers(disc, seed):
    """Random values of one step's inputs: t, h, y, controls, p_{n+1}, ρ_{n+1}, parameters."""
    import random
    rng = random.Random(seed)
    sym = disc.symbols
    value = lambda: sp.Float(rng.uniform(-0.8, 0.8), 30)  # noqa: E731
    known = {sym.t: sp.Float(0.3, 30), sym.h: sp.Float(0.15, 30), sym.rho: value()}
    for group in (sym.y, sym.p, sym.params, sym.free, *sym.u):
        known.update({x: value() for x in group})
    return known


def _costate_step(step, known):
    """Solve one costate step's stage equations numerically; its outputs at the solution."""
    stages = step.stages
    if stages.sequence is not None:
        env = _run(stages.sequence, known)
    else:
        flat = [x for row in stages.unknowns for x in row]
        M, r = (X.xreplace(known).evalf(30) for X in (stages.matrix, stages.rhs))
        env = {**known, **dict(zip(flat, M.LUsolve(r)))}
    value = lambda e: sp.sympify(e).xreplace(env).evalf(30)  # noqa: E731
    return {"p_n": [value(e) for e in step.previous_costate],
            "stage costates": [value(e) for row in step.stage_costates for e in row],
            "control gradient": [value(e) for row in step.control_gradient for e in row],
            "parameter gradient": [value(e) for e in step.parameter_gradient],
            "step gradient": [value(step.step_gradient)],
            "time costate": [value(step.previous_time_costate)]}


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


GROWTH = """
name = "growth"
states = ["x"]
controls = ["u"]
horizon = [0, 1]
initial_state = [1]
dynamics = ["a*x + u*cos(t)"]
running_cost = "(u**2 + a*x**2)/2"
terminal_cost = "(x - a)**2"

[free_parameters]
a = 0.5
"""


@pytest.mark.parametrize("method, problem", [
    ("rk4", "tv_tracking"), ("ssprk3", "nl"), ("kutta3", "tanh_ensemble"),
    ("ralston2", str(EXAMPLES / "parameter_estimation.toml")), ("ralston2", GROWTH),
    ("stormer_verlet", PENDULUM), ("ruth3", PENDULUM)],
    ids=["rk4", "ssprk3", "kutta3", "ralston2-terminal", "ralston2-growth", "verlet", "ruth3"])
def test_partner_form_equals_multiplier_form(tmp_path, method, problem):
    """MATH.md 3.2 (and ADDENDA.md 1 for pairs): with every b_i ≠ 0 the partner form is the
    multiplier form rewritten, so at the same step (stage values from the forward step) p_n,
    the stage costates and every gradient agree, here to 25 digits, on problems with
    explicit time, member parameters, and free parameters in the terminal cost only or in
    the dynamics and running cost too."""
    from ocgen.pair import load_method
    if "\n" in problem:
        path = tmp_path / "problem.toml"
        path.write_text(problem)
        problem = str(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideTheoryWarning)
        disc = discretise(load_problem(problem), load_method(method), "stage")
    assert disc.partner is not None
    known = _run(disc.stage_sequence, _numbers(disc, seed=len(method)))
    multiplier, partner = (_costate_step(step, known) for step in (disc.multiplier, disc.partner))
    for key, values in multiplier.items():
        for a, b in zip(values, partner[key], strict=True):
            assert abs(a - b) <= 1e-25 * (1 + abs(a)), key


def test_rounded_tableau_is_consistent_within_its_tolerance():
    """Σ b_i of ten rounded tenths is 1 only up to rounding: consistent within the tableau's
    tolerance, so no warning."""
    from ocgen.tableau import ButcherTableau
    tenths = ButcherTableau.from_dict({"name": "tenths", "A": [[0] * 10] * 10, "b": [0.1] * 10})
    assert tenths.tolerance > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutsideTheoryWarning)
        assert discretise(load_problem("lq"), tenths, "step").outside_theory is None


def test_explicit_within_its_tolerance_gives_explicit_costate_stages():
    """An entry within τ of zero is zero (ocgen.numbers): Heun's tableau with a_12 = 1e-14 in
    15 digits (τ = 1e-13) is explicit, and so are both costate schemes, solved last stage
    first. Keeping the rounding-level coefficient b_1 a_12 / b_2 of the partner form would
    couple its two stages."""
    from ocgen.tableau import ButcherTableau
    F = lambda x: sp.Float(x, 15)  # noqa: E731
    heun = ButcherTableau("Heun, a_12 = 1e-14", A=sp.Matrix([[F("0.0"), F("1e-14")],
                                                             [F("1.0"), F("0.0")]]),
                          b=[F("0.5"), F("0.5")])
    assert heun.tolerance == 1e-13 and heun.is_explicit
    disc = discretise(load_problem("lq"), heun, "stage")
    assert disc.stage_sequence is not None
    assert disc.multiplier.stages.sequence is not None
    assert disc.partner.stages.sequence is not None


def test_inconsistency_is_explained():
    from ocgen.derive import outside_theory_reason
    from ocgen.tableau import ButcherTableau
    half = ButcherTableau(name="half", A=sp.Matrix([[0, 0], [1, 0]]),
                          b=[sp.Rational(1, 4), sp.Rational(1, 4)])
    assert outside_theory_reason(half, "step") == (
        "half has Σ b_i = 1/2 ≠ 1: the method is not consistent (order 0), so the discrete "
        "problem does not approximate the continuous one")


def test_a_pair_needs_a_problem_with_parts():
    from ocgen.errors import InputError
    from ocgen.pair import load_pair
    pair = load_pair("stormer_verlet")
    with pytest.raises(InputError) as caught:
        discretise(load_problem("lq"), pair, "stage")
    error = caught.value
    assert (error.source, error.key) == ("lq.toml", "parts")
    assert error.detail == (
        f"{pair.name} is a partitioned pair, but the problem lq does not split its states into "
        "parts: give the problem a table parts = {first = [...], second = [...]} (or use a "
        "single tableau)")


def _problem(tmp_path, name, **table):
    """A problem file written from keyword arguments (TOML values given as text)."""
    lines = [f'name = "{name}"'] + [f"{key} = {value}" for key, value in table.items()
                                     if key != "parts"]
    if "parts" in table:
        lines += ["[parts]", table["parts"]]
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_problem(str(path))


BASE = dict(states='["x"]', controls='["u"]', horizon="[0, 1]", initial_state="[1]",
            dynamics='["x + u"]', terminal_cost='"x**2"')


@pytest.mark.parametrize("cost, controls, law, note", [
    ('"(u**2 + x**2)/2"', None, True, "u = φ(y, p) from H_u = 0; H_uu > 0 (a minimum)"),
    ('"x**2*u**2/2"', None, True, "u = φ(y, p) from H_u = 0; H_uu > 0 could not be confirmed"),
    ('"(u**2 + x*v**2 + v**2)/2"', '["u", "v"]', True,
     "u = φ(y, p) from H_u = 0; H_uu > 0 could not be confirmed"),
    ('"(u**2 + 2*v**2)/2"', '["u", "v"]', True,
     "u = φ(y, p) from H_u = 0; H_uu > 0 (a minimum)"),
    ('"cosh(u)"', None, False,
     "H_u is not polynomial in the controls; u = φ(y, p) is not solved for"),
    ('"u**3/3 - u"', None, False, "no unique u = φ(y, p)")])
def test_control_law_notes(tmp_path, cost, controls, law, note):
    """φ from H_u = 0 and what ocgen can say of it: H_uu > 0 by leading minors, confirmed
    only when SymPy can tell their sign; no φ when H_u is not polynomial or has several
    roots."""
    table = dict(BASE, running_cost=cost)
    if controls:
        table.update(controls=controls, dynamics='["x + u + v"]')
    system = continuous_system(_problem(tmp_path, "laws", **table))
    assert (system.control_law is not None) == law
    assert system.control_law_note.endswith(note)


def test_tied_groups_of_a_rounded_tableau_and_unknown_modes():
    from ocgen.errors import OcgenError
    from ocgen.tableau import ButcherTableau
    rounded = ButcherTableau.from_dict({"name": "r", "A": [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0]],
                                        "b": [0.25, 0.25, 0.5]})
    assert control_groups(rounded, "tied") == (0, 1, 1)
    # c_3 = 0.2 + 0.3000000000000001 differs from c_2 = 0.5 by rounding only: tied
    residue = ButcherTableau.from_dict({"name": "r", "A": [[0, 0, 0], [0.5, 0, 0],
                                                          [0.2, 0.3000000000000001, 0]],
                                        "b": [0.25, 0.25, 0.5]})
    assert residue.c[2] != residue.c[1] and control_groups(residue, "tied") == (0, 1, 1)
    with pytest.raises(OcgenError) as caught:
        control_groups(rounded, "per-stage")
    assert str(caught.value) == ("unknown control parametrisation 'per-stage' (choose from "
                                 "stage, tied, step)")


def test_defaults_and_sequences():
    """Stage controls by default; explicit tableaux give their costate stages as a sequence."""
    disc = discretise(load_problem("lq"), load_tableau("rk4"))
    assert disc.controls == "stage"
    assert disc.multiplier.stages.sequence is not None
    assert disc.partner.stages.sequence is not None


def test_control_law_on_the_step_uses_the_step_names(tmp_path):
    """φ written in the step's symbols: member and free parameters renamed too."""
    problem = _problem(tmp_path, "named", **dict(
        BASE, running_cost='"(u**2 + x**2)/2 + k*x*u"', dynamics='["x + c*u"]',
        member_parameters="{ c = [2.0] }", free_parameters="{ k = 0.5 }"))
    disc = discretise(problem, load_tableau("rk4"), "stage")
    sym = disc.symbols
    allowed = {sym.t, *sym.y, *sym.p, *sym.params, *sym.free}
    assert disc.grid_control is not None and disc.grid_control[0].free_symbols <= allowed
    assert set(sym.params) <= disc.grid_control[0].free_symbols
    assert set(sym.free) <= disc.grid_control[0].free_symbols


SEPARABLE_PARTS = 'first = ["q"]\nsecond = ["p"]'


def test_why_there_is_no_partner_form(tmp_path):
    """The partner form needs every weight non-zero, and with b ≠ b̂ a separable problem whose
    running cost depends on the second part only (ADDENDA.md 1); each obstacle is named."""
    from ocgen.pair import PartitionedTableau, load_method
    two = dict(states='["q", "p"]', controls='["u"]', horizon="[0, 1]",
               initial_state="[1, 0]", terminal_cost='"q**2"', parts=SEPARABLE_PARTS)
    coupled = _problem(tmp_path, "coupled", **dict(
        two, dynamics='["p - q", "-q + u"]', running_cost='"(p**2 + u**2)/2"'))
    costly = _problem(tmp_path, "costly", **dict(
        two, dynamics='["p", "-q + u"]', running_cost='"(q**2 + u**2)/2"'))
    ruth = load_method("ruth3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideTheoryWarning)
        assert discretise(coupled, ruth).partner_note == (
            f"{ruth.name} has b ≠ b̂, so its partner pair is the costate scheme of separable "
            "problems only, but the dynamics of q depend on q (both in the first part); use "
            "the multiplier form (ADDENDA.md 1)")
        assert discretise(costly, ruth).partner_note == (
            f"{ruth.name} has b ≠ b̂, so the costate of q (first part) has the weights b̂, but "
            "the running cost, with the weights b, depends on q; use the multiplier form "
            "(ADDENDA.md 1)")
        heun = PartitionedTableau.from_dict({"name": "heun pair", "first": "heun3",
                                            "second": "heun3"})
        note = discretise(costly, heun, "step").partner_note
    assert note == ("heun pair has b_2 = 0, b̂_2 = 0: the partner form divides by every weight; "
                    "use the multiplier form (MATH.md 3.3)")


X, Y, T, H = sp.symbols("x y t h")


@pytest.mark.parametrize("expr", [
    3 * X * Y**2 * (X + sp.exp(-1) * T) - sp.Rational(1, 2) * H * X,
    H * (sp.Float(0.4358665215) * sp.tanh(X * Y) + X * (1 - Y) * (2 + T)),
    -(X - 2 * Y) * sp.sin(T * X) / (1 + X**2) + sp.Abs(Y) * sp.Max(X, 0),
    Y * (X + H * (X * Y + sp.exp(-T) * (X - Y) * (X + 2))) - X * sp.log(1 + Y**2),
])
def test_derivatives_are_sympys_term_for_term(expr):
    """The Lagrangian's gradient (``_gradient``, ``_derivative``) is sp.diff's result itself,
    the same tree: the generated text depends on its form, not only on its value."""
    gradient = _gradient(expr, (X, Y, T, H))
    for x in (X, Y, T, H):
        assert _derivative(expr, x) == sp.diff(expr, x)
        assert gradient[x] == sp.diff(expr, x)
