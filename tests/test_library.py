"""The built-in tableau library (ocgen/data/tableaux/*.toml).

Every built-in records its classical order (and, where the literature states it, its
optimal-control order); these tests recompute both from the coefficients, so a transcription
error in a data file cannot go unnoticed.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

import pytest

from hager import hager_order
from ocgen.order import classical_order, control_order
from ocgen.pair import load_method
from ocgen.tableau import builtin_names, load_tableau

MAX_ORDER = 8
MAX_CONTROL_ORDER = 6

NAMES = builtin_names()
TABLEAUX = {name: load_tableau(name) for name in NAMES}


def _normal(name: str) -> str:
    """Lookup key, at least as coarse as the library's own (case, spaces, - _ . ( ))."""
    return re.sub(r"[\s\-_.()]", "", name).lower()


def _has_zero_or_negative_weight(tableau) -> bool:
    return any(float(w) <= 1e-12 for w in tableau.b)


def _stems() -> list[str]:
    folder = resources.files("ocgen") / "data" / "tableaux"
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".toml"))


def test_library_is_large_enough():
    assert len(NAMES) >= 40
    assert len(set(NAMES)) == len(NAMES)


def test_one_method_per_file():
    assert len(_stems()) == len(NAMES)


@pytest.mark.parametrize("stem", _stems())
def test_file_name_resolves(stem):
    found = load_tableau(stem)
    assert found.source == f"{stem}.toml" and found is TABLEAUX[found.name]
    assert load_tableau(stem.upper().replace("_", " ")) is found


def test_pairs_and_tableaux_share_no_name():
    """load_method looks a name up among the tableaux first: no pair may answer to a name,
    alias or file name of a tableau."""
    from ocgen.pair import builtin_pairs
    tableau_keys = {_normal(n) for t in TABLEAUX.values() for n in (t.name, *t.aliases)}
    tableau_keys |= {_normal(stem) for stem in _stems()}
    for pair in builtin_pairs():
        for name in (pair.name, pair.source[:-5], *pair.aliases):
            assert _normal(name) not in tableau_keys, name
            assert load_method(name) is pair


def test_a_file_name_parses_that_file_alone(monkeypatch):
    """Looking a method up by its file's name reads one file, not the library (a command
    that names one method starts faster); a display name or alias reads the library, and a
    tableau is found without reading the pairs."""
    from ocgen import pair, tableau
    for module, every in ((tableau, tableau.builtin_tableaux), (pair, pair.builtin_pairs)):
        for cached in (module._builtin, every, module._index):
            monkeypatch.setattr(module, cached.__name__, functools.cache(cached.__wrapped__))
    assert load_tableau("rk4").source == "rk4.toml"
    assert pair.load_method("euler").source == "euler.toml"
    assert tableau._builtin.cache_info().currsize == 2
    assert tableau._index.cache_info().currsize == 0
    assert pair.load_method("stormer_verlet").source == "stormer_verlet.toml"
    assert pair._builtin.cache_info().currsize == 1 and pair._index.cache_info().currsize == 0
    assert pair.load_method("Forward Euler").source == "euler.toml"  # not among the pairs
    assert pair._builtin.cache_info().currsize == 1
    assert load_tableau("Classical RK4") is load_tableau("rk4")
    assert tableau._builtin.cache_info().currsize == len(_stems())
    assert pair.load_method("velocity Verlet").source == "stormer_verlet.toml"


def test_no_shared_names_or_aliases():
    owner: dict[str, str] = {}
    stems = {load_tableau(stem).name: stem for stem in _stems()}
    for name, tableau in TABLEAUX.items():
        for key in {_normal(n) for n in (name, stems[name], *tableau.aliases)}:
            assert owner.setdefault(key, name) == name, \
                f"{key!r} names both {owner[key]!r} and {name!r}"


@pytest.mark.parametrize("name", NAMES)
def test_aliases_resolve_case_insensitively(name):
    tableau = TABLEAUX[name]
    for alias in (name, *tableau.aliases):
        for spelling in (alias, alias.upper(), alias.lower(), alias.replace(" ", "_"),
                         alias.replace(" ", "-").swapcase(), alias.replace("-", " ")):
            assert load_tableau(spelling).name == name, spelling


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name):
    tableau = TABLEAUX[name]
    assert tableau.citation.strip()
    assert isinstance(tableau.literature_order, int) and tableau.literature_order >= 1
    assert tableau.A.shape == (tableau.stages, tableau.stages)
    assert tableau.b.shape == tableau.c.shape == (tableau.stages, 1)


@pytest.mark.parametrize("name", NAMES)
def test_classical_order_matches_literature(name):
    tableau = TABLEAUX[name]
    # one order beyond the recorded one shows that the recorded order is not an understatement
    limit = min(tableau.literature_order + 1, MAX_ORDER)
    assert classical_order(tableau, max_order=limit).order == min(tableau.literature_order, limit)


@pytest.mark.parametrize(
    "name", [n for n in NAMES if TABLEAUX[n].literature_control_order is not None])
def test_control_order_matches_literature(name):
    tableau = TABLEAUX[name]
    recorded = tableau.literature_control_order
    assert not _has_zero_or_negative_weight(tableau), "control order recorded but undefined"
    assert recorded <= tableau.literature_order
    limit = min(recorded + 1, MAX_CONTROL_ORDER)
    assert control_order(tableau, max_order=limit).order == min(recorded, limit)


@pytest.mark.parametrize("name", [n for n in NAMES if _has_zero_or_negative_weight(TABLEAUX[n])])
def test_control_order_undefined_for_zero_or_negative_weights(name):
    tableau = TABLEAUX[name]
    assert tableau.literature_control_order is None
    assert control_order(tableau, max_order=3).order is None


def test_library_covers_the_classics():
    for name, order, control in [
        ("Euler", 1, 1), ("BE", 1, 1), ("Heun", 2, 2), ("SSP22", 2, 2), ("Ralston", 2, 2),
        ("Kutta-3", 3, 3), ("SSP33", 3, 2), ("Ralston-3", 3, 2), ("RK44", 4, 4), ("RK38", 4, 4),
        ("implicit midpoint", 2, 2), ("GL2", 4, 4), ("GL3", 6, 6), ("RadauIIA2", 3, 3),
        ("RadauIIA3", 5, 5), ("LobattoIIIA3", 4, 4), ("LobattoIIIB3", 4, 4),
        ("LobattoIIIC3", 4, 4), ("Crank-Nicolson", 2, 2),
    ]:
        tableau = load_tableau(name)
        recorded = (tableau.literature_order, tableau.literature_control_order)
        assert recorded == (order, control), name
    for name, order in [("Mid22", 2), ("Heun33", 3), ("DP5", 5), ("DOPRI5", 5), ("BS3", 3),
                        ("RK23BS", 3), ("Merson43", 4), ("RKF45", 5), ("CashKarp", 5),
                        ("SSP43", 3), ("SSP104", 4), ("SDIRK4", 4), ("TR-BDF2", 2)]:
        tableau = load_tableau(name)
        assert tableau.literature_order == order, name
        assert tableau.literature_control_order is None, name


@pytest.mark.parametrize(
    "name", [n for n in NAMES if TABLEAUX[n].literature_control_order is not None])
def test_recorded_control_orders_are_sourced_and_independently_checked(name):
    """Each recorded control order names its source (a paper, a table or a theorem such as
    "Gauss s-stage: 2s"), and up to order 4 it agrees with a direct evaluation of Hager's
    conditions (tests/hager.py), which does not use the library's trees."""
    tableau = TABLEAUX[name]
    assert tableau.order_source.strip() and tableau.control_order_source.strip()
    assert hager_order(tableau) == min(tableau.literature_control_order, 4)
