"""The whitelisting expression parser: exact values in, InputError (key + column) for the rest.

Expected values are built with SymPy directly in each test, never by calling the parser.
"""

import builtins
import signal
from decimal import Decimal

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ocgen.errors import InputError
from ocgen.expr import parse_expression, parse_number
from ocgen.numbers import digits, exact_decimal

x, y, a = sp.symbols("x y a")
SYMBOLS = {"x": x, "a": a}
KEY = "A[1][0]"


def rejected(value, symbols=None, *, parser=None) -> str:
    """The message of the InputError raised for ``value``; it always names KEY."""
    with pytest.raises(InputError) as info:
        if parser is None:
            parse_expression(value, SYMBOLS if symbols is None else symbols, key=KEY)
        else:
            parser(value, key=KEY)
    message = str(info.value)
    assert info.value.key == KEY
    assert message.startswith(f"{KEY}: "), message
    return message


# -- accepted input, exact values ------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("3", sp.Integer(3)),
        ("-7", sp.Integer(-7)),
        ("+5", sp.Integer(5)),
        ("- -3", sp.Integer(3)),
        ("0.1", sp.Rational(1, 10)),
        ("-2.50", sp.Rational(-5, 2)),
        (".25", sp.Rational(1, 4)),
        ("1e-3", sp.Rational(1, 1000)),
        ("1.5e3", sp.Integer(1500)),
        ("1_000.5", sp.Rational(2001, 2)),
        ("0.1 + 0.2", sp.Rational(3, 10)),
        ("1/3", sp.Rational(1, 3)),
        ("-2/6", sp.Rational(-1, 3)),
        ("(1 + 2) * 3 - 4 / 8", sp.Rational(17, 2)),
        ("2**-2", sp.Rational(1, 4)),
        ("-(1/2)**2", sp.Rational(-1, 4)),
        ("(-1/2)**2", sp.Rational(1, 4)),
        ("2**(1/2)", sp.sqrt(2)),
        ("sqrt(3)/6", sp.sqrt(3) / 6),
        ("1/2 + sqrt(3)/6", sp.Rational(1, 2) + sp.sqrt(3) / 6),
        ("(3 - sqrt(3))/6", (3 - sp.sqrt(3)) / 6),
        ("sqrt(2)*sqrt(2)", sp.Integer(2)),
        ("2*pi", 2 * sp.pi),
        ("E**2", sp.E**2),
    ],
)
def test_numbers_parse_exactly(text, expected):
    value = parse_expression(text, key=KEY)
    assert value == expected
    assert not value.has(sp.Float), "a decimal in text must become an exact rational"


def test_decimal_is_exact_on_request_not_binary_float():
    value = parse_number("0.1", exact_decimals=True)
    assert value == sp.Rational(1, 10)
    assert value.is_Rational
    assert value != sp.Float(0.1)
    assert parse_number(0.1, exact_decimals=True) == sp.Rational(1, 10)  # the float's decimal


def test_decimal_in_a_tableau_entry_is_rounded_with_the_digits_given():
    value = parse_number("0.822875655532364")  # 15 significant digits
    assert value.is_Float and digits(value) == 15
    assert exact_decimal(value) == sp.Rational(822875655532364, 10**15)
    long = parse_number("0.82287565553236440000001")  # 23 digits are kept
    assert digits(long) == 23 and exact_decimal(long) == sp.Rational("0.82287565553236440000001")
    assert digits(parse_number("0.5")) == 15  # never fewer digits than a double holds
    assert parse_number("sqrt(2)*0.5").is_Float  # an entry with a decimal is rounded


def test_python_numbers():
    assert parse_number(3) == sp.Integer(3) and parse_number(3).is_Integer
    half = parse_number(0.5)
    assert half.is_Float and float(half) == 0.5
    tenth = parse_number(0.1)  # a float the user gave stays a float
    assert tenth.is_Float and float(tenth) == 0.1


def test_declared_symbols_and_allowed_functions():
    value = parse_expression("a*x**2 + sin(x) - exp(-x)/2 + log(a) * cos(x)", SYMBOLS, key=KEY)
    assert value == a * x**2 + sp.sin(x) - sp.exp(-x) / 2 + sp.log(a) * sp.cos(x)
    value = parse_expression("tanh(x) + atan(x) + sinh(x) + cosh(x) + tan(x) + sqrt(x)", SYMBOLS)
    assert value == sp.tanh(x) + sp.atan(x) + sp.sinh(x) + sp.cosh(x) + sp.tan(x) + sp.sqrt(x)


def test_tableau_context_allows_algebraic_constants():
    assert parse_number("sqrt(2)") == sp.sqrt(2)
    gamma = sp.Rational(1, 2) + sp.cos(sp.pi / 18) / sp.sqrt(3)
    assert parse_number("1/2 + cos(pi/18)/sqrt(3)") == gamma
    assert parse_number("cbrt(-2)") == -sp.Integer(2) ** sp.Rational(1, 3)  # the real root
    assert parse_number("4**(3/2)") == 8 and parse_number("tan(pi/3)") == sp.sqrt(3)
    message = rejected("log(2)", parser=parse_number)
    assert "unknown function 'log'" in message and "column 1" in message


@pytest.mark.parametrize(
    "text, column, words",
    [
        ("cos(1)", 1, "rational multiple of pi"),
        ("1 + sin(2*sqrt(2)*pi)", 5, "transcendental"),
        ("pi/4", 1, "only inside sin, cos, tan"),
        ("sqrt(pi)", 6, "only inside sin, cos, tan"),
        ("cos(pi/100)", 1, "denominator 100"),
        ("2**(1/1000)", 1, "root of degree 1000"),
        ("2**sqrt(2)", 1, "not a rational number"),
        ("2**(-70)", 1, "exponent larger than 64"),
    ],
)
def test_tableau_context_refuses_non_algebraic_entries(text, column, words):
    message = rejected(text, parser=parse_number)
    assert words in message and f"column {column}" in message


# -- rejected input: InputError naming key and column --------------------------------------
@pytest.mark.parametrize(
    "text, column, words",
    [
        # unknown functions, including the ones that would run code
        ("system(1)", 1, "unknown function 'system'"),
        ("1 + system(1)", 5, "unknown function 'system'"),
        ("open('f', 'w')", 1, "unknown function 'open'"),
        ("eval('1')", 1, "unknown function 'eval'"),
        ("os.system('ls')", 1, "unknown function 'os.system'"),
        ("__import__('os').system('ls')", 1, "unknown function"),
        ("sqrt(x)(1)", 1, "unknown function"),
        ("x(1)", 1, "unknown function 'x'"),
        # wrong calls of allowed functions
        ("sqrt()", 1, "exactly one argument"),
        ("sqrt(1, 2)", 1, "exactly one argument"),
        ("sqrt(x=1)", 1, "exactly one argument"),
        # attribute access, lambda, subscripts, comparisons and other syntax
        ("x.real", 1, "Attribute"),
        ("2 * x.__class__", 5, "Attribute"),
        ("lambda: 1", 1, "Lambda"),
        ("(lambda: 1)()", 1, "unknown function"),
        ("x[0]", 1, "Subscript"),
        ("2 + x[0]", 5, "Subscript"),
        ("1 < 2", 1, "Compare"),
        ("x == x", 1, "Compare"),
        ("1 if x else 2", 1, "IfExp"),
        ("[1, 2]", 1, "List"),
        ("{1: 2}", 1, "Dict"),
        ("(1, 2)", 1, "Tuple"),
        ("not x", 1, "UnaryOp"),
        ("~x", 1, "UnaryOp"),
        ("x and a", 1, "BoolOp"),
        ("7 // 2", 1, "BinOp"),
        ("7 % 2", 1, "BinOp"),
        ("f'{x}'", 1, "JoinedStr"),
        # constants that are not numbers
        ("'abc'", 1, "unsupported constant 'abc'"),
        ("1 + 'a'", 5, "unsupported constant 'a'"),
        ("True", 1, "unsupported constant True"),
        ("None", 1, "unsupported constant None"),
        ("1j", 1, "unsupported constant 1j"),
        ("...", 1, "unsupported constant Ellipsis"),
        # names that are not declared (nan/inf are not numbers here)
        ("y", 1, "unknown name 'y'"),
        ("x + y", 5, "unknown name 'y'"),
        ("nan", 1, "unknown name 'nan'"),
        ("inf", 1, "unknown name 'inf'"),
        ("__builtins__", 1, "unknown name '__builtins__'"),
        # division by zero
        ("1/0", 1, "division by zero"),
        ("1 + 1/(2 - 2)", 5, "division by zero"),
        ("x/(x - x)", 1, "division by zero"),
        ("0**-1", 1, "division by zero"),
        ("0.0**(-1/2)", 1, "division by zero"),
        # non-finite function values
        ("log(0)", 1, "not finite"),
        ("2 * tan(pi/2)", 5, "not finite"),
        # huge numbers
        ("10**10**10", 1, "exponent larger than"),
        ("x**65", 1, "exponent larger than"),
        ("(x**64)**64", 1, "exponent larger than"),
        ("(2*(1 + sqrt(2))**64)**64", 1, "exponent larger than"),
        ("((10**64)**64)**64", 2, "more than"),
        ("(((10**64)**64)**64)**64", 3, "more than"),
        ("1e999999999", 1, "exponent larger than"),
        ("1e-999999999", 1, "exponent larger than"),
        ("sqrt(x*(1e3999 + 1))", 1, "more than"),
        ("(1e3999 + 1)**(1/2)", 1, "more than"),
    ],
)
def test_rejected_with_key_and_column(text, column, words):
    message = rejected(text)
    assert f"column {column} " in message, message
    assert words in message, message
    assert repr(text) in message, "the message quotes the offending text"


@pytest.mark.parametrize("text", ["1 2", "x = 1", "import os", "1;2", "(1", "sqrt("])
def test_syntax_errors(text):
    message = rejected(text)
    assert "syntax error at column" in message


def test_syntax_error_at_the_end():
    assert "syntax error at the end" in rejected("1 +")


def test_unclosed_parenthesis_is_named():
    assert "column 5" in rejected("sqrt(") and "never closed" in rejected("sqrt(")


def test_code_is_never_executed(tmp_path):
    marker = tmp_path / "X"
    attempts = [
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        f"exec(\"open('{marker}', 'w')\")",
        f"(lambda: __import__('os').system('touch {marker}'))()",
        f"[c for c in ().__class__.__base__.__subclasses__()][0]('touch {marker}')",
        f"x.__class__.__init__.__globals__['os'].system('touch {marker}')",
    ]
    for text in attempts:
        message = rejected(text)
        assert "column 1 " in message, message
    assert not marker.exists()


@pytest.mark.parametrize(
    "text", ["10**10**10", "9**9**9**9", "(((10**64)**64)**64)**64", "1e999999999",
             "sqrt(1e3999 + 1) + sqrt(1e3999 + 3)", "-" * 1999 + "1", "1+" * 999 + "1"])
def test_hostile_sizes_are_rejected_without_computing(text):
    # the guard only stops a hang (e.g. evaluating 10**10**10); it is not a timing
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail(f"{text[:30]!r} was being computed"))
    signal.alarm(60)
    try:
        rejected(text)
    finally:
        signal.alarm(0)


def test_too_long_and_too_deep():
    assert "longer than" in rejected("1+" * 1001 + "1")
    assert "nested" in rejected("-" * 1999 + "1")
    message = rejected("(" * 300 + "1" + ")" * 300)  # Python's own parser stops at 200
    assert "nested" in message or "syntax error" in message


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats(value):
    assert "finite" in rejected(value)


@pytest.mark.parametrize("value", [True, False])
def test_booleans(value):
    assert "expected a number or an expression string" in rejected(value)


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_empty_strings(value):
    assert "empty expression" in rejected(value)


@pytest.mark.parametrize("value, kind", [([1], "list"), ({"a": 1}, "dict"), (None, "NoneType"),
                                         ((1, 2), "tuple"), (b"1", "bytes")])
def test_values_of_other_types(value, kind):
    assert f"found {kind}" in rejected(value)


@pytest.mark.parametrize("text", ["sqrt(-1)", "(-2)**(1/3)", "sqrt(-3)/6"])
def test_tableau_entries_must_be_real(text):
    assert "expected a real number" in rejected(text, parser=parse_number)


# -- properties ------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(p=st.integers(-10**12, 10**12), q=st.integers(1, 10**12),
       form=st.sampled_from(["{p}/{q}", "({p}) / ({q})", "{p} * {q}**-1", "-(-{p}/{q})"]))
def test_rationals_round_trip(p, q, form):
    text = form.format(p=p, q=q)
    assert parse_number(text) == sp.Rational(p, q)


@settings(max_examples=200, deadline=None)
@given(mantissa=st.integers(-10**9, 10**9), shift=st.integers(-30, 30))
def test_decimals_round_trip(mantissa, shift):
    text = format(Decimal(mantissa).scaleb(shift), "f")  # e.g. "-1234.5678"
    expected = sp.Rational(mantissa) * sp.Rational(10) ** shift
    assert parse_number(text, exact_decimals=True) == expected
    assert parse_number(f"{mantissa}e{shift}", exact_decimals=True) == expected
    assert exact_decimal(parse_number(text)) == expected  # the rounded entry keeps its decimal
    assert exact_decimal(parse_number(f"{mantissa}e{shift}")) == expected


TOKENS = ["0", "1", "2", "9", "10", "64", "0.5", "1e5", ".", "e", "_", "+", "-", "*", "/", "**",
          "(", ")", "[", "]", "{", "}", ",", ":", "'", '"', " ", "=", "<", "!", "@", "%", "~",
          "x", "a", "y", "sqrt", "sin", "log", "pi", "E", "True", "None", "nan", "lambda",
          "__import__", "'os'", "system", "os", "__class__", "if", "else", "for", "in", "not"]


def _forbidden(*args, **kwargs):
    raise AssertionError("the parser must never evaluate or execute text")


def _check_only_input_errors(text):
    real_eval, real_exec = builtins.eval, builtins.exec
    builtins.eval, builtins.exec = _forbidden, _forbidden
    try:
        try:
            value = parse_expression(text, SYMBOLS, key="k")
        except InputError as err:
            assert str(err).startswith("k: ")
        else:
            assert isinstance(value, sp.Basic)
        try:
            number = parse_number(text, key="k")
        except InputError:
            pass
        else:
            assert number.is_real and not number.free_symbols
    finally:
        builtins.eval, builtins.exec = real_eval, real_exec


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map("".join))
def test_token_soup_only_ever_raises_input_error(text):
    _check_only_input_errors(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.eE+-*/() xa_[]'", max_size=30))
def test_character_soup_only_ever_raises_input_error(text):
    _check_only_input_errors(text)
