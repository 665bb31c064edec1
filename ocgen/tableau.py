"""Exact, immutable Butcher tableaux and the built-in library.

An s-stage Runge–Kutta method is (A, b, c) with c = A·1 (MATH.md, notation). Entries are
exact algebraic numbers (rationals, surds, cos(π/18), …) unless the user gave rounded ones
(decimals, floats); then every verdict that depends on them is taken with the tolerance of
their digits (:func:`ocgen.numbers.tolerance`).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import cache, cached_property, partial
from pathlib import Path
from typing import Any

import sympy as sp
import tomli_w

from .errors import InputError, OcgenError
from .expr import parse_number
from .files import read_data_file
from .library import build_one, data_texts, find_builtin, name_index, normalise_name
from .limits import MAX_STAGES, check_count
from .numbers import as_number, decimal_text, is_zero, rounded, rounding_note, show
from .numbers import digits as rounded_digits
from .numbers import tolerance as rounding_tolerance
from .text import check_text


class UnknownNameError(InputError):
    """A name that is neither a built-in tableau nor a file."""


class ZeroWeightError(OcgenError):
    """The partner (symplectic costate) tableau needs all weights b_i ≠ 0 (MATH.md 3.2)."""


@dataclass(frozen=True)
class ButcherTableau:
    """A Runge–Kutta method (A, b, c), validated at construction.

    ``A`` is an s×s and ``b``, ``c`` are s×1 ``sympy.ImmutableMatrix``; ``c`` defaults to the row
    sums of ``A`` and, when given, must equal them (within the tolerance when rounded: then
    |c_i − Σ_j a_ij| ≤ τ (|c_i| + Σ_j |a_ij|)). Literature values of the classical and
    optimal-control orders are recorded for built-ins (``None`` when unknown).
    """

    name: str
    A: sp.ImmutableMatrix
    b: sp.ImmutableMatrix
    c: sp.ImmutableMatrix = None  # type: ignore[assignment]
    aliases: tuple[str, ...] = ()
    citation: str = ""
    literature_order: int | None = None
    literature_control_order: int | None = None
    source: str = field(default="", compare=False)
    order_source: str = ""
    control_order_source: str = ""

    def __post_init__(self):
        _check_texts(self)
        A = sp.ImmutableMatrix(self.A)
        b = sp.ImmutableMatrix(self.b).reshape(len(self.b), 1) if len(self.b) else None
        s = A.rows
        if s == 0 or A.cols != s:
            raise InputError(f"A must be a non-empty square matrix, found {A.rows}×{A.cols}",
                             source=self.source, key="A")
        if b is None or b.rows != s:
            raise InputError(f"b must have {s} entries (one per stage), found {len(self.b)}",
                             source=self.source, key="b")
        A, b = A.applyfunc(rounded), b.applyfunc(rounded)
        rowsums = sp.ImmutableMatrix([sum(A.row(i)) for i in range(s)]).applyfunc(rounded)
        if self.c is None:
            c = rowsums
        else:
            c = sp.ImmutableMatrix(self.c).applyfunc(rounded)
            c = c.reshape(len(c), 1)
            if c.rows != s:
                raise InputError(f"c must have {s} entries (one per stage), found {c.rows}",
                                 source=self.source, key="c")
            _check_row_sums(A, c, rowsums, self.source)
            if c.has(sp.Float) and not A.has(sp.Float):
                c = rowsums  # c of an exact A is exact, even when written rounded
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "aliases", tuple(self.aliases))

    # -- structure ---------------------------------------------------------------------------
    @property
    def stages(self) -> int:
        return self.A.rows

    @cached_property
    def is_exact(self) -> bool:
        """True when no entry is rounded (a decimal or a float): verdicts are exact."""
        return not (self.A.has(sp.Float) or self.b.has(sp.Float))

    @cached_property
    def digits(self) -> int | None:
        """Significant digits of the rounded entries (the most given), None when exact."""
        return None if self.is_exact else rounded_digits(self.A, self.b)

    @property
    def tolerance(self) -> float:
        """0 for exact tableaux, else τ = 10^(2−d) for d-digit entries (ocgen.numbers)."""
        return 0.0 if self.is_exact else rounding_tolerance(self.digits)

    def _zero(self, value) -> bool:
        return is_zero(value, self.tolerance)

    @cached_property
    def is_explicit(self) -> bool:
        """a_ij = 0 for j >= i."""
        s = self.stages
        return all(self._zero(self.A[i, j]) for i in range(s) for j in range(i, s))

    @cached_property
    def is_diagonally_implicit(self) -> bool:
        """a_ij = 0 for j > i, with some a_ii ≠ 0."""
        s = self.stages
        lower = all(self._zero(self.A[i, j]) for i in range(s) for j in range(i + 1, s))
        return lower and not self.is_explicit

    @cached_property
    def kind(self) -> str:
        if self.is_explicit:
            return "explicit"
        return "diagonally implicit" if self.is_diagonally_implicit else "fully implicit"

    @cached_property
    def zero_weights(self) -> tuple[int, ...]:
        """Indices i with b_i = 0."""
        return tuple(i for i in range(self.stages) if self._zero(self.b[i]))

    @cached_property
    def negative_weights(self) -> tuple[int, ...]:
        """Indices i with b_i < 0."""
        return tuple(i for i in range(self.stages)
                     if not self._zero(self.b[i]) and float(self.b[i]) < 0)

    @cached_property
    def weights_positive(self) -> bool:
        return not self.zero_weights and not self.negative_weights

    @cached_property
    def d(self) -> sp.ImmutableMatrix:
        """d = Aᵀb, i.e. d_j = Σ_i b_i a_ij."""
        return sp.ImmutableMatrix(self.A.T * self.b).applyfunc(canonical_entry)

    # -- the costate scheme --------------------------------------------------------------------
    def partner(self) -> "ButcherTableau":
        """The symplectic partner Ã = 1bᵀ − B⁻¹AᵀB, b̃ = b (MATH.md 3.2).

        ã_ij = b_j − b_j a_ji / b_i. Raises ZeroWeightError naming the zero weights.
        """
        return self._partner

    @cached_property
    def _partner(self) -> "ButcherTableau":
        zeros = self.zero_weights
        if zeros:
            listed = ", ".join(f"b_{i + 1} = 0" for i in zeros)
            raise ZeroWeightError(
                f"{self.name} has no partner tableau: {listed} (the partner form of the costate "
                "needs every b_i ≠ 0; use the multiplier form, MATH.md 3.3)")
        s, A, b = self.stages, self.A, self.b
        At = sp.ImmutableMatrix(s, s, lambda i, j: canonical_entry(b[j] - b[j] * A[j, i] / b[i]))
        return ButcherTableau(name=f"{self.name} partner", A=At, b=self.b)

    @cached_property
    def is_symplectic(self) -> bool:
        """b_i a_ij + b_j a_ji = b_i b_j for all i, j (then the partner equals the method)."""
        s, A, b = self.stages, self.A, self.b
        return all(is_zero(b[i] * A[i, j] + b[j] * A[j, i] - b[i] * b[j], self.tolerance * (
            abs(b[i] * A[i, j]) + abs(b[j] * A[j, i]) + abs(b[i] * b[j])))
            for i in range(s) for j in range(s))

    # -- presentation and round trips ----------------------------------------------------------
    def latex(self) -> str:
        """The tableau as a LaTeX ``array``: c | A over a rule, then bᵀ."""
        s = self.stages
        rows = [" & ".join([sp.latex(self.c[i])] + [sp.latex(self.A[i, j]) for j in range(s)])
                for i in range(s)]
        last = " & ".join([""] + [sp.latex(self.b[j]) for j in range(s)])
        body = " \\\\\n".join(rows) + " \\\\\n\\hline\n" + last
        return f"\\begin{{array}}{{c|{'c' * s}}}\n{body}\n\\end{{array}}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-ready dict; exact entries as strings, rounded ones as floats where a
        float keeps their digits, else as decimal strings (round-trips)."""
        s = self.stages
        data: dict[str, Any] = {"name": self.name}
        if self.aliases:
            data["aliases"] = list(self.aliases)
        if self.citation:
            data["citation"] = self.citation
        if self.literature_order is not None:
            data["order"] = self.literature_order
        if self.literature_control_order is not None:
            data["control_order"] = self.literature_control_order
        for key in ("order_source", "control_order_source"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        data["A"] = [[entry_to_data(self.A[i, j]) for j in range(s)] for i in range(s)]
        data["b"] = [entry_to_data(x) for x in self.b]
        data["c"] = [entry_to_data(x) for x in self.c]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict, source: str = "", *,
                  exact_decimals: bool = False) -> "ButcherTableau":
        """Build from a parsed TOML/JSON table; every error names ``source`` and the key.

        Decimals and floats are rounded entries, or exact rationals with ``exact_decimals``.
        """
        known = {"name", "aliases", "citation", "order", "control_order", "order_source",
                 "control_order_source", "A", "b", "c"}
        for key in data:
            if key not in known:
                raise InputError(f"unknown key (expected one of: {', '.join(sorted(known))})",
                                 source=source, key=key)
        for key in ("A", "b"):
            if key not in data:
                raise InputError(f"missing required key {key!r}", source=source)
        name = data.get("name", Path(source).stem if source else "custom")
        _expect(isinstance(name, str) and name.strip(), "a non-empty string", name, source, "name")
        aliases = data.get("aliases", [])
        _expect(isinstance(aliases, list) and all(isinstance(a, str) for a in aliases),
                "a list of strings", aliases, source, "aliases")
        citation = data.get("citation", "")
        _expect(isinstance(citation, str), "a string", citation, source, "citation")
        sources = {key: data.get(key, "") for key in ("order_source", "control_order_source")}
        for key, value in sources.items():
            _expect(isinstance(value, str), "a string", value, source, key)
        orders = {}
        for key in ("order", "control_order"):
            value = data.get(key)
            _expect(value is None or (isinstance(value, int) and not isinstance(value, bool)
                                      and value >= 0), "a non-negative integer", value, source, key)
            orders[key] = value
        A = _matrix(data["A"], source, exact_decimals)
        b = _vector(data["b"], "b", source, exact_decimals)
        c = _vector(data["c"], "c", source, exact_decimals) if "c" in data else None
        return cls(name=name.strip(), A=sp.ImmutableMatrix(A), b=b, c=c, aliases=tuple(aliases),
                   citation=citation, literature_order=orders["order"],
                   literature_control_order=orders["control_order"], source=source, **sources)

    def __str__(self) -> str:
        return self.name


def _check_texts(tableau: ButcherTableau) -> None:
    """Name, aliases and citation are printable text (they reach terminals and generated
    docstrings)."""
    where = dict(source=tableau.source)
    _expect(isinstance(tableau.name, str) and tableau.name.strip(), "a non-empty string",
            tableau.name, tableau.source, "name")
    check_text(tableau.name, key="name", **where)
    for i, alias in enumerate(tableau.aliases):
        check_text(alias, key=f"aliases[{i}]", **where)
    check_text(tableau.citation, key="citation", multiline=True, **where)
    for key in ("order_source", "control_order_source"):
        check_text(getattr(tableau, key), key=key, multiline=True, **where)


def _check_row_sums(A, c, rowsums, source: str) -> None:
    """c_i = Σ_j a_ij, exactly, or within τ (|c_i| + Σ_j |a_ij|) when entries are rounded."""
    d = rounded_digits(A, c) if (A.has(sp.Float) or c.has(sp.Float)) else None
    tol = 0.0 if d is None else rounding_tolerance(d)
    for i in range(A.rows):
        scale = float(abs(c[i]) + sum(abs(x) for x in A.row(i)))
        if is_zero(c[i] - rowsums[i], tol * scale):
            continue
        difference = float(c[i] - rowsums[i])
        why = "" if d is None else f", more than {tol * scale:.1g} allowed for {d}-digit entries"
        note = rounding_note(difference, float(max(abs(x) for x in [c[i], *A.row(i)])))
        if note:
            why += f": {note}" + ("" if d is not None else " (decimals are judged as rounded "
                                  "numbers unless --exact-decimals is given)")
        raise InputError(f"c[{i}] = {show(c[i])} differs from the row sum of A[{i}], "
                         f"{show(rowsums[i])}, by {difference:.1g}{why}",
                         source=source, key=f"c[{i}]")


def canonical_entry(value: sp.Expr) -> sp.Expr:
    """Canonical form of an entry: rationals and floats stay, surds rationalised and expanded."""
    value = as_number(value)
    if value.is_Rational or value.has(sp.Float):
        return value
    return sp.expand(sp.radsimp(value))


def entry_to_data(value: sp.Expr) -> int | float | str:
    """An entry for TOML/JSON: int, exact expression string, or a rounded entry's decimal
    (as a float when the float reads back as the same entry, else as a string)."""
    if value.is_Integer:
        return int(value)
    if value.is_Float:
        text = decimal_text(value)
        return float(text) if as_number(float(text)) == value else text
    return str(value)


def _expect(ok, what: str, found, source: str, key: str) -> None:
    if not ok:
        raise InputError(f"expected {what}, found {found!r}", source=source, key=key)


def _vector(values, key: str, source: str, exact_decimals: bool) -> list[sp.Expr]:
    _expect(isinstance(values, list) and values, "a non-empty list of numbers", values, source, key)
    out = []
    for i, value in enumerate(values):
        try:
            out.append(parse_number(value, exact_decimals=exact_decimals))
        except InputError as err:
            raise err.located(source=source, key=f"{key}[{i}]") from None
    return out


def _matrix(rows, source: str, exact_decimals: bool) -> list[list[sp.Expr]]:
    _expect(isinstance(rows, list) and rows and all(isinstance(r, list) for r in rows),
            "a non-empty list of rows (list of lists)", rows, source, "A")
    s = len(rows)
    check_count(s, MAX_STAGES, "stages", source=source, key="A")
    out = []
    for i, row in enumerate(rows):
        if len(row) != s:
            raise InputError(f"row {i} has {len(row)} entries, expected {s} (A must be square)",
                             source=source, key=f"A[{i}]")
        out.append([])
        for j, value in enumerate(row):
            try:
                out[-1].append(parse_number(value, exact_decimals=exact_decimals))
            except InputError as err:
                raise err.located(source=source, key=f"A[{i}][{j}]") from None
    return out


# -- the library -----------------------------------------------------------------------------
@cache
def _builtin_files() -> dict[str, str]:
    return data_texts("tableaux")


@cache
def _builtin(stem: str) -> ButcherTableau:
    return build_one(_builtin_files(), stem, ButcherTableau.from_dict)


@cache
def builtin_tableaux() -> tuple[ButcherTableau, ...]:
    """Every built-in method, in file-name order."""
    return tuple(map(_builtin, _builtin_files()))


@cache
def _index() -> dict[str, ButcherTableau]:
    return name_index(builtin_tableaux(), "tableau")


def builtin_names() -> list[str]:
    """Display names of the built-in methods."""
    return [t.name for t in builtin_tableaux()]


def builtin_tableau(name: str, *, exact_decimals: bool = False) -> ButcherTableau | None:
    """The built-in method called ``name`` (case-insensitive, aliases), or None."""
    found = find_builtin(name, _builtin_files(), _builtin, _index)
    if found is None or found.is_exact or not exact_decimals:
        return found
    return build_one(_builtin_files(), found.source[:-5],
                     partial(ButcherTableau.from_dict, exact_decimals=True))


def load_tableau(spec: str | Path | ButcherTableau, *,
                 exact_decimals: bool = False) -> ButcherTableau:
    """A built-in name (case-insensitive, aliases) or a path to a .toml/.json tableau file.

    ``exact_decimals`` reads decimals and floats as the exact rationals they spell.
    """
    if isinstance(spec, ButcherTableau):
        return spec
    text = str(spec)
    if not text.strip():
        raise InputError("empty tableau name: give a built-in name (see `ocgen tableau list`) "
                         "or a .toml/.json file")
    found = builtin_tableau(text, exact_decimals=exact_decimals)
    if found is not None:
        return found
    path = Path(text)
    if path.suffix.lower() in (".toml", ".json") or path.is_file():
        return ButcherTableau.from_dict(read_data_file(path), source=str(path),
                                        exact_decimals=exact_decimals)
    close = close_names(normalise_name(text))
    hint = f"; did you mean {', '.join(close)}?" if close else \
        " (see `ocgen tableau list`, or give a .toml/.json file)"
    raise UnknownNameError(f"unknown tableau {text!r}{hint}")


def close_names(key: str) -> list[str]:
    """Up to five built-in tableaux whose name or alias contains ``key`` or is spelled like it
    (closest first; a tableau matched by several of its names counts once)."""
    index = _index()
    keys = [k for k in index if key and key in k] + difflib.get_close_matches(key, index,
                                                                              n=len(index))
    return list(dict.fromkeys(index[k].name for k in keys))[:5]
