"""Projection onto the scaled simplex (MATH.md 6), against its worked example, its optimality
condition, an enumeration of supports and SciPy's constrained minimiser."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from ocgen.nets.simplex import project_to_simplex

entries = st.floats(-10, 10, allow_nan=False)
vectors = st.lists(entries, min_size=1, max_size=12).map(np.array)
totals = st.floats(0.01, 10)


def test_example_from_math():
    assert project_to_simplex([0.9, 0.5, -0.2, 0.1], 1) == pytest.approx([0.7, 0.3, 0, 0],
                                                                          abs=1e-15)


def test_points_already_in_the_simplex_stay():
    assert project_to_simplex([0.25, 0.0, 0.75], 1) == pytest.approx([0.25, 0, 0.75], abs=1e-15)
    assert project_to_simplex([3.0], 2) == pytest.approx([2.0])


def test_uniform_shift_does_not_matter_even_when_huge():
    # P(v + c·1) = P(v): a shift of 1e20 must not swamp the total
    assert project_to_simplex([1e20, 1e20 - 2**67], 1) == pytest.approx([1, 0])
    assert project_to_simplex([1e20, 0], 1) == pytest.approx([1, 0])


@pytest.mark.parametrize("v, total", [([], 1), ([[1.0, 2.0]], 1), ([1.0, np.nan], 1),
                                      ([1.0, np.inf], 1), ([1.0], 0), ([1.0], -1),
                                      ([1.0], np.inf), ([1.0], np.nan)])
def test_invalid_input_is_refused(v, total):
    with pytest.raises(ValueError):
        project_to_simplex(v, total)


@settings(max_examples=150, deadline=None)
@given(vectors, totals)
def test_result_lies_in_the_simplex(v, total):
    h = project_to_simplex(v, total)
    assert h.shape == v.shape
    assert np.all(h >= 0)
    assert abs(h.sum() - total) <= 1e-12


@settings(max_examples=150, deadline=None)
@given(vectors, totals, st.integers(0, 2**32 - 1))
def test_variational_inequality(v, total, seed):
    # P(v) is the projection iff ⟨v − P(v), w − P(v)⟩ ≤ 0 for every w in the simplex
    h = project_to_simplex(v, total)
    rng = np.random.default_rng(seed)
    w = total * rng.dirichlet(np.ones(v.size), size=20)
    corners = total * np.eye(v.size)  # the extreme points suffice, as the form is linear in w
    for point in np.vstack([w, corners]):
        assert np.dot(v - h, point - h) <= 1e-12


@settings(max_examples=100, deadline=None)
@given(vectors, totals)
def test_idempotent(v, total):
    h = project_to_simplex(v, total)
    assert np.max(np.abs(project_to_simplex(h, total) - h)) <= 1e-12


def by_supports(v, total):
    """The projection by enumeration: on its support S it is v − θ with θ fixed by Σ = T, and it
    is the nearest to v of the candidates that are feasible."""
    best, best_distance = None, np.inf
    for size in range(1, v.size + 1):
        for support in itertools.combinations(range(v.size), size):
            idx = list(support)
            theta = (v[idx].sum() - total) / size
            h = np.zeros_like(v)
            h[idx] = v[idx] - theta
            if np.all(h >= 0) and np.sum((h - v) ** 2) < best_distance:
                best, best_distance = h, np.sum((h - v) ** 2)
    return best


@settings(max_examples=100, deadline=None)
@given(st.lists(entries, min_size=1, max_size=7).map(np.array), totals)
def test_agrees_with_enumeration_of_supports(v, total):
    assert np.max(np.abs(project_to_simplex(v, total) - by_supports(v, total))) <= 1e-12


@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_scipy_slsqp(seed):
    rng = np.random.default_rng(seed)
    v, total = rng.normal(size=6), rng.uniform(0.5, 3)
    result = minimize(lambda h: 0.5 * np.sum((h - v) ** 2), np.full(6, total / 6),
                      jac=lambda h: h - v, method="SLSQP", bounds=[(0, None)] * 6,
                      constraints=[{"type": "eq", "fun": lambda h: h.sum() - total,
                                    "jac": lambda h: np.ones(6)}],
                      options={"ftol": 1e-14, "maxiter": 200})
    assert result.success
    assert project_to_simplex(v, total) == pytest.approx(result.x, abs=1e-6)
