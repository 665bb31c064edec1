"""Convergence studies against MATH.md sections 3.3 and 5 (closed forms and BVP references)."""

import dataclasses
import functools
import json
import math
import warnings

import numpy as np
import pytest

from ocgen.errors import OcgenError
from ocgen.problem import load_problem
from ocgen.verify import (QUANTITIES, _verdict, format_verification, observed_order,
                          plot_verification, rates, reference_solution, verify)

# MATH.md 4-5: OC orders with stage controls (literature values, not the certificate's output)
MATH_MD_ORDERS = {"euler": 1, "heun2": 2, "kutta3": 3, "ralston3": 2, "ssprk3": 2, "rk4": 4,
                  "rk38": 4, "gauss2": 4, "radauiia2": 3}
# Forward Euler on nl: the costate (hence u(y_n, p_n) = -p_n) converges with order 2, not 1.
# Checked independently with a hand-written symplectic Euler shooting solve
# (test_euler_nl_costate_is_second_order below); the state is order 1 as MATH.md says.
EXCEPTIONS = {("nl", "euler"): {"costate": 2, "grid_control": 2}}
# Step counts in the asymptotic range (slopes fitted on the last three)
STEPS = {"lq": (10, 20, 40, 80), "nl": (20, 40, 80, 160)}
SLOPE_TOLERANCE = 0.15


@functools.cache
def study(tableau, problem, steps, controls="stage"):
    """verify(), computed once per test session for each set of arguments."""
    return verify(tableau, problem, steps, controls)


@pytest.fixture(scope="module")
def rk4_lq():
    return study("rk4", "lq", (10, 20, 40, 80))


@pytest.mark.parametrize("problem", ["lq", "nl"])
@pytest.mark.parametrize("tableau", sorted(MATH_MD_ORDERS))
def test_observed_orders_match_math_md(tableau, problem):
    v = study(tableau, problem, STEPS[problem], "stage")
    assert v.theory_applies and v.reason is None
    expected = {q: MATH_MD_ORDERS[tableau] for q in ("state", "costate", "grid_control")}
    expected.update(EXCEPTIONS.get((problem, tableau), {}))
    for quantity, order in expected.items():
        observed = v.observed_order[quantity]
        assert observed == pytest.approx(order, abs=SLOPE_TOLERANCE), (quantity, v.errors)
    assert v.predicted_order["state"] == MATH_MD_ORDERS[tableau]
    assert v.verdict["overall"] == "pass", format_verification(v)
    assert v.verdict["stage_control"] == "not judged"
    assert v.reference == {"kind": "closed form"}


def test_raw_stage_controls_are_slower():
    """MATH.md 5: raw stage controls RK4 2, Gauss-2 3, Ralston-3 1."""
    for tableau, order in (("rk4", 2), ("gauss2", 3), ("ralston3", 1)):
        v = study(tableau, "lq", STEPS["lq"])
        assert v.observed_order["stage_control"] == pytest.approx(order, abs=SLOPE_TOLERANCE)


def test_euler_nl_costate_is_second_order():
    """Independent check of the EXCEPTIONS entry: Euler's discrete optimality system on nl is
    symplectic Euler, y_{n+1} = y_n - h p_{n+1}, p_n = p_{n+1} + h exp(2 y_n), p_N = -tan 1."""
    from scipy.optimize import brentq

    errors = []
    for N in (20, 40, 80):
        h = 1.0 / N

        def sweep(p0):
            y, p, ys, ps = 0.0, p0, [0.0], [p0]
            for _ in range(N):
                p = p - h * math.exp(2 * y)
                y = y - h * p
                ys.append(y)
                ps.append(p)
            return np.array(ys), np.array(ps)

        p0 = brentq(lambda q: sweep(q)[1][-1] + math.tan(1), -1.0, 1.0, xtol=1e-15)
        ys, ps = sweep(p0)
        t = np.linspace(0, 1, N + 1)
        errors.append((np.max(np.abs(ys + np.log(np.cos(t)))), np.max(np.abs(ps + np.tan(t)))))
    v = verify("euler", "nl", (20, 40, 80))
    assert np.allclose(v.errors["state"], [e[0] for e in errors], rtol=1e-6)
    assert np.allclose(v.errors["costate"], [e[1] for e in errors], rtol=1e-6)
    assert math.log2(errors[1][1] / errors[2][1]) == pytest.approx(2, abs=0.05)


@pytest.mark.parametrize("tableau,state_error", [("midpoint", 0.43), ("heun3", 0.28)])
def test_outside_theory_does_not_converge(tableau, state_error):
    """MATH.md 3.3: stage controls with a zero weight; lq state error ≈ 0.43 / 0.28 at all N."""
    v = verify(tableau, "lq", (10, 20, 40), "stage")
    data = v.to_json()
    assert data["theory_applies"] is False
    assert "MATH.md 3.3" in data["reason"] and "b_" in data["reason"]
    assert all(data["observed_order"][q] is None for q in QUANTITIES)
    assert data["verdict"]["overall"] == "outside theory"
    assert all(abs(e - state_error) < 0.02 for e in v.errors["state"]), v.errors["state"]
    assert v.verdict["comparison"]["state"] == "errors do not decrease"
    # stage controls grow like 1/h
    assert all(r == pytest.approx(-1, abs=0.1) for r in v.rates["stage_control"])
    assert all(r["costate_forms"] is None and r["symplecticity"] is None for r in v.residuals)
    text = format_verification(v)
    assert "OUTSIDE THE THEORY" in text and "errors do not decrease" in text


def test_outside_theory_without_closed_form_gets_a_bvp_reference():
    """vdp has no closed form: outside the theory the BVP reference starts from a
    step-control solve, whose own outside-the-theory warning is not shown."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning escapes, and none is turned off wrongly
        v = verify("heun3", "vdp", (10, 20), "stage")
    assert not v.theory_applies and v.verdict["overall"] == "outside theory"
    assert v.reference["kind"] == "bvp" and v.reference["converged"]


@pytest.mark.parametrize("tableau", ["midpoint", "heun3"])
def test_step_controls_converge_with_order_two(tableau):
    v = verify(tableau, "lq", (10, 20, 40, 80), "step")
    assert v.theory_applies
    assert v.predicted_order["state"] == 2
    for q in ("state", "costate", "grid_control"):
        assert v.observed_order[q] == pytest.approx(2, abs=SLOPE_TOLERANCE)
    assert v.verdict["overall"] == "pass"


def test_tied_controls_keep_rk4_order_four():
    """MATH.md 2: tied controls keep order 4 for RK4 and make its stage controls order 3."""
    v = verify("rk4", "lq", (10, 20, 40, 80), "tied")
    for q in ("state", "costate", "grid_control"):
        assert v.observed_order[q] == pytest.approx(4, abs=SLOPE_TOLERANCE)
    assert v.observed_order["stage_control"] == pytest.approx(3, abs=SLOPE_TOLERANCE)
    assert v.verdict["overall"] == "pass"


def test_vdp_against_bvp_reference():
    v = verify("rk4", "vdp", (20, 40, 80), "stage")
    ref = v.reference
    assert ref["kind"] == "bvp" and ref["converged"]
    assert 0 <= ref["estimated_error"] < 1e-10
    assert ref["estimate"].startswith("max difference from a solve at tol ")
    for q in ("state", "costate", "grid_control"):
        assert v.observed_order[q] == pytest.approx(4, abs=SLOPE_TOLERANCE)
    assert v.verdict["overall"] == "pass"
    assert all(r["costate_forms"] < 1e-12 for r in v.residuals)
    assert "BVP" in format_verification(v)


@pytest.mark.parametrize("name", ["lq", "nl"])
def test_bvp_reference_reproduces_closed_form(name):
    problem = load_problem(name)
    hidden = dataclasses.replace(problem, name=f"{name}_no_closed_form", solution=None)
    ref = reference_solution(hidden)
    t = np.linspace(problem.t0, problem.T, 101)
    sol = problem.solution
    y = np.array([[float(sol.state[0].subs(problem.time, s)) for s in t]]).T
    p = np.array([[float(sol.costate[0].subs(problem.time, s)) for s in t]]).T
    assert np.max(np.abs(ref.state(t)[:, :, 0] - y)) < 1e-11
    assert np.max(np.abs(ref.costate(t)[:, :, 0] - p)) < 1e-11
    assert np.max(np.abs(ref.control(t) + p)) < 1e-11  # u = -p on both problems
    assert ref.objective == pytest.approx(float(sol.objective), abs=1e-11)
    assert ref.info["estimated_error"] < 1e-11


def test_ensemble_reference_shares_the_control():
    """Two identical members: Σ_k H_u = 0 gives u = -p, the single-member solution."""
    lq = load_problem("lq")
    twin = dataclasses.replace(lq, name="lq_twin", initial_states=((1.0,), (1.0,)),
                               solution=None)
    ref = reference_solution(twin)
    t = np.linspace(0, 1, 11)
    e3 = math.e ** 3
    y = (2 * np.exp(3 * t) + e3) / (np.exp(1.5 * t) * (2 + e3))
    assert ref.state(t).shape == (11, 1, 2)
    assert np.max(np.abs(ref.state(t) - y[:, None, None])) < 1e-11
    assert ref.objective == pytest.approx(2 * (e3 - 1) / (e3 + 2), abs=1e-11)


def test_ensemble_verification_max_over_members():
    lq = load_problem("lq")
    pair = dataclasses.replace(lq, name="lq_pair", initial_states=((1.0,), (0.5,)),
                               solution=None)
    v = verify("rk4", pair, (10, 20, 40))
    assert v.members == 2 and v.reference["kind"] == "bvp"
    for q in ("state", "costate", "grid_control"):
        assert v.observed_order[q] == pytest.approx(4, abs=SLOPE_TOLERANCE)


def test_no_reference_without_control_law():
    with pytest.raises(OcgenError, match="u = φ"):
        verify("rk4", "tanh_ensemble", (4, 8), "step")


def test_bad_arguments():
    with pytest.raises(OcgenError, match="backend"):
        verify("rk4", "lq", (4, 8), backend="fortran")
    with pytest.raises(OcgenError, match="steps"):
        verify("rk4", "lq", (4, 4))
    with pytest.raises(OcgenError, match="control"):
        verify("rk4", "lq", (4, 8), controls="layer")


def test_json_schema(rk4_lq):
    data = json.loads(json.dumps(rk4_lq.to_json(), allow_nan=False))
    for key in ("tableau", "problem", "controls", "backend", "steps", "h", "errors", "rates",
                "observed_order", "predicted_order", "verdict", "theory_applies", "reason",
                "reference", "residuals", "timings", "fit", "objective", "exact_objective"):
        assert key in data
    assert data["tableau"] == "RK4" and data["problem"] == "lq" and data["controls"] == "stage"
    assert data["steps"] == [10, 20, 40, 80] and len(data["h"]) == 4
    assert set(data["errors"]) == set(QUANTITIES) == set(data["observed_order"])
    assert all(len(data["errors"][q]) == 4 and len(data["rates"][q]) == 3 for q in QUANTITIES)
    assert data["predicted_order"]["state"] == 4 and data["predicted_order"]["stage_control"] \
        is None
    assert data["verdict"]["overall"] == "pass" and "rule" in data["verdict"]
    assert data["reference"] == {"kind": "closed form"}
    assert data["exact_objective"] == pytest.approx(0.8641644977691128, abs=1e-15)
    # MATH.md 5: RK4, N = 20: max state error 3.85e-7, costate 1.37e-7
    assert data["errors"]["state"][1] == pytest.approx(3.85e-7, rel=0.01)
    assert data["errors"]["costate"][1] == pytest.approx(1.37e-7, rel=0.01)
    for res in data["residuals"]:
        assert set(res) == {"steps", "kkt", "symplecticity", "costate_forms"}  # NumPy: no gap
        assert res["kkt"] < 1e-9
        assert res["symplecticity"] < 1e-15
        assert res["costate_forms"] < 1e-13
    for key in ("derive", "generate", "solve", "reference", "total"):
        assert data["timings"][key] >= 0


def test_format_verification(rk4_lq):
    text = format_verification(rk4_lq)
    lines = text.splitlines()
    assert any(line.split()[:1] == ["80"] for line in lines)
    assert "closed form" in lines[0] and "verdict: pass" in text
    assert "state" in text and "predicted" in text


def test_format_verification_in_full(rk4_lq):
    """What a reader sees: the table's columns line up under the header, the ensemble and a
    solve that did not converge are named, and a study outside the theory ends with its own
    verdict line."""
    failed = [dict(run, converged=run["steps"] != 20, message="iteration limit" if
                   run["steps"] == 20 else run["message"]) for run in rk4_lq.solver]
    v = dataclasses.replace(rk4_lq, members=3, solver=failed)
    lines = format_verification(v).splitlines()
    assert lines[2] == "max errors over the grid points and 3 ensemble members; rates per " \
                       "refinement"
    head, rows = lines[3], lines[4:8]
    assert head.split()[:2] == ["N", "h"] and [row.split()[0] for row in rows] == \
        ["10", "20", "40", "80"]
    assert all(len(row) == len(head) for row in rows), (head, rows)
    assert rows[0].split()[:2] == ["10", "1.000e-01"] and "—" in rows[0]  # no rate at N = 10
    assert "NOT converged at N = 20: iteration limit" in lines
    comparison = {q: "errors do not decrease" for q in QUANTITIES}
    outside = dataclasses.replace(rk4_lq, theory_applies=False, reason="a reason",
                                  verdict={**rk4_lq.verdict, "comparison": comparison})
    text = format_verification(outside).splitlines()
    assert "OUTSIDE THE THEORY — no orders fitted." in text and "  a reason" in text
    assert text[-1] == "verdict: outside theory"


def test_plot_verification_skips_missing_errors(rk4_lq, tmp_path):
    """An error that could not be measured (None, e.g. a failed solve) is a gap in its line."""
    errors = {q: list(e) for q, e in rk4_lq.errors.items()}
    errors["state"][1] = None
    fig = plot_verification(dataclasses.replace(rk4_lq, errors=errors), tmp_path / "gap.png")
    line, = [line for line in fig.axes[0].get_lines() if line.get_gid() == "quantity:state"]
    y = np.asarray(line.get_ydata(), dtype=float)
    assert np.isnan(y[1]) and np.all(np.isfinite(np.delete(y, 1)))


def test_plot_verification(rk4_lq, tmp_path):
    path = tmp_path / "orders.png"
    fig = plot_verification(rk4_lq, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = fig.axes[0]
    quantity_lines = [line for line in ax.get_lines()
                      if str(line.get_gid()).startswith("quantity:")]
    slope_lines = [line for line in ax.get_lines() if str(line.get_gid()).startswith("slope:")]
    assert sorted(line.get_gid()[9:] for line in quantity_lines) == sorted(QUANTITIES)
    assert all(line.get_linestyle() == "--" for line in slope_lines) and slope_lines
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(legend) == len(quantity_lines) + len(slope_lines)
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "step size h"
    assert ax.get_ylabel() == "max error"


def test_observed_order_fit_and_floor():
    h = [0.1, 0.05, 0.025, 0.0125, 0.00625]
    errors = [3 * x**4 for x in h]
    assert rates(h, errors) == pytest.approx([4, 4, 4, 4])
    slope, keep = observed_order(h, errors, [0] * 5, fit_points=3)
    assert slope == pytest.approx(4) and keep == [2, 3, 4]
    # the last point sits at rounding level: it is dropped, not fitted
    noisy = errors[:4] + [1e-13]
    slope, keep = observed_order(h, noisy, [1e-12] * 5, fit_points=3)
    assert slope == pytest.approx(4) and keep == [1, 2, 3]
    assert observed_order(h, [1e-14] * 5, [1e-12] * 5) == (None, [])


def test_verdict_rule():
    errors = {q: [1.0, 0.1] for q in QUANTITIES}
    predicted = {q: (4 if q != "stage_control" else None) for q in QUANTITIES}
    observed = {"state": 3.75, "costate": 4.6, "grid_control": 3.6, "stage_control": 2.0,
                "objective": None}
    v = _verdict(observed, predicted, errors, True, 0.3)
    assert v["state"] == "pass" and v["comparison"]["state"] == "matches"
    assert v["costate"] == "pass" and v["comparison"]["costate"] == "exceeds"
    assert v["grid_control"] == "fail" and v["comparison"]["grid_control"] == "below"
    assert v["stage_control"] == "not judged" and v["objective"] == "inconclusive"
    assert v["overall"] == "fail"


def test_casadi_backend_agrees(rk4_lq):
    pytest.importorskip("casadi")
    v = verify("rk4", "lq", (10, 20, 40, 80), backend="casadi")
    assert v.backend == "casadi" and v.verdict["overall"] == "pass"
    for q in QUANTITIES:
        assert np.allclose(v.errors[q], rk4_lq.errors[q], rtol=1e-4, atol=1e-12), q
    assert all(r["costate_backend_vs_multiplier"] < 1e-12 for r in v.residuals)
