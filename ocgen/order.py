"""Classical and optimal-control order of a Butcher tableau, decided exactly.

* Classical order p: Σ_i b_i Φ_i(t) = 1/γ(t) for every rooted tree t with |t| ≤ p.
* Optimal-control order (MATH.md 4): the order of the partitioned pair ((A, b), (Ã, b)) with
  the partner Ã = 1bᵀ − B⁻¹AᵀB (MATH.md 3.2): the same condition for every bi-coloured tree.
  The pair is symplectic with b̃ = b, so once the lower orders hold the conditions of one
  order fall into classes equal up to sign (oriented free trees, 1, 1, 3, 8, 27, 91 for
  orders 1..6; see :func:`ocgen.trees.symplectic_classes`): one tree per class is checked,
  order by order (``all_trees=True`` checks every tree). Failures of order ≤ 4 are reported
  as Hager's independent conditions in b, c, d = Aᵀb and A (Hager 2000, MATH.md table);
  above order 4 the failing trees are printed. The optimal-control order is undefined
  (``None``, with a reason) when some b_i = 0 or b_i < 0 (MATH.md 3.3).

Verdicts are exact for algebraic tableaux (rationals, surds, cos(π/18), …): the entries are
brought into one number field Q(θ) once (``sympy.polys.constructor.construct_domain``),
scaled to algebraic integers Z[θ'] with a common denominator, and every condition is an
identity between integers. Rounded entries (decimals, floats; :mod:`ocgen.numbers`) enter as
the exact rationals of their decimals, and a condition of a tree t then holds when its exact
residual is within τ·|t|·W̄(t): W̄(t) is Σ b_i Φ_i(t) with every entry replaced by its absolute
value (for Ã: |b_j| + |b_j a_ji / b_i|), and τ = 10^(2−d) for d-digit entries. A first-order
bound on the effect of rounding every entry by ½·10^(1−d) relative is |t|·½·10^(1−d)·W̄(t)
(three such factors per Ã edge), so the tolerance leaves a margin of 20 (about 7 for Ã).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from functools import lru_cache, reduce
from math import lcm
from typing import Any, Callable, Sequence

import sympy as sp
from sympy.polys.constructor import construct_domain

from .errors import InputError
from .limits import MAX_FIELD_DEGREE
from .numbers import exact_decimal, exact_text, field_degree_bound, is_zero, rounding_note, show
from .tableau import ButcherTableau, canonical_entry, load_tableau
from .trees import (A_COLOUR, LEAF, PARTNER_COLOUR, ElementaryWeights, RootedTree,
                    bicoloured_trees, rooted_trees, symplectic_classes)

__all__ = ["Condition", "OrderResult", "classical_order", "control_order", "certificate",
           "format_certificate", "format_tableau", "HAGER_CONDITIONS", "hager_conditions",
           "MAX_ORDER", "MAX_CONTROL_ORDER"]

MAX_ORDER = 12
"""Largest classical order that may be requested (12 486 trees of order 13 would follow)."""
MAX_CONTROL_ORDER = 8
"""Largest optimal-control order that may be requested (9 498 bi-coloured trees of order 8)."""


# -- results ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    """One order condition and how it fared: ``formula`` = ``value``, needs ``expected``.

    ``tree`` is the (bi-coloured) tree of the condition; for Hager's formulas it is the tree
    whose condition is equivalent to the formula once the lower orders hold. ``root`` is the
    colour of its root: A_COLOUR (weights b) except for a pair's trees rooted in its second
    part (SECOND_COLOUR, weights b̂).
    """

    kind: str  # "classical" | "control"
    order: int
    tree: RootedTree
    formula: str
    value: sp.Expr
    expected: sp.Expr
    residual: sp.Expr
    note: str | None = None  # "the coefficients look rounded to 15 digits"
    root: int = A_COLOUR  # the colour of the root: SECOND_COLOUR for b̂ (pairs)

    def __str__(self) -> str:
        if self.note:
            sign = "−" if self.residual < 0 else "+"
            return (f"{self.formula} = {show(self.expected)} {sign} "
                    f"{float(abs(self.residual)):.0e}: {self.note}")
        return f"{self.formula} = {show(self.value)}, needs {show(self.expected)}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "order": self.order, "tree": self.tree.bracket(self.root),
                "formula": self.formula, "value": exact_text(self.value),
                "expected": exact_text(self.expected), "residual": exact_text(self.residual),
                "note": self.note}


@dataclass(frozen=True)
class OrderResult:
    """The verdict of :func:`classical_order` or :func:`control_order`.

    ``order`` is the largest p with all conditions of order ≤ p satisfied, checked up to
    ``max_order``; when all of them hold, ``order == max_order`` and ``at_least`` is True (the
    true order may be higher). ``failed`` lists the failing conditions of order ``order + 1``.
    ``tolerance`` is 0 for exact verdicts, else τ of the rounded entries (module docstring).
    For the optimal-control order ``order`` is None when it is undefined, and ``reason`` says
    why.
    """

    kind: str  # "classical" | "control"
    order: int | None
    max_order: int
    at_least: bool
    tolerance: float
    failed: tuple[Condition, ...] = ()
    reason: str | None = None
    checked: int = 0

    def __str__(self) -> str:
        if self.order is None:
            return f"undefined ({self.reason})"
        return f"≥ {self.order}" if self.at_least else str(self.order)


# -- numbers ---------------------------------------------------------------------------------
class _AlgebraicIntegers:
    """Z[θ] for a monic integer minimal polynomial m (coefficients low → high, m[n] = 1)."""

    def __init__(self, minpoly: Sequence[int]):
        self.m = [int(x) for x in minpoly[:-1]]
        self.n = len(self.m)

    def mul(self, x: Sequence[int], y: Sequence[int]) -> list[int]:
        n, m = self.n, self.m
        if n == 2:  # the common case, a quadratic field: θ² = −m_1 θ − m_0
            top = x[1] * y[1]
            return [x[0] * y[0] - m[0] * top, x[0] * y[1] + x[1] * y[0] - m[1] * top]
        prod = [0] * (2 * n - 1)
        for i, xi in enumerate(x):
            if xi:
                for j, yj in enumerate(y):
                    prod[i + j] += xi * yj
        for k in range(2 * n - 2, n - 1, -1):  # θ^n = −Σ m_i θ^i
            top = prod[k]
            if top:
                for i in range(n):
                    prod[k - n + i] -= top * m[i]
        return prod[:n]


class _AlgInt:
    """An element of Z[θ] as integer coordinates; supports +, * and truth (≠ 0)."""

    __slots__ = ("c", "ring")

    def __init__(self, coords, ring: _AlgebraicIntegers):
        self.c, self.ring = coords, ring

    def __add__(self, other: "_AlgInt") -> "_AlgInt":
        return _AlgInt([x + y for x, y in zip(self.c, other.c)], self.ring)

    def __mul__(self, other: "_AlgInt") -> "_AlgInt":
        return _AlgInt(self.ring.mul(self.c, other.c), self.ring)

    def __bool__(self) -> bool:
        return any(self.c)


def _check_field(source: str, entries) -> None:
    """InputError before the number field of the entries is built, when its degree may exceed
    MAX_FIELD_DEGREE (building it costs time exponential in the number of generators)."""
    bound, generators = field_degree_bound(entries)
    if bound > MAX_FIELD_DEGREE:
        shown = ", ".join(map(str, generators[:6])) + (", …" if len(generators) > 6 else "")
        raise InputError(f"the exact entries generate a number field of degree up to {bound} "
                         f"({shown}), more than the limit of {MAX_FIELD_DEGREE} for exact "
                         "verdicts; give some entries as decimals for a verdict with a stated "
                         "tolerance", source=source)


class _Exact:
    """Entries of a method in one number field, and an exact engine for its conditions.

    ``K`` holds the entries as field elements (sympy's QQ or QQ<θ>) for the few direct
    formulas (partner, Hager's conditions); :meth:`_build` then sets up the tree engine on
    integers scaled by common denominators: with D the denominator of all matrices and D_b
    that of all weights, the scaled weight W'(t) equals D_b·D^(|t|−1)·W(t). Matrices are given
    per edge colour, weights per root colour (b for colour 0, b̂ for a pair's colour 2).
    ``sizes`` gives W̄(t) (module docstring).
    """

    def __init__(self, name: str, source: str, entries, exact: bool, tolerance: float):
        self.exact, self.tolerance = exact, tolerance
        _check_field(source, entries)
        K, elems = construct_domain(entries, extension=True)
        if K.is_ZZ:
            K, elems = K.get_field(), [K.get_field().convert(x, K) for x in elems]
        if not (K.is_QQ or K.is_AlgebraicField):
            raise InputError(f"{name}: an order verdict needs algebraic or rounded "
                             f"entries, found entries in {K}")
        self.mode = "rational" if K.is_QQ else "algebraic"
        self.K = _DomainField(K)
        self.elements = elems

    def _build(self, matrices: Sequence, weights: dict[int, list],
               size_matrices: Sequence, size_weights: dict[int, list]) -> None:
        """The integer engine on ``matrices`` (in K; None for an unused colour) and the
        floating-point engine of W̄(t) on their absolute values ``size_matrices``."""
        K = self.K.domain
        if self.mode == "rational":
            self.n, self.k = 1, 1
            coords = lambda x: [K.to_sympy(x)]  # noqa: E731
        else:
            mod = [K.dom.to_sympy(c) for c in K.mod.to_list()[::-1]]  # low → high, not always monic
            monic = [c / mod[-1] for c in mod]
            # θ' = kθ has a monic integer minimal polynomial: m'(x) = k^n m(x/k).
            n = self.n = len(monic) - 1
            k = self.k = reduce(lcm, (int(c.q) for c in monic), 1)
            self.ring = _AlgebraicIntegers([int(c * k ** (n - i)) for i, c in enumerate(monic)])

            def coords(x):
                low = x.to_list()[::-1]
                low += [K.dom.zero] * (n - len(low))
                return [K.dom.to_sympy(c) / k ** i for i, c in enumerate(low)]
        mat_coords = [None if M is None else [[coords(x) for x in row] for row in M]
                      for M in matrices]
        w_coords = {root: [coords(x) for x in w] for root, w in weights.items()}
        self.D = reduce(lcm, (int(c.q) for M in mat_coords if M is not None for row in M
                              for x in row for c in x), 1)
        self.Db = reduce(lcm, (int(c.q) for w in w_coords.values() for x in w for c in x), 1)
        if self.mode == "rational":
            make = lambda cs, scale: int(cs[0] * scale)  # noqa: E731
            zero, one = 0, 1
        else:
            ring = self.ring
            make = lambda cs, scale: _AlgInt([int(c * scale) for c in cs], ring)  # noqa: E731
            zero = _AlgInt([0] * self.n, ring)
            one = _AlgInt([1] + [0] * (self.n - 1), ring)
        scaled = [None if M is None else [[make(x, self.D) for x in row] for row in M]
                  for M in mat_coords]
        self.weights = {root: [make(x, self.Db) for x in w] for root, w in w_coords.items()}
        self.engine = ElementaryWeights(scaled, one=one, zero=zero)
        self.sizes = ElementaryWeights(size_matrices, one=1.0, zero=0.0)
        self.size_weights = size_weights

    def size(self, tree: RootedTree, root: int = A_COLOUR) -> float:
        return self.sizes.weight(tree, self.size_weights[root])

    def holds(self, tree: RootedTree, root: int = A_COLOUR) -> bool:
        """Does Σ b_i Φ_i(t) = 1/γ(t) hold (exactly, or within τ·|t|·W̄(t) when rounded)?"""
        if not self.exact:
            residual = self.value(tree, root) - sp.Rational(1, tree.density)
            return (abs(float(residual.evalf(20)))
                    <= self.tolerance * tree.order * self.size(tree, root))
        w = self.engine.weight(tree, self.weights[root])
        if self.mode == "rational":
            return w * tree.density == self.Db * self.D ** (tree.order - 1)
        c = w.c
        return c[0] * tree.density == self.Db * self.D ** (tree.order - 1) and not any(c[1:])

    def value(self, tree: RootedTree, root: int = A_COLOUR) -> sp.Expr:
        """Σ b_i Φ_i(t) as an exact SymPy number (of the decimals, for rounded entries)."""
        w = self.engine.weight(tree, self.weights[root])
        scale = self.Db * self.D ** (tree.order - 1)
        if self.mode == "rational":
            return sp.Rational(w, scale)
        K = self.K.domain
        # back from θ' = kθ to θ: coordinate i gets the factor k^i
        high = [K.dom.convert(sp.Rational(c * self.k ** i, scale))
                for i, c in enumerate(w.c)][::-1]
        return self.K.to_sympy(K.new(high))

    def condition(self, kind: str, tree: RootedTree, formula: str | None = None,
                  value: sp.Expr | None = None, expected: sp.Expr | None = None,
                  root: int = A_COLOUR) -> Condition:
        """The condition of ``tree`` (or Hager's ``formula`` equivalent to it) with its exact
        value, residual and, when the residual is tiny, a note that rounding explains it."""
        value = self.value(tree, root) if value is None else value
        expected = sp.Rational(1, tree.density) if expected is None else expected
        residual = canonical_entry(value - expected)
        note = rounding_note(float(residual.evalf(20)), self.size(tree, root))
        return Condition(kind, tree.order, tree, formula or tree.formula(root), value, expected,
                         residual, note, root)


class _Method(_Exact):
    """A tableau prepared for checking: entries in one number field, the partner, a memo."""

    def __init__(self, tableau: ButcherTableau):
        self.tableau = tableau
        s = self.s = tableau.stages
        entries = [exact_decimal(x) for x in list(tableau.A) + list(tableau.b)]
        super().__init__(tableau.name, tableau.source, entries, tableau.is_exact,
                         tableau.tolerance)
        elems = self.elements
        self.A = [elems[i * s:(i + 1) * s] for i in range(s)]
        self.b = elems[s * s:]
        self.has_partner = not tableau.zero_weights
        A, b = self.A, self.b
        # Ã of ButcherTableau.partner(), in K: ã_ij = b_j − b_j a_ji / b_i
        self.partner = [[b[j] - b[j] * A[j][i] / b[i] for j in range(s)] for i in range(s)] \
            if self.has_partner else None
        self.weights_positive = tableau.weights_positive
        # W̄(t): |A|, |b| and |b_j| + |b_j a_ji / b_i| for Ã, in floating point
        Aabs = [[abs(float(x)) for x in row] for row in tableau.A.tolist()]
        babs = [abs(float(x)) for x in tableau.b]
        sizes = [Aabs]
        if self.has_partner:
            sizes.append([[babs[j] + babs[j] * Aabs[j][i] / babs[i] for j in range(s)]
                          for i in range(s)])
        matrices = [self.A] + ([self.partner] if self.has_partner else [])
        self._build(matrices, {A_COLOUR: self.b}, sizes, {A_COLOUR: babs})


class _DomainField:
    """Arithmetic helpers around a SymPy domain (QQ or an algebraic field QQ<θ>)."""

    def __init__(self, domain):
        self.domain = domain
        self.zero, self.one = domain.zero, domain.one

    def to_sympy(self, x) -> sp.Expr:
        return canonical_entry(self.domain.to_sympy(x))


@lru_cache(maxsize=64)
def _prepare(tableau: ButcherTableau) -> _Method:
    return _Method(tableau)


def _method(tableau) -> _Method:
    if not isinstance(tableau, ButcherTableau):
        tableau = load_tableau(tableau)
    return _prepare(tableau)


def _check_max(value: int, limit: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InputError(f"{what} must be an integer from 1 to {limit}, found {value!r}")
    return value


# -- Hager's conditions ----------------------------------------------------------------------
def _t(*edges) -> RootedTree:
    return RootedTree(edges)


_a = lambda u=LEAF: (A_COLOUR, u)  # noqa: E731
_p = lambda u=LEAF: (PARTNER_COLOUR, u)  # noqa: E731

HAGER_CONDITIONS: tuple[tuple[int, str, str, RootedTree, sp.Rational], ...] = (
    # (order, kind, formula, equivalent bi-coloured tree, right-hand side)
    (1, "classical", "Σ b_j", LEAF, sp.Integer(1)),
    (2, "classical", "Σ d_j", _t(_a()), sp.Rational(1, 2)),
    (3, "classical", "Σ b_j c_j²", _t(_a(), _a()), sp.Rational(1, 3)),
    (3, "classical", "Σ c_j d_j", _t(_a(_t(_a()))), sp.Rational(1, 6)),
    (3, "control", "Σ d_j²/b_j", _t(_p(), _p()), sp.Rational(1, 3)),
    (4, "classical", "Σ b_j c_j³", _t(_a(), _a(), _a()), sp.Rational(1, 4)),
    (4, "classical", "Σ b_j c_j a_jk c_k", _t(_a(), _a(_t(_a()))), sp.Rational(1, 8)),
    (4, "classical", "Σ d_j c_j²", _t(_a(_t(_a(), _a()))), sp.Rational(1, 12)),
    (4, "classical", "Σ d_j a_jk c_k", _t(_a(_t(_a(_t(_a()))))), sp.Rational(1, 24)),
    (4, "control", "Σ c_j d_j²/b_j", _t(_a(), _p(), _p()), sp.Rational(1, 12)),
    (4, "control", "Σ d_j³/b_j²", _t(_p(), _p(), _p()), sp.Rational(1, 4)),
    (4, "control", "Σ b_j c_j a_jk d_k/b_k", _t(_a(), _a(_t(_p()))), sp.Rational(5, 24)),
    (4, "control", "Σ d_j a_jk d_k/b_k", _t(_a(_t(_a(_t(_p()))))), sp.Rational(1, 8)),
)
"""Hager's table (MATH.md 4): the independent optimal-control conditions through order 4."""


def _hager_values(A: list[list], b: list, K) -> list:
    """The left sides of :data:`HAGER_CONDITIONS` for entries in the field K (needs b_i ≠ 0)."""
    s = len(b)
    total = lambda xs: sum(xs, K.zero)  # noqa: E731
    c = [total(A[j]) for j in range(s)]
    d = [total(b[i] * A[i][j] for i in range(s)) for j in range(s)]
    e = [d[j] / b[j] for j in range(s)]
    Ac = [total(A[j][k] * c[k] for k in range(s)) for j in range(s)]
    Ae = [total(A[j][k] * e[k] for k in range(s)) for j in range(s)]
    r = range(s)
    return [
        total(b),
        total(d),
        total(b[j] * c[j] * c[j] for j in r),
        total(c[j] * d[j] for j in r),
        total(d[j] * e[j] for j in r),
        total(b[j] * c[j] * c[j] * c[j] for j in r),
        total(b[j] * c[j] * Ac[j] for j in r),
        total(d[j] * c[j] * c[j] for j in r),
        total(d[j] * Ac[j] for j in r),
        total(c[j] * d[j] * e[j] for j in r),
        total(d[j] * e[j] * e[j] for j in r),
        total(b[j] * c[j] * Ae[j] for j in r),
        total(d[j] * Ae[j] for j in r),
    ]


def hager_conditions(tableau, order: int | None = None) -> list[Condition]:
    """Hager's conditions (of one order, or all 13) evaluated exactly for ``tableau``.

    Each is a :class:`Condition` of kind "control" with its exact value and residual (of the
    decimals, for rounded entries). Needs every b_i ≠ 0 (the formulas divide by b).
    """
    method = _method(tableau)
    if not method.has_partner:
        raise InputError(f"{method.tableau.name}: Hager's conditions divide by b, but "
                         + weights_text(method.tableau))
    values = _hager_values(method.A, method.b, method.K)
    return [method.condition("control", tree, formula, method.K.to_sympy(value), rhs)
            for (q, _, formula, tree, rhs), value in zip(HAGER_CONDITIONS, values)
            if order is None or q == order]


# -- the verdicts ----------------------------------------------------------------------------
def classical_order(tableau, max_order: int = 8) -> OrderResult:
    """The classical order of ``tableau`` (a ButcherTableau, built-in name or file path).

    Checks Σ b_i Φ_i(t) = 1/γ(t) order by order for every rooted tree with |t| ≤ max_order
    and stops at the first order with a failing condition.
    """
    _check_max(max_order, MAX_ORDER, "max_order")
    method = _method(tableau)
    return _verdict(method, "classical", max_order, lambda q: _rooted(rooted_trees(q)))


def control_order(tableau, max_order: int = 6, *, all_trees: bool = False) -> OrderResult:
    """The optimal-control order of ``tableau``: the order of the pair ((A, b), (Ã, b)).

    ``order`` is None, with ``reason``, when a weight is zero (no partner tableau) or negative
    (the discrete problem is unbounded below), MATH.md 3.3. Order by order, one bi-coloured
    tree per class of :func:`ocgen.trees.symplectic_classes` is checked (the others then have
    the same residual up to sign); ``all_trees=True`` checks every bi-coloured tree instead.
    Failing conditions of order ≤ 4 are reported as Hager's formulas (one per class), above
    order 4 as the failing representative trees.
    """
    _check_max(max_order, MAX_CONTROL_ORDER, "max_control_order")
    method = _method(tableau)
    t = method.tableau
    if not method.weights_positive:
        return OrderResult("control", None, max_order, False, method.tolerance,
                           reason=weights_text(t))
    if all_trees:
        result = _verdict(method, "control", max_order, lambda q: _rooted(bicoloured_trees(q)))
    else:
        result = _verdict(method, "control", max_order,
                          lambda q: _rooted(c[0][0] for c in symplectic_classes(q)))
    if result.failed and result.order + 1 <= 4:
        q = result.order + 1
        classes = {tree: i for i, c in enumerate(symplectic_classes(q)) for tree, _ in c}
        failing = {classes[c.tree] for c in result.failed}
        hager = tuple(c for c in hager_conditions(t, q) if classes[c.tree] in failing)
        result = OrderResult(result.kind, result.order, result.max_order, result.at_least,
                             result.tolerance, hager, None, result.checked)
    return result


def _rooted(trees) -> Any:
    """(tree, A_COLOUR) for each tree: its condition uses the weights b."""
    return ((tree, A_COLOUR) for tree in trees)


def _verdict(method: _Exact, kind: str, max_order: int,
             trees: Callable[[int], Any]) -> OrderResult:
    """Check order by order; stop at the first order with failing conditions.

    ``trees(q)`` gives the (tree, root colour) pairs of the conditions of order q.
    """
    checked = 0
    for q in range(1, max_order + 1):
        failing = []
        for tree, root in trees(q):
            checked += 1
            if not method.holds(tree, root):
                failing.append((tree, root))
        if failing:
            failed = tuple(method.condition(kind, tree, root=root) for tree, root in failing)
            return OrderResult(kind, q - 1, max_order, False, method.tolerance, failed,
                               None, checked)
    return OrderResult(kind, max_order, max_order, True, method.tolerance, (), None, checked)


def weights_text(t: ButcherTableau) -> str:
    """Why a zero or negative weight of ``t`` leaves the optimal-control order undefined."""
    parts = [f"b_{i + 1} = 0" for i in t.zero_weights]
    parts += [f"b_{i + 1} = {show(t.b[i])} < 0" for i in t.negative_weights]
    why = []
    if t.zero_weights:
        why.append("a stage with b_i = 0 has no partner (costate) stage and its stage control "
                   "carries no running cost, so the discrete problem loses coercivity")
    if t.negative_weights:
        why.append("a negative weight makes the discrete problem unbounded below")
    return f"{', '.join(parts)}: {'; '.join(why)} (MATH.md 3.3)"


# -- certificate -----------------------------------------------------------------------------
def _c_tilde_equals_c(t: ButcherTableau) -> bool:
    """Whether the stage costates sit at the stage times: c̃ = Ã1 equals c (MATH.md 3.2)."""
    return all(is_zero(x - y, t.tolerance) for x, y in zip(t.partner().c, t.c))


def certificate(tableau, max_order: int = 8, max_control_order: int = 6) -> dict[str, Any]:
    """Everything ``ocgen order --json`` reports about one tableau.

    Keys: name, aliases, stages, explicit, kind, exact, tolerance, A, b, c (exact strings),
    order, order_at_least, max_order, control_order (int or None), control_order_at_least,
    control_order_reason, max_control_order, literature_order, literature_control_order,
    weights_positive, zero_weights and negative_weights (1-based stage numbers), symplectic,
    partner ({A, b, c} as exact strings, or None), c_tilde, c_tilde_equals_c and
    failed_conditions (list of {kind, order, tree, formula, value, expected, residual}).
    """
    method = _method(tableau)
    t = method.tableau
    s = t.stages
    classical = classical_order(t, max_order)
    control = control_order(t, max_control_order)
    partner = c_tilde = None
    if method.has_partner:
        c_tilde = [exact_text(x) for x in t.partner().c]
        partner = {"A": [[exact_text(x) for x in row] for row in t.partner().A.tolist()],
                   "b": [exact_text(x) for x in t.b], "c": list(c_tilde)}
    return {
        "name": t.name,
        "aliases": list(t.aliases),
        "stages": s,
        "explicit": t.is_explicit,
        "kind": t.kind,
        "exact": method.exact,
        "tolerance": method.tolerance,
        "A": [[exact_text(t.A[i, j]) for j in range(s)] for i in range(s)],
        "b": [exact_text(x) for x in t.b],
        "c": [exact_text(x) for x in t.c],
        "order": classical.order,
        "order_at_least": classical.at_least,
        "max_order": classical.max_order,
        "control_order": control.order,
        "control_order_at_least": control.at_least,
        "control_order_reason": control.reason,
        "max_control_order": control.max_order,
        "literature_order": t.literature_order,
        "literature_control_order": t.literature_control_order,
        "weights_positive": t.weights_positive,
        "zero_weights": [i + 1 for i in t.zero_weights],
        "negative_weights": [i + 1 for i in t.negative_weights],
        "symplectic": t.is_symplectic,
        "partner": partner,
        "c_tilde": c_tilde,
        "c_tilde_equals_c": _c_tilde_equals_c(t) if method.has_partner else None,
        "failed_conditions": [c.to_dict() for c in classical.failed + control.failed],
    }


def format_certificate(tableau, max_order: int = 8, max_control_order: int = 6,
                       max_listed: int = 3) -> str:
    """The certificate as a human-readable report (tableau, partner, c̃ vs c, both orders)."""
    method = _method(tableau)
    t = method.tableau
    s = t.stages
    classical = classical_order(t, max_order)
    control = control_order(t, max_control_order)
    lines = [f"{t.name}: {s} stage{'s' if s != 1 else ''}, {t.kind}"]
    if t.citation:
        lines += textwrap.wrap(f"source: {t.citation}", width=96, subsequent_indent="  ")
    lines += _indent(format_tableau(t).splitlines())
    if not method.has_partner:
        lines.append("Partner tableau Ã: none (" + ", ".join(
            f"b_{i + 1} = 0" for i in t.zero_weights) + ")")
    elif t.is_symplectic:
        lines.append("Partner tableau Ã = A (the method is symplectic)")
    else:
        lines.append("Partner tableau Ã = 1bᵀ − B⁻¹AᵀB (costate stages), b̃ = b:")
        lines += _indent(_grid(t.partner().A.tolist(), t.b, t.partner().c, c_name="c̃"))
    if method.has_partner:
        lines.append(f"c̃ = ({', '.join(show(x) for x in t.partner().c)})"
                     + ("  = c" if _c_tilde_equals_c(t) else
                        f"  ≠ c = ({', '.join(show(x) for x in t.c)}): stage costates sit at "
                        "other times than the stages"))
    arith = ("exact arithmetic" if method.exact else
             f"entries rounded to {t.digits} digits: tolerance {t.tolerance:g} relative to "
             "each condition")
    lines.append(f"Classical order: {classical}" + _literature(classical, t.literature_order)
                 + f"   ({classical.checked} conditions, {arith})")
    lines += _failures(classical, max_listed)
    lines.append(f"Optimal-control order: {control}"
                 + _literature(control, t.literature_control_order)
                 + (f"   ({control.checked} independent conditions)" if control.checked
                    else ""))
    lines += _failures(control, max_listed)
    return "\n".join(lines)


def _literature(result: OrderResult, literature: int | None) -> str:
    if literature is None or result.order is None:
        return ""
    agrees = (result.order <= literature) if result.at_least else result.order == literature
    return "" if agrees else f"   (the library records {literature}: MISMATCH)"


def _failures(result: OrderResult, max_listed: int) -> list[str]:
    if not result.failed:
        return []
    q = result.order + 1
    out = [f"  fails at order {q}:"]
    for cond in result.failed[:max_listed]:
        shown = cond.tree.bracket(cond.root)
        tree = f"   tree {shown}" if cond.formula == cond.tree.formula(cond.root) else ""
        out.append(f"    {cond}{tree}")
    if len(result.failed) > max_listed:
        out.append(f"    … and {len(result.failed) - max_listed} more")
    return out


def format_tableau(tableau) -> str:
    """The Butcher tableau as aligned text: c | A over a rule, then bᵀ."""
    t = tableau if isinstance(tableau, ButcherTableau) else load_tableau(tableau)
    s = t.stages
    return "\n".join(_grid([[t.A[i, j] for j in range(s)] for i in range(s)], t.b, t.c))


def _grid(A, b, c, c_name: str = "c") -> list[str]:
    s = len(b)
    cells = [[show(c[i])] + [show(A[i][j]) for j in range(s)] for i in range(s)]
    cells.append([""] + [show(x) for x in b])
    widths = [max(len(row[k]) for row in cells) for k in range(s + 1)]
    widths[0] = max(widths[0], len(c_name))
    rows = []
    for i, row in enumerate(cells):
        left = row[0].rjust(widths[0])
        rest = "  ".join(x.rjust(widths[k + 1]) for k, x in enumerate(row[1:]))
        if i == s:
            rows.append("-" * (widths[0] + 1) + "+" + "-" * (len(rest) + 1))
        rows.append(f"{left} | {rest}")
    return rows


def _indent(lines: list[str]) -> list[str]:
    return ["    " + x for x in lines]
