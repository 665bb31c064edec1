"""Hager's optimal-control order conditions through order 4 (MATH.md 4; Hager, Numer. Math.
87 (2000), Table 1), evaluated directly in b, c = A1, d = Aᵀb and A with SymPy: an
independent route to the orders the library computes from bi-coloured trees."""

import sympy as sp


def hager_table(tableau) -> list[tuple[int, str, sp.Expr, sp.Expr]]:
    """(order, formula, value, needed) for the 13 conditions; needs every b_j ≠ 0."""
    A, b = sp.Matrix(tableau.A), sp.Matrix(tableau.b)
    s = A.rows
    c, d = A * sp.ones(s, 1), A.T * b
    Ac, Adb = A * c, A * sp.Matrix([d[k] / b[k] for k in range(s)])

    def S(f):
        return sp.nsimplify(sp.radsimp(sp.expand(sum(f(j) for j in range(s)))))

    R = sp.Rational
    return [
        (1, "Σ b_j", S(lambda j: b[j]), R(1)),
        (2, "Σ d_j", S(lambda j: d[j]), R(1, 2)),
        (3, "Σ b_j c_j²", S(lambda j: b[j] * c[j] ** 2), R(1, 3)),
        (3, "Σ c_j d_j", S(lambda j: c[j] * d[j]), R(1, 6)),
        (3, "Σ d_j²/b_j", S(lambda j: d[j] ** 2 / b[j]), R(1, 3)),
        (4, "Σ b_j c_j³", S(lambda j: b[j] * c[j] ** 3), R(1, 4)),
        (4, "Σ b_j c_j a_jk c_k", S(lambda j: b[j] * c[j] * Ac[j]), R(1, 8)),
        (4, "Σ d_j c_j²", S(lambda j: d[j] * c[j] ** 2), R(1, 12)),
        (4, "Σ d_j a_jk c_k", S(lambda j: d[j] * Ac[j]), R(1, 24)),
        (4, "Σ c_j d_j²/b_j", S(lambda j: c[j] * d[j] ** 2 / b[j]), R(1, 12)),
        (4, "Σ d_j³/b_j²", S(lambda j: d[j] ** 3 / b[j] ** 2), R(1, 4)),
        (4, "Σ b_j c_j a_jk d_k/b_k", S(lambda j: b[j] * c[j] * Adb[j]), R(5, 24)),
        (4, "Σ d_j a_jk d_k/b_k", S(lambda j: d[j] * Adb[j]), R(1, 8)),
    ]


def hager_order(tableau) -> int:
    """The largest q ≤ 4 such that every condition of order ≤ q holds exactly."""
    failing = [q for q, _, value, needed in hager_table(tableau)
               if sp.simplify(value - needed) != 0]
    return min(failing, default=5) - 1
