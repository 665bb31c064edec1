"""Taylor tests of gradients (the check pyadjoint offers as ``taylor_test``).

For a smooth J with gradient g at x and a direction δx, the remainder
r(ε) = |J(x + ε δx) − J(x) − ε ⟨g, δx⟩| is O(ε²) exactly when g is right; halving ε must
divide it by 4, i.e. an observed rate log₂(r(ε)/r(ε/2)) of 2. A wrong gradient gives rate 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class TaylorResult:
    epsilons: tuple[float, ...]
    remainders: tuple[float, ...]
    rates: tuple[float, ...]

    @property
    def min_rate(self) -> float:
        return min(self.rates)


def taylor_test(J: Callable[[np.ndarray], float], x: np.ndarray, gradient: np.ndarray,
                direction: np.ndarray, epsilon: float = 1e-2, halvings: int = 3) -> TaylorResult:
    """Remainders r(ε) for ε = epsilon·2^-k (k = 0..halvings) and the observed rates."""
    x, gradient, direction = (np.asarray(a, dtype=float) for a in (x, gradient, direction))
    J0 = J(x)
    slope = float(np.sum(gradient * direction))
    epsilons = tuple(epsilon / 2**k for k in range(halvings + 1))
    remainders = tuple(abs(J(x + e * direction) - J0 - e * slope) for e in epsilons)
    rates = tuple(float(np.log2(a / b)) if a > 0 and b > 0 else float("inf")
                  for a, b in zip(remainders, remainders[1:]))
    return TaylorResult(epsilons, remainders, rates)
