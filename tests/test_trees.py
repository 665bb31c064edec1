"""Rooted trees, bi-coloured trees and elementary weights (ocgen.trees)."""

import re
from fractions import Fraction as F
from math import factorial

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ocgen.trees import (A_COLOUR, LEAF, PARTNER_COLOUR, ElementaryWeights, RootedTree,
                         bicoloured_trees, count_trees, elementary_weight,
                         residual_order_condition, rooted_trees, symplectic_classes,
                         trees_up_to)


def tree(*children):
    """Classical tree from children (each a tree)."""
    return RootedTree.from_children(children)


def bi(*edges):
    """Bi-coloured tree from ('a'|'t', subtree) pairs."""
    return RootedTree([(A_COLOUR if k == "a" else PARTNER_COLOUR, u) for k, u in edges])


T = LEAF
T2 = tree(T)             # [τ]
BUSHY3 = tree(T, T)      # [τ²]
TALL3 = tree(T2)         # [[τ]]


# -- enumeration -----------------------------------------------------------------------------
# OEIS A000081 (rooted trees), the counts of MATH.md 4.
ROOTED_COUNTS = [1, 1, 2, 4, 9, 20, 48, 115, 286, 719]


@pytest.mark.parametrize("order, count", list(enumerate(ROOTED_COUNTS, 1)))
def test_number_of_rooted_trees(order, count):
    trees = list(rooted_trees(order))
    assert len(trees) == count == count_trees(order)
    assert len(set(trees)) == count  # canonical form: no tree twice
    assert all(t.order == order and t.is_classical for t in trees)


# Bi-coloured trees with an uncoloured root: each non-root vertex has one of two colours.
@pytest.mark.parametrize("order, count", list(enumerate([1, 2, 7, 26, 107, 458], 1)))
def test_number_of_bicoloured_trees(order, count):
    trees = list(bicoloured_trees(order))
    assert len(trees) == count == len(set(trees))


def test_labelled_tree_identities():
    # n!/σ(t) labellings of t; Cayley: n^(n-1) labelled rooted trees; Σ n!/(σγ) = (n-1)!.
    for n in range(1, 9):
        trees = list(rooted_trees(n))
        assert sum(factorial(n) // t.symmetry for t in trees) == n ** (n - 1)
        assert sum(F(factorial(n), t.symmetry * t.density) for t in trees) == factorial(n - 1)


def test_canonical_form_is_independent_of_child_order():
    a = tree(T, T2, BUSHY3)
    b = tree(BUSHY3, T, T2)
    assert a == b and hash(a) == hash(b)
    assert bi(("t", T), ("a", T)) == bi(("a", T), ("t", T))
    assert bi(("t", T)) != bi(("a", T))


def test_butcher_product_and_rest():
    t = tree(T, T2)
    assert T.graft(T).graft(T2) == t
    assert t.rest.graft(t.edges[-1][1], t.edges[-1][0]) == t
    with pytest.raises(ValueError):
        _ = LEAF.rest


# -- γ, σ and notation -----------------------------------------------------------------------
# Butcher (2016), Table 301(I) / Hairer–Nørsett–Wanner Table II.2.1.
@pytest.mark.parametrize("t, gamma, sigma, bracket", [
    (T, 1, 1, "τ"),
    (T2, 2, 1, "[τ]"),
    (BUSHY3, 3, 2, "[τ²]"),
    (TALL3, 6, 1, "[[τ]]"),
    (tree(T, T, T), 4, 6, "[τ³]"),
    (tree(T, T2), 8, 1, "[τ[τ]]"),
    (tree(BUSHY3), 12, 2, "[[τ²]]"),
    (tree(TALL3), 24, 1, "[[[τ]]]"),
    (tree(T, T, T, T), 5, 24, "[τ⁴]"),
    (tree(T2, T2), 20, 2, "[[τ]²]"),
    (tree(tree(TALL3)), 120, 1, "[[[[τ]]]]"),
    (tree(T, T, T2), 10, 2, "[τ²[τ]]"),
])
def test_density_symmetry_notation(t, gamma, sigma, bracket):
    assert t.density == gamma
    assert t.symmetry == sigma
    assert t.bracket() == bracket


def test_formulas():
    assert tree(T, T2).formula() == "Σ b_i c_i a_ij c_j"
    assert tree(TALL3).formula() == "Σ b_i a_ij a_jk c_k"
    assert bi(("t", T), ("t", T)).formula() == "Σ b_i c̃_i²"
    assert bi(("a", T), ("a", bi(("t", T)))).formula() == "Σ b_i c_i a_ij c̃_j"
    assert bi(("t", T2)).formula() == "Σ b_i ã_ij c_j"


def test_bicoloured_density_and_symmetry():
    u = bi(("a", T), ("t", T))
    assert u.density == 3 and u.symmetry == 1          # the two leaves are distinguishable
    assert bi(("t", T), ("t", T)).symmetry == 2
    assert u.uncoloured() == BUSHY3


# -- elementary weights: generic numbers -----------------------------------------------------
RK4_A = [[0, 0, 0, 0], [F(1, 2), 0, 0, 0], [0, F(1, 2), 0, 0], [0, 0, 1, 0]]
RK4_B = [F(1, 6), F(1, 3), F(1, 3), F(1, 6)]


def test_rk4_weights_with_fractions():
    for t in trees_up_to(4):
        assert residual_order_condition(t, RK4_A, RK4_B) == 0
    # Σ b_i c_i⁴ = 5/24 for RK4 (Butcher 2016, §322)
    assert elementary_weight(tree(T, T, T, T), RK4_A, RK4_B) == F(5, 24)
    assert residual_order_condition(tree(T, T, T, T), RK4_A, RK4_B) == F(1, 120)


def test_weights_with_floats_and_sympy():
    A = [[float(x) for x in row] for row in RK4_A]
    b = [float(x) for x in RK4_B]
    assert abs(residual_order_condition(tree(T, T2), A, b)) < 1e-15
    As = sp.Matrix(RK4_A)
    bs = sp.Matrix(RK4_B)
    assert residual_order_condition(tree(TALL3), As, bs) == 0
    assert elementary_weight(BUSHY3, As, bs) == sp.Rational(1, 3)


def test_bicoloured_needs_partner():
    with pytest.raises(ValueError):
        elementary_weight(bi(("t", T)), RK4_A, RK4_B)


def test_memoised_engine_matches_direct_sums():
    A = [[F(1, 3), F(-1, 2)], [F(2, 5), F(1, 7)]]
    b = [F(3, 4), F(1, 4)]
    engine = ElementaryWeights([A], b)
    c = [sum(row) for row in A]
    assert engine.weight(tree(T, T2)) == sum(
        b[i] * c[i] * A[i][j] * c[j] for i in range(2) for j in range(2))
    assert engine.phi(LEAF) == (1, 1)


# -- symplectic classes ----------------------------------------------------------------------
# Oriented free trees, OEIS A000238: 1, 1, 3, 8, 27, 91. Orders 3 and 4 match Hager's table
# (3 = 2 classical + 1, 8 = 4 classical + 4 for optimal control).
@pytest.mark.parametrize("order, count", list(enumerate([1, 1, 3, 8, 27, 91], 1)))
def test_number_of_symplectic_classes(order, count):
    classes = symplectic_classes(order)
    assert len(classes) == count
    members = [t for c in classes for t, _ in c]
    assert sorted(members) == sorted(bicoloured_trees(order))
    assert sum(1 for c in classes if c[0][0].is_classical) == count_trees(order)


small = st.fractions(min_value=-2, max_value=2, max_denominator=6)


@st.composite
def pairs(draw):
    s = draw(st.integers(1, 3))
    A = [[draw(small) for _ in range(s)] for _ in range(s)]
    b = [draw(small.filter(lambda x: x != 0)) for _ in range(s)]
    At = [[b[j] - b[j] * A[j][i] / b[i] for j in range(s)] for i in range(s)]
    return A, At, b


@settings(max_examples=40, deadline=None)
@given(pairs())
def test_symplectic_product_identity(pair):
    # W(u ∘_Ã v) + W(v ∘_A u) = W(u) W(v) for the pair ((A, b), (Ã, b)); 1/γ does the same.
    A, At, b = pair
    engine = ElementaryWeights([A, At], b)
    for u in trees_up_to(3, colours=2):
        for v in trees_up_to(2, colours=2):
            x, y = u.graft(v, PARTNER_COLOUR), v.graft(u, A_COLOUR)
            assert engine.weight(x) + engine.weight(y) == engine.weight(u) * engine.weight(v)
            assert F(1, x.density) + F(1, y.density) == F(1, u.density * v.density)


@settings(max_examples=25, deadline=None)
@given(pairs())
def test_class_members_have_opposite_residuals_once_lower_orders_hold(pair):
    # Residuals within a class are ± the representative's plus terms of lower order: with
    # R(t) = W(t) − 1/γ(t), R(u∘Ãv) + R(v∘Au) = R(u)R(v) + R(u)/γ(v) + R(v)/γ(u).
    A, At, b = pair
    engine = ElementaryWeights([A, At], b)
    R = lambda t: engine.weight(t) - F(1, t.density)  # noqa: E731
    for q in (2, 3, 4):
        for cls in symplectic_classes(q):
            for t, sign in cls:
                for k, v in t.edges:
                    edges = list(t.edges)
                    edges.remove((k, v))
                    u = RootedTree(edges)
                    other = v.graft(u, PARTNER_COLOUR if k == A_COLOUR else A_COLOUR)
                    assert other in {m for m, _ in cls}
                    lower = R(u) * R(v) + R(u) / v.density + R(v) / u.density
                    assert R(t) + R(other) == lower


# -- what the other tests leave unchecked (found by mutation testing) ------------------------
def test_trees_up_to_counts_every_order_once():
    assert list(trees_up_to(0)) == []
    assert [t.order for t in trees_up_to(4)] == [1, 2, 3, 3] + [4] * 4
    assert len(list(trees_up_to(3, colours=2))) == 1 + 2 + 7


def test_a_set_of_colours_counts_like_as_many_colours():
    from ocgen.trees import coloured_trees
    for order, count in enumerate([1, 2, 7, 26], 1):
        trees = list(coloured_trees(order, {0, 2}))
        assert len(trees) == count
        assert all(k in (0, 2) for t in trees for k in t.colours)


@pytest.mark.parametrize("colours, message", [
    (0, "1 \\(classical\\) to 4"), (5, "1 \\(classical\\) to 4"),
    (set(), "non-empty set of colours 0..3"), ({0, 4}, "non-empty set of colours 0..3"),
    ({"a"}, "non-empty set of colours 0..3")])
def test_bad_colours_are_refused(colours, message):
    from ocgen.trees import coloured_trees
    with pytest.raises(ValueError, match=message):
        coloured_trees(2, colours)


@pytest.mark.parametrize("couples", [(), ((0, 0),), ((0, 4),), ((0, 1), (1, 2))])
def test_bad_couples_are_refused(couples):
    with pytest.raises(ValueError, match=r"^couples must pair distinct colours 0\.\.3$"):
        symplectic_classes(2, couples)


@pytest.mark.parametrize("edges", [[(4, T)], [(-1, T)], [(0, "τ")]])
def test_bad_edges_are_refused(edges):
    with pytest.raises(TypeError, match="edges must be \\(colour 0..3, RootedTree\\) pairs"):
        RootedTree(edges)


def test_edges_are_ordered_by_subtree_then_colour():
    """Canonical order: smaller subtrees first, whatever their colour; it shows in the
    notation."""
    assert RootedTree([(3, T)]).edges == ((3, T),)
    assert bi(("a", T2), ("t", T)).bracket() == "[τ̃[τ]]"
    assert tree(T2, T, T2).bracket() == "[τ[τ]²]"  # a repeated child after another
    assert not (tree(T) < T2) and T < T2  # strict: an equal tree is not smaller


def test_bad_matrices_and_weights_are_refused():
    A2, A3 = [[0, 0], [1, 0]], [[0] * 3] * 3
    square = "every matrix must be s×s with the same s"
    stages = "b must have one entry per stage"
    cases = [(lambda: ElementaryWeights([]), "at least one matrix is needed"),
             (lambda: ElementaryWeights([A2, A3]), square),
             (lambda: ElementaryWeights([[[0, 0], [1, 0], [1, 1]]]), square),
             (lambda: ElementaryWeights([[[0, 0], [1]]]), square),
             (lambda: ElementaryWeights([A2], [1]), stages),
             (lambda: ElementaryWeights([A2], [1, 0]).weight(T2, [1]), stages),
             (lambda: ElementaryWeights([A2]).weight(T2), "no weights b given"),
             (lambda: ElementaryWeights([A2], [1, 0]).weight(bi(("t", T))),
              "no matrix given for colour 1"),
             (lambda: elementary_weight(bi(("t", T)), A2, [1, 0]),
              "tree [τ̃] has edges of colour 1: pass partner=Ã"),
             (lambda: elementary_weight(RootedTree([(2, T)]), A2, [1, 0], partner=A2),
              "tree [τ̂] has edges of colour 2: use ElementaryWeights")]
    for build, message in cases:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            build()


class Counted(F):
    """A fraction that counts the products made with it (the cost of the weights)."""

    products = 0

    def __mul__(self, other):
        Counted.products += 1
        return Counted(F.__mul__(self, other))

    __rmul__ = __mul__

    def __add__(self, other):
        return Counted(F.__add__(self, other))

    __radd__ = __add__


def test_weights_are_memoised_over_subtrees():
    """A second pass over the same trees makes no product: Φ(t) and every A Φ(u) are kept."""
    A = [[Counted(x) for x in row] for row in RK4_A]
    engine = ElementaryWeights([A], one=Counted(1), zero=Counted(0))
    first = engine.edge(0, T2)
    before = Counted.products
    assert engine.edge(0, T2) == first == (0, 0, F(1, 4), F(1, 2))  # A c
    assert Counted.products == before
    A = [[Counted(x) for x in row] for row in RK4_A]
    engine = ElementaryWeights([A], [Counted(x) for x in RK4_B], one=Counted(1),
                               zero=Counted(0))
    first = [engine.phi(t) for t in trees_up_to(5)]
    before = Counted.products
    assert [engine.phi(t) for t in trees_up_to(5)] == first
    assert Counted.products == before
    assert engine.weight(tree(T, T, T, T)) == F(5, 24)


class Opaque(F):
    """An entry whose truth value cannot be decided (as for some symbolic numbers)."""

    def __bool__(self):
        raise TypeError("no truth value")


def test_entries_without_a_truth_value_count_as_non_zero():
    A = [[Opaque(x) for x in row] for row in RK4_A]
    assert elementary_weight(tree(T, T2), A, RK4_B) == F(1, 8)


def test_reciprocal_in_the_type_of_the_weights():
    import numpy as np
    from ocgen.trees import reciprocal
    for like, expected in ((1.0, 1 / 3), (F(1), F(1, 3)), (1, F(1, 3)),
                           (sp.Integer(1), sp.Rational(1, 3)), (np.int64(1), F(1, 3))):
        value = reciprocal(3, like)
        assert value == expected and type(value) is type(expected)


def test_matrices_and_weights_in_any_sequence_form():
    import numpy as np
    column = np.array([[float(x)] for x in RK4_B])
    w = elementary_weight(tree(T, T2), np.array(RK4_A, dtype=float), column)
    assert np.ndim(w) == 0 and abs(w - 1 / 8) < 1e-15
    rows = (tuple(row) for row in RK4_A)
    assert elementary_weight(tree(T, T2), rows, iter(RK4_B)) == F(1, 8)
