"""Euclidean projection onto the scaled simplex Δ_T = {h ≥ 0, Σ h = T} (MATH.md 6).

ODENet+simplex keeps its step sizes h_n in Δ_T by projected gradient steps.
"""

from __future__ import annotations

import numpy as np


def project_to_simplex(v, total: float) -> np.ndarray:
    """The point of Δ_T = {h ≥ 0, Σ h = T} nearest to ``v`` (T = ``total`` > 0), exactly.

    Sort-based algorithm of Duchi et al. (2008), MATH.md 6: sort v decreasing into u;
    ρ = max{j : u_j − (Σ_{k≤j} u_k − T)/j > 0}; θ = (Σ_{k≤ρ} u_k − T)/ρ; P(v) = max(v − θ, 0).
    E.g. (0.9, 0.5, −0.2, 0.1) with T = 1 ↦ (0.7, 0.3, 0, 0).

    ``v`` is a non-empty 1-D array of finite numbers; ValueError otherwise, or when ``total``
    is not a finite positive number.
    """
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"expected a non-empty 1-D array, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("the vector to project has entries that are not finite")
    total = float(total)
    if not (np.isfinite(total) and total > 0):
        raise ValueError(f"the simplex total must be a finite positive number, got {total}")
    # P(v + c·1) = P(v): shifting the largest entry to 0 avoids cancellation when |v| ≫ T,
    # and j = 1 then qualifies exactly (u_1 − (u_1 − T) = T > 0), so ρ ≥ 1
    v = v - v.max()
    u = np.sort(v)[::-1]
    excess = np.cumsum(u) - total  # Σ_{k≤j} u_k − T
    j = np.arange(1, v.size + 1)
    rho = int(np.flatnonzero(u - excess / j > 0)[-1]) + 1
    theta = excess[rho - 1] / rho
    return np.maximum(v - theta, 0.0)
