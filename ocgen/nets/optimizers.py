"""First-order optimisers for training (Benning et al. 2019, section 5): projected gradient
descent with Armijo backtracking or with backtracking on a Lipschitz estimate, and Adam on
mini-batches. L-BFGS-B comes from SciPy and IPOPT from CasADi (see :mod:`ocgen.nets.training`).

Each works on a flat vector x with a projection P onto the feasible set (the identity, h ≥ 0,
or the simplex of step sizes) and reports progress through ``callback(k, x, value, gradient,
step)``; returning True from it stops the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

ARMIJO_SLOPE = 1e-4
"""c in the Armijo condition J(x⁺) ≤ J(x) + c ⟨∇J(x), x⁺ − x⟩."""
MAX_BACKTRACKS = 60


@dataclass
class Outcome:
    x: np.ndarray
    iterations: int
    converged: bool
    message: str
    extra: dict = field(default_factory=dict)


def projected_gradient_norm(x, gradient, project) -> float:
    """‖x − P(x − ∇J(x))‖: zero exactly at a stationary point of J over the feasible set."""
    return float(np.linalg.norm(x - project(x - gradient)))


def gradient_descent(value, gradient, x, project, iterations: int, rule: str,
                     tolerance: float, callback) -> Outcome:
    """x⁺ = P(x − s ∇J(x)) with s from backtracking.

    ``armijo``: s starts at twice the last accepted step and halves until
    J(x⁺) ≤ J(x) + c ⟨∇J(x), x⁺ − x⟩. ``lipschitz``: s = 1/ℓ with the estimate ℓ halved each
    iteration and doubled until J(x⁺) ≤ J(x) + ⟨∇J(x), x⁺ − x⟩ + ℓ/2 ‖x⁺ − x‖².
    """
    J, g = value(x), gradient(x)
    scale = 1.0  # the step s (armijo) or the estimate ℓ (lipschitz)
    for k in range(iterations):
        if projected_gradient_norm(x, g, project) <= tolerance:
            return Outcome(x, k, True, f"projected gradient norm ≤ {tolerance:g}")
        scale = scale * 2 if rule == "armijo" else scale / 2
        for _ in range(MAX_BACKTRACKS):
            step = scale if rule == "armijo" else 1 / scale
            trial = project(x - step * g)
            move = trial - x
            J_trial = value(trial)
            bound = (J + ARMIJO_SLOPE * float(g @ move) if rule == "armijo" else
                     J + float(g @ move) + scale / 2 * float(move @ move))
            if np.isfinite(J_trial) and J_trial <= bound:
                break
            scale = scale / 2 if rule == "armijo" else scale * 2
        else:
            return Outcome(x, k, False, f"the {rule} line search found no decrease in "
                                        f"{MAX_BACKTRACKS} halvings")
        x, J = trial, J_trial
        g = gradient(x)
        if callback(k + 1, x, J, g, step):
            return Outcome(x, k + 1, False, "stopped")
    converged = projected_gradient_norm(x, g, project) <= tolerance
    return Outcome(x, iterations, converged, f"{iterations} iterations" +
                   ("" if converged else f" (projected gradient norm > {tolerance:g})"))


def adam(batch_value_and_gradient: Callable, x, project, iterations: int, batches,
         learning_rate: float, callback, beta1=0.9, beta2=0.999, epsilon=1e-8) -> Outcome:
    """Adam (Kingma & Ba 2015) on mini-batch gradients, projected after each step:
    m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², x ← P(x − α m̂ / (√v̂ + ε))."""
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for k in range(1, iterations + 1):
        J, g = batch_value_and_gradient(x, next(batches))
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1**k), v / (1 - beta2**k)
        x = project(x - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon))
        if callback(k, x, J, g, learning_rate):
            return Outcome(x, k, False, "stopped")
    return Outcome(x, iterations, False, f"{iterations} iterations (Adam has no stopping "
                                         "test)")
