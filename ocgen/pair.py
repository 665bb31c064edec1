"""Partitioned Runge–Kutta (PRK) pairs: one Butcher tableau per part of the state.

A pair (A, b, c; Â, b̂, ĉ) with s stages each integrates y' = f(y, z), z' = g(y, z) by

    Y_i = y_n + h Σ_j a_ij f(Y_j, Z_j),      Z_i = z_n + h Σ_j â_ij g(Y_j, Z_j),
    y_{n+1} = y_n + h Σ_i b_i f(Y_i, Z_i),   z_{n+1} = z_n + h Σ_i b̂_i g(Y_i, Z_i)

(Hairer, Nørsett & Wanner I, II.15; Hairer, Lubich & Wanner, *Geometric Numerical
Integration*, II.2). Störmer–Verlet is Lobatto IIIA for the positions q and IIIB for the
momenta p; splitting methods such as Ruth's are explicit pairs for separable problems
y' = f(z), z' = g(y) (HLW II.5; Sanz-Serna & Calvo 1994, Ch. 8).

**File format** (``.toml`` or ``.json``), e.g. ``ocgen/data/pairs/stormer_verlet.toml``::

    name = "Störmer–Verlet"
    aliases = ["velocity Verlet"]
    description = "q by Lobatto IIIA, p by Lobatto IIIB: kick, drift, kick"
    citation = "…"
    order = 2                  # literature values, each optional, with where they come from:
    separable_order = 2        #   order for separable problems y' = f(z), z' = g(y)
    control_order = 2          #   optimal-control order (ocgen.pair_order)
    order_source = "…"         # also separable_order_source, control_order_source
    symplectic = true          # optional claim, checked: true, "separable" or false
    first = "Lobatto IIIA 2"   # the part of y: a built-in tableau's name, or a table
    [second]                   # the part of z: A (list of rows), b, optional c = row sums
    A = [["1/2", 0], ["1/2", 0]]
    b = ["1/2", "1/2"]

Entries use the syntax of tableau files (``ocgen.expr``: exact numbers and surds, or rounded
decimals). Both parts must have the same number of stages. ``symplectic = true`` claims
b = b̂ and b_i â_ij + b̂_j a_ji = b_i b̂_j (symplectic for every partitioned Hamiltonian
system); ``"separable"`` claims the second condition only (symplectic for H = T(p) + V(q));
``false`` claims neither. A wrong claim is an error naming the key, as is every other error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache, cached_property, partial
from pathlib import Path
from typing import Any

import sympy as sp
import tomli_w

from .errors import InputError
from .library import build_one, data_texts, find_builtin, name_index
from .files import read_data_file
from .numbers import is_zero, show
from .numbers import digits as rounded_digits
from .numbers import tolerance as rounding_tolerance
from .tableau import (ButcherTableau, ZeroWeightError, builtin_tableau,
                      canonical_entry, close_names, entry_to_data, normalise_name)
from .text import check_text

__all__ = ["PartitionedTableau", "load_pair", "load_method", "builtin_pairs",
           "builtin_pair_names", "is_pair_data"]

PARTS = ("first", "second")
_ORDERS = ("order", "separable_order", "control_order")
_SOURCES = tuple(f"{key}_source" for key in _ORDERS)
_KEYS = {"name", "aliases", "description", "citation", "symplectic", *PARTS, *_ORDERS,
         *_SOURCES}


@dataclass(frozen=True)
class PartitionedTableau:
    """A PRK pair: ``first`` = (A, b, c) for y and ``second`` = (Â, b̂, ĉ) for z.

    Validated at construction: both parts have the same number of stages, and a claimed
    ``symplectic`` property holds. Literature orders are recorded for built-ins (``None``
    when unknown): ``literature_order`` for general partitioned problems,
    ``literature_separable_order`` for separable ones, ``literature_control_order``.
    """

    name: str
    first: ButcherTableau
    second: ButcherTableau
    aliases: tuple[str, ...] = ()
    description: str = ""
    citation: str = ""
    literature_order: int | None = None
    literature_separable_order: int | None = None
    literature_control_order: int | None = None
    order_source: str = ""
    separable_order_source: str = ""
    control_order_source: str = ""
    symplectic: bool | str | None = None  # the claim of a file: True, "separable", False
    source: str = field(default="", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "aliases", tuple(self.aliases))
        where = dict(source=self.source)
        if not (isinstance(self.name, str) and self.name.strip()):
            raise InputError(f"expected a non-empty string, found {self.name!r}", key="name",
                             **where)
        check_text(self.name, key="name", **where)
        for i, alias in enumerate(self.aliases):
            check_text(alias, key=f"aliases[{i}]", **where)
        for key in ("description", "citation", *_SOURCES):
            check_text(getattr(self, key), key=key, multiline=True, **where)
        if self.second.stages != self.first.stages:
            raise InputError(f"the second part has {self.second.stages} stages and the first "
                             f"{self.first.stages}: the parts of a pair share their stages",
                             key="second", **where)
        self._check_claim()

    def _check_claim(self) -> None:
        claim = self.symplectic
        if claim is None:
            return
        if claim not in (True, False, "separable"):
            raise InputError(f"expected true, false or \"separable\", found {claim!r}",
                             source=self.source, key="symplectic")
        why = None
        if claim is True and not self.same_weights:
            i = next(i for i in range(self.stages) if not self._equal(self.first.b[i],
                                                                       self.second.b[i]))
            why = (f"b ≠ b̂ (b_{i + 1} = {show(self.first.b[i])}, b̂_{i + 1} = "
                   f"{show(self.second.b[i])}): a pair with b ≠ b̂ is symplectic at most for "
                   "separable problems (claim \"separable\")")
        elif claim in (True, "separable") and not self.is_symplectic_separable:
            i, j = self.symplecticity_defect
            why = (f"b_i â_ij + b̂_j a_ji − b_i b̂_j = {show(self._defect(i, j))} ≠ 0 for "
                   f"i = {i + 1}, j = {j + 1}")
        elif claim is False and self.is_symplectic_separable:
            why = ("the pair is symplectic" + ("" if self.same_weights else
                                               " for separable problems"))
        if why:
            raise InputError(f"claimed symplectic = {json.dumps(claim)}, but {why}",
                             source=self.source, key="symplectic")

    # -- structure ---------------------------------------------------------------------------
    @property
    def stages(self) -> int:
        return self.first.stages

    @property
    def parts(self) -> tuple[ButcherTableau, ButcherTableau]:
        return (self.first, self.second)

    @cached_property
    def is_exact(self) -> bool:
        return self.first.is_exact and self.second.is_exact

    @cached_property
    def digits(self) -> int | None:
        """Significant digits of the rounded entries (the most given), None when exact."""
        if self.is_exact:
            return None
        return rounded_digits(self.first.A, self.first.b, self.second.A, self.second.b)

    @property
    def tolerance(self) -> float:
        """0 for exact pairs, else τ = 10^(2−d) for d-digit entries (ocgen.numbers)."""
        return 0.0 if self.is_exact else rounding_tolerance(self.digits)

    def _equal(self, x, y) -> bool:
        return is_zero(x - y, self.tolerance * float(abs(x) + abs(y)))

    @cached_property
    def same_weights(self) -> bool:
        """b = b̂."""
        return all(self._equal(x, y) for x, y in zip(self.first.b, self.second.b))

    @cached_property
    def is_explicit(self) -> bool:
        """Both parts explicit: every stage is computed from earlier ones, for any problem."""
        return self.first.is_explicit and self.second.is_explicit

    @cached_property
    def is_explicit_for_separable(self) -> bool:
        """For y' = f(z), z' = g(y): Y_i needs the Z_j with a_ij ≠ 0 and Z_i the Y_j with
        â_ij ≠ 0; the pair is explicit when these dependencies have no cycle (Verlet, Ruth)."""
        s, needs = self.stages, {}
        for part, (mine, other) in enumerate(((0, 1), (1, 0))):
            A, tol = self.parts[part].A, self.parts[part].tolerance
            for i in range(s):
                needs[(mine, i)] = [(other, j) for j in range(s) if not is_zero(A[i, j], tol)]
        state: dict = {}

        def acyclic(node) -> bool:
            if state.get(node) == "done":
                return True
            if state.get(node) == "open":
                return False
            state[node] = "open"
            ok = all(acyclic(other) for other in needs[node])
            state[node] = "done"
            return ok

        return all(acyclic(node) for node in needs)

    def _defect(self, i: int, j: int) -> sp.Expr:
        """b_i â_ij + b̂_j a_ji − b_i b̂_j."""
        A, b, Ah, bh = self.first.A, self.first.b, self.second.A, self.second.b
        return canonical_entry(b[i] * Ah[i, j] + bh[j] * A[j, i] - b[i] * bh[j])

    @cached_property
    def symplecticity_defect(self) -> tuple[int, int] | None:
        """The first (i, j) with b_i â_ij + b̂_j a_ji ≠ b_i b̂_j, or None."""
        A, b, Ah, bh = self.first.A, self.first.b, self.second.A, self.second.b
        for i in range(self.stages):
            for j in range(self.stages):
                scale = float(abs(b[i] * Ah[i, j]) + abs(bh[j] * A[j, i]) + abs(b[i] * bh[j]))
                if not is_zero(b[i] * Ah[i, j] + bh[j] * A[j, i] - b[i] * bh[j],
                               self.tolerance * scale):
                    return (i, j)
        return None

    @cached_property
    def is_symplectic_separable(self) -> bool:
        """b_i â_ij + b̂_j a_ji = b_i b̂_j for all i, j: symplectic for separable Hamiltonians
        H = T(p) + V(q) (Sanz-Serna 1992; Suris 1990; HLW VI, Thm 4.6)."""
        return self.symplecticity_defect is None

    @cached_property
    def is_symplectic(self) -> bool:
        """b = b̂ and b_i â_ij + b̂_j a_ji = b_i b̂_j: symplectic for every partitioned
        Hamiltonian system (HLW VI, Thm 4.6)."""
        return self.same_weights and self.is_symplectic_separable

    # -- the costate scheme --------------------------------------------------------------------
    def partner(self) -> "PartitionedTableau":
        """The pair that integrates the costates (p_y, p_z) of a PRK discretisation.

        From the discrete Lagrangian (MATH.md 3.1 for two parts), with P_i = W_i / b_i and
        R_i = V_i / b̂_i the stage costates of y and z:

            Ã_ij = b̂_j − b̂_j a_ji / b_i   with weights b̂   (the costate of y),
            Ã̂_ij = b_j − b_j â_ji / b̂_i   with weights b    (the costate of z).

        This is the costate scheme for every partitioned problem when b = b̂ (then each part's
        own partner, MATH.md 3.2: Lobatto IIIA ↔ IIIB), and for separable dynamics
        y' = f(z, u), z' = g(y, u) in general; with b ≠ b̂ and a non-separable f or g the
        stage costates mix both weights and form no PRK. The map is an involution, and the
        partner is the swapped pair (Â, b̂; A, b) exactly when b_i â_ij + b̂_j a_ji = b_i b̂_j.
        Raises ZeroWeightError naming the zero weights.
        """
        return self._partner

    @cached_property
    def _partner(self) -> "PartitionedTableau":
        zeros = [f"b_{i + 1} = 0" for i in self.first.zero_weights]
        zeros += [f"b̂_{i + 1} = 0" for i in self.second.zero_weights]
        if zeros:
            raise ZeroWeightError(
                f"{self.name} has no partner pair: {', '.join(zeros)} (the partner form of "
                "the costate divides by every weight; use the multiplier form, MATH.md 3.3)")
        s, A, b, Ah, bh = self.stages, self.first.A, self.first.b, self.second.A, self.second.b
        At = sp.ImmutableMatrix(s, s, lambda i, j: canonical_entry(bh[j] - bh[j] * A[j, i] / b[i]))
        Aht = sp.ImmutableMatrix(s, s,
                                 lambda i, j: canonical_entry(b[j] - b[j] * Ah[j, i] / bh[i]))
        return PartitionedTableau(
            name=f"{self.name} partner",
            first=ButcherTableau(name=f"{self.name} partner (first part)", A=At, b=bh),
            second=ButcherTableau(name=f"{self.name} partner (second part)", A=Aht, b=b))

    def swapped(self) -> "PartitionedTableau":
        """The same method with its parts exchanged: (Â, b̂; A, b)."""
        return PartitionedTableau(name=f"{self.name} swapped", first=self.second,
                                  second=self.first)

    # -- round trips -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-ready dict (loadable again as a pair file)."""
        data: dict[str, Any] = {"name": self.name}
        if self.aliases:
            data["aliases"] = list(self.aliases)
        for key in ("description", "citation"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        for key, value in zip(_ORDERS, (self.literature_order, self.literature_separable_order,
                                        self.literature_control_order)):
            if value is not None:
                data[key] = value
        for key in _SOURCES:
            if getattr(self, key):
                data[key] = getattr(self, key)
        if self.symplectic is not None:
            data["symplectic"] = self.symplectic
        for key, part in zip(PARTS, self.parts):
            s = part.stages
            data[key] = {"A": [[entry_to_data(part.A[i, j]) for j in range(s)]
                               for i in range(s)],
                         "b": [entry_to_data(x) for x in part.b],
                         "c": [entry_to_data(x) for x in part.c]}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict, source: str = "", *,
                  exact_decimals: bool = False) -> "PartitionedTableau":
        """Build from a parsed TOML/JSON table; every error names ``source`` and the key."""
        for key in data:
            if key not in _KEYS:
                hint = (" (a pair has tables `first` and `second`, each with A, b and "
                        "optional c)") if key in ("A", "b", "c") else ""
                raise InputError(f"unknown key (expected one of: {', '.join(sorted(_KEYS))})"
                                 + hint, source=source, key=key)
        for key in PARTS:
            if key not in data:
                raise InputError(f"missing required key {key!r} (a table with A, b and optional "
                                 "c, or the name of a built-in tableau)", source=source)
        name = data.get("name", Path(source).stem if source else "custom pair")
        _expect(isinstance(name, str) and name.strip(), "a non-empty string", name, source,
                "name")
        aliases = data.get("aliases", [])
        _expect(isinstance(aliases, list) and all(isinstance(a, str) for a in aliases),
                "a list of strings", aliases, source, "aliases")
        texts = {key: data.get(key, "") for key in ("description", "citation", *_SOURCES)}
        for key, value in texts.items():
            _expect(isinstance(value, str), "a string", value, source, key)
        orders = {}
        for key in _ORDERS:
            value = data.get(key)
            _expect(value is None or (isinstance(value, int) and not isinstance(value, bool)
                                      and value >= 0), "a non-negative integer", value, source,
                    key)
            orders[key] = value
        claim = data.get("symplectic")
        _expect(claim in (None, True, False, "separable"), 'true, false or "separable"', claim,
                source, "symplectic")
        name = name.strip()
        parts = [_part(data[key], key, name, source, exact_decimals) for key in PARTS]
        return cls(name=name, first=parts[0], second=parts[1], aliases=tuple(aliases),
                   literature_order=orders["order"],
                   literature_separable_order=orders["separable_order"],
                   literature_control_order=orders["control_order"], symplectic=claim,
                   source=source, **texts)

    def __str__(self) -> str:
        return self.name


def _expect(ok, what: str, found, source: str, key: str) -> None:
    if not ok:
        raise InputError(f"expected {what}, found {found!r}", source=source, key=key)


def _part(value, key: str, name: str, source: str, exact_decimals: bool) -> ButcherTableau:
    """One part: the name of a built-in tableau, or a table with A, b and optional c."""
    if isinstance(value, str):
        found = builtin_tableau(value, exact_decimals=exact_decimals)
        if found is not None:
            return found
        if value.strip().lower().endswith((".toml", ".json")):
            raise InputError(f"expected a built-in tableau name or a table, found {value!r} "
                             "(a part cannot be read from another file)", source=source,
                             key=key)
        close = close_names(normalise_name(value))
        hint = f"; did you mean {', '.join(close)}?" if close else " (see `ocgen tableau list`)"
        raise InputError(f"unknown tableau {value!r}{hint}", source=source, key=key)
    _expect(isinstance(value, dict), "a table with A, b and optional c, or the name of a "
            "built-in tableau", value, source, key)
    for inner in value:
        if inner not in ("A", "b", "c"):
            raise InputError("unknown key (expected A, b or c)", source=source,
                             key=f"{key}.{inner}")
    try:
        return ButcherTableau.from_dict({"name": f"{name} ({key} part)", **value}, source,
                                        exact_decimals=exact_decimals)
    except InputError as err:
        raise InputError(err.detail, source=source,
                         key=f"{key}.{err.key}" if err.key else key) from None


def is_pair_data(data: dict) -> bool:
    """Whether a parsed TOML/JSON table describes a pair (it has ``first`` or ``second``)."""
    return any(key in data for key in PARTS)


# -- the library -----------------------------------------------------------------------------
@cache
def _builtin_files() -> dict[str, str]:
    return data_texts("pairs")


@cache
def _builtin(stem: str) -> PartitionedTableau:
    return build_one(_builtin_files(), stem, PartitionedTableau.from_dict)


@cache
def builtin_pairs() -> tuple[PartitionedTableau, ...]:
    """Every built-in pair, in file-name order."""
    return tuple(map(_builtin, _builtin_files()))


@cache
def _index() -> dict[str, PartitionedTableau]:
    return name_index(builtin_pairs(), "pair")


def builtin_pair_names() -> list[str]:
    """Display names of the built-in pairs."""
    return [p.name for p in builtin_pairs()]


def load_pair(spec: str | Path | PartitionedTableau, *,
              exact_decimals: bool = False) -> PartitionedTableau:
    """A built-in pair name (case-insensitive, aliases) or a path to a .toml/.json pair file."""
    return load_method(spec, exact_decimals=exact_decimals, kinds="pair")


def load_method(spec, *, exact_decimals: bool = False,
                kinds: str = "any") -> ButcherTableau | PartitionedTableau:
    """A tableau or a pair: built-in names of both (they never coincide), or a file, which
    is a pair when it has tables ``first``/``second``. ``kinds`` = "any" or "pair"."""
    if isinstance(spec, PartitionedTableau) or (isinstance(spec, ButcherTableau)
                                                 and kinds == "any"):
        return spec
    if isinstance(spec, ButcherTableau):
        raise InputError(f"{spec.name} is a single tableau, not a pair")
    text = str(spec)
    if not text.strip():
        raise InputError("empty name: give a built-in name (see `ocgen tableau list`) or a "
                         ".toml/.json file")
    if kinds == "any":  # a built-in tableau's name, without reading the pairs
        found = builtin_tableau(text, exact_decimals=exact_decimals)
        if found is not None:
            return found
    found = find_builtin(text, _builtin_files(), _builtin, _index)
    if found is not None:
        if found.is_exact or not exact_decimals:
            return found
        return build_one(_builtin_files(), found.source[:-5],
                         partial(PartitionedTableau.from_dict, exact_decimals=True))
    path = Path(text)
    if path.suffix.lower() in (".toml", ".json") or path.is_file():
        data = read_data_file(path)
        if is_pair_data(data):
            return PartitionedTableau.from_dict(data, source=str(path),
                                                exact_decimals=exact_decimals)
        if kinds == "pair":
            raise InputError("not a pair file: expected tables `first` and `second`",
                             source=str(path))
        return ButcherTableau.from_dict(data, source=str(path), exact_decimals=exact_decimals)
    key = normalise_name(text)
    close = [p.name for p in _close_pairs(key)]
    if kinds == "any":
        close = close_names(key) + close
    what = "tableau or pair" if kinds == "any" else "pair"
    hint = f"; did you mean {', '.join(close[:6])}?" if close else \
        " (see `ocgen tableau list`, or give a .toml/.json file)"
    raise InputError(f"unknown {what} {text!r}{hint}")


def _close_pairs(key: str) -> list[PartitionedTableau]:
    import difflib
    index = _index()
    keys = [k for k in index if key and key in k] + difflib.get_close_matches(key, index, n=5)
    return list(dict.fromkeys(index[k] for k in keys))[:5]
