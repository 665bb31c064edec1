"""Rounded decimals and exact algebraic constants in tableaux: the literature orders of
published 15-digit tableaux, exact verdicts for cos(π/18), and the messages that say why."""

import json
from pathlib import Path

import pytest
import sympy as sp

from ocgen.cli import main
from ocgen.numbers import exact_decimal, is_zero, rounded, show, tolerance
from ocgen.order import certificate, classical_order, control_order
from ocgen.tableau import ButcherTableau, load_tableau

R = sp.Rational
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
THIRD, SIXTH, TWO_THIRDS = "0.333333333333333", "0.166666666666667", "0.666666666666667"


def decimal_tableau(name, A, b, c, **options):
    return ButcherTableau.from_dict({"name": name, "A": A, "b": b, "c": c}, **options)


SSP33 = dict(A=[[0, 0, 0], ["1.0", 0, 0], ["0.25", "0.25", 0]], b=[SIXTH, SIXTH, TWO_THIRDS],
             c=[0, "1.0", "0.5"])
RK4 = dict(A=[[0, 0, 0, 0], ["0.5", 0, 0, 0], [0, "0.5", 0, 0], [0, 0, "1.0", 0]],
           b=[SIXTH, THIRD, THIRD, SIXTH], c=[0, "0.5", "0.5", "1.0"])


@pytest.mark.parametrize("tableau, order", [
    (lambda: load_tableau(EXAMPLES / "ssp22_star.toml"), 2),
    (lambda: decimal_tableau("SSP(3,3)", **SSP33), 3),
    (lambda: load_tableau(EXAMPLES / "ssp63.toml"), 3),
    (lambda: decimal_tableau("RK4", **RK4), 4),
    (lambda: load_tableau(EXAMPLES / "sdirk34_decimal.toml"), 4),
], ids=["SSP(2,2)*", "SSP(3,3)", "SSP(6,3)", "RK4", "SDIRK34"])
def test_published_15_digit_tableaux_get_their_literature_order(tableau, order):
    t = tableau()
    assert not t.is_exact and t.digits == 15 and t.tolerance == 1e-13
    result = classical_order(t)
    assert result.order == order and not result.at_least
    cert = certificate(t)
    assert cert["exact"] is False and cert["tolerance"] == 1e-13


def test_the_same_decimals_read_exactly_fail_by_a_rounding_error():
    t = load_tableau(EXAMPLES / "ssp22_star.toml", exact_decimals=True)
    assert t.is_exact
    result = classical_order(t)
    assert result.order == 1  # Σ b_i c_i misses 1/2 by the rounding of the decimals
    (failed,) = result.failed
    assert failed.residual == R("0.607625218510713") * R("0.822875655532364") - R(1, 2)
    assert str(failed) == "Σ b_i c_i = 1/2 − 1e-15: the coefficients look rounded to 15 digits"


def sdirk34(gamma):
    """The γ-family of 3-stage SDIRK methods (b and c in the form that gives order 3)."""
    b1 = 1 / (6 * (2 * gamma - 1) ** 2)
    return ButcherTableau("SDIRK34", A=[[gamma, 0, 0], [R(1, 2) - gamma, gamma, 0],
                                        [2 * gamma, 1 - 4 * gamma, gamma]], b=[b1, 1 - 2 * b1, b1])


GAMMA = R(1, 2) + sp.cos(sp.pi / 18) / sp.sqrt(3)


def test_exact_sdirk_with_cos_pi_18_has_order_4_exactly():
    t = sdirk34(GAMMA)
    assert t.is_exact
    result = classical_order(t)
    assert result.order == 4 and result.tolerance == 0
    assert control_order(t).order == 4
    assert classical_order(load_tableau(EXAMPLES / "sdirk34.toml")).order == 4


def test_exact_sdirk_perturbed_by_1e_12_has_order_2():
    result = classical_order(sdirk34(GAMMA + R(1, 10**12)))
    assert result.order == 2 and result.tolerance == 0
    assert [c.formula for c in result.failed] == ["Σ b_i a_ij c_j"]  # b·Ac = 1/6: the cubic
    assert abs(float(result.failed[0].residual)) < 1e-11


def test_rounded_row_sums_use_the_tolerance_and_say_why_they_fail():
    A, b = [[0, 0], ["0.822875655532364", 0]], ["0.392374781489287", "0.607625218510713"]
    decimal_tableau("ok", A, b, [0, "0.822875655532365"])  # off by 1e-15: within 15 digits
    with pytest.raises(Exception, match=r"c\[1\].*by -3e-11, more than 2e-13 allowed for "
                                        r"15-digit entries: the coefficients look rounded to 10"):
        decimal_tableau("bad", A, b, [0, "0.8228756555"])
    with pytest.raises(Exception, match="by 1e-15: the coefficients look rounded to 15 digits"):
        decimal_tableau("exact", A, b, [0, "0.822875655532365"], exact_decimals=True)


def test_tolerance_follows_the_most_digits_given():
    assert tolerance(15) == 1e-13 and tolerance(20) == 1e-18
    t = decimal_tableau("RK4 (25 digits)", [[0, 0], ["0.6666666666666666666666667", 0]],
                        ["0.25", "0.75"], [0, "0.6666666666666666666666667"])
    assert t.digits == 25 and t.tolerance == 1e-23  # "0.25" is short because it is exact
    assert classical_order(t).order == 2  # Ralston's method: order 2, to 25 digits


def test_rounded_tableau_round_trips_with_its_digits():
    t = load_tableau(EXAMPLES / "ssp63.toml")
    for text in (t.to_json(), t.to_toml()):
        data = json.loads(text) if text.startswith("{") else __import__("tomllib").loads(text)
        assert ButcherTableau.from_dict(data) == t
    long = rounded(sp.Float("0.50000000000000000000"))
    again = ButcherTableau("x", A=[[long]], b=[1]).to_dict()["A"][0][0]
    assert again == "0.50000000000000000000" and exact_decimal(long) == R(1, 2)


def test_exact_zero_is_proved_not_sampled():
    assert is_zero(sp.cos(sp.pi / 18) ** 3 * 8 - 6 * sp.cos(sp.pi / 18) - sp.sqrt(3))
    assert not is_zero(sp.cos(sp.pi / 18) - R(98480775301220806, 10**17))  # 1e-18 apart


def test_long_exact_values_print_as_marked_decimals():
    assert show(R(1, 3)) == "1/3"
    square = R(411437827766182, 10**15) ** 2  # 0.169281086116954…, 30 exact digits
    assert show(square) == "≈" + str(__import__("decimal").Decimal("0.411437827766182") ** 2)[:18]
    assert show(R(822875655532365, 10**15)) == "0.822875655532365"  # a decimal, exactly


@pytest.mark.parametrize("entry, words", [
    ("cos(1)", "rational multiple of pi"),
    ("pi/4", "only inside sin, cos, tan"),
    ("2**(1/100)", "root of degree 100"),
])
def test_bad_constants_exit_2_with_the_place(tmp_path, capsys, entry, words):
    path = tmp_path / "bad.toml"
    path.write_text(f'A = [[0, 0], ["{entry}", 0]]\nb = ["1/2", "1/2"]\n', encoding="utf-8")
    assert main(["order", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ocgen: error: {path}: A[1][0]: ") and words in err
    assert "Traceback" not in err


def test_order_command_reports_rounding(capsys):
    assert main(["order", str(EXAMPLES / "ssp22_star.toml")]) == 0
    out = capsys.readouterr().out
    assert "Classical order: 2" in out and "rounded to 15 digits: tolerance 1e-13" in out
    assert main(["order", str(EXAMPLES / "ssp22_star.toml"), "--exact-decimals"]) == 0
    assert "Classical order: 1" in capsys.readouterr().out
