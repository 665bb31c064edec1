"""Whitelisting parser: expression text from user files to SymPy, never evaluated.

The text is parsed by Python's ``ast`` (which only parses) and the tree is walked node by
node; anything outside the grammar below is rejected with its column:

    expr   := number | name | expr (+ - * / **) expr | (+|-) expr | func(expr) | (expr)
    number := integer | decimal ("0.1") | scientific ("1e-3")
    name   := a declared symbol or a constant (pi, E)
    func   := one of the allowed functions of the context

In problems a decimal is exact ("0.1" is 1/10). A tableau entry (:func:`parse_number`) must
be an algebraic number, so that verdicts on it are exact: rationals, rational powers of them
(root degree ≤ MAX_ROOT_DEGREE), sqrt, cbrt, and sin/cos/tan of rational multiples of π
(denominator ≤ MAX_PI_DENOMINATOR); π appears only inside sin/cos/tan. A decimal or a float
in an entry makes it a *rounded* number (:mod:`ocgen.numbers`), unless ``exact_decimals``.

This replaces ``sympify``/``eval``, which would execute arbitrary code from a file.
"""

from __future__ import annotations

import ast
import math
import sys
import warnings
from typing import Mapping

import sympy as sp

from .errors import InputError
from .limits import check_expression
from .numbers import rounded

TRIGONOMETRIC = ("sin", "cos", "tan")
TABLEAU_FUNCTIONS: Mapping[str, object] = {
    "sqrt": sp.sqrt, "cbrt": lambda x: sp.real_root(x, 3), "sin": sp.sin, "cos": sp.cos,
    "tan": sp.tan,
}
PROBLEM_FUNCTIONS: Mapping[str, object] = {
    "sqrt": sp.sqrt, "exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos,
    "tan": sp.tan, "atan": sp.atan, "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh,
}
CONSTANTS: Mapping[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}

MAX_LENGTH = 2000
MAX_EXPONENT = 64
MAX_DEPTH = 200
"""Deepest nesting of the syntax tree (deeper input would exhaust Python's recursion)."""
MAX_DIGITS = 4000
"""Most decimal digits of an exact intermediate number (and of a literal's ``e`` exponent)."""
MAX_ROOT_DIGITS = 100
"""Most digits of a number under a root or inside a function (SymPy factors them: slow)."""
MAX_ROOT_DEGREE = 6
"""Largest q of a power x**(p/q) in a tableau entry (the number field grows with q)."""
MAX_PI_DENOMINATOR = 24
"""Largest q of sin/cos/tan(p/q·π) in a tableau entry (cos(π/q) has degree about φ(2q)/2)."""

_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def parse_number(value: object, *, key: str | None = None,
                 exact_decimals: bool = False) -> sp.Expr:
    """A TOML/JSON scalar as a tableau entry: an exact algebraic number, or a rounded Float
    when a decimal or a float is in it (exact rationals with ``exact_decimals``)."""
    if isinstance(value, float) and math.isfinite(value):
        value = repr(value)  # the shortest decimal of the double: the digits given
    number = _parse(value, None, TABLEAU_FUNCTIONS, key, algebraic=True,
                    rounded_decimals=not exact_decimals)
    if number.is_real is not True:
        raise InputError(f"expected a real number, found {number}", key=key)
    return rounded(number)


def parse_expression(
    value: object,
    symbols: Mapping[str, sp.Symbol] | None = None,
    functions: Mapping[str, object] = PROBLEM_FUNCTIONS,
    *,
    key: str | None = None,
) -> sp.Expr:
    """Parse ``value`` (int, float or expression string) into a SymPy expression.

    Raises InputError (with ``key``) for anything outside the whitelisted grammar.
    """
    return _parse(value, symbols, functions, key)


def _parse(value, symbols, functions, key, *, algebraic: bool = False,
           rounded_decimals: bool = False) -> sp.Expr:
    if isinstance(value, bool):
        raise InputError(f"expected a number or an expression string, found {value!r}", key=key)
    if isinstance(value, int):
        return real_constants(sp.Integer(value), key=key)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"expected a finite number, found {value!r}", key=key)
        return sp.Float(value, 17)
    if not isinstance(value, str):
        raise InputError(
            f"expected a number or an expression string, found {type(value).__name__}", key=key
        )
    text = value.strip()
    if not text:
        raise InputError("empty expression", key=key)
    if len(text) > MAX_LENGTH:
        raise InputError(f"expression longer than {MAX_LENGTH} characters", key=key)
    try:
        with warnings.catch_warnings():  # e.g. "invalid decimal literal" for "1if x else 2"
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        col = err.offset or 0
        where = f"at column {col}" if 1 <= col <= len(text) else "at the end"
        raise InputError(f"syntax error {where} in {text!r} ({err.msg})", key=key) from None
    except (RecursionError, MemoryError):
        raise InputError(f"expression nested too deeply in {text!r}", key=key) from None
    if _depth(tree) > MAX_DEPTH:
        raise InputError(f"expression nested deeper than {MAX_DEPTH} levels in {text!r}",
                         key=key)
    expr = _Builder(text, dict(symbols or {}), functions, key, algebraic,
                    rounded_decimals).build(tree.body)
    check_expression(expr, key=key)  # symbols may stand for whole parameter expressions
    return real_constants(expr, text, key=key)


def real_constants(value: sp.Expr, text: str | None = None, *, key: str | None = None
                   ) -> sp.Expr:
    """``value``, once every constant in it is a real number that a double holds.

    The constants are the largest subexpressions without symbols. Refused: complex ones, e.g.
    log(-1) = iπ or sqrt(1 - sqrt(5)), and ones beyond the double range (|x| > 1.8e308), e.g.
    10**400 or exp(exp(exp(1000))); the generated code would drop the imaginary part or
    compute inf.
    """
    where = f" in {text!r}" if text is not None else ""
    stack = [value]
    while stack:
        node = stack.pop()
        if not node.is_number:  # the constant factor of a product, the constant term of a sum
            stack.append(node.func(*(a for a in node.args if a.is_number))
                         if node.is_Add or node.is_Mul else sp.S.Zero)
            stack.extend(a for a in node.args if not a.is_number)
            continue
        try:
            number = complex(node.evalf(17))
        except (OverflowError, ValueError):  # mpmath: an exponent beyond any double
            number = complex(math.inf)
        if node.is_real is False or number.imag != 0:
            raise InputError(f"expected a real number, found {_shown(node)}{where}", key=key)
        if not math.isfinite(number.real):
            raise InputError(f"expected a number within floating-point range (|x| <= "
                             f"{sys.float_info.max:.3g}), found {_shown(node)}{where}", key=key)
    return value


def _shown(value: sp.Expr, width: int = 40) -> str:
    """A constant as text, long integers and fractions in scientific notation."""
    text = str(value)
    if len(text) <= width:
        return text
    return str(value.evalf(3)) if value.is_Rational else f"{text[:width]}..."


def _depth(tree: ast.AST) -> int:
    """Depth of the syntax tree, found without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _digits(value: sp.Rational) -> int:
    """An upper bound on the decimal digits of numerator or denominator."""
    return max(abs(value.p).bit_length(), value.q.bit_length()) * 3 // 10 + 1


def _largest_digits(value: sp.Expr) -> int:
    return max((_digits(r) for r in value.atoms(sp.Rational)), default=0)


_NOT_FINITE = (sp.nan, sp.zoo, sp.oo, -sp.oo)


class _Builder:
    def __init__(self, text, symbols, functions, key, algebraic=False, rounded_decimals=False):
        self.text, self.symbols, self.functions, self.key = text, symbols, functions, key
        self.algebraic, self.rounded_decimals = algebraic, rounded_decimals
        self.angle = 0  # > 0 inside the argument of sin/cos/tan

    def fail(self, node: ast.AST, what: str) -> InputError:
        col = getattr(node, "col_offset", 0) + 1
        return InputError(f"{what} at column {col} in {self.text!r}", key=self.key)

    def build(self, node: ast.AST) -> sp.Expr:
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            operand = self.build(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self.build(node.left), self.build(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise self.fail(node, "division by zero")
            return self.bounded(node, _BINARY[type(node.op)](left, right))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            base, exponent = self.build(node.left), self.build(node.right)
            if exponent.is_number and abs(exponent) > MAX_EXPONENT:
                raise self.fail(node, f"exponent larger than {MAX_EXPONENT}")
            if self.algebraic and not (base.has(sp.Float) or exponent.has(sp.Float)):
                self.check_exponent(node, exponent)
            if base == 0 and exponent.is_number and exponent.is_negative:
                raise self.fail(node, "division by zero")
            if (base.is_Rational and exponent.is_number
                    and _digits(base) * abs(exponent) > MAX_DIGITS):
                raise self.fail(node, f"number with more than {MAX_DIGITS} digits")
            if (exponent.is_number and not exponent.is_Integer
                    and _largest_digits(base) > MAX_ROOT_DIGITS):
                raise self.fail(node, f"root of a number with more than {MAX_ROOT_DIGITS} digits")
            power = base**exponent
            if any(p.exp.is_number and abs(p.exp) > MAX_EXPONENT for p in power.atoms(sp.Pow)):
                raise self.fail(node, f"exponent larger than {MAX_EXPONENT}")  # (2*x**a)**b
            return self.bounded(node, power)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(node, f"unsupported syntax {type(node).__name__!r}")

    def bounded(self, node: ast.AST, value: sp.Expr) -> sp.Expr:
        if value.is_Rational and _digits(value) > MAX_DIGITS:
            raise self.fail(node, f"number with more than {MAX_DIGITS} digits")
        return value

    def number(self, node: ast.Constant) -> sp.Expr:
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise self.fail(node, f"unsupported constant {node.value!r}")
        if isinstance(node.value, int):
            return sp.Integer(node.value)
        literal = ast.get_source_segment(self.text, node) or repr(node.value)
        _, _, exponent = literal.replace("_", "").lower().partition("e")
        if exponent and abs(int(exponent)) > MAX_DIGITS:
            raise self.fail(node, f"decimal exponent larger than {MAX_DIGITS}")
        if self.rounded_decimals:  # a rounded number, with the precision of its digits
            return sp.Float(literal.replace("_", ""))
        return sp.Rational(literal.replace("_", ""))  # the decimal the user wrote, exactly

    def name(self, node: ast.Name) -> sp.Expr:
        if node.id in self.symbols:
            return self.symbols[node.id]
        if node.id in CONSTANTS:
            if self.algebraic and not self.angle:
                raise self.fail(node, f"{node.id} is allowed in a tableau entry only inside "
                                      f"{', '.join(TRIGONOMETRIC)} (an entry must be an "
                                      "algebraic number for exact verdicts)")
            return CONSTANTS[node.id]
        known = sorted(self.symbols) + sorted(CONSTANTS)
        raise self.fail(node, f"unknown name {node.id!r} (known: {', '.join(known)})")

    def call(self, node: ast.Call) -> sp.Expr:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in self.functions:
            shown = name if name else ast.get_source_segment(self.text, node.func)
            allowed = ", ".join(sorted(self.functions))
            raise self.fail(node, f"unknown function {shown!r} (allowed: {allowed})")
        if node.keywords or len(node.args) != 1:
            raise self.fail(node, f"{name}() takes exactly one argument")
        self.angle += name in TRIGONOMETRIC
        try:
            argument = self.build(node.args[0])
        finally:
            self.angle -= name in TRIGONOMETRIC
        if self.algebraic and name in TRIGONOMETRIC and not argument.has(sp.Float):
            self.check_angle(node, name, argument)
        if _largest_digits(argument) > MAX_ROOT_DIGITS:
            raise self.fail(node, f"{name}() of a number with more than {MAX_ROOT_DIGITS} digits")
        value = self.functions[name](argument)
        if value.has(*_NOT_FINITE):
            raise self.fail(node, f"{name}() is not finite here ({value})")
        return value

    def check_exponent(self, node: ast.AST, exponent: sp.Expr) -> None:
        """An exact tableau entry: a rational exponent with a small root degree."""
        if not exponent.is_Rational:
            raise self.fail(node, f"exponent {exponent} is not a rational number (an exact "
                                  "entry must be an algebraic number)")
        if exponent.q > MAX_ROOT_DEGREE:
            raise self.fail(node, f"root of degree {exponent.q} in exponent {exponent} (at "
                                  f"most {MAX_ROOT_DEGREE} in a tableau entry)")

    def check_angle(self, node: ast.AST, name: str, argument: sp.Expr) -> None:
        """An exact tableau entry: sin/cos/tan of r·π with r rational and a small denominator."""
        ratio = argument / sp.pi
        if not ratio.is_Rational:
            raise self.fail(node, f"{name}({argument}) in an exact entry: the argument must be "
                                  f"a rational multiple of pi such as pi/18 ({name} of any other "
                                  "number is transcendental, so no exact verdict is possible; "
                                  "write the value as a decimal to have it judged rounded)")
        if ratio.q > MAX_PI_DENOMINATOR:
            raise self.fail(node, f"{name}({argument}): denominator {ratio.q} of the multiple of "
                                  f"pi is above {MAX_PI_DENOMINATOR} (the exact value would need "
                                  "a number field too large for exact verdicts)")
