"""Rooted trees and elementary weights: the order conditions of Runge–Kutta methods.

A Runge–Kutta method (A, b) has order p when Σ_i b_i Φ_i(t) = 1/γ(t) for every rooted tree t
with at most p vertices (Butcher 1963; Hairer, Nørsett & Wanner, *Solving ODEs I*, II.2).
For the partitioned pair ((A, b), (Ã, b)) of optimal control the trees are **bi-coloured**:
each non-root vertex carries the colour of the matrix used to reach it (MATH.md 4). Both are
one structure here: a tree whose edges carry a colour index (0 for A, 1 for Ã); classical
trees use colour 0 only. A partitioned pair (A, b; Â, b̂) adds colour 2 for Â and colour 3
for its partner (:mod:`ocgen.pair_order`); there the colour of the root picks the weights,
b for colour 0 and b̂ for colour 2 (Hairer, Nørsett & Wanner I, II.15: P-trees).

Definitions, for a tree t with root children (colour k_1, t_1), …, (colour k_m, t_m):

    |t|  = 1 + Σ |t_i|                          (order: the number of vertices)
    γ(t) = |t| · Π γ(t_i)                       (density)
    σ(t) = Π_{distinct (k, u)} σ(u)^μ · μ!      (symmetry; μ = multiplicity of (k, u))
    Φ(τ) = 1 (the vector of ones),  Φ(t) = Π_i (M_{k_i} Φ(t_i))   (elementwise product)

and the order condition of t is Σ_i b_i Φ_i(t) = 1/γ(t).

The numerical code is generic, in the spirit of RootedTrees.jl: ``elementary_weight`` and
``residual_order_condition`` work with any numbers that support ``+`` and ``*`` (int,
``fractions.Fraction``, float, SymPy numbers, polynomial-domain elements). ``ocgen.order``
feeds them exact integers and algebraic integers for speed.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache
import unicodedata
from math import factorial
from typing import Any, Iterator, Sequence

__all__ = [
    "RootedTree", "LEAF", "A_COLOUR", "PARTNER_COLOUR", "SECOND_COLOUR", "SECOND_PARTNER_COLOUR",
    "COLOURS", "rooted_trees", "bicoloured_trees", "coloured_trees", "trees_up_to",
    "alternates", "symplectic_classes", "count_trees", "ElementaryWeights", "elementary_weight",
    "residual_order_condition", "reciprocal",
]

A_COLOUR = 0
"""Colour of an edge followed through A."""
PARTNER_COLOUR = 1
"""Colour of an edge followed through the partner matrix Ã."""
SECOND_COLOUR = 2
"""Colour of an edge followed through Â, the matrix of the second part of a pair."""
SECOND_PARTNER_COLOUR = 3
"""Colour of an edge followed through the partner of Â."""
COLOURS = 4
"""Number of edge colours. Colour k and k ^ 1 are partners; bit 1 marks the second part."""

_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_TILDE = "\u0303"  # combining tilde: c̃, τ̃
_HAT = "\u0302"  # combining circumflex: ĉ, τ̂
_DELIMITERS = ("[]", "{}", "⟨⟩", "⟪⟫")
"""Brackets of a subtree whose root is reached through colour 0, 1, 2, 3."""
_INDEX_NAMES = "ijklmnpqrsuvwxyz"


class RootedTree:
    """An immutable rooted tree in canonical form, with coloured edges.

    ``edges`` is a sorted tuple of ``(colour, subtree)`` pairs, one per child of the root.
    Two trees are equal exactly when they are isomorphic (colours included), so trees can be
    used as dictionary keys. Build trees with the constructor, :meth:`from_children` or
    :meth:`graft`, or get them
    from the iterators :func:`rooted_trees` and :func:`bicoloured_trees`.
    """

    __slots__ = ("edges", "order", "_key", "_hash", "_gamma", "_sigma", "_rest")

    def __init__(self, edges: Sequence[tuple[int, "RootedTree"]] = ()):
        edges = [(int(k), u) for k, u in edges]
        for k, u in edges:
            if not isinstance(u, RootedTree) or not 0 <= k < COLOURS:
                raise TypeError(f"edges must be (colour 0..{COLOURS - 1}, RootedTree) pairs")
        edges = tuple(sorted(edges, key=_edge_key))
        self.edges = edges
        self.order = 1 + sum(u.order for _, u in edges)
        self._key = (self.order, tuple(_edge_key(e) for e in edges))
        self._hash = hash(self._key)
        self._gamma = self._sigma = self._rest = None

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_children(cls, children: Sequence["RootedTree"],
                      colour: int = A_COLOUR) -> "RootedTree":
        """The tree [t_1 … t_m] with every root edge of one colour (Butcher's bracket)."""
        return cls([(colour, u) for u in children])

    def graft(self, other: "RootedTree", colour: int = A_COLOUR) -> "RootedTree":
        """Butcher product t ∘ u: attach ``other`` as a new child of the root of ``self``."""
        return RootedTree(self.edges + ((colour, other),))

    @property
    def rest(self) -> "RootedTree":
        """This tree without its last root edge (so ``t == t.rest.graft(u, k)``)."""
        if self._rest is None:
            if not self.edges:
                raise ValueError("the one-vertex tree has no edge to remove")
            self._rest = RootedTree(self.edges[:-1])
        return self._rest

    # -- classical tree functions -----------------------------------------------------------
    @property
    def density(self) -> int:
        """γ(t) = |t| Π γ(t_i)."""
        if self._gamma is None:
            gamma = self.order
            for _, u in self.edges:
                gamma *= u.density
            self._gamma = gamma
        return self._gamma

    gamma = density

    @property
    def symmetry(self) -> int:
        """σ(t): the order of the automorphism group (colour-preserving)."""
        if self._sigma is None:
            sigma, i, e = 1, 0, self.edges
            while i < len(e):
                j = i
                while j < len(e) and e[j][0] == e[i][0] and e[j][1] == e[i][1]:
                    j += 1
                sigma *= e[i][1].symmetry ** (j - i) * factorial(j - i)
                i = j
            self._sigma = sigma
        return self._sigma

    sigma = symmetry

    @property
    def colours(self) -> frozenset[int]:
        """The edge colours used anywhere in the tree."""
        out: set[int] = set()
        for k, u in self.edges:
            out.add(k)
            out |= u.colours
        return frozenset(out)

    @property
    def is_classical(self) -> bool:
        """True when every edge has colour 0 (a tree of the classical theory)."""
        return all(k == A_COLOUR and u.is_classical for k, u in self.edges)

    def uncoloured(self) -> "RootedTree":
        """The same tree with every edge of colour 0."""
        return RootedTree([(A_COLOUR, u.uncoloured()) for _, u in self.edges])

    # -- notation ----------------------------------------------------------------------------
    def bracket(self, root: int = A_COLOUR) -> str:
        """Butcher's bracket notation: τ is the single vertex, [t_1 t_2 …] grafts onto a root.

        A child reached through Ã is written τ̃ (a leaf) or {…} (a subtree); repeated children
        get exponents: [τ²], [τ[τ]], [τ̃²], [τ{τ}]. Through Â: τ̂ or ⟨…⟩; through its partner:
        τ̃̂ or ⟪…⟫. ``root`` is the colour of the root vertex (for the trees of a pair).
        """
        if not self.edges:
            return _letter("τ", root)
        left, right = _DELIMITERS[root]
        return self._bracket(left, right)

    def _bracket(self, left: str, right: str) -> str:
        parts, i, e = [], 0, self.edges
        while i < len(e):
            j = i
            while j < len(e) and e[j] == e[i]:
                j += 1
            k, u = e[i]
            text = u._bracket(*_DELIMITERS[k]) if u.edges else _letter("τ", k)
            parts.append(text + (str(j - i).translate(_SUPERSCRIPTS) if j - i > 1 else ""))
            i = j
        return left + "".join(parts) + right

    def formula(self, root: int = A_COLOUR) -> str:
        """The elementary weight as an index sum, e.g. ``Σ b_i c_i a_ij c_j`` for [τ[τ]].

        Leaves become c (through A) or c̃ (through Ã); other edges a_xy or ã_xy; through Â and
        its partner ĉ, â_xy and c̃̂, ã̂_xy. The weights are b, or b̂ when ``root`` is colour 2.
        """
        factors: list[str] = []
        names = iter(_INDEX_NAMES)
        index = next(names)
        factors.append(f"{_letter('b', root & SECOND_COLOUR)}_{index}")
        self._factors(index, names, factors)
        return "Σ " + " ".join(factors)

    def _factors(self, index: str, names: Iterator[str], out: list[str]) -> None:
        counts: dict[int, int] = {}
        for k, u in self.edges:
            if not u.edges:
                counts[k] = counts.get(k, 0) + 1
        for k in sorted(counts):
            power = str(counts[k]).translate(_SUPERSCRIPTS) if counts[k] > 1 else ""
            out.append(f"{_letter('c', k)}_{index}{power}")
        for k, u in self.edges:
            if u.edges:
                child = next(names)
                out.append(f"{_letter('a', k)}_{index}{child}")
                u._factors(child, names, out)

    # -- dunder ------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, RootedTree) and self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: "RootedTree") -> bool:
        return self._key < other._key

    def __len__(self) -> int:
        return self.order

    def __repr__(self) -> str:
        return f"RootedTree({self.bracket()})"

    __str__ = bracket


def _edge_key(edge: tuple[int, RootedTree]):
    return (edge[1]._key, edge[0])


def _letter(name: str, colour: int) -> str:
    """``name`` with the accents of ``colour``: a tilde for a partner, a hat for Â."""
    accents = (_TILDE if colour & 1 else "") + (_HAT if colour & 2 else "")
    return unicodedata.normalize("NFC", name + accents)


LEAF = RootedTree()
"""τ, the tree with one vertex."""


# -- iterators -------------------------------------------------------------------------------
def _palette(colours) -> tuple[int, ...]:
    """The edge colours of ``colours``: a count 1..4 (colours 0..n−1) or a set of colours."""
    if isinstance(colours, int) and not isinstance(colours, bool):
        if not 1 <= colours <= COLOURS:
            raise ValueError(f"colours must be 1 (classical) to {COLOURS}, or a set of colours")
        return tuple(range(colours))
    palette = tuple(sorted(set(colours)))
    if not palette or not all(isinstance(k, int) and 0 <= k < COLOURS for k in palette):
        raise ValueError(f"colours must be a non-empty set of colours 0..{COLOURS - 1}")
    return palette


@cache
def _trees(order: int, palette: tuple[int, ...]) -> tuple[RootedTree, ...]:
    """All trees with ``order`` vertices and edge colours in ``palette``, sorted canonically.

    A tree of order n is a root plus a multiset of (colour, subtree) edges whose orders sum to
    n − 1; the multisets are enumerated as non-increasing sequences over a sorted edge list.
    """
    if order < 1:
        return ()
    if order == 1:
        return (LEAF,)
    edges = sorted(((k, u) for m in range(1, order) for u in _trees(m, palette)
                    for k in palette), key=_edge_key)
    found: list[RootedTree] = []
    chosen: list[tuple[int, RootedTree]] = []

    def extend(start: int, remaining: int) -> None:
        if remaining == 0:
            found.append(RootedTree(chosen))
            return
        for index in range(start, len(edges)):
            edge = edges[index]
            if edge[1].order > remaining:
                break  # edges are sorted by subtree order first
            chosen.append(edge)
            extend(index, remaining - edge[1].order)
            chosen.pop()

    extend(0, order - 1)
    return tuple(sorted(found))


def coloured_trees(order: int, colours) -> Iterator[RootedTree]:
    """Trees with ``order`` vertices whose non-root vertices carry one of several colours.

    ``colours`` is 1 (classical trees), 2 (bi-coloured trees: A and Ã), 4 (A, Ã, Â and the
    partner of Â), or a set of colours such as ``{A_COLOUR, SECOND_COLOUR}`` (a pair).
    """
    return iter(_trees(order, _palette(colours)))


def rooted_trees(order: int) -> Iterator[RootedTree]:
    """The rooted trees with ``order`` vertices (1, 1, 2, 4, 9, 20, 48, 115, 286, 719, …)."""
    return coloured_trees(order, 1)


def bicoloured_trees(order: int) -> Iterator[RootedTree]:
    """Bi-coloured trees of the pair ((A, b), (Ã, b)): edges of colour 0 (A) or 1 (Ã).

    The root has no colour because both methods share the weights b (MATH.md 4); counts
    1, 2, 7, 26, 107, 458 for orders 1..6.
    """
    return coloured_trees(order, 2)


def trees_up_to(max_order: int, colours=1) -> Iterator[RootedTree]:
    """All trees of order 1..max_order, order by order."""
    palette = _palette(colours)
    for order in range(1, max_order + 1):
        yield from _trees(order, palette)


def alternates(tree: RootedTree, root: int) -> bool:
    """Whether no edge joins two vertices of the same colour, the root having colour ``root``.

    For a separable partitioned problem y' = f(z), z' = g(y) the elementary differential of
    every other tree vanishes (f has no y-derivatives, g no z-derivatives).
    """
    return all(k != root and alternates(u, k) for k, u in tree.edges)


def symplectic_classes(order: int, couples=((A_COLOUR, PARTNER_COLOUR),)
                       ) -> tuple[tuple[tuple[RootedTree, int], ...], ...]:
    """The coloured trees of one order in classes of conditions equal up to sign.

    For a symplectic pair with b̃ = b (b_i ã_ij + b_j a_ji = b_i b_j, MATH.md 3.2) the weights
    satisfy W(u ∘_Ã v) + W(v ∘_A u) = W(u) W(v), where u ∘_k v grafts v onto the root of u
    through an edge of colour k; and 1/γ(u ∘ v) + 1/γ(v ∘ u) = 1/(γ(u) γ(v)). So once every
    condition of lower order holds, the residuals of u ∘_Ã v and v ∘_A u are opposite
    (Abia & Sanz-Serna 1993; Bonnans & Laurent-Varin 2006). Moving the root across an edge
    and flipping its colour connects the trees of one *oriented free tree*; one condition per
    class is independent (3 at order 3 and 8 at order 4: Hager's table).

    ``couples`` lists the colours (k, k̃) whose matrices are symplectic partners with the
    same weights b; the trees use the colours of all couples. The default is the pair
    (A, Ã); ((0, 1), (2, 3)) is the four-part pair of :mod:`ocgen.pair_order`.

    Each class is a tuple of ``(tree, sign)`` with the representative first (sign +1): the
    member with fewest edges of the second colours k̃ (a classical tree when there is one),
    then the smallest.
    """
    return _symplectic_classes(order, _couples(couples))


def _couples(couples) -> tuple[tuple[int, int], ...]:
    couples = tuple((int(k), int(kt)) for k, kt in couples)
    flat = [k for couple in couples for k in couple]
    if not couples or len(set(flat)) != len(flat) or not all(0 <= k < COLOURS for k in flat):
        raise ValueError("couples must pair distinct colours 0..3")
    return couples


def _moves(tree: RootedTree, flip: dict[int, int]) -> Iterator[RootedTree]:
    """The trees reached by moving the root to one of its children (flipping that edge)."""
    for index, (colour, child) in enumerate(tree.edges):
        rest = RootedTree(tree.edges[:index] + tree.edges[index + 1:])
        yield child.graft(rest, flip[colour])


def _partner_edges(tree: RootedTree, second: frozenset[int]) -> int:
    return sum((k in second) + _partner_edges(u, second) for k, u in tree.edges)


@cache
def _symplectic_classes(order: int, couples: tuple[tuple[int, int], ...]):
    flip = {k: kt for k, kt in couples} | {kt: k for k, kt in couples}
    second = frozenset(kt for _, kt in couples)
    weight = lambda t: (_partner_edges(t, second), t._key)  # noqa: E731
    seen: dict[RootedTree, int] = {}
    classes = []
    for start in _trees(order, tuple(sorted(flip))):
        if start in seen:
            continue
        seen[start] = 1
        members, queue = [start], [start]
        while queue:
            tree = queue.pop()
            for other in _moves(tree, flip):
                sign = -seen[tree]
                if other not in seen:
                    seen[other] = sign
                    members.append(other)
                    queue.append(other)
                elif seen[other] != sign:  # impossible: oriented trees have no odd cycles
                    raise AssertionError(f"inconsistent signs for {other}")
        rep = min(members, key=weight)
        sign = seen[rep]
        ordered = sorted(members, key=lambda t: (t != rep, *weight(t)))
        classes.append(tuple((t, seen[t] * sign) for t in ordered))
    classes.sort(key=lambda c: weight(c[0][0]))
    return tuple(classes)


def count_trees(order: int, colours=1) -> int:
    """Number of trees of the given order (by enumeration; cached)."""
    return len(_trees(order, _palette(colours)))


# -- elementary weights ----------------------------------------------------------------------
class ElementaryWeights:
    """Elementary weight vectors Φ(t) of one method or partitioned pair, memoised over subtrees.

    ``matrices`` is a sequence of s×s matrices (rows of numbers), one per colour: ``(A,)`` for a
    Runge–Kutta method, ``(A, Ã)`` for the optimal-control pair, ``(A, None, Â)`` for a
    partitioned pair (None for a colour no tree uses). Each tree costs one
    elementwise product, Φ(t) = Φ(t.rest) ⊙ (M_k Φ(u)) for the last root edge (k, u), and each
    distinct edge (k, u) one sparse matrix–vector product: all exact when the numbers are.
    """

    def __init__(self, matrices: Sequence[Sequence[Sequence[Any]] | None],
                 b: Sequence[Any] | None = None, *, one: Any = 1, zero: Any = 0):
        given = [M for M in matrices if M is not None]
        if not given:
            raise ValueError("at least one matrix is needed")
        self.stages = len(given[0])
        self.one, self.zero = one, zero
        self._rows = [None if M is None else
                      [[(j, m) for j, m in enumerate(row) if _nonzero(m)] for row in M]
                      for M in matrices]
        for M in given:
            if len(M) != self.stages or any(len(row) != self.stages for row in M):
                raise ValueError("every matrix must be s×s with the same s")
        self.b = self._weights(b) if b is not None else None
        self._phi: dict[RootedTree, tuple] = {LEAF: (one,) * self.stages}
        self._edge: dict[tuple[int, RootedTree], tuple] = {}

    def _weights(self, b: Sequence[Any]) -> list:
        b = list(b)
        if len(b) != self.stages:
            raise ValueError("b must have one entry per stage")
        return b

    def edge(self, colour: int, tree: RootedTree) -> tuple:
        """M_colour Φ(tree): the vector a subtree contributes through one edge."""
        key = (colour, tree)
        out = self._edge.get(key)
        if out is None:
            rows = self._rows[colour] if colour < len(self._rows) else None
            if rows is None:
                raise ValueError(f"no matrix given for colour {colour}")
            x, zero = self.phi(tree), self.zero
            out = tuple(sum((m * x[j] for j, m in row), zero) for row in rows)
            self._edge[key] = out
        return out

    def phi(self, tree: RootedTree) -> tuple:
        """Φ(t) as a tuple of s numbers."""
        out = self._phi.get(tree)
        if out is None:
            colour, last = tree.edges[-1]
            rest = self.phi(tree.rest)
            out = tuple(x * y for x, y in zip(rest, self.edge(colour, last)))
            self._phi[tree] = out
        return out

    def weight(self, tree: RootedTree, b: Sequence[Any] | None = None) -> Any:
        """Σ_i b_i Φ_i(t), the left side of the order condition of t (with other weights
        ``b`` when given, e.g. b̂ for a tree whose root has the colour of a pair's second part)."""
        if b is None:
            b = self.b
        elif len(b) != self.stages:
            raise ValueError("b must have one entry per stage")
        if b is None:
            raise ValueError("no weights b given")
        return sum((bi * x for bi, x in zip(b, self.phi(tree)) if _nonzero(bi)), self.zero)


def _nonzero(value: Any) -> bool:
    try:
        return bool(value)
    except TypeError:  # e.g. a symbolic expression without a truth value
        return True


def _rows(M) -> list[list]:
    """Rows of a matrix given as nested sequences, a NumPy array or a SymPy Matrix."""
    if hasattr(M, "tolist") and not isinstance(M, (list, tuple)):
        M = M.tolist()
    return [list(row) for row in M]


def _vector(b) -> list:
    if hasattr(b, "tolist") and not isinstance(b, (list, tuple)):
        b = b.tolist()
    return [x[0] if isinstance(x, (list, tuple)) else x for x in b]


def elementary_weight(tree: RootedTree, A, b, partner=None) -> Any:
    """Σ_i b_i Φ_i(t) for the method (A, b); for bi-coloured trees pass Ã as ``partner``.

    Works with any numbers supporting + and * (exact or floating point). For many trees of
    one method, build :class:`ElementaryWeights` once instead (it memoises subtrees).
    """
    matrices = [_rows(A)] if partner is None else [_rows(A), _rows(partner)]
    colour = max(tree.colours, default=0)
    if colour >= len(matrices):
        hint = "pass partner=Ã" if colour == PARTNER_COLOUR else "use ElementaryWeights"
        raise ValueError(f"tree {tree} has edges of colour {colour}: {hint}")
    return ElementaryWeights(matrices, _vector(b)).weight(tree)


def residual_order_condition(tree: RootedTree, A, b, partner=None) -> Any:
    """Σ_i b_i Φ_i(t) − 1/γ(t): zero exactly when the order condition of t holds.

    1/γ is a ``Fraction`` for ints and Fractions, a float for floats and a SymPy Rational for
    SymPy numbers, so the residual is exact whenever the inputs are.
    """
    weight = elementary_weight(tree, A, b, partner)
    return weight - reciprocal(tree.density, weight)


def reciprocal(gamma: int, like: Any) -> Any:
    """1/γ in the number type of ``like``."""
    if isinstance(like, float):
        return 1.0 / gamma
    if isinstance(like, (int, Fraction)):
        return Fraction(1, gamma)
    try:
        import sympy
        if isinstance(like, sympy.Basic):
            return sympy.Rational(1, gamma)
    except ImportError:  # pragma: no cover
        pass
    return Fraction(1, gamma)
