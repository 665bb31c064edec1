"""Exact, immutable Butcher tableaux and the built-in library.

An s-stage Runge–Kutta method is (A, b, c) with c = A·1 (MATH.md, notation). Entries are
exact SymPy numbers (rationals, surds) unless the user gave floats; then every verdict that
depends on them is taken with :data:`FLOAT_TOLERANCE`.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import sympy as sp
import tomli_w

from .errors import InputError, OcgenError
from .expr import parse_number
from .files import read_data_file
from .limits import MAX_STAGES, check_count
from .text import check_text

FLOAT_TOLERANCE = 1e-12
"""Absolute tolerance for identities of tableaux given in floating point."""


class ZeroWeightError(OcgenError):
    """The partner (symplectic costate) tableau needs all weights b_i ≠ 0 (MATH.md 3.2)."""


def as_number(value) -> sp.Expr:
    """A SymPy value from one that already is, or from a Python int or float (never text)."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a SymPy value, int or float, found {type(value).__name__}")
    return sp.Integer(value) if isinstance(value, int) else sp.Float(value, 17)


def is_zero(value: sp.Expr, tolerance: float = 0.0) -> bool:
    """Exact zero test for rationals and surds; ``|value| <= tolerance`` once floats appear."""
    value = as_number(value)
    if value.has(sp.Float):
        return abs(complex(value.evalf())) <= tolerance
    if value.is_Rational:
        return value == 0
    if abs(complex(value.evalf(30))) > 1e-20:  # certainly not zero; spares the slow proof
        return False
    return sp.expand(sp.radsimp(value)) == 0 or value.equals(0) is True


@dataclass(frozen=True)
class ButcherTableau:
    """A Runge–Kutta method (A, b, c), validated at construction.

    ``A`` is an s×s and ``b``, ``c`` are s×1 ``sympy.ImmutableMatrix``; ``c`` defaults to the row
    sums of ``A`` and, when given, must equal them. Literature values of the classical and
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
        rowsums = sp.ImmutableMatrix([sum(A.row(i)) for i in range(s)])
        if self.c is None:
            c = rowsums
        else:
            c = sp.ImmutableMatrix(self.c)
            c = c.reshape(len(c), 1)
            if c.rows != s:
                raise InputError(f"c must have {s} entries (one per stage), found {c.rows}",
                                 source=self.source, key="c")
            tol = FLOAT_TOLERANCE if (A.has(sp.Float) or c.has(sp.Float)) else 0.0
            for i in range(s):
                if not is_zero(c[i] - rowsums[i], tol):
                    raise InputError(
                        f"c[{i}] = {c[i]} differs from the row sum of A[{i}], {rowsums[i]}",
                        source=self.source, key=f"c[{i}]")
        # floats are the doubles they stand for, stored as the file reader stores them, so a
        # tableau (and computed c) survives to_dict → from_dict; SymPy's == compares precision
        A, b, c = (m.applyfunc(_as_double) for m in (A, b, c))
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
        """True when no entry is a float: verdicts on this tableau are exact."""
        return not (self.A.has(sp.Float) or self.b.has(sp.Float))

    @property
    def tolerance(self) -> float:
        """0 for exact tableaux, :data:`FLOAT_TOLERANCE` otherwise."""
        return 0.0 if self.is_exact else FLOAT_TOLERANCE

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
        return all(self._zero(b[i] * A[i, j] + b[j] * A[j, i] - b[i] * b[j])
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
        """A JSON/TOML-ready dict; exact entries as strings, floats as floats (round-trips)."""
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
    def from_dict(cls, data: dict, source: str = "") -> "ButcherTableau":
        """Build from a parsed TOML/JSON table; every error names ``source`` and the key."""
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
        A = _matrix(data["A"], source)
        b = _vector(data["b"], "b", source)
        c = _vector(data["c"], "c", source) if "c" in data else None
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


def canonical_entry(value: sp.Expr) -> sp.Expr:
    """Canonical form of an entry: rationals and floats stay, surds rationalised and expanded."""
    value = as_number(value)
    if value.is_Rational or value.has(sp.Float):
        return value
    return sp.expand(sp.radsimp(value))


def _as_double(value: sp.Expr) -> sp.Expr:
    """A floating-point entry as ``parse_number`` stores a float; exact entries unchanged."""
    value = as_number(value)
    if value.has(sp.Float) and value.is_number:
        return sp.Float(float(value), 17)
    return value


def entry_to_data(value: sp.Expr) -> int | float | str:
    """An entry for TOML/JSON: int, float (if the user gave floats) or exact expression string."""
    if value.is_Integer:
        return int(value)
    if value.has(sp.Float):
        return float(value)
    return str(value)


def _expect(ok, what: str, found, source: str, key: str) -> None:
    if not ok:
        raise InputError(f"expected {what}, found {found!r}", source=source, key=key)


def _vector(values, key: str, source: str) -> list[sp.Expr]:
    _expect(isinstance(values, list) and values, "a non-empty list of numbers", values, source, key)
    out = []
    for i, value in enumerate(values):
        try:
            out.append(parse_number(value))
        except InputError as err:
            raise err.located(source=source, key=f"{key}[{i}]") from None
    return out


def _matrix(rows, source: str) -> list[list[sp.Expr]]:
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
                out[-1].append(parse_number(value))
            except InputError as err:
                raise err.located(source=source, key=f"A[{i}][{j}]") from None
    return out


# -- the library -----------------------------------------------------------------------------
def normalise_name(name: str) -> str:
    """Lookup key: lower case without spaces, '-', '_', '.', '(' and ')'."""
    return re.sub(r"[\s\-_.()]", "", name).lower()


def _builtin_dir():
    return resources.files("ocgen") / "data" / "tableaux"


@cache
def _builtin_files() -> dict[str, str]:
    return {entry.name[:-5]: entry.read_text(encoding="utf-8")
            for entry in sorted(_builtin_dir().iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".toml")}


@cache
def builtin_tableaux() -> tuple[ButcherTableau, ...]:
    """Every built-in method, in file-name order."""
    from .files import tomllib
    return tuple(ButcherTableau.from_dict(tomllib.loads(text), source=f"{stem}.toml")
                 for stem, text in _builtin_files().items())


@cache
def _index() -> dict[str, ButcherTableau]:
    index: dict[str, ButcherTableau] = {}
    for tableau in builtin_tableaux():
        for key in {normalise_name(n) for n in (tableau.name, Path(tableau.source).stem,
                                                 *tableau.aliases)}:
            if key in index and index[key] is not tableau:
                raise RuntimeError(f"built-in name {key!r} used twice")  # a packaging bug
            index[key] = tableau
    return index


def builtin_names() -> list[str]:
    """Display names of the built-in methods."""
    return [t.name for t in builtin_tableaux()]


def load_tableau(spec: str | Path | ButcherTableau) -> ButcherTableau:
    """A built-in name (case-insensitive, aliases) or a path to a .toml/.json tableau file."""
    if isinstance(spec, ButcherTableau):
        return spec
    text = str(spec)
    if not text.strip():
        raise InputError("empty tableau name: give a built-in name (see `ocgen tableau list`) "
                         "or a .toml/.json file")
    found = _index().get(normalise_name(text))
    if found is not None:
        return found
    path = Path(text)
    if path.suffix.lower() in (".toml", ".json") or path.is_file():
        return ButcherTableau.from_dict(read_data_file(path), source=str(path))
    close = _close_names(normalise_name(text))
    hint = f"; did you mean {', '.join(close)}?" if close else \
        " (see `ocgen tableau list`, or give a .toml/.json file)"
    raise InputError(f"unknown tableau {text!r}{hint}")


def _close_names(key: str) -> list[str]:
    """Up to five built-in tableaux whose name or alias contains ``key`` or is spelled like it."""
    index = _index()
    keys = [k for k in index if key and key in k] + difflib.get_close_matches(key, index, n=5)
    return list(dict.fromkeys(index[k].name for k in keys))[:5]
