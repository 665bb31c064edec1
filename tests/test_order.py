"""Classical and optimal-control order certificates (ocgen.order).

Every tableau and every expected order below comes from the literature (Butcher 2016;
Hairer, Nørsett & Wanner I; Hager 2000; MATH.md 4), never from this code's output.
"""

import dataclasses
import fractions
import json
import math
import pathlib
import re

import pytest
import sympy as sp
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from ocgen.errors import InputError
from ocgen.order import (HAGER_CONDITIONS, certificate, classical_order, control_order,
                         format_certificate, format_tableau, hager_conditions)
from ocgen.tableau import ButcherTableau
from ocgen.tableau import load_tableau as load_tableau_file
from ocgen.trees import (A_COLOUR, LEAF, PARTNER_COLOUR, RootedTree, bicoloured_trees,
                         elementary_weight, residual_order_condition, symplectic_classes)

R = sp.Rational
S15 = sp.sqrt(15)
S3 = sp.sqrt(3)


def method(name, A, b):
    return ButcherTableau(name=name, A=sp.ImmutableMatrix(A), b=list(b))


EULER = method("Euler", [[0]], [1])
MIDPOINT = method("explicit midpoint", [[0, 0], [R(1, 2), 0]], [0, 1])
HEUN2 = method("Heun-2", [[0, 0], [1, 0]], [R(1, 2), R(1, 2)])
KUTTA3 = method("Kutta-3", [[0, 0, 0], [R(1, 2), 0, 0], [-1, 2, 0]],
                [R(1, 6), R(2, 3), R(1, 6)])
RALSTON3 = method("Ralston-3", [[0, 0, 0], [R(1, 2), 0, 0], [0, R(3, 4), 0]],
                  [R(2, 9), R(1, 3), R(4, 9)])
SSPRK3 = method("SSPRK3", [[0, 0, 0], [1, 0, 0], [R(1, 4), R(1, 4), 0]],
                [R(1, 6), R(1, 6), R(2, 3)])
HEUN3 = method("Heun-3", [[0, 0, 0], [R(1, 3), 0, 0], [0, R(2, 3), 0]],
               [R(1, 4), 0, R(3, 4)])
RK4 = method("RK4", [[0, 0, 0, 0], [R(1, 2), 0, 0, 0], [0, R(1, 2), 0, 0], [0, 0, 1, 0]],
             [R(1, 6), R(1, 3), R(1, 3), R(1, 6)])
RULE38 = method("3/8 rule", [[0, 0, 0, 0], [R(1, 3), 0, 0, 0], [R(-1, 3), 1, 0, 0],
                             [1, -1, 1, 0]], [R(1, 8), R(3, 8), R(3, 8), R(1, 8)])
GAUSS2 = method("Gauss-2", [[R(1, 4), R(1, 4) - S3 / 6], [R(1, 4) + S3 / 6, R(1, 4)]],
                [R(1, 2), R(1, 2)])
GAUSS3 = method("Gauss-3", [
    [R(5, 36), R(2, 9) - S15 / 15, R(5, 36) - S15 / 30],
    [R(5, 36) + S15 / 24, R(2, 9), R(5, 36) - S15 / 24],
    [R(5, 36) + S15 / 30, R(2, 9) + S15 / 15, R(5, 36)]], [R(5, 18), R(4, 9), R(5, 18)])
RADAU_IIA2 = method("Radau IIA-2", [[R(5, 12), R(-1, 12)], [R(3, 4), R(1, 4)]],
                    [R(3, 4), R(1, 4)])
LOBATTO_IIIA3 = method("Lobatto IIIA-3", [[0, 0, 0], [R(5, 24), R(1, 3), R(-1, 24)],
                                          [R(1, 6), R(2, 3), R(1, 6)]],
                       [R(1, 6), R(2, 3), R(1, 6)])
# Two-stage, second order, c2 = 1/3: b = (−1/2, 3/2) has a negative weight.
NEGATIVE = method("negative weight", [[0, 0], [R(1, 3), 0]], [R(-1, 2), R(3, 2)])


# -- classical order -------------------------------------------------------------------------
@pytest.mark.parametrize("tableau, order", [
    (EULER, 1), (MIDPOINT, 2), (HEUN2, 2), (KUTTA3, 3), (RALSTON3, 3), (SSPRK3, 3),
    (HEUN3, 3), (RK4, 4), (RULE38, 4), (GAUSS2, 4), (GAUSS3, 6), (RADAU_IIA2, 3),
    (LOBATTO_IIIA3, 4), (NEGATIVE, 2),
])
def test_classical_order(tableau, order):
    result = classical_order(tableau)
    assert result.order == order
    assert not result.at_least and result.max_order == 8
    assert result.tolerance == 0
    assert result.failed and all(c.order == order + 1 for c in result.failed)
    assert all(c.kind == "classical" and c.residual != 0 for c in result.failed)
    assert all(c.residual == c.value - c.expected for c in result.failed)


def test_order_reached_at_max_is_a_lower_bound():
    result = classical_order(GAUSS3, max_order=5)
    assert result.order == 5 and result.at_least and not result.failed
    assert str(result) == "≥ 5"


def test_failing_condition_values_are_exact():
    # RK4: Σ b_i c_i⁴ = 5/24 ≠ 1/5 (Butcher 2016, §322)
    failed = {c.tree.bracket(): c for c in classical_order(RK4).failed}
    assert failed["[τ⁴]"].value == R(5, 24) and failed["[τ⁴]"].expected == R(1, 5)
    assert failed["[τ⁴]"].formula == "Σ b_i c_i⁴"
    # Gauss-3 fails at order 7: the 3-point Gauss rule integrates x⁶ on [0, 1] with error
    # (3!)⁴ 6! / (7 (6!)³) = 1/2800, so Σ b_i c_i⁶ = 1/7 − 1/2800 exactly, surds cancelling.
    g = {c.tree.bracket(): c for c in classical_order(GAUSS3).failed}
    assert g["[τ⁶]"].value == R(1, 7) - R(1, 2800)
    assert g["[τ⁶]"].residual == R(-1, 2800)


def test_float_tableau_uses_its_tolerance():
    rk4_float = method("RK4 (floats)", [[sp.Float(float(x), 17) for x in row]
                                        for row in RK4.A.tolist()],
                       [sp.Float(float(x), 17) for x in RK4.b])
    result = classical_order(rk4_float)
    assert result.order == 4 and result.tolerance == 1e-15  # 17 digits: τ = 10^(2−17)
    assert control_order(rk4_float).order == 4


# -- optimal-control order (MATH.md 4, Hager 2000) -------------------------------------------
@pytest.mark.parametrize("tableau, order", [
    (EULER, 1), (HEUN2, 2), (KUTTA3, 3), (RALSTON3, 2), (SSPRK3, 2), (RK4, 4), (RULE38, 4),
    (GAUSS2, 4), (RADAU_IIA2, 3), (LOBATTO_IIIA3, 4),
])
def test_control_order(tableau, order):
    result = control_order(tableau)
    assert result.order == order and result.reason is None and not result.at_least
    assert result.failed and all(c.kind == "control" for c in result.failed)
    every = control_order(tableau, all_trees=True)
    assert every.order == order and every.kind == "control"
    assert every.failed and all(c.kind == "control" for c in every.failed)


def test_gauss3_control_order_at_least_six():
    result = control_order(GAUSS3)  # Gauss-s: 2s
    assert result.order == 6 and result.at_least and not result.failed


@pytest.mark.parametrize("tableau", [SSPRK3, RALSTON3])
def test_ssprk3_ralston3_fail_hagers_order3_condition(tableau):
    result = control_order(tableau)
    assert [c.formula for c in result.failed] == ["Σ d_j²/b_j"]
    assert result.failed[0].expected == R(1, 3)


def test_ssprk3_report_names_the_failing_formula():
    (cond,) = control_order(SSPRK3).failed
    assert cond.value == R(5, 6)  # d = (1/3, 1/6, 0): 6/9 + 6/36 = 5/6
    assert str(cond) == "Σ d_j²/b_j = 5/6, needs 1/3"
    assert "Σ d_j²/b_j = 5/6, needs 1/3" in format_certificate(SSPRK3)


def test_rk4_fails_above_order_four_with_trees():
    result = control_order(RK4)
    assert result.order == 4
    assert all(c.order == 5 and c.tree.order == 5 for c in result.failed)


def test_zero_weight_has_no_control_order():
    result = control_order(MIDPOINT)
    assert result.order is None and "b_1 = 0" in result.reason
    assert str(result).startswith("undefined")
    assert "b_2 = 0" in control_order(HEUN3).reason
    assert (result.kind, result.tolerance, result.max_order) == ("control", 0, 6)
    rounded = method("midpoint (decimals)", [[0, 0], [sp.Float("0.5", 15), 0]],
                     [0, sp.Float("1.0", 15)])
    assert control_order(rounded, max_order=3).tolerance == 1e-13  # 15 digits: 10^(2−15)


def test_the_rounding_tolerance_at_its_boundary():
    """A rounded condition of tree t holds when |residual| ≤ τ·|t|·W̄(t), W̄ with absolute
    values and |b_j| + |b_j a_ji / b_i| for Ã (module docstring), on both sides of the bound.

    b = (½, ½), A = [[2, −2], [a, 0]] in 15 digits (τ = 1e-13), so c = (0, a):
    * [τ] (an A edge): Σ b c − ½ = (a − 1)/2 and W̄ = Σ_i |b_i| Σ_j |a_ij| = 2 + |a|/2 ≈ 2.5,
      a tolerance of 2·2.5·τ = 5e-13 (Σ b c ≈ ½ alone would give 1e-13);
    * [τ̃] (a partner edge): Σ_i b_i Σ_j ã_ij − ½ = (Σ b)² − Σ b c − ½ = (1 − a)/2 and
      W̄ = (Σ|b|)² + Σ_j |b_j| Σ_i |a_ji| ≈ 3.5, a tolerance of 7e-13.
    a = 1 − 8e-13 puts both residuals at 4e-13: order 2 holds, classical and control (Σ b c²
    = a²/2 ≠ ⅓ fails at order 3); a = 1 − 12e-13 puts [τ] at 6e-13 and fails it.
    """
    def rounded(a):
        F = lambda x: sp.Float(x, 15)  # noqa: E731
        return method(f"a = {a}", [[F("2.0"), F("-2.0")], [F(a), F("0.0")]],
                      [F("0.5"), F("0.5")])

    inside, outside = rounded("0.9999999999992"), rounded("0.9999999999988")
    assert inside.tolerance == outside.tolerance == 1e-13
    assert classical_order(inside, max_order=4).order == 2
    assert control_order(inside, max_order=4, all_trees=True).order == 2
    assert control_order(inside, max_order=4).order == 2
    failing = classical_order(outside, max_order=4)
    assert failing.order == 1
    assert [c.residual for c in failing.failed] == [sp.Rational(-6, 10**13)]
    assert control_order(outside, max_order=4, all_trees=True).order == 1


def test_hager_conditions_need_nonzero_weights():
    with pytest.raises(InputError, match=r"^explicit midpoint: Hager's conditions divide by b, "
                                         r"but b_1 = 0: a stage with b_i = 0 has no partner"):
        hager_conditions(MIDPOINT)


def test_rounded_failure_reported_with_hagers_formulas_keeps_the_tolerance():
    result = control_order(str(EXAMPLES / "ssp22_star.toml"), max_order=4)
    assert result.order == 2 and result.tolerance == 1e-13  # 15 digits: 10^(2−15)
    assert result.failed[0].formula == "Σ b_j c_j²"


def test_negative_weight_has_no_control_order():
    result = control_order(NEGATIVE)
    assert result.order is None
    assert "b_1 = -1/2 < 0" in result.reason and "unbounded below" in result.reason


def test_bad_max_order():
    with pytest.raises(InputError, match="^max_order must be an integer from 1 to 12, found 0$"):
        classical_order(RK4, max_order=0)
    with pytest.raises(InputError,
                       match="^max_control_order must be an integer from 1 to 8, found 99$"):
        control_order(RK4, max_order=99)
    with pytest.raises(InputError, match="^max_order must be an integer from 1 to 12, found True$"):
        classical_order(RK4, max_order=True)
    euler = load_tableau_file("euler")  # the limits themselves are allowed
    assert classical_order(euler, max_order=12).order == 1
    assert control_order(euler, max_order=8).order == 1


# -- certificate -----------------------------------------------------------------------------
KEYS = {"name", "stages", "explicit", "kind", "order", "order_at_least", "control_order",
        "control_order_reason", "weights_positive", "symplectic", "exact", "tolerance",
        "partner", "c_tilde", "failed_conditions"}


def test_certificate_schema():
    cert = certificate(SSPRK3)
    assert KEYS <= set(cert)
    json.dumps(cert)  # serialisable
    assert cert["order"] == 3 and cert["control_order"] == 2
    assert cert["partner"]["c"] == cert["c_tilde"] == ["-1", "0", "1"]  # c̃ = 1 − d/b
    failed = cert["failed_conditions"]
    assert {f["kind"] for f in failed} == {"classical", "control"}
    assert {"kind", "order", "tree", "formula", "value", "expected", "residual",
            "note"} == set(failed[0])
    control = [f for f in failed if f["kind"] == "control"]
    assert control == [{"kind": "control", "order": 3, "tree": "[τ̃²]", "formula": "Σ d_j²/b_j",
                        "value": "5/6", "expected": "1/3", "residual": "1/2", "note": None}]


def test_certificate_of_rk4_partner():
    cert = certificate(RK4)
    # MATH.md 3.2: classical RK4's partner
    assert cert["partner"]["A"] == [["1/6", "-2/3", "1/3", "1/6"], ["1/6", "1/3", "-1/6", "1/6"],
                                    ["1/6", "1/3", "1/3", "-1/3"], ["1/6", "1/3", "1/3", "1/6"]]
    assert cert["c_tilde_equals_c"] is True and cert["symplectic"] is False


def test_certificate_without_partner():
    cert = certificate(MIDPOINT)
    assert cert["partner"] is None and cert["c_tilde"] is None
    assert cert["control_order"] is None and "b_1 = 0" in cert["control_order_reason"]
    assert cert["zero_weights"] == [1] and cert["weights_positive"] is False


def test_certificate_of_gauss3_is_exact():
    cert = certificate(GAUSS3)
    assert cert["exact"] is True and cert["tolerance"] == 0
    assert cert["symplectic"] is True and cert["order"] == 6
    assert cert["control_order"] == 6 and cert["control_order_at_least"] is True
    assert "sqrt(15)" in cert["A"][0][1]


def test_partner_strings_agree_with_tableau_partner():
    for t in (GAUSS2, RADAU_IIA2, KUTTA3):
        cert = certificate(t)
        exact = t.partner()
        for i in range(t.stages):
            for j in range(t.stages):
                assert sp.simplify(sp.sympify(cert["partner"]["A"][i][j]) - exact.A[i, j]) == 0


def test_format_certificate_mentions_both_orders():
    text = format_certificate(RK4)
    assert "Classical order: 4" in text and "Optimal-control order: 4" in text
    assert "c̃ = (0, 1/2, 1/2, 1)  = c" in text
    text = format_certificate(MIDPOINT)
    assert "undefined" in text and "b_1 = 0" in text


# -- property tests on random rational tableaux ----------------------------------------------
small = st.fractions(min_value=-2, max_value=2, max_denominator=5).map(
    lambda f: R(f.numerator, f.denominator))
nonzero = small.filter(lambda x: x != 0)


@st.composite
def tableaux(draw, normalise=False):
    s = draw(st.integers(1, 4))
    A = [[draw(small) for _ in range(s)] for _ in range(s)]
    b = [draw(nonzero) for _ in range(s)]
    if normalise:
        total = sum(b)
        assume(total != 0)
        b = [x / total for x in b]
        assume(all(x != 0 for x in b))
    return method("random", A, b)


@settings(max_examples=40, deadline=None)
@given(tableaux())
def test_partner_identities(t):
    P = t.partner()
    s = t.stages
    for i in range(s):
        for j in range(s):  # the pair is a symplectic PRK (MATH.md 3.2)
            assert t.b[i] * P.A[i, j] + t.b[j] * t.A[j, i] - t.b[i] * t.b[j] == 0
    assert P.partner().A == t.A


@settings(max_examples=40, deadline=None)
@given(tableaux(normalise=True))
def test_c_tilde_is_one_minus_d_over_b(t):
    cert = certificate(t, max_order=3, max_control_order=3)
    d = t.d
    assert [sp.Rational(x) for x in cert["c_tilde"]] == [1 - d[i] / t.b[i]
                                                         for i in range(t.stages)]


@settings(max_examples=40, deadline=None)
@given(tableaux(normalise=True))
def test_control_order_at_most_classical(t):
    classical = classical_order(t, max_order=4)
    control = control_order(t, max_order=4)
    if control.order is not None:
        assert control.order <= classical.order
        assert control.order == control_order(t, max_order=4, all_trees=True).order


def _bi(*edges):
    return RootedTree([(A_COLOUR if k == "a" else PARTNER_COLOUR, u) for k, u in edges])


def _direct_hager(t):
    """Hager's 13 left sides, evaluated straight from the formulas with SymPy."""
    s, A, b = t.stages, t.A, t.b
    c = [sum(A[j, k] for k in range(s)) for j in range(s)]
    d = [sum(b[i] * A[i, j] for i in range(s)) for j in range(s)]
    J = range(s)
    return [
        sum(b), sum(d),
        sum(b[j] * c[j] ** 2 for j in J), sum(c[j] * d[j] for j in J),
        sum(d[j] ** 2 / b[j] for j in J),
        sum(b[j] * c[j] ** 3 for j in J),
        sum(b[j] * c[j] * A[j, k] * c[k] for j in J for k in J),
        sum(d[j] * c[j] ** 2 for j in J),
        sum(d[j] * A[j, k] * c[k] for j in J for k in J),
        sum(c[j] * d[j] ** 2 / b[j] for j in J),
        sum(d[j] ** 3 / b[j] ** 2 for j in J),
        sum(b[j] * c[j] * A[j, k] * d[k] / b[k] for j in J for k in J),
        sum(d[j] * A[j, k] * d[k] / b[k] for j in J for k in J),
    ]


@settings(max_examples=30, deadline=None)
@given(tableaux())
def test_hager_formulas_agree_with_the_tree_engine(t):
    # With β = Σb, c̃ = β − d/b, so each Hager formula is a fixed combination of bi-coloured
    # elementary weights W (evaluated by the generic tree code on the partner pair).
    P = t.partner()
    W = lambda *edges: elementary_weight(_bi(*edges), t.A, t.b, partner=P.A)  # noqa: E731
    T = LEAF
    beta = sum(t.b)
    tree_values = [
        elementary_weight(T, t.A, t.b),
        W(("a", T)),
        W(("a", T), ("a", T)),
        W(("a", _bi(("a", T)))),
        beta ** 3 - 2 * beta * W(("t", T)) + W(("t", T), ("t", T)),
        W(("a", T), ("a", T), ("a", T)),
        W(("a", T), ("a", _bi(("a", T)))),
        W(("a", _bi(("a", T), ("a", T)))),
        W(("a", _bi(("a", _bi(("a", T)))))),
        beta ** 2 * W(("a", T)) - 2 * beta * W(("a", T), ("t", T))
        + W(("a", T), ("t", T), ("t", T)),
        beta ** 4 - 3 * beta ** 2 * W(("t", T)) + 3 * beta * W(("t", T), ("t", T))
        - W(("t", T), ("t", T), ("t", T)),
        beta * W(("a", T), ("a", T)) - W(("a", T), ("a", _bi(("t", T)))),
        beta * W(("a", _bi(("a", T)))) - W(("a", _bi(("a", _bi(("t", T)))))),
    ]
    direct = _direct_hager(t)
    library = [c.value for c in hager_conditions(t)]
    for x, y, z in zip(direct, tree_values, library):
        assert sp.simplify(x - y) == 0 and sp.simplify(x - z) == 0
    assert [c.expected for c in hager_conditions(t)] == [h[4] for h in HAGER_CONDITIONS]


# -- families: 3-stage order 3 and 4-stage order 4 (Butcher; HNW I, II.1) -------------------
def explicit3(u, v):
    """The two-parameter family of 3-stage order-3 explicit methods, c2 = u, c3 = v."""
    b2 = (3 * v - 2) / (6 * u * (v - u))
    b3 = (2 - 3 * u) / (6 * v * (v - u))
    a32 = v * (v - u) / (u * (2 - 3 * u))
    return method("explicit3", [[0, 0, 0], [u, 0, 0], [v - a32, a32, 0]], [1 - b2 - b3, b2, b3])


def _pair_order(t, max_order):
    """Highest q ≤ max_order with every bi-coloured condition of order ≤ q satisfied."""
    P = t.partner()
    for q in range(1, max_order + 1):
        if any(residual_order_condition(u, t.A, t.b, partner=P.A) != 0
               for u in bicoloured_trees(q)):
            return q - 1
    return max_order


params = st.fractions(min_value=R(-3, 2), max_value=2, max_denominator=6).map(
    lambda f: R(f.numerator, f.denominator))


@settings(max_examples=40, deadline=None)
@given(params, params)
@example(R(1, 2), 1)        # Kutta-3
@example(R(1, 3), 1)
@example(R(1, 2), R(3, 4))  # Ralston-3
@example(1, R(1, 2))        # SSPRK3
def test_three_stage_order_three_family(u, v):
    assume(u not in (0, R(2, 3)) and v != 0 and u != v)
    t = explicit3(u, v)
    assume(all(x != 0 for x in t.b))
    assert classical_order(t, max_order=5).order == 3
    pair = _pair_order(t, 4)
    assert (pair == 3) == (v == 1) and pair >= 2  # MATH.md 4: OC order 3 iff c3 = 1
    hager3 = {c.formula: c for c in hager_conditions(t, 3)}
    assert (hager3["Σ d_j²/b_j"].residual == 0) == (v == 1)
    result = control_order(t, max_order=4)
    if all(x > 0 for x in t.b):
        assert result.order == pair
    else:
        assert result.order is None and "< 0" in result.reason


def explicit4(u, v):
    """4-stage order-4 explicit methods, general case c2 = u, c3 = v, c4 = 1 (HNW I, II.1)."""
    c = [0, u, v, 1]
    V = sp.Matrix([[ci ** k for ci in c] for k in range(4)])
    b = list(V.solve(sp.Matrix([1, R(1, 2), R(1, 3), R(1, 4)])))
    a32, a42, a43 = sp.symbols("a32 a42 a43")
    eqs = [b[2] * a32 * u + b[3] * (a42 * u + a43 * v) - R(1, 6),
           b[2] * v * a32 * u + b[3] * (a42 * u + a43 * v) - R(1, 8),
           b[2] * a32 * u ** 2 + b[3] * (a42 * u ** 2 + a43 * v ** 2) - R(1, 12)]
    (sol,) = sp.linsolve(eqs, [a32, a42, a43])
    a32, a42, a43 = sol
    A = [[0, 0, 0, 0], [u, 0, 0, 0], [v - a32, a32, 0, 0], [1 - a42 - a43, a42, a43, 0]]
    return method("explicit4", A, b)


def special4(case, w):
    """Butcher's one-parameter special cases of 4-stage order 4 (HNW I, II.1, w free)."""
    if case == 2:  # c2 = c3 = 1/2, b3 = w
        A = [[0, 0, 0, 0], [R(1, 2), 0, 0, 0], [R(1, 2) - 1 / (6 * w), 1 / (6 * w), 0, 0],
             [0, 1 - 3 * w, 3 * w, 0]]
        b = [R(1, 6), R(2, 3) - w, w, R(1, 6)]
    elif case == 3:  # c2 = 1, c3 = 1/2, b4 = w
        A = [[0, 0, 0, 0], [1, 0, 0, 0], [R(3, 8), R(1, 8), 0, 0],
             [1 - 1 / (4 * w), -1 / (12 * w), 1 / (3 * w), 0]]
        b = [R(1, 6), R(1, 6) - w, R(2, 3), w]
    else:  # c2 = 1/2, c3 = 0, b3 = w
        A = [[0, 0, 0, 0], [R(1, 2), 0, 0, 0], [-1 / (12 * w), 1 / (12 * w), 0, 0],
             [-R(1, 2) - 6 * w, R(3, 2), 6 * w, 0]]
        b = [R(1, 6) - w, R(2, 3), w, R(1, 6)]
    return method(f"case {case}", A, b)


def _check_order4(t):
    assert classical_order(t, max_order=5).order == 4
    if all(x != 0 for x in t.b):
        assert all(c.residual == 0 for c in hager_conditions(t))  # all 13 hold
        assert _pair_order(t, 4) == 4
        result = control_order(t, max_order=5)
        assert result.order == (4 if all(x > 0 for x in t.b) else None)


@settings(max_examples=25, deadline=None)
@given(params, params)
@example(R(1, 3), R(2, 3))  # the 3/8 rule
@example(R(2, 5), R(7, 8))
def test_four_stage_order_four_general_case(u, v):
    assume(u not in (0, R(1, 2), 1) and v not in (0, 1) and u != v)
    assume(6 * u * v - 4 * (u + v) + 3 != 0)
    _check_order4(explicit4(u, v))


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([2, 3, 4]), nonzero)
def test_four_stage_order_four_special_cases(case, w):
    _check_order4(special4(case, w))


def test_classical_members_of_the_families():
    assert special4(2, R(1, 3)).A == RK4.A and special4(2, R(1, 3)).b == RK4.b
    assert explicit4(R(1, 3), R(2, 3)).A == RULE38.A
    assert explicit3(R(1, 2), 1).A == KUTTA3.A and explicit3(R(1, 2), R(3, 4)).A == RALSTON3.A


@pytest.mark.parametrize("x", [
    sp.sqrt(2) / 4 + sp.sqrt(3) / 6,          # Q(√2, √3), degree 4
    sp.sqrt(R(1, 2) + sp.sqrt(3) / 3),        # minimal polynomial 12x⁴ − 12x² − 1: not monic
    sp.sqrt(R(1, 2) + sp.sqrt(2) / 4),        # cos(π/8)
    sp.cbrt(2) / 2,                           # Q(∛2), degree 3
    sp.CRootOf(sp.Symbol("x") ** 2 + sp.Symbol("x") - 1, 1),  # (√5 − 1)/2: θ² = 1 − θ
])
def test_algebraic_fields_agree_with_direct_sympy(x):
    # The fast engine (algebraic integers with common denominators) against plain SymPy,
    # compared to 60 digits (the engine's own verdicts are exact).
    close = lambda a, b: abs(sp.N(a - b, 60)) < sp.Float("1e-50")  # noqa: E731
    t = method("field", [[x / 3, 0], [x, R(1, 5)]], [1 - x / 2, x / 2])
    P = t.partner()
    assert certificate(t, max_order=4, max_control_order=3)["exact"] is True
    for cond in classical_order(t, max_order=4).failed:
        assert close(cond.value, elementary_weight(cond.tree, t.A, t.b))
    from ocgen.order import _method
    m = _method(t)
    for q in (1, 2, 3):
        for u in bicoloured_trees(q):
            direct = elementary_weight(u, t.A, t.b, partner=P.A)
            assert close(m.value(u), direct)
            assert m.holds(u) == close(direct, R(1, u.density))


# -- what users read: the printed certificate and the JSON values ------------------------------
# Every number below is recomputed here with plain fractions from the literature tableaux
# (SSPRK3: Shu & Osher 1988; RK4: Kutta 1901; explicit midpoint: Runge 1895), never read back
# from the code's output.
F = fractions.Fraction
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
SSPRK3_F = ([[F(0), F(0), F(0)], [F(1), F(0), F(0)], [F(1, 4), F(1, 4), F(0)]],
            [F(1, 6), F(1, 6), F(2, 3)])
RK4_F = ([[F(0)] * 4, [F(1, 2), F(0), F(0), F(0)], [F(0), F(1, 2), F(0), F(0)],
          [F(0), F(0), F(1), F(0)]], [F(1, 6), F(1, 3), F(1, 3), F(1, 6)])
MIDPOINT_F = ([[F(0), F(0)], [F(1, 2), F(0)]], [F(0), F(1)])


def _fr(A, b):
    """c = A1, the partner ã_ij = b_j − b_j a_ji / b_i (MATH.md 3.2), c̃ = Ã1, d = Aᵀb."""
    s = len(b)
    c = [sum(row) for row in A]
    if any(x == 0 for x in b):
        return c, None, None, None
    P = [[b[j] - b[j] * A[j][i] / b[i] for j in range(s)] for i in range(s)]
    d = [sum(b[i] * A[i][j] for i in range(s)) for j in range(s)]
    return c, P, [sum(row) for row in P], d


def _tree_conditions(A, b):
    """(Σ b_i Φ_i(t), 1/γ(t)) of the rooted trees of order ≤ 5 (Butcher 2016, §30), by bracket."""
    s = len(b)
    R = range(s)
    c = [sum(row) for row in A]
    times = lambda u, v: [u[i] * v[i] for i in R]  # noqa: E731
    Amul = lambda u: [sum(A[i][j] * u[j] for j in R) for i in R]  # noqa: E731
    bdot = lambda u: sum(b[i] * u[i] for i in R)  # noqa: E731
    c2, c3 = times(c, c), times(times(c, c), c)
    Ac = Amul(c)
    return {
        "τ": (sum(b), F(1)),
        "[τ]": (bdot(c), F(1, 2)),
        "[τ²]": (bdot(c2), F(1, 3)), "[[τ]]": (bdot(Ac), F(1, 6)),
        "[τ³]": (bdot(c3), F(1, 4)), "[τ[τ]]": (bdot(times(c, Ac)), F(1, 8)),
        "[[τ²]]": (bdot(Amul(c2)), F(1, 12)), "[[[τ]]]": (bdot(Amul(Ac)), F(1, 24)),
        "[τ⁴]": (bdot(times(c3, c)), F(1, 5)), "[τ²[τ]]": (bdot(times(c2, Ac)), F(1, 10)),
        "[τ[τ²]]": (bdot(times(c, Amul(c2))), F(1, 15)),
        "[τ[[τ]]]": (bdot(times(c, Amul(Ac))), F(1, 30)),
        "[[τ][τ]]": (bdot(times(Ac, Ac)), F(1, 20)), "[[τ³]]": (bdot(Amul(c3)), F(1, 20)),
        "[[τ[τ]]]": (bdot(Amul(times(c, Ac))), F(1, 40)),
        "[[[τ²]]]": (bdot(Amul(Amul(c2))), F(1, 60)),
        "[[[[τ]]]]": (bdot(Amul(Amul(Ac))), F(1, 120)),
    }


def _size(bracket):
    """The number of vertices of a tree written like [τ²[τ]]."""
    return sum({"[": 1, "τ": 1, "²": 1, "³": 2, "⁴": 3}.get(x, 0) for x in bracket)


def _grid_numbers(lines):
    """(A, b, c) read back from a printed c | A over bᵀ grid."""
    rows = [line.split("|") for line in lines if "|" in line]
    assert rows[-1][0].strip() == ""
    return ([[F(x) for x in right.split()] for _, right in rows[:-1]],
            [F(x) for x in rows[-1][1].split()], [F(left.strip()) for left, _ in rows[:-1]])


def _failure_lines(lines):
    """{tree or formula: (value, needed)} from printed "formula = v, needs w   tree t" lines."""
    out = {}
    for line in lines:
        m = re.fullmatch(r"    (Σ [^=]*) = (\S+), needs (\S+)(?:   tree (\S+))?", line)
        if m:
            out[m[4] or m[1]] = (F(m[2]), F(m[3]))
    return out


def _body(text):
    """The report without its wrapped "source: …" lines."""
    lines = text.splitlines()
    assert lines[1].startswith("source: ")
    k = 2
    while lines[k].startswith("  ") and not lines[k].startswith("    "):
        k += 1
    return [lines[0]] + lines[k:], lines[1:k]


SSPRK3_REPORT = """\
SSPRK3: 3 stages, explicit
      0 |   0    0    0
      1 |   1    0    0
    1/2 | 1/4  1/4    0
    ----+--------------
        | 1/6  1/6  2/3
Partner tableau Ã = 1bᵀ − B⁻¹AᵀB (costate stages), b̃ = b:
    -1 | 1/6  -5/6  -1/3
     0 | 1/6   1/6  -1/3
     1 | 1/6   1/6   2/3
    ---+----------------
       | 1/6   1/6   2/3
c̃ = (-1, 0, 1)  ≠ c = (0, 1, 1/2): stage costates sit at other times than the stages
Classical order: 3   (8 conditions, exact arithmetic)
  fails at order 4:
    Σ b_i c_i a_ij c_j = 1/12, needs 1/8   tree [τ[τ]]
    Σ b_i a_ij c_j² = 1/6, needs 1/12   tree [[τ²]]
    Σ b_i a_ij a_jk c_k = 0, needs 1/24   tree [[[τ]]]
Optimal-control order: 2   (5 independent conditions)
  fails at order 3:
    Σ d_j²/b_j = 5/6, needs 1/3"""


def test_printed_certificate_of_ssprk3():
    """README's tour: `ocgen order ssprk3`, every number checked against fractions."""
    from ocgen.tableau import load_tableau
    t = load_tableau("ssprk3")
    body, source = _body(format_certificate(t))
    assert body == SSPRK3_REPORT.splitlines()
    # the source: the citation wrapped at 96 characters, continued with an indent of 2
    assert all(len(x) <= 96 for x in source) and len(source) > 1
    assert all(x.startswith("  ") and x[2] != " " for x in source[1:])
    assert "".join(source).replace(" ", "") == ("source:" + t.citation).replace(" ", "")
    # the numbers
    A, b = SSPRK3_F
    c, P, ct, d = _fr(A, b)
    lines = SSPRK3_REPORT.splitlines()
    assert _grid_numbers(lines[1:6]) == (A, b, c)
    assert _grid_numbers(lines[7:12]) == (P, b, ct)
    assert lines[12] == (f"c̃ = ({', '.join(map(str, ct))})  ≠ c = ({', '.join(map(str, c))}):"
                         " stage costates sit at other times than the stages")
    conditions = _tree_conditions(A, b)
    # order 3 holds (1 + 1 + 2 trees); of the 4 trees of order 4, exactly the listed ones fail
    assert all(v == w for k, (v, w) in conditions.items() if _size(k) <= 3)
    order4 = [k for k in conditions if _size(k) == 4]
    assert len(order4) == 4  # 1 + 1 + 2 + 4 = 8 conditions checked
    printed = _failure_lines(lines[14:18])
    assert printed == {k: conditions[k] for k in order4 if conditions[k][0] != conditions[k][1]}
    # the optimal-control order, one condition per class of orders 1, 2, 3 (1 + 1 + 3 = 5):
    # Hager's order-3 conditions, of which Σ d_j²/b_j fails
    assert sum(b[j] * c[j] ** 2 for j in range(3)) == F(1, 3)
    assert sum(c[j] * d[j] for j in range(3)) == F(1, 6)
    assert _failure_lines(lines[19:]) == {"Σ d_j²/b_j": (sum(x * x / y for x, y in zip(d, b)),
                                                        F(1, 3))}


def test_printed_certificate_of_rk4():
    A, b = RK4_F
    c, P, ct, d = _fr(A, b)
    text = format_certificate(RK4)
    lines = text.splitlines()
    assert lines[0] == "RK4: 4 stages, explicit" and lines[1].startswith("      0 |")
    assert _grid_numbers(lines[1:7]) == (A, b, c)
    assert lines[7] == "Partner tableau Ã = 1bᵀ − B⁻¹AᵀB (costate stages), b̃ = b:"
    assert _grid_numbers(lines[8:14]) == (P, b, ct)
    assert lines[5] == "    ----+-------------------"
    assert lines[12] == "    ----+----------------------"
    assert ct == c and lines[14] == "c̃ = (0, 1/2, 1/2, 1)  = c"
    conditions = _tree_conditions(A, b)
    failing5 = [k for k, (v, w) in conditions.items() if _size(k) == 5 and v != w]
    assert all(v == w for k, (v, w) in conditions.items() if _size(k) <= 4)
    # 1 + 1 + 2 + 4 + 9 rooted trees of order ≤ 5
    assert lines[15] == "Classical order: 4   (17 conditions, exact arithmetic)"
    assert lines[16] == "  fails at order 5:"
    printed = _failure_lines(lines[17:20])
    assert len(printed) == 3 and printed == {k: conditions[k] for k in printed}
    assert lines[20] == f"    … and {len(failing5) - 3} more"
    # 1 + 1 + 3 + 8 + 27 classes of bi-coloured trees (oriented free trees) of order ≤ 5
    assert lines[21] == "Optimal-control order: 4   (40 independent conditions)"
    representatives = [cls[0][0] for cls in symplectic_classes(5)]
    Pm = sp.Matrix(P)
    failing = [u for u in representatives
               if elementary_weight(u, RK4.A, RK4.b, partner=Pm) != R(1, u.density)]
    assert len(representatives) == 27
    assert _failure_lines(lines[23:26]) == printed
    assert lines[26:] == [f"    … and {len(failing) - 3} more"]


def test_printed_certificate_without_partner():
    A, b = MIDPOINT_F
    c, *_ = _fr(A, b)
    body, _ = _body(format_certificate("explicit midpoint"))
    conditions = _tree_conditions(A, b)
    assert body[:6] == ["Explicit midpoint: 2 stages, explicit", "      0 |   0  0",
                        "    1/2 | 1/2  0", "    ----+-------", "        |   0  1",
                        "Partner tableau Ã: none (b_1 = 0)"]
    assert _grid_numbers(body[1:5]) == (A, b, c)
    assert body[6] == "Classical order: 2   (4 conditions, exact arithmetic)"
    assert _failure_lines(body[8:10]) == {k: conditions[k] for k in ("[τ²]", "[[τ]]")}
    assert conditions["[τ²]"][0] != F(1, 3) and conditions["[[τ]]"][0] != F(1, 6)
    assert body[10:] == [
        "Optimal-control order: undefined (b_1 = 0: a stage with b_i = 0 has no partner "
        "(costate) stage and its stage control carries no running cost, so the discrete "
        "problem loses coercivity (MATH.md 3.3))"]


def test_printed_certificate_of_forward_euler():
    """Euler's partner is the implicit Euler step ã = 1 (b = 1, a = 0): c̃ = 1 ≠ c = 0."""
    body, _ = _body(format_certificate("euler"))
    assert body == [
        "Forward Euler: 1 stage, explicit",
        "    0 | 0", "    --+--", "      | 1",
        "Partner tableau Ã = 1bᵀ − B⁻¹AᵀB (costate stages), b̃ = b:",
        "     1 | 1", "    ---+--", "       | 1",
        "c̃ = (1)  ≠ c = (0): stage costates sit at other times than the stages",
        "Classical order: 1   (2 conditions, exact arithmetic)",
        "  fails at order 2:", "    Σ b_i c_i = 0, needs 1/2   tree [τ]",
        "Optimal-control order: 1   (2 independent conditions)",
        "  fails at order 2:", "    Σ d_j = 0, needs 1/2"]


def test_printed_certificate_of_a_symplectic_method():
    lines = format_certificate(GAUSS2).splitlines()
    assert lines[0] == "Gauss-2: 2 stages, fully implicit"
    assert lines[5:7] == ["Partner tableau Ã = A (the method is symplectic)",
                          "c̃ = (1/2 - sqrt(3)/6, sqrt(3)/6 + 1/2)  = c"]


def test_source_wraps_at_96_characters():
    """A line of 96 characters stays whole; one of 97 is broken."""
    x, y = "x" * 85, "y" * 93
    t = ButcherTableau(name="w", A=sp.ImmutableMatrix([[0]]), b=[1], citation=f"{x} ab {y} z")
    lines = format_certificate(t, max_order=1, max_control_order=1).splitlines()
    assert lines[1:5] == [f"source: {x} ab", f"  {y}", "  z", "    0 | 0"]
    assert len(lines[1]) == 96 and len(lines[2] + " z") == 97


def test_printed_rounded_and_exact_decimal_verdicts():
    """SSP(2,2)* with 15-digit decimals (examples/ssp22_star.toml): order 2 within the
    tolerance 10^(2−15); read as exact rationals, Σ b_i c_i misses 1/2 by about 1e-15."""
    path = EXAMPLES / "ssp22_star.toml"
    text = format_certificate(str(path))
    assert ("Classical order: 2   (4 conditions, entries rounded to 15 digits: tolerance 1e-13 "
            "relative to each condition)") in text.splitlines()
    assert "MISMATCH" not in text
    b2, c2 = F("0.607625218510713"), F("0.822875655532364")
    residual = b2 * c2 - F(1, 2)  # b_1 c_1 = 0
    assert -1.5e-15 < residual < -0.5e-15  # "− 1e-15"
    assert round(-math.log10(abs(residual) / (b2 * c2))) == 15
    exact = format_certificate(load_tableau_file(path, exact_decimals=True)).splitlines()
    assert ("Classical order: 1   (the library records 2: MISMATCH)   (2 conditions, exact "
            "arithmetic)") in exact
    assert ("    Σ b_i c_i = 1/2 − 1e-15: the coefficients look rounded to 15 digits   tree [τ]"
            in exact)
    assert exact[-2:] == ["  fails at order 2:",
                          "    Σ d_j = 1/2 − 1e-15: the coefficients look rounded to 15 digits"]


def test_printed_residual_above_the_condition():
    """b = 1 + 10⁻¹⁵: Σ b_i misses 1 by +1e-15, 15 digits against |b| = 1."""
    t = ButcherTableau(name="w", A=sp.ImmutableMatrix([[0]]), b=[R(10**15 + 1, 10**15)])
    lines = format_certificate(t, max_order=2, max_control_order=2).splitlines()
    assert lines[-5:] == [
        "  fails at order 1:",
        "    Σ b_i = 1 + 1e-15: the coefficients look rounded to 15 digits   tree τ",
        "Optimal-control order: 0   (1 independent conditions)", "  fails at order 1:",
        "    Σ b_j = 1 + 1e-15: the coefficients look rounded to 15 digits"]


def test_literature_mismatch_is_printed_only_on_disagreement():
    def line(t, **kw):
        return [x for x in format_certificate(dataclasses.replace(t, **kw), max_order=5,
                                              max_control_order=5).splitlines()
                if x.startswith(("Classical", "Optimal"))]

    assert line(RK4, literature_order=4, literature_control_order=4) == [
        "Classical order: 4   (17 conditions, exact arithmetic)",
        "Optimal-control order: 4   (40 independent conditions)"]
    assert line(RK4, literature_order=3, literature_control_order=5) == [
        "Classical order: 4   (the library records 3: MISMATCH)   (17 conditions, exact "
        "arithmetic)",
        "Optimal-control order: 4   (the library records 5: MISMATCH)   (40 independent "
        "conditions)"]
    # an order reached at the limit is a lower bound: a larger recorded order agrees with it
    assert line(GAUSS3, literature_order=6)[0] == (
        "Classical order: ≥ 5   (17 conditions, exact arithmetic)")  # 1 + 1 + 2 + 4 + 9
    assert "MISMATCH" in line(GAUSS3, literature_order=4)[0]
    assert "MISMATCH" not in line(GAUSS3, literature_order=5)[0]


def test_defaults_and_names():
    """Gauss-3 has optimal-control order 6 = 2s: at the default limit 6 a lower bound, after
    1 + 1 + 3 + 8 + 27 + 91 classes; a tableau may be given by name."""
    assert "Optimal-control order: ≥ 6   (131 independent conditions)" in (
        format_certificate(GAUSS3).splitlines())
    assert format_tableau("ssprk3").splitlines() == [
        x[4:] for x in SSPRK3_REPORT.splitlines()[1:6]]
    two = method("two zero weights", [[0, 0, 0], [1, 0, 0], [0, 1, 0]], [0, 0, 1])
    assert "Partner tableau Ã: none (b_1 = 0, b_2 = 0)" in format_certificate(two).splitlines()


def _radical_tableau(roots):
    """A 5-stage explicit tableau whose entries below the diagonal are √k/100 for the given k
    (then 1/100), with b = 1/5: the field Q(√k, …) has degree 2^len(roots)."""
    entries = iter([f"sqrt({k})/100" for k in roots] + ["1/100"] * 10)
    A = [[next(entries) if j < i else 0 for j in range(5)] for i in range(5)]
    return ButcherTableau.from_dict({"A": A, "b": ["1/5"] * 5}, source="m.json")


@pytest.mark.parametrize("roots, shown", [
    ((2, 3, 5, 7, 11, 13), "sqrt(11), sqrt(13), sqrt(2), sqrt(3), sqrt(5), sqrt(7)"),
    ((2, 3, 5, 7, 11, 13, 17), "sqrt(11), sqrt(13), sqrt(17), sqrt(2), sqrt(3), sqrt(5), …"),
], ids=["six roots", "seven roots"])
def test_number_field_beyond_the_limit_is_refused(roots, shown):
    """Degree 2^6 or 2^7 > 32: refused before the field is built, naming at most six
    generators (in SymPy's order)."""
    with pytest.raises(InputError) as info:
        classical_order(_radical_tableau(roots), 2)
    assert str(info.value) == (
        f"m.json: the exact entries generate a number field of degree up to {2 ** len(roots)} "
        f"({shown}), more than the limit of 32 for exact verdicts; give some entries as "
        "decimals for a verdict with a stated tolerance")


def test_transcendental_entries_have_no_exact_verdict():
    """Files refuse π outside sin/cos/tan; a tableau built in Python may hold it."""
    pi_method = method("pi method", [[0, 0], [sp.pi / 4, 0]], [R(1, 2), R(1, 2)])
    with pytest.raises(InputError) as info:
        classical_order(pi_method, 2)
    assert str(info.value) == ("pi method: an order verdict needs algebraic or rounded entries, "
                               "found entries in QQ[pi]")


def test_number_field_at_the_limit_is_judged_exactly():
    """Five square roots: degree 32, the limit itself. Σ b_i = 1 holds, Σ b_i c_i = 1/2 not."""
    assert classical_order(_radical_tableau((2, 3, 5, 7, 11)), 2).order == 1


def test_a_lower_bound_verdict_in_full():
    """All conditions up to the limit hold: order = max_order, at least; nothing failed;
    tolerance 0 when exact, τ = 10^(2−30) for 30-digit entries. Checked: the 1 + 1 + 2 rooted
    trees of orders 1–3 (OEIS A000081), and one bi-coloured tree per symplectic class,
    1 + 1 + 3 (Hager's conditions up to order 3)."""
    from ocgen.order import OrderResult
    for kind, verdict, checked in (("classical", classical_order(RK4, 3), 4),
                                   ("control", control_order(RK4, 3), 5)):
        assert verdict == OrderResult(kind, 3, 3, True, 0.0, (), None, checked)
    rounded = classical_order(gauss4_rounded(), 4)
    assert (rounded.kind, rounded.order, rounded.max_order, rounded.at_least) == (
        "classical", 4, 4, True) and rounded.tolerance == 1e-28


def gauss4_rounded(digits=30):
    """Gauss–Legendre, s = 4, to ``digits`` digits: nodes (1 ± √(3/7 ∓ (2/7)√(6/5)))/2 (the
    zeros of P_4 on [0, 1]), a_ij = ∫_0^{c_i} ℓ_j, b_j = ∫_0^1 ℓ_j (HNW I, II.7)."""
    import mpmath
    with mpmath.workdps(digits + 10):
        root = [mpmath.sqrt(mpmath.mpf(3) / 7 + sign * mpmath.mpf(2) / 7
                            * mpmath.sqrt(mpmath.mpf(6) / 5)) for sign in (-1, 1)]
        c = sorted((1 + side * x) / 2 for x in root for side in (-1, 1))

        def integral(j, upper):
            lagrange = lambda t: mpmath.fprod((t - c[k]) / (c[j] - c[k])  # noqa: E731
                                              for k in range(4) if k != j)
            return sp.Float(mpmath.nstr(mpmath.quad(lagrange, [0, upper]), digits), digits)
        return method("Gauss 4 (rounded)", [[integral(j, ci) for j in range(4)] for ci in c],
                      [integral(j, 1) for j in range(4)])


def test_default_limit_of_the_certificate_is_order_8():
    """Gauss s has classical order 2s (Butcher 1964): Gauss-4's 8 reaches the default limit,
    so the certificate gives it as a lower bound; with the limit 9 it is exact."""
    g4 = gauss4_rounded()
    lines = format_certificate(g4, max_control_order=2).splitlines()
    assert any(line.startswith("Classical order: ≥ 8   (200 conditions") for line in lines)
    lines = format_certificate(g4, max_order=9, max_control_order=2).splitlines()
    assert any(line.startswith("Classical order: 8   (486 conditions") for line in lines)
    assert "  fails at order 9:" in lines


def test_rounded_c_tilde_equals_c_within_the_tolerance():
    """RK4 in 17-digit floats: c̃ = (0, 1/2, 1/2, 1) = c only up to rounding."""
    rk4_float = method("RK4 (floats)", [[sp.Float(float(x), 17) for x in row]
                                        for row in RK4.A.tolist()],
                       [sp.Float(float(x), 17) for x in RK4.b])
    c_tilde = rk4_float.partner().c
    assert any(x != y for x, y in zip(c_tilde, rk4_float.c))
    assert all(abs(x - y) < 1e-15 for x, y in zip(c_tilde, rk4_float.c))
    report = certificate(rk4_float, max_order=4, max_control_order=4)
    assert report["c_tilde_equals_c"] is True
    # its rounding residues pass every condition within τ, partner-coloured trees included
    assert (report["order"], report["control_order"]) == (4, 4)
    assert "c̃ = (" in format_certificate(rk4_float, 4, 4) and "  = c\n" in format_certificate(
        rk4_float, 4, 4)


def test_failure_list_is_cut_after_max_listed():
    """RK4 fails all 9 conditions of order 5 (Butcher 2016, §30; recomputed below)."""
    conditions = _tree_conditions(*RK4_F)
    assert sum(_size(k) == 5 and v != w for k, (v, w) in conditions.items()) == 9
    lines = format_certificate(RK4, max_order=5, max_control_order=4, max_listed=8).splitlines()
    assert lines.count("    … and 1 more") == 1
    assert lines[lines.index("    … and 1 more") - 9] == "  fails at order 5:"
    lines = format_certificate(RK4, max_order=5, max_control_order=4, max_listed=9).splitlines()
    assert not any("more" in x for x in lines)
    assert lines[-11] == "  fails at order 5:" and lines[-2].endswith("tree [[[[τ]]]]")
    assert lines[-1] == "Optimal-control order: ≥ 4   (13 independent conditions)"  # 1+1+3+8


def test_json_certificate_values_of_ssprk3():
    from ocgen.tableau import load_tableau
    t = load_tableau("ssprk3")
    A, b = SSPRK3_F
    c, P, ct, d = _fr(A, b)
    conditions = _tree_conditions(A, b)
    text = lambda xs: [str(x) for x in xs]  # noqa: E731
    classical = [{"kind": "classical", "order": 4, "tree": k, "formula": f,
                  "value": str(conditions[k][0]), "expected": str(conditions[k][1]),
                  "residual": str(conditions[k][0] - conditions[k][1]), "note": None}
                 for k, f in [("[τ[τ]]", "Σ b_i c_i a_ij c_j"), ("[[τ²]]", "Σ b_i a_ij c_j²"),
                              ("[[[τ]]]", "Σ b_i a_ij a_jk c_k")]]
    hager = sum(x * x / y for x, y in zip(d, b))
    assert certificate(t) == {
        "name": "SSPRK3", "aliases": list(t.aliases), "stages": 3, "explicit": True,
        "kind": "explicit", "exact": True, "tolerance": 0.0,
        "A": [text(row) for row in A], "b": text(b), "c": text(c),
        "order": 3, "order_at_least": False, "max_order": 8,
        "control_order": 2, "control_order_at_least": False, "control_order_reason": None,
        "max_control_order": 6, "literature_order": 3, "literature_control_order": 2,
        "weights_positive": True, "zero_weights": [], "negative_weights": [],
        "symplectic": False,
        "partner": {"A": [text(row) for row in P], "b": text(b), "c": text(ct)},
        "c_tilde": text(ct), "c_tilde_equals_c": False,
        "failed_conditions": classical + [
            {"kind": "control", "order": 3, "tree": "[τ̃²]", "formula": "Σ d_j²/b_j",
             "value": str(hager), "expected": "1/3", "residual": str(hager - F(1, 3)),
             "note": None}],
    }
    assert "Shu-Osher" in t.aliases and "SSP33" in t.aliases


def test_json_certificate_of_a_rounded_tableau():
    cert = certificate(str(EXAMPLES / "ssp22_star.toml"), max_order=3, max_control_order=3)
    assert (cert["exact"], cert["tolerance"], cert["order"], cert["max_order"]) == (
        False, 1e-13, 2, 3)
    assert (cert["control_order"], cert["max_control_order"]) == (2, 3)
    assert (cert["literature_order"], cert["literature_control_order"]) == (2, None)
    assert cert["A"] == [["0", "0"], ["0.822875655532364", "0"]]
    assert cert["c"] == ["0", "0.822875655532364"] and cert["c_tilde_equals_c"] is False
    exact = certificate(load_tableau_file(EXAMPLES / "ssp22_star.toml", exact_decimals=True),
                        max_order=3, max_control_order=3)
    b2, c2 = F("0.607625218510713"), F("0.822875655532364")
    (first, second) = exact["failed_conditions"]
    assert first == {"kind": "classical", "order": 2, "tree": "[τ]", "formula": "Σ b_i c_i",
                     "value": str(b2 * c2), "expected": "1/2", "residual": str(b2 * c2 - F(1, 2)),
                     "note": "the coefficients look rounded to 15 digits"}
    assert second["formula"] == "Σ d_j" and second["value"] == str(b2 * c2)


def test_json_certificate_with_zero_and_negative_weights():
    t = method("zero and negative", [[0, 0, 0], [1, 0, 0], [0, 1, 0]], [0, R(-1, 2), R(3, 2)])
    cert = certificate(t, max_order=3, max_control_order=3)
    assert (cert["zero_weights"], cert["negative_weights"]) == ([1], [2])
    assert cert["weights_positive"] is False and cert["control_order"] is None
    assert cert["control_order_at_least"] is False and cert["max_control_order"] == 3
    assert cert["partner"] is cert["c_tilde"] is cert["c_tilde_equals_c"] is None
    assert cert["control_order_reason"] == (
        "b_1 = 0, b_2 = -1/2 < 0: a stage with b_i = 0 has no partner (costate) stage and its "
        "stage control carries no running cost, so the discrete problem loses coercivity; a "
        "negative weight makes the discrete problem unbounded below (MATH.md 3.3)")
    # Σ b = 1, Σ b c = −1/2 + 3/2 = 1 ≠ 1/2
    assert cert["order"] == 1 and cert["failed_conditions"] == [
        {"kind": "classical", "order": 2, "tree": "[τ]", "formula": "Σ b_i c_i", "value": "1",
         "expected": "1/2", "residual": "1/2", "note": None}]
    assert cert["aliases"] == [] and cert["kind"] == "explicit" and cert["explicit"] is True
