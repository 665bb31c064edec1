"""Tableau entries as numbers: exact algebraic numbers, proved zero, and rounded decimals.

* An **exact** entry is an algebraic number (rationals, surds, cbrt, sin/cos/tan of rational
  multiples of π). Zero is *proved*: a numeric pre-check at 30 digits settles the non-zero
  case, and a candidate zero is confirmed by its minimal polynomial over Q being x.
* A **rounded** entry is a decimal (or a float) the user wrote: a ``sympy.Float`` that carries
  the precision of the digits given, at least 15 significant digits (SymPy's own rule for
  ``Float("…")``, and what a double holds). A tableau whose longest rounded entries have d
  digits (shorter ones, such as 0.5, are taken as exact to as many digits) is judged with the
  tolerance τ = 10^(2−d): twenty times the rounding error ½·10^(1−d) of one entry.

Options given as numbers (a network's horizon, a tolerance) are checked by :func:`finite_real`.
"""

from __future__ import annotations

import math
import numbers

import sympy as sp
from mpmath.libmp import to_str
from sympy.core.evalf import dps_to_prec, prec_to_dps

MIN_DIGITS = 15
"""A rounded entry is never taken as less precise than a double: 15 significant digits."""
LONG_EXACT = 24
"""Exact values longer than this many characters are shown as 16-digit decimals in text."""

_x = sp.Dummy("x")


def finite_real(value) -> bool:
    """A finite real number: not a bool, string or None, and within float64's range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond float64
        return False


def as_number(value) -> sp.Expr:
    """A SymPy value from one that already is, or from a Python int or float (never text).

    A float becomes the rounded decimal of its shortest repr (0.1 → 0.1, 15 digits).
    """
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a SymPy value, int or float, found {type(value).__name__}")
    return sp.Integer(value) if isinstance(value, int) else sp.Float(repr(value))


def is_zero(value, tolerance: float = 0.0) -> bool:
    """``value == 0``: proved for exact numbers, ``|value| <= tolerance`` once Floats appear."""
    value = as_number(value)
    if value.has(sp.Float):
        return abs(complex(value.evalf(digits(value)))) <= tolerance
    if value.is_Rational:
        return value == 0
    if abs(complex(value.evalf(30))) > 1e-20:  # certainly not zero; spares the proof
        return False
    if sp.expand(sp.radsimp(value)) == 0:  # a simplification to 0 is a proof
        return True
    return sp.minimal_polynomial(value, _x) == _x


def field_degree_bound(values) -> tuple[int, list[sp.Expr]]:
    """(bound, generators): an upper bound on the degree over Q of the field the exact
    ``values`` generate, and the algebraic constants behind it.

    Roots r^(p/q) count q each. The trigonometric constants sin, cos, tan(πp/q) all lie in the
    real subfield of Q(ζ_4L), L the lcm of their q, of degree φ(4L)/2; they count that, or the
    product of their own bounds (φ(2q)/2 for a cosine, φ(4q)/2 otherwise) when smaller. The
    bound multiplies these counts, so dependent generators (nested radicals SymPy writes for
    cos(π/24)) can make it larger than the true degree.
    """
    atoms = set().union(*(as_number(v).atoms(sp.Pow, sp.cos, sp.sin, sp.tan) for v in values))
    atoms = sorted(atoms, key=sp.default_sort_key)
    roots = [a for a in atoms if isinstance(a, sp.Pow) and a.exp.is_Rational
             and not a.exp.is_Integer]
    trig = [a for a in atoms if not isinstance(a, sp.Pow)]
    bound = math.prod(int(a.exp.q) for a in roots)
    if trig:
        qs = [int(sp.Rational(a.args[0] / sp.pi).q) for a in trig]
        own = math.prod(int(sp.totient(2 * q) // 2 if a.func is sp.cos else sp.totient(4 * q) // 2)
                        for a, q in zip(trig, qs))
        bound *= min(own, int(sp.totient(4 * math.lcm(*qs)) // 2))
    return bound, roots + trig


# -- rounded entries ---------------------------------------------------------------------------
def digits(*values) -> int:
    """Significant decimal digits of rounded values (numbers or matrices): the most digits
    given in any of their Floats."""
    return max((prec_to_dps(f._prec) for v in values for f in as_number(v).atoms(sp.Float)),
               default=MIN_DIGITS)


def tolerance(d: int) -> float:
    """The tolerance of entries rounded to ``d`` significant digits: τ = 10^(2−d), twenty
    times the largest relative rounding error ½·10^(1−d) of one entry."""
    return float(f"1e{2 - d}")


def rounded(value: sp.Expr) -> sp.Expr:
    """An entry with a Float in it as one canonical Float at its digits; exact ones unchanged.

    ``0.5*sqrt(2)`` becomes 0.707106781186548 (15 digits); a Float is stored as the decimal
    it prints as, so equal decimals compare equal whatever arithmetic produced them.
    """
    value = as_number(value)
    if not value.has(sp.Float):
        return value
    d = digits(value)
    number = sp.Float(value.evalf(d), d)
    return sp.Float(to_str(number._mpf_, d), d)


def decimal_text(value: sp.Float) -> str:
    """The decimal a rounded entry stands for, read back as the same Float by ``Float(text)``."""
    d = prec_to_dps(value._prec)
    short = to_str(value._mpf_, d)
    return short if sp.Float(short)._prec == dps_to_prec(d) else to_str(value._mpf_, d,
                                                                          strip_zeros=False)


def exact_decimal(value: sp.Expr) -> sp.Expr:
    """A rounded entry as the exact rational of its decimal; exact entries unchanged."""
    value = rounded(value)
    return sp.Rational(decimal_text(value)) if value.is_Float else value


def rounding_note(residual: float, scale: float) -> str | None:
    """"the coefficients look rounded to k digits" when a residual is tiny against ``scale``
    (the size of the largest term that makes it up), else None: a true failure is of the
    size of its terms."""
    if residual == 0 or scale == 0 or abs(residual) > 1e-6 * scale:
        return None
    k = round(-math.log10(abs(residual) / scale))
    return f"the coefficients look rounded to {k} digits"


# -- text ------------------------------------------------------------------------------------
def show(value) -> str:
    """An entry or condition value as text: exact, a rounded decimal, or — for a long exact
    value — its 16-digit decimal marked with ≈ (JSON keeps :func:`exact_text`)."""
    value = as_number(value)
    if value.is_Float:
        return decimal_text(value)
    text = str(value)
    if len(text) > LONG_EXACT and value.is_Rational:
        decimal = to_str(sp.Float(value, LONG_EXACT)._mpf_, LONG_EXACT)
        if sp.Rational(decimal) == value:  # exactly a short decimal, as the user wrote it
            return decimal
    if len(text) > LONG_EXACT and value.is_number:
        return "≈" + to_str(sp.Float(value.evalf(16), 16)._mpf_, 16, strip_zeros=False)
    return text


def exact_text(value) -> str:
    """An entry or condition value as a string that reads back exactly (JSON output)."""
    value = as_number(value)
    return decimal_text(value) if value.is_Float else str(value)

