"""Order certificates of partitioned Runge–Kutta pairs, decided exactly.

* **Order p** (problems y' = f(y, z), z' = g(y, z)): Σ_i w_i Φ_i(t) = 1/γ(t) for every
  P-tree t with |t| ≤ p (Hairer, Nørsett & Wanner I, II.15; Hairer, Lubich & Wanner III.2.1).
  A P-tree is a rooted tree whose vertices have the colour of the first part (y: A, b) or of
  the second (z: Â, b̂). A vertex reached through an edge multiplies by the matrix of its own
  colour, and the root takes the weights of its colour: w = b or b̂. Counts 2, 4, 14, 52, 214,
  916 for orders 1..6 (twice the bi-coloured trees of :mod:`ocgen.trees`).
* **Order on separable problems** y' = f(z), z' = g(y) (H = T(p) + V(q)): the same
  conditions for the P-trees in which no edge joins two vertices of one colour; the
  elementary differentials of the others vanish. Two per rooted tree: 2, 2, 4, 8, 18, 40.
* **Optimal-control order** (b = b̂, all b_i > 0): the discrete optimality system of the pair
  is the four-part PRK with y: A, p_y: Ã, z: Â, p_z: Ã̂ (:meth:`PartitionedTableau.partner`)
  and weights b, applied to a general Hamiltonian system; its conditions are the trees with
  four edge colours. The couples (A, Ã) and (Â, Ã̂) are symplectic with the same b, so the
  conditions of one order fall into classes equal up to sign once the lower orders hold, and
  one tree per class is checked (:func:`ocgen.trees.symplectic_classes`; as for one tableau,
  MATH.md 4). When the pair itself is symplectic, Ã = Â and Ã̂ = A: the optimality system is
  the pair on (y, p_z) and (z, p_y), and the conditions are its own with couple (A, Â). A
  single tableau T as the pair (T, T) gets the control order of T. Undefined (``None``, with
  a reason) when b ≠ b̂ — the stage costates then mix both weights and form no PRK on a
  non-separable optimality system, and the running cost has no single quadrature — or when
  a weight is zero or negative (MATH.md 3.3).

Verdicts are exact for algebraic entries and within the stated tolerance for rounded ones,
by the engine of :mod:`ocgen.order` (the same number fields, scaled integers and bounds).
"""

from __future__ import annotations

import textwrap
from functools import lru_cache
from typing import Any

from .errors import InputError
from .numbers import exact_decimal, exact_text, show
from .order import (MAX_CONTROL_ORDER, OrderResult, _check_max, _Exact, _failures, _grid,
                    _indent, _literature, _verdict, weights_text)
from .pair import PartitionedTableau, load_pair
from .trees import (A_COLOUR, PARTNER_COLOUR, SECOND_COLOUR, SECOND_PARTNER_COLOUR,
                    alternates, coloured_trees, symplectic_classes)

__all__ = ["classical_order", "separable_order", "control_order", "certificate",
           "format_certificate", "MAX_PAIR_ORDER", "MAX_FOUR_COLOUR_ORDER"]

MAX_PAIR_ORDER = 9
"""Largest order that may be requested for a pair (89 894 P-trees of order 9)."""
MAX_FOUR_COLOUR_ORDER = 7
"""Largest optimal-control order of a pair that is not symplectic (111 064 trees with four
edge colours of order 7)."""

_PAIR_COLOURS = (A_COLOUR, SECOND_COLOUR)
_FOUR_PARTS = ((A_COLOUR, PARTNER_COLOUR), (SECOND_COLOUR, SECOND_PARTNER_COLOUR))


class _Pair(_Exact):
    """A pair prepared for checking: A (colour 0) and Â (colour 2), their partners (colours
    1 and 3) when every weight is non-zero, weights b (root colour 0) and b̂ (colour 2)."""

    def __init__(self, pair: PartitionedTableau):
        self.pair = pair
        s = self.s = pair.stages
        entries = [exact_decimal(x) for part in pair.parts for x in list(part.A) + list(part.b)]
        super().__init__(pair.name, pair.source, entries, pair.is_exact, pair.tolerance)
        e, n = self.elements, s * s + s
        A, b = [e[i * s:(i + 1) * s] for i in range(s)], e[s * s:n]
        Ah, bh = [e[n + i * s:n + (i + 1) * s] for i in range(s)], e[n + s * s:]
        Aabs = [[abs(float(x)) for x in row] for row in pair.first.A.tolist()]
        Ahabs = [[abs(float(x)) for x in row] for row in pair.second.A.tolist()]
        babs = [abs(float(x)) for x in pair.first.b]
        bhabs = [abs(float(x)) for x in pair.second.b]
        self.has_partner = not (pair.first.zero_weights or pair.second.zero_weights)
        matrices, sizes = [A, None, Ah, None], [Aabs, None, Ahabs, None]
        if self.has_partner:
            r = range(s)
            # partner(): Ã_ij = b̂_j − b̂_j a_ji / b_i, Ã̂_ij = b_j − b_j â_ji / b̂_i
            matrices[PARTNER_COLOUR] = [[bh[j] - bh[j] * A[j][i] / b[i] for j in r] for i in r]
            matrices[SECOND_PARTNER_COLOUR] = [[b[j] - b[j] * Ah[j][i] / bh[i] for j in r]
                                               for i in r]
            sizes[PARTNER_COLOUR] = [[bhabs[j] + bhabs[j] * Aabs[j][i] / babs[i] for j in r]
                                     for i in r]
            sizes[SECOND_PARTNER_COLOUR] = [[babs[j] + babs[j] * Ahabs[j][i] / bhabs[i]
                                             for j in r] for i in r]
        self._build(matrices, {A_COLOUR: b, SECOND_COLOUR: bh}, sizes,
                    {A_COLOUR: babs, SECOND_COLOUR: bhabs})


@lru_cache(maxsize=32)
def _prepare(pair: PartitionedTableau) -> _Pair:
    return _Pair(pair)


def _pair(pair) -> _Pair:
    return _prepare(load_pair(pair))


def _p_trees(q: int, separable: bool = False):
    """(tree, root colour) of every P-tree of order q; only alternating ones if separable."""
    for root in _PAIR_COLOURS:
        for tree in coloured_trees(q, _PAIR_COLOURS):
            if not separable or alternates(tree, root):
                yield tree, root


def classical_order(pair, max_order: int = 8) -> OrderResult:
    """The order of ``pair`` (a PartitionedTableau, built-in name or file) on general
    partitioned problems: every P-tree with |t| ≤ max_order, order by order."""
    _check_max(max_order, MAX_PAIR_ORDER, "max_order")
    return _verdict(_pair(pair), "classical", max_order, _p_trees)


def separable_order(pair, max_order: int = 8) -> OrderResult:
    """The order of ``pair`` on separable problems y' = f(z), z' = g(y): the P-trees without
    an edge between vertices of one colour (kind "separable")."""
    _check_max(max_order, MAX_PAIR_ORDER, "max_order")
    return _verdict(_pair(pair), "separable", max_order,
                    lambda q: _p_trees(q, separable=True))


def control_order(pair, max_order: int = 6, *, all_trees: bool = False) -> OrderResult:
    """The optimal-control order of ``pair``: the order of the four-part PRK (A, Ã, Â, Ã̂)
    with weights b (module docstring); ``None`` with a reason when b ≠ b̂ or a weight is
    not positive. One tree per symplectic class is checked, every tree with ``all_trees``."""
    method = _pair(pair)
    p = method.pair
    symplectic = p.is_symplectic
    _check_max(max_order, MAX_CONTROL_ORDER, "max_control_order")
    if not symplectic and max_order > MAX_FOUR_COLOUR_ORDER:
        raise InputError(f"max_control_order for {p.name} must be at most "
                         f"{MAX_FOUR_COLOUR_ORDER}: the pair is not symplectic, so its "
                         "conditions are trees with four edge colours (111 064 of order 7)")
    reason = _undefined(p)
    if reason:
        return OrderResult("control", None, max_order, False, method.tolerance, reason=reason)
    couples = ((A_COLOUR, SECOND_COLOUR),) if symplectic else _FOUR_PARTS
    colours = tuple(k for couple in couples for k in couple)
    if all_trees:
        trees = lambda q: ((t, A_COLOUR) for t in coloured_trees(q, colours))  # noqa: E731
    else:
        trees = lambda q: ((c[0][0], A_COLOUR)  # noqa: E731
                           for c in symplectic_classes(q, couples))
    return _verdict(method, "control", max_order, trees)


def _undefined(p: PartitionedTableau) -> str | None:
    """Why the optimal-control order of ``p`` is undefined, or None."""
    if not p.same_weights:
        i = next(i for i in range(p.stages) if not p._equal(p.first.b[i], p.second.b[i]))
        return (f"b ≠ b̂ (b_{i + 1} = {show(p.first.b[i])}, b̂_{i + 1} = "
                f"{show(p.second.b[i])}): the stage costates of a pair with different weights "
                "mix b and b̂ and form no partitioned Runge–Kutta method on a non-separable "
                "optimality system, and the running cost has no single quadrature")
    if not p.first.weights_positive:
        return weights_text(p.first)
    return None


# -- certificate -----------------------------------------------------------------------------
def _part_dict(part) -> dict[str, Any]:
    s = part.stages
    return {"A": [[exact_text(part.A[i, j]) for j in range(s)] for i in range(s)],
            "b": [exact_text(x) for x in part.b], "c": [exact_text(x) for x in part.c]}


def _partner_is_swapped(p: PartitionedTableau, method: _Pair) -> bool | None:
    return p.is_symplectic_separable if method.has_partner else None


def certificate(pair, max_order: int = 8, max_control_order: int = 6) -> dict[str, Any]:
    """Everything ``ocgen order --json`` reports about one pair.

    Keys: type ("pair"), name, aliases, description, stages, explicit,
    explicit_for_separable, exact, tolerance, first and second ({name, kind, A, b, c}, exact
    strings), same_weights, symplectic (b = b̂ and b_i â_ij + b̂_j a_ji = b_i b̂_j),
    symplectic_separable (the second condition only), partner ({first, second} as {A, b, c},
    or None when a weight is zero), partner_is_swapped, order, order_at_least, max_order,
    separable_order, separable_order_at_least, control_order (int or None),
    control_order_at_least, control_order_reason, max_control_order, literature_order,
    literature_separable_order, literature_control_order, and failed_conditions (list of
    {kind: "classical"|"separable"|"control", order, tree, formula, value, expected, residual,
    note}).
    """
    method = _pair(pair)
    p = method.pair
    classical = classical_order(p, max_order)
    separable = separable_order(p, max_order)
    control = control_order(p, max_control_order)
    partner = None
    if method.has_partner:
        partner = {"first": _part_dict(p.partner().first),
                   "second": _part_dict(p.partner().second)}
    return {
        "type": "pair",
        "name": p.name,
        "aliases": list(p.aliases),
        "description": p.description,
        "stages": p.stages,
        "explicit": p.is_explicit,
        "explicit_for_separable": p.is_explicit_for_separable,
        "exact": method.exact,
        "tolerance": method.tolerance,
        "first": {"name": p.first.name, "kind": p.first.kind, **_part_dict(p.first)},
        "second": {"name": p.second.name, "kind": p.second.kind, **_part_dict(p.second)},
        "same_weights": p.same_weights,
        "symplectic": p.is_symplectic,
        "symplectic_separable": p.is_symplectic_separable,
        "partner": partner,
        "partner_is_swapped": _partner_is_swapped(p, method),
        "order": classical.order,
        "order_at_least": classical.at_least,
        "max_order": classical.max_order,
        "separable_order": separable.order,
        "separable_order_at_least": separable.at_least,
        "control_order": control.order,
        "control_order_at_least": control.at_least,
        "control_order_reason": control.reason,
        "max_control_order": control.max_order,
        "literature_order": p.literature_order,
        "literature_separable_order": p.literature_separable_order,
        "literature_control_order": p.literature_control_order,
        "failed_conditions": [c.to_dict() for c in
                              classical.failed + separable.failed + control.failed],
    }


def format_certificate(pair, max_order: int = 8, max_control_order: int = 6,
                       max_listed: int = 3) -> str:
    """The certificate as a human-readable report: both parts, symplecticity, the partner
    pair and the three orders with their first failing conditions."""
    method = _pair(pair)
    p = method.pair
    classical = classical_order(p, max_order)
    separable = separable_order(p, max_order)
    control = control_order(p, max_control_order)
    s = p.stages
    kind = "explicit" if p.is_explicit else (
        "explicit on separable problems" if p.is_explicit_for_separable else "implicit")
    lines = [f"{p.name}: partitioned pair, {s} stage{'s' if s != 1 else ''}, {kind}"]
    for label, text in (("", p.description), ("source: ", p.citation)):
        if text:
            lines += textwrap.wrap(label + text, width=96, subsequent_indent="  ")
    for key, part, names in (("first", p.first, ("A", "b", "c")),
                             ("second", p.second, ("Â", "b̂", "ĉ"))):
        own = "" if part.name.endswith(f"({key} part)") else f": {part.name}"
        lines.append(f"{key.capitalize()} part ({', '.join(names)}), for "
                     f"{'y' if key == 'first' else 'z'}{own}")
        lines += _indent(_grid(part.A.tolist(), part.b, part.c,
                               c_name="c" if key == "first" else "ĉ"))
    lines.append(_symplectic_line(p))
    lines += _partner_lines(p, method)
    arith = ("exact arithmetic" if method.exact else
             f"entries rounded to {p.digits} digits: tolerance {p.tolerance:g} relative to "
             "each condition")
    lines.append(f"Order: {classical}" + _literature(classical, p.literature_order)
                 + f"   ({classical.checked} conditions on P-trees, {arith})")
    lines += _failures(classical, max_listed)
    lines.append(f"Order on separable problems: {separable}"
                 + _literature(separable, p.literature_separable_order)
                 + f"   ({separable.checked} conditions)")
    lines += _failures(separable, max_listed)
    lines.append(f"Optimal-control order: {control}"
                 + _literature(control, p.literature_control_order)
                 + (f"   ({control.checked} independent conditions)" if control.checked
                    else ""))
    lines += _failures(control, max_listed)
    return "\n".join(lines)


def _symplectic_line(p: PartitionedTableau) -> str:
    if p.is_symplectic:
        return "Symplectic: yes (b = b̂ and b_i â_ij + b̂_j a_ji = b_i b̂_j)"
    if p.is_symplectic_separable:
        return ("Symplectic: on separable problems only (b_i â_ij + b̂_j a_ji = b_i b̂_j, "
                "but b ≠ b̂)")
    i, j = p.symplecticity_defect
    return (f"Symplectic: no (b_i â_ij + b̂_j a_ji − b_i b̂_j = {show(p._defect(i, j))} at "
            f"i = {i + 1}, j = {j + 1})")


def _partner_lines(p: PartitionedTableau, method: _Pair) -> list[str]:
    if not method.has_partner:
        zeros = [f"b_{i + 1} = 0" for i in p.first.zero_weights]
        zeros += [f"b̂_{i + 1} = 0" for i in p.second.zero_weights]
        return [f"Partner pair (costates): none ({', '.join(zeros)})"]
    scope = "" if p.same_weights else " (the costate scheme on separable problems: b ≠ b̂)"
    if p.is_symplectic_separable:
        return textwrap.wrap(f"Partner pair (costates): the swapped pair (Â, b̂; A, b){scope}",
                             width=96, subsequent_indent="  ")
    partner = p.partner()
    lines = [f"Partner pair (costates){scope}:"]
    for label, part, c_name in (
            ("for p_y: Ã_ij = b̂_j − b̂_j a_ji / b_i, weights b̂", partner.first, "c̃"),
            ("for p_z: Ã̂_ij = b_j − b_j â_ji / b̂_i, weights b", partner.second, "c̃̂")):
        lines.append(f"  {label}")
        lines += _indent(_grid(part.A.tolist(), part.b, part.c, c_name=c_name))
    return lines
