"""The gradient-consistency study: how far the exact discrete gradient sits from H_u(t).

Discretise-then-optimise gives the exact gradient of J_h; optimise-then-discretise
approximates the continuous gradient H_u(t). With a fixed smooth control θ(t) = sin 3t + 1/2,
not optimal, sampled at the stages (stage controls θ_ni = θ(t_n + c_i h)), the scalar problem

    y' = tanh(0.8 y + θ),  y(0) = 1,  J = y(1)²/2 + ∫₀¹ (θ² + y²)/2 dt

is solved with L = 10, 20, 40, … equal steps, and compared with a fine continuous reference
(solve_ivp forward for y, then backward for p' = −(y + 0.8 sech²(0.8y + θ) p), p(1) = y(1)):

- the state y_n against y(t_n) and the costate p_n against p(t_n) (n = 0..L, maximum error);
- the per-stage gradient ∂J_h/∂θ_ni / (h b_i) against H_u(t_n + c_i h) = θ + p sech²(0.8y + θ).

Predictions (MATH.md 5): the state equation does not see p, so y_n and p_n converge at the
classical order; the per-stage gradient at order 2 for explicit methods (at most the classical
order), and only at order 1 when the stage costates sit at times c̃ ≠ c (SSPRK3, Ralston); in
general at min(p, q + 1, q̃ + 1) with the stage orders q, q̃ (ADDENDA.md 4;
:func:`predicted_orders`). This differs from the
*optimal* solutions of ``ocgen verify``, where u = φ(y, p) couples the two equations and the
optimal-control order governs.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..problem import OptimalControlProblem
from ..tableau import ButcherTableau, load_tableau

PROBLEM_VERSION = "tanh-fixed-control-1"
"""Names this study's problem, control and reference in the hash of its tasks."""
SLOPE = 0.8
Y0 = 1.0
HORIZON = 1.0
REFERENCE_TOLERANCE = 1e-13
ERROR_FLOOR = 1e-11
"""Errors below this are at the reference's accuracy and left out of the fitted orders."""
FIT_POINTS = 3
TOLERANCE = 0.3
"""Observed orders within this of the prediction are as predicted."""


def control(t):
    """The fixed control θ(t) = sin 3t + 1/2."""
    return np.sin(3 * np.asarray(t, dtype=float)) + 0.5


def study_problem() -> OptimalControlProblem:
    """The scalar tanh problem of the study (the control enters as a stage control)."""
    t, y, u = sp.symbols("t y u", real=True)
    return OptimalControlProblem(
        name="tanh_fixed_control", time=t, states=(y,), controls=(u,),
        dynamics=(sp.tanh(sp.Rational(4, 5) * y + u),), running_cost=(u**2 + y**2) / 2,
        terminal_cost=y**2 / 2, t0=0.0, T=HORIZON, initial_states=((Y0,),),
        description="y' = tanh(0.8 y + u), L = (u^2 + y^2)/2, Phi = y^2/2, y(0) = 1")


class Reference:
    """The continuous y(t), p(t) and H_u(t) along θ(t), from solve_ivp (DOP853, dense)."""

    def __init__(self, tolerance: float = REFERENCE_TOLERANCE):
        from scipy.integrate import solve_ivp
        options = dict(method="DOP853", rtol=tolerance, atol=tolerance / 10, dense_output=True)
        forward = solve_ivp(lambda t, y: np.tanh(SLOPE * y + control(t)), (0.0, HORIZON),
                            [Y0], **options)
        self._y = forward.sol

        def costate_rate(t, p):
            y = self.state(t)
            return -(y + SLOPE * p / np.cosh(SLOPE * y + control(t)) ** 2)

        backward = solve_ivp(costate_rate, (HORIZON, 0.0), [self.state(HORIZON)], **options)
        self._p = backward.sol

    def state(self, t):
        t = np.asarray(t, dtype=float)
        return self._y(t.ravel())[0].reshape(t.shape)

    def costate(self, t):
        t = np.asarray(t, dtype=float)
        return self._p(t.ravel())[0].reshape(t.shape)

    def gradient(self, t):
        """H_u(t) = θ + p sech²(0.8 y + θ), the continuous (L²) gradient of J."""
        u = control(t)
        return u + self.costate(t) / np.cosh(SLOPE * self.state(t) + u) ** 2


def stage_order(A, c, tableau: ButcherTableau, limit: int) -> int:
    """The largest q ≤ limit with Σ_j a_ij c_j^(k−1) = c_i^k / k for all i and k ≤ q: the stages
    of A, fed values at the times c, are accurate to O(h^(q+1)) per step."""
    from ..numbers import is_zero
    s = tableau.stages
    for k in range(1, limit + 1):
        if not all(is_zero(sum(A[i, j] * c[j] ** (k - 1) for j in range(s)) - c[i] ** k / k,
                           tableau.tolerance) for i in range(s)):
            return k - 1
    return limit


def predicted_orders(tableau: ButcherTableau) -> dict:
    """The predicted orders of state, costate and per-stage gradient, and why.

    State and costate: the classical order p (the fixed control decouples them). Per-stage
    gradient: H_u at stage i needs Y_ni and the stage costate P_ni, whose local errors are
    O(h^(q+1)) and O(h^(q̃+1)) with q the stage order of A and q̃ that of the partner Ã, both
    measured at the stage times c; so min(p, q + 1, q̃ + 1). Explicit methods have q = 1, hence
    order 2; q̃ = 0 exactly when c̃ ≠ c, hence order 1 (MATH.md 3.2, 5). Gauss-2 (q = q̃ = 2)
    gives 3.
    """
    from ..order import classical_order, control_order
    p = classical_order(tableau).order
    control = control_order(tableau).order
    c = list(tableau.c)
    q = stage_order(tableau.A, c, tableau, p)
    if tableau.zero_weights:
        gradient, q_partner = None, None
        why = "a zero weight b_i: no partner tableau, and no division by h b_i"
    else:
        q_partner = stage_order(tableau.partner().A, c, tableau, p)
        gradient = min(p, q + 1, q_partner + 1)
        why = (f"min(p, q + 1, q̃ + 1) with stage orders q = {q}, q̃ = {q_partner}"
               + (" (c̃ ≠ c)" if q_partner == 0 else ""))
    return {"state": p, "costate": p, "gradient": gradient, "gradient_reason": why,
            "classical_order": p, "control_order": control, "stage_order": q,
            "partner_stage_order": q_partner}


def consistency_study(tableau, layers=(10, 20, 40, 80, 160),
                      reference: Reference | None = None) -> dict:
    """Errors and observed orders of y_n, p_n and ∂J_h/∂θ_ni/(h b_i) for each L in ``layers``.

    Returns a JSON-ready dict: ``tableau``, ``layers``, ``h``, ``errors`` and per-refinement
    ``rates`` ({state, costate, gradient} lists), fitted ``orders`` (least squares on the last
    three errors above ERROR_FLOOR), ``predicted`` (see :func:`predicted_orders`) and
    ``verdict`` ({quantity: "as predicted" when |observed − predicted| ≤ TOLERANCE, else
    "faster" or "slower" than predicted, or "not measured"}).
    """
    from ..solve import generated_module
    from ..verify import observed_order, rates
    tableau = load_tableau(tableau)
    reference = reference or Reference()
    module = generated_module(tableau, study_problem(), "stage")[0]
    c = np.array([float(x) for x in tableau.c])
    b = np.array([float(x) for x in tableau.b])
    errors: dict[str, list] = {"state": [], "costate": [], "gradient": []}
    steps = []
    for L in layers:
        h = np.full(L, HORIZON / L)
        grid = np.linspace(0.0, HORIZON, L + 1)
        stage_times = grid[:-1, None] + c[None, :] * h[:, None]
        theta = control(stage_times)[:, :, None]
        trajectory = module.forward(theta, h)
        result = module.costate(theta, trajectory, h, full=True)
        errors["state"].append(_max_error(trajectory["y"][:, 0, 0], reference.state(grid)))
        errors["costate"].append(_max_error(result["p"][:, 0, 0], reference.costate(grid)))
        if tableau.zero_weights:
            errors["gradient"].append(None)
        else:
            scaled = result["gradient"][:, :, 0] / (h[:, None] * b[None, :])
            errors["gradient"].append(_max_error(scaled, reference.gradient(stage_times)))
        steps.append(HORIZON / L)
    floors = [ERROR_FLOOR] * len(steps)
    orders = {k: observed_order(steps, v, floors, FIT_POINTS)[0] for k, v in errors.items()}
    predicted = predicted_orders(tableau)
    verdict = {k: _verdict(orders[k], predicted[k]) for k in errors}
    return {"tableau": tableau.name, "layers": list(layers), "h": steps, "errors": errors,
            "rates": {k: rates(steps, v) for k, v in errors.items()}, "orders": orders,
            "predicted": predicted, "verdict": verdict}


def _verdict(observed, predicted) -> str:
    if observed is None or predicted is None:
        return "not measured"
    if abs(observed - predicted) <= TOLERANCE:
        return "as predicted"
    return "faster" if observed > predicted else "slower"


def _max_error(values, exact) -> float:
    return float(np.max(np.abs(np.asarray(values) - np.asarray(exact))))
