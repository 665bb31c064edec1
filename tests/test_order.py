"""Classical and optimal-control order certificates (ocgen.order).

Every tableau and every expected order below comes from the literature (Butcher 2016;
Hairer, Nørsett & Wanner I; Hager 2000; MATH.md 4), never from this code's output.
"""

import json

import pytest
import sympy as sp
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from ocgen.errors import InputError
from ocgen.order import (HAGER_CONDITIONS, certificate, classical_order, control_order,
                         format_certificate, hager_conditions)
from ocgen.tableau import ButcherTableau
from ocgen.trees import (A_COLOUR, LEAF, PARTNER_COLOUR, RootedTree, bicoloured_trees,
                         elementary_weight, residual_order_condition)

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
    assert control_order(tableau, all_trees=True).order == order


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


def test_negative_weight_has_no_control_order():
    result = control_order(NEGATIVE)
    assert result.order is None
    assert "b_1 = -1/2 < 0" in result.reason and "unbounded below" in result.reason


def test_bad_max_order():
    with pytest.raises(InputError):
        classical_order(RK4, max_order=0)
    with pytest.raises(InputError):
        control_order(RK4, max_order=99)


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
