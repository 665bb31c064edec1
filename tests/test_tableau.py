"""ButcherTableau: validation, file errors, structure, the partner tableau and round trips.

Every expected value is written here from the literature (Butcher 2016; Hairer, Nørsett &
Wanner I; Hairer & Wanner II) or from MATH.md, never pasted from the code's output.
"""

import dataclasses
import json
import sys

import pytest
import sympy as sp
import tomli_w

from ocgen.errors import InputError
from ocgen.tableau import (ButcherTableau, ZeroWeightError, builtin_tableau, close_names,
                           load_tableau)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

R = sp.Rational
S3 = sp.sqrt(3)


def M(rows):
    return sp.ImmutableMatrix(rows)


def V(values):
    return sp.ImmutableMatrix(values)


# -- methods from the literature -------------------------------------------------------------
def rk4():
    """Kutta (1901), the classical fourth-order method."""
    return ButcherTableau("RK4", A=[[0, 0, 0, 0], [R(1, 2), 0, 0, 0], [0, R(1, 2), 0, 0],
                                    [0, 0, 1, 0]],
                          b=[R(1, 6), R(1, 3), R(1, 3), R(1, 6)])


def gauss2():
    """Gauss–Legendre, s = 2 (Hairer & Wanner II, Table IV.5.1)."""
    return ButcherTableau("Gauss 2", A=[[R(1, 4), R(1, 4) - S3 / 6], [R(1, 4) + S3 / 6, R(1, 4)]],
                          b=[R(1, 2), R(1, 2)], c=[R(1, 2) - S3 / 6, R(1, 2) + S3 / 6])


def lobatto_iiia3():
    """Lobatto IIIA, s = 3 (Hairer & Wanner II, Table IV.5.7)."""
    return ButcherTableau("Lobatto IIIA 3",
                          A=[[0, 0, 0],
                             [R(5, 24), R(1, 3), R(-1, 24)],
                             [R(1, 6), R(2, 3), R(1, 6)]],
                          b=[R(1, 6), R(2, 3), R(1, 6)], c=[0, R(1, 2), 1])


def lobatto_iiib3():
    """Lobatto IIIB, s = 3 (Hairer & Wanner II, Table IV.5.9)."""
    return ButcherTableau("Lobatto IIIB 3",
                          A=[[R(1, 6), R(-1, 6), 0], [R(1, 6), R(1, 3), 0], [R(1, 6), R(5, 6), 0]],
                          b=[R(1, 6), R(2, 3), R(1, 6)], c=[0, R(1, 2), 1])


def explicit_midpoint():
    return ButcherTableau("explicit midpoint", A=[[0, 0], [R(1, 2), 0]], b=[0, 1])


def heun3():
    """Heun's third-order method: b = (1/4, 0, 3/4)."""
    return ButcherTableau("Heun 3", A=[[0, 0, 0], [R(1, 3), 0, 0], [0, R(2, 3), 0]],
                          b=[R(1, 4), 0, R(3, 4)])


def kutta3():
    return ButcherTableau("Kutta 3", A=[[0, 0, 0], [R(1, 2), 0, 0], [-1, 2, 0]],
                          b=[R(1, 6), R(2, 3), R(1, 6)])


def sdirk2_order3():
    """Crouzeix's two-stage SDIRK of order 3, γ = (3 + √3)/6 (Hairer & Wanner II, IV.6)."""
    g = (3 + S3) / 6
    return ButcherTableau("SDIRK 2 order 3", A=[[g, 0], [1 - 2 * g, g]], b=[R(1, 2), R(1, 2)])


def exactly_equal(X, Y) -> bool:
    """Entry by entry, the difference simplifies to exactly 0 (no floats involved)."""
    X, Y = sp.ImmutableMatrix(X), sp.ImmutableMatrix(Y)
    assert X.shape == Y.shape
    assert not X.has(sp.Float) and not Y.has(sp.Float)
    return all(sp.simplify(sp.radsimp(u - v)) == 0 for u, v in zip(X, Y))


# -- construction validation -----------------------------------------------------------------
def test_non_square_A():
    with pytest.raises(InputError) as info:
        ButcherTableau("bad", A=[[0, 0]], b=[1])
    assert info.value.key == "A"
    assert "square" in str(info.value) and "1×2" in str(info.value)


def test_empty_A():
    with pytest.raises(InputError, match="non-empty square"):
        ButcherTableau("bad", A=[], b=[])


@pytest.mark.parametrize("shape, key, message", [
    ({"A": [[0, 0]], "b": [1]}, "A", "A must be a non-empty square matrix, found 1×2"),
    ({"A": [[0]], "b": [1, 0]}, "b", "b must have 1 entries (one per stage), found 2"),
    ({"A": [[0]], "b": [1], "c": [0, 1]}, "c", "c must have 1 entries (one per stage), found 2"),
], ids=["A", "b", "c"])
def test_shape_errors_name_file_and_key(shape, key, message):
    with pytest.raises(InputError) as info:
        ButcherTableau("bad", **shape, source="method.toml")
    assert str(info.value) == f"method.toml: {key}: {message}"


@pytest.mark.parametrize("b", [[1], [R(1, 3)] * 3])
def test_wrong_b_length(b):
    with pytest.raises(InputError) as info:
        ButcherTableau("bad", A=[[0, 0], [1, 0]], b=b)
    assert info.value.key == "b"
    assert "b must have 2 entries" in str(info.value) and f"found {len(b)}" in str(info.value)


def test_wrong_c_length():
    with pytest.raises(InputError) as info:
        ButcherTableau("bad", A=[[0, 0], [1, 0]], b=[R(1, 2), R(1, 2)], c=[0, 1, 2])
    assert info.value.key == "c"


def test_c_must_equal_row_sums():
    with pytest.raises(InputError) as info:
        ButcherTableau("bad", A=[[0, 0], [R(1, 2), 0]], b=[0, 1], c=[0, R(1, 3)])
    assert info.value.key == "c[1]"
    assert str(info.value).startswith("c[1]: ")
    assert "row sum" in str(info.value)


def test_c_defaults_to_row_sums_and_exact_surds_are_accepted():
    assert rk4().c == V([0, R(1, 2), R(1, 2), 1])
    assert gauss2().c == V([R(1, 2) - S3 / 6, R(1, 2) + S3 / 6])
    assert sdirk2_order3().c == V([(3 + S3) / 6, (3 - S3) / 6])


def test_c_with_floats_is_checked_with_tolerance():
    ButcherTableau("ok", A=[[0, 0], [2 / 3, 0]], b=[0.25, 0.75], c=[0, 0.6666666666666666])
    with pytest.raises(InputError) as info:
        ButcherTableau("bad", A=[[0, 0], [2 / 3, 0]], b=[0.25, 0.75], c=[0, 0.6667])
    assert info.value.key == "c[1]"


@pytest.mark.parametrize("A10, c1, exact_decimals, message", [
    ("1/2", "1/3", False, "c[1] = 1/3 differs from the row sum of A[1], 1/2, by -0.2"),
    # τ = 10^(2−15) for 15-digit floats, times |c_1| + Σ_j |a_1j| = 1.01
    ("0.5", "0.51", False, "c[1] = 0.51 differs from the row sum of A[1], 0.5, by 0.01, "
                           "more than 1e-13 allowed for 15-digit entries"),
    # the digits are the most precise entry's, in A or in c
    ("0.3334", "0.333333333333333333333333333333", False,
     "c[1] = 0.333333333333333333333333333333 differs from the row sum of A[1], 0.3334, by "
     "-7e-05, more than 7e-29 allowed for 30-digit entries"),
    ("0.333333333333333333333333333333", "0.3334", False,
     "c[1] = 0.3334 differs from the row sum of A[1], 0.333333333333333333333333333333, by "
     "7e-05, more than 7e-29 allowed for 30-digit entries"),
    # 1/3 against 7 digits: the residual 3e-8 is tiny against the entries
    ("0.3333333", "1/3", False, "c[1] = 1/3 differs from the row sum of A[1], 0.3333333, by "
                                "3e-08, more than 7e-14 allowed for 15-digit entries: the "
                                "coefficients look rounded to 7 digits"),
    ("0.3333333", "1/3", True, "c[1] = 1/3 differs from the row sum of A[1], 3333333/10000000, "
                               "by 3e-08: the coefficients look rounded to 7 digits (decimals "
                               "are judged as rounded numbers unless --exact-decimals is given)"),
    ("1/3", "0.3333333", True, "c[1] = 3333333/10000000 differs from the row sum of A[1], 1/3, "
                               "by -3e-08: the coefficients look rounded to 7 digits (decimals "
                               "are judged as rounded numbers unless --exact-decimals is given)"),
], ids=["exact", "rounded", "precise-c", "precise-A", "look-rounded", "exact-decimals",
        "exact-decimal-c"])
def test_row_sum_messages(A10, c1, exact_decimals, message):
    data = {"A": [[0, 0], [A10, 0]], "b": [0.25, 0.75], "c": [0, c1]}
    with pytest.raises(InputError) as info:
        ButcherTableau.from_dict(data, source="m.toml", exact_decimals=exact_decimals)
    assert str(info.value) == f"m.toml: c[1]: {message}"


def test_rounded_A_with_exact_c_is_checked_with_tolerance():
    """A rounded to 16 digits and c = 1/3 exactly: consistent within τ (c is kept exact)."""
    tableau = ButcherTableau.from_dict({"A": [[0, 0], ["0.3333333333333333", 0]],
                                        "b": [0.25, 0.75], "c": [0, "1/3"]})
    assert tableau.tolerance > 0 and tableau.c[1] == R(1, 3)


def test_default_name_is_the_file_stem():
    assert ButcherTableau.from_dict({"A": [[0]], "b": [1]}, source="dir/my_method.toml").name \
        == "my_method"
    assert ButcherTableau.from_dict({"A": [[0]], "b": [1]}).name == "custom"


@pytest.mark.parametrize("texts, message", [
    ({"name": ""}, "name: expected a non-empty string, found ''"),
    ({"name": "a\nb"}, "name: character 1 is '\\n', which is not printable text"),
    ({"aliases": ("x", "y\x1b[31m")},
     "aliases[1]: character 1 is '\\x1b', which is not printable text"),
    ({"citation": "bad\x1b[2J"}, "citation: character 3 is '\\x1b', which is not printable text"),
    ({"control_order_source": "\x07"},
     "control_order_source: character 0 is '\\x07', which is not printable text"),
], ids=["empty name", "name with a newline", "alias with an escape", "citation with an escape",
        "source with a bell"])
def test_texts_must_be_printable(texts, message):
    """Names, aliases, citations and sources reach terminals and generated docstrings."""
    with pytest.raises(InputError) as info:
        ButcherTableau(**{"name": "ok", **texts}, A=[[0]], b=[1], source="m.toml")
    assert str(info.value) == f"m.toml: {message}"


def test_citations_and_sources_may_span_lines():
    tableau = ButcherTableau("ok", A=[[0]], b=[1], citation="Line one\nline two",
                             order_source="Theorem 1\nof the paper",
                             control_order_source="Table 2\n(corrected)")
    assert tableau.citation.splitlines() == ["Line one", "line two"]
    assert tableau.order_source.endswith("\nof the paper")
    assert tableau.aliases == () and isinstance(ButcherTableau("a", A=[[0]], b=[1],
                                                               aliases=["x"]).aliases, tuple)


def test_orders_may_be_zero_and_sources_are_kept():
    tableau = ButcherTableau.from_dict({"A": [[0]], "b": [1], "order": 0, "control_order": 0,
                                        "order_source": "HNW I", "control_order_source": ""})
    assert (tableau.literature_order, tableau.literature_control_order) == (0, 0)
    assert (tableau.order_source, tableau.control_order_source) == ("HNW I", "")


def test_too_many_stages_names_file_and_key():
    s = 33
    with pytest.raises(InputError) as info:
        ButcherTableau.from_dict({"A": [[0] * s] * s, "b": [1] + [0] * (s - 1)}, source="m.toml")
    assert str(info.value) == "m.toml: A: 33 stages, more than the limit of 32"


def test_tableau_is_immutable():
    t = rk4()
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.name = "other"
    assert isinstance(t.A, sp.ImmutableMatrix)


# -- malformed files: TOML and JSON alike ----------------------------------------------------
GOOD = {"name": "Heun 2", "A": [[0, 0], [1, 0]], "b": ["1/2", "1/2"]}


def with_(**changes):
    data = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return data


def as_toml(data) -> str:
    return tomli_w.dumps(data)


def as_json(data) -> str:
    return json.dumps(data)  # writes float('nan') as NaN, as a user's tool would


STRUCTURED = {
    # case: (data, key named in the message, words in the message)
    "ragged A": (with_(A=[[0, 0], [1]]), "A[1]", "row 1 has 1 entries, expected 2"),
    "too many rows": (with_(A=[[0, 0], [1, 0], [0, 0]]), "A[0]", "expected 3"),
    "b too long": (with_(b=["1/3", "1/3", "1/3"]), "b", "b must have 2 entries"),
    "c too short": (with_(c=[0]), "c", "c must have 2 entries"),
    "c not row sums": (with_(c=[0, "1/2"]), "c[1]", "row sum"),
    "unknown function": (with_(A=[[0, 0], ["system(1)", 0]]), "A[1][0]",
                         "unknown function 'system'"),
    "undeclared name": (with_(b=["1/2", "x"]), "b[1]", "unknown name 'x'"),
    "attribute": (with_(b=["(1).real", "1/2"]), "b[0]", "Attribute"),
    "division by zero": (with_(A=[[0, 0], ["1/(1 - 1)", 0]]), "A[1][0]", "division by zero"),
    "huge exponent": (with_(A=[[0, 0], ["10**10**10", 0]]), "A[1][0]", "exponent larger"),
    "complex entry": (with_(A=[[0, 0], ["sqrt(-1)", 0]]), "A[1][0]", "real number"),
    "NaN": (with_(A=[[0, 0], [float("nan"), 0]]), "A[1][0]", "finite"),
    "infinity": (with_(b=["1/2", float("inf")]), "b[1]", "finite"),
    "empty string entry": (with_(b=["1/2", "  "]), "b[1]", "empty expression"),
    "boolean entry": (with_(A=[[0, 0], [True, 0]]), "A[1][0]", "found True"),
    "list entry": (with_(A=[[0, 0], [[1], 0]]), "A[1][0]", "found list"),
    "A as a string": (with_(A="[[0, 0], [1, 0]]"), "A", "list of rows"),
    "A as a flat list": (with_(A=[0, 0, 1, 0]), "A", "list of rows"),
    "A empty": (with_(A=[]), "A", "list of rows"),
    "b as a dict": (with_(b={"b1": "1/2", "b2": "1/2"}), "b", "list of numbers"),
    "b empty": (with_(b=[]), "b", "list of numbers"),
    "order as a string": (with_(order="4"), "order", "non-negative integer"),
    "order negative": (with_(control_order=-1), "control_order", "non-negative integer"),
    "order as a float": (with_(order=2.0), "order", "non-negative integer"),
    "order as a boolean": (with_(order=True), "order", "non-negative integer"),
    "name as a number": (with_(name=2), "name", "non-empty string"),
    "name blank": (with_(name="  "), "name", "non-empty string"),
    "aliases as a string": (with_(aliases="heun"), "aliases", "list of strings"),
    "citation as a list": (with_(citation=["Heun 1900"]), "citation", "a string"),
    "unknown key": (with_(order_of_accuracy=2), "order_of_accuracy", "unknown key"),
    "misspelt key": (with_(B=["1/2", "1/2"]), "B", "unknown key"),
    "missing b": (with_(b=None), None, "missing required key 'b'"),
    "missing A": (with_(A=None), None, "missing required key 'A'"),
    "source as a number": (with_(order_source=3), "order_source", "a string"),
    "c as a string": (with_(c="0, 1"), "c", "list of numbers"),
}
KNOWN_KEYS = ("A, aliases, b, c, citation, control_order, control_order_source, name, order, "
              "order_source")
WHOLE_DETAILS = {  # the message after "file: key: ", where it is the whole point
    "A as a flat list": "expected a non-empty list of rows (list of lists), found [0, 0, 1, 0]",
    "b empty": "expected a non-empty list of numbers, found []",
    "c as a string": "expected a non-empty list of numbers, found '0, 1'",
    "order negative": "expected a non-negative integer, found -1",
    "name blank": "expected a non-empty string, found '  '",
    "aliases as a string": "expected a list of strings, found 'heun'",
    "citation as a list": "expected a string, found ['Heun 1900']",
    "source as a number": "expected a string, found 3",
    "misspelt key": f"unknown key (expected one of: {KNOWN_KEYS})",
}


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@pytest.mark.parametrize("case", list(STRUCTURED))
def test_malformed_file(tmp_path, suffix, case):
    data, key, words = STRUCTURED[case]
    path = tmp_path / f"method{suffix}"
    path.write_text(as_toml(data) if suffix == ".toml" else as_json(data), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_tableau(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    if key is not None:
        assert message.startswith(f"{path}: {key}: "), message
        assert info.value.key == key
    assert words in message, message
    assert info.value.detail == WHOLE_DETAILS.get(case, info.value.detail)
    assert "Traceback" not in message


def test_column_is_named_inside_an_entry(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('A = [[0, 0], ["1 + system(1)", 0]]\nb = ["1/2", "1/2"]\n')
    with pytest.raises(InputError) as info:
        load_tableau(path)
    assert str(info.value).startswith(f"{path}: A[1][0]: unknown function 'system'")
    assert "at column 5" in str(info.value)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_code_in_a_file_is_never_executed(tmp_path, suffix):
    marker = tmp_path / "X"
    entry = f"__import__('os').system('touch {marker}')"
    data = with_(A=[[0, 0], [entry, 0]])
    path = tmp_path / f"evil{suffix}"
    path.write_text(as_toml(data) if suffix == ".toml" else as_json(data), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_tableau(path)
    assert str(info.value).startswith(f"{path}: A[1][0]: unknown function")
    assert not marker.exists()


RAW = {
    # case: (TOML text, JSON text, words in the message)
    "NaN literal": ('A = [[0, 0], [nan, 0]]\nb = [0.5, 0.5]\n',
                    '{"A": [[0, 0], [NaN, 0]], "b": [0.5, 0.5]}', "A[1][0]: "),
    "infinity literal": ('A = [[0, 0], [1, 0]]\nb = [0.5, -inf]\n',
                         '{"A": [[0, 0], [1, 0]], "b": [0.5, -Infinity]}', "b[1]: "),
    "empty file": ("", "", "the file is empty"),
    "blank file": ("  \n\n", " \n", "the file is empty"),
    "syntax error": ('A = [[0, 0], [1, 0]\nb = [0.5, 0.5]\n',
                     '{"A": [[0, 0], [1, 0]],\n "b": [0.5 0.5]}', "line 2"),
    "unclosed string": ('A = [[0, 0], [1, 0]]\nb = ["1/2, "1/2"]\n',
                        '{"A": [[0, 0], [1, 0]],\n "b": ["1/2, 0.5]}', "line 2"),
    "not a table": ('= 1\n', '[[0, 0], [1, 0]]', ""),
}


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@pytest.mark.parametrize("case", list(RAW))
def test_malformed_file_text(tmp_path, suffix, case):
    toml_text, json_text, words = RAW[case]
    path = tmp_path / f"method{suffix}"
    path.write_text(toml_text if suffix == ".toml" else json_text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_tableau(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert words in message, message


def test_syntax_error_positions(tmp_path):
    toml_path, json_path = tmp_path / "m.toml", tmp_path / "m.json"
    toml_path.write_text('name = "x"\nA = [[0, 0], [1, 0]\nb = [0.5, 0.5]\n')
    json_path.write_text('{"A": [[0, 0], [1, 0]],\n "b": [0.5 0.5]}')
    with pytest.raises(InputError, match=r"invalid TOML.*line 3, column 1"):
        load_tableau(toml_path)
    with pytest.raises(InputError, match=r"invalid JSON at line 2 column 12"):
        load_tableau(json_path)


def test_missing_file_and_wrong_suffix(tmp_path):
    for name in ("nowhere.toml", "nowhere.json", "NOWHERE.JSON"):
        missing = tmp_path / name
        with pytest.raises(InputError) as info:
            load_tableau(missing)
        assert str(info.value) == f"{missing}: no such file"
    other = tmp_path / "m.yaml"
    other.write_text("A: [[0]]\n")
    with pytest.raises(InputError, match=r"\.toml or \.json") as info:
        load_tableau(other)
    assert str(other) in str(info.value)


def test_unknown_name_is_an_input_error():
    with pytest.raises(InputError, match="unknown tableau"):
        load_tableau("no such method anywhere")
    with pytest.raises(InputError) as info:
        load_tableau("zzzzzzzzzzzzzzzzzzzz")
    assert str(info.value) == ("unknown tableau 'zzzzzzzzzzzzzzzzzzzz' (see `ocgen tableau "
                               "list`, or give a .toml/.json file)")
    for blank in ("", "   "):
        with pytest.raises(InputError) as info:
            load_tableau(blank)
        assert str(info.value) == ("empty tableau name: give a built-in name (see `ocgen "
                                   "tableau list`) or a .toml/.json file")


def test_exact_decimals_for_a_built_in_name():
    """SSPRK(5,3) is stored to 15 digits (Ruuth 2006): read exactly, 0.377268915331368 is the
    rational it spells."""
    rounded = load_tableau("SSPRK53")
    exact = load_tableau("ssprk53", exact_decimals=True)
    assert not rounded.is_exact and rounded.A[1, 0].is_Float
    assert exact.is_exact and exact.A[1, 0] == R(377268915331368, 10**15)
    assert exact.source == rounded.source and exact.source.endswith(".toml")
    assert not builtin_tableau("SSPRK53").is_exact       # rounded unless asked
    crouzeix = load_tableau("SDIRK 3-stage order 4", exact_decimals=True)
    assert crouzeix.is_exact and crouzeix.source == "crouzeix34.toml"


def test_suggestions_for_unknown_names():
    """The library holds exactly three Gauss methods and ten Lobatto ones; at most five
    names are suggested, those containing the key first, then the closest spellings."""
    assert close_names("gauss") == ["Gauss 1", "Gauss 2", "Gauss 3"]
    assert close_names("") == []
    lobatto = close_names("lobatto")
    assert len(lobatto) == 5 and all("Lobatto" in name for name in lobatto[1:])
    misspelt = close_names("lobatoiiia3")          # no name contains it: spellings only
    assert misspelt[0] == "Lobatto IIIA 3" and len(misspelt) == 5
    assert all(name.startswith("Lobatto III") for name in misspelt)
    # "Radau IIA 3" is also "RadauIIA5" and "Radau5": five distinct tableaux still
    radau = close_names("adauia3")
    assert radau[0] == "Radau IA 3" and len(set(radau)) == 5
    with pytest.raises(InputError, match=r"unknown tableau 'Lobato IIIA 3'; did you mean "
                                         r"Lobatto IIIA 3, "):
        load_tableau("Lobato IIIA 3")


# -- structure -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tableau, kind",
    [
        (ButcherTableau("Euler", A=[[0]], b=[1]), "explicit"),
        (explicit_midpoint(), "explicit"),
        (rk4(), "explicit"),
        (ButcherTableau("backward Euler", A=[[1]], b=[1]), "diagonally implicit"),
        (ButcherTableau("implicit midpoint", A=[[R(1, 2)]], b=[1]), "diagonally implicit"),
        (ButcherTableau("trapezoid", A=[[0, 0], [R(1, 2), R(1, 2)]], b=[R(1, 2), R(1, 2)]),
         "diagonally implicit"),
        (sdirk2_order3(), "diagonally implicit"),
        (gauss2(), "fully implicit"),
        (lobatto_iiia3(), "fully implicit"),
        (lobatto_iiib3(), "fully implicit"),
        (ButcherTableau("Radau IIA 2", A=[[R(5, 12), R(-1, 12)], [R(3, 4), R(1, 4)]],
                        b=[R(3, 4), R(1, 4)]), "fully implicit"),
    ],
    ids=lambda v: v.name if isinstance(v, ButcherTableau) else v,
)
def test_kind(tableau, kind):
    assert tableau.kind == kind
    assert tableau.is_explicit == (kind == "explicit")
    assert tableau.is_diagonally_implicit == (kind == "diagonally implicit")


def test_weights():
    assert explicit_midpoint().zero_weights == (0,)
    assert heun3().zero_weights == (1,)
    assert rk4().zero_weights == () and rk4().weights_positive
    negative = ButcherTableau("neg", A=[[0, 0], [2, 0]], b=[R(5, 4), R(-1, 4)])
    assert negative.negative_weights == (1,) and not negative.weights_positive


def test_written_c_is_kept_for_rounded_A_and_exact_for_exact_A():
    """c as written stays when A is rounded (it agrees with the row sums within τ); with an
    exact A it is the exact row sums, even when written rounded (1/3, not 0.333…)."""
    rounded = ButcherTableau("r", A=[[0, 0], ["0.3333333333333333", 0]], b=[0.25, 0.75],
                             c=[0, "0.333333333333333"])
    assert rounded.c[1] == sp.Float("0.333333333333333", 15) != rounded.A[1, 0]
    exact = ButcherTableau("e", A=[[0, 0], [R(1, 3), 0]], b=[R(1, 4), R(3, 4)],
                           c=[0, "0.333333333333333333333333"])
    assert exact.c[1] == R(1, 3) and exact.is_exact


def test_rounded_entries_within_the_tolerance_count_as_zero():
    """A rounded tableau's entries within τ = 10^(2−d) of zero are zero (ocgen.numbers): the
    rounding residue 1e-20 above the diagonal leaves the midpoint rule explicit, and ±1e-20 in
    b is a zero weight, neither positive nor negative."""
    for residue in (1e-20, -1e-20):
        rounded = ButcherTableau("rounded midpoint", A=[[0.0, residue], [0.5, 0.0]],
                                 b=[residue, 1.0])
        assert rounded.tolerance > 0 and rounded.kind == "explicit"
        assert rounded.zero_weights == (0,) and rounded.negative_weights == ()
    diagonal = ButcherTableau("rounded", A=[[0.5, 1e-20], [0.25, 0.5]], b=[0.5, 0.5])
    assert diagonal.kind == "diagonally implicit"


def test_d_is_A_transpose_b():
    # RK4: d_j = Σ_i b_i a_ij = (1/3·1/2, 1/3·1/2, 1/6·1, 0)
    assert rk4().d == V([R(1, 6), R(1, 6), R(1, 6), 0])


# -- the partner tableau (MATH.md 3.2) -------------------------------------------------------
RK4_PARTNER = [[R(1, 6), R(-2, 3), R(1, 3), R(1, 6)],
               [R(1, 6), R(1, 3), R(-1, 6), R(1, 6)],
               [R(1, 6), R(1, 3), R(1, 3), R(-1, 3)],
               [R(1, 6), R(1, 3), R(1, 3), R(1, 6)]]


def test_rk4_partner_is_the_matrix_of_math_md():
    partner = rk4().partner()
    assert partner.A == M(RK4_PARTNER)
    assert partner.b == rk4().b
    # c̃ = Ã1 = 1 − d/b with d = (1/6, 1/6, 1/6, 0): (0, 1/2, 1/2, 1)
    assert partner.c == V([0, R(1, 2), R(1, 2), 1])
    assert not rk4().is_symplectic


def test_partner_of_partner_is_the_method():
    for method in (rk4(), kutta3(), sdirk2_order3(), lobatto_iiia3()):
        assert exactly_equal(method.partner().partner().A, method.A)


def test_pair_satisfies_the_symplectic_condition():
    # b_i ã_ij + b_j a_ji − b_i b_j = 0 for every i, j
    for method in (rk4(), kutta3(), sdirk2_order3(), lobatto_iiia3()):
        A, At, b, s = method.A, method.partner().A, method.b, method.stages
        for i in range(s):
            for j in range(s):
                assert sp.simplify(b[i] * At[i, j] + b[j] * A[j, i] - b[i] * b[j]) == 0


def test_gauss2_is_symplectic_and_its_own_partner():
    g = gauss2()
    assert g.is_symplectic
    partner = g.partner()
    assert exactly_equal(partner.A, g.A)
    assert exactly_equal(partner.c, g.c)
    assert partner.b == g.b


def test_lobatto_iiia3_and_iiib3_are_partners():
    a, b = lobatto_iiia3(), lobatto_iiib3()
    assert a.partner().A == b.A
    assert b.partner().A == a.A
    assert a.partner().c == b.c == V([0, R(1, 2), 1])
    assert not a.is_symplectic and not b.is_symplectic


def test_sdirk_partner():
    # ã_ij = b_j − b_j a_ji / b_i = 1/2 − a_ji here (b = (1/2, 1/2)), γ = (3 + √3)/6
    g = (3 + S3) / 6
    assert exactly_equal(sdirk2_order3().partner().A,
                         [[R(1, 2) - g, 2 * g - R(1, 2)], [R(1, 2), R(1, 2) - g]])


def test_explicit_midpoint_has_no_partner():
    with pytest.raises(ZeroWeightError) as info:
        explicit_midpoint().partner()
    assert "b_1 = 0" in str(info.value)
    with pytest.raises(ZeroWeightError, match="b_2 = 0"):
        heun3().partner()


def test_float_partner_uses_the_tolerance():
    # Ralston's second-order method in floating point: a21 = 2/3, b = (1/4, 3/4)
    t = ButcherTableau("Ralston 2 (floats)", A=[[0, 0], [2 / 3, 0]], b=[0.25, 0.75])
    assert not t.is_exact and t.tolerance > 0
    p = t.partner()
    # ã = [[b1, b2 − b2 a21 / b1], [b1, b2]] = [[1/4, 3/4 − 2], [1/4, 3/4]]
    expected = [[0.25, -1.25], [0.25, 0.75]]
    for i in range(2):
        for j in range(2):
            assert abs(float(p.A[i, j]) - expected[i][j]) < 1e-12
            assert p.A[i, j].is_Float or p.A[i, j] == 0


# -- presentation and round trips ------------------------------------------------------------
def test_latex():
    text = gauss2().latex()
    assert text.startswith("\\begin{array}{c|cc}")
    assert text.rstrip().endswith("\\end{array}")
    assert "\\hline" in text
    assert "\\sqrt{3}" in text and "\\frac{1}{4}" in text
    assert "\\begin{array}" in rk4().latex()


def test_latex_of_the_explicit_midpoint_rule_whole():
    """The Butcher array as typeset in Butcher (2016), Table 230(I): c | A, a rule, then bᵀ."""
    assert explicit_midpoint().latex() == (
        "\\begin{array}{c|cc}\n"
        "0 & 0 & 0 \\\\\n"
        "\\frac{1}{2} & \\frac{1}{2} & 0 \\\\\n"
        "\\hline\n"
        " & 0 & 1\n"
        "\\end{array}")


def float_tableau():
    return ButcherTableau("floats", A=[[0.1, 0.2], [0.3, 0.4]], b=[0.25, 0.75])


def float_tableau_from_data():
    return ButcherTableau.from_dict({"A": [[0.1, 0.2], [0.3, 0.4]], "b": [0.25, 0.75]})


ROUND_TRIP = [rk4, gauss2, sdirk2_order3, lobatto_iiib3, explicit_midpoint, float_tableau,
              float_tableau_from_data]


def with_metadata(tableau):
    return ButcherTableau(tableau.name, A=tableau.A, b=tableau.b, c=tableau.c,
                          aliases=("alias one", "Alias-2"), citation="A. Author, J. 1 (2000) 1",
                          literature_order=2, literature_control_order=1,
                          order_source="Theorem 1 of the paper", control_order_source="Table 2")


@pytest.mark.parametrize("make", ROUND_TRIP, ids=lambda f: f.__name__)
@pytest.mark.parametrize("via", ["dict", "json", "toml"])
def test_round_trip(make, via):
    for original in (make(), with_metadata(make())):
        if via == "dict":
            data = original.to_dict()
        elif via == "json":
            data = json.loads(original.to_json())
        else:
            data = tomllib.loads(original.to_toml())
        again = ButcherTableau.from_dict(data, source=f"round trip via {via}")
        assert again == original
        assert again.is_exact == original.is_exact
        assert again.A.has(sp.Float) == original.A.has(sp.Float)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_round_trip_through_a_file(tmp_path, suffix):
    for original in (gauss2(), float_tableau(), with_metadata(sdirk2_order3())):
        path = tmp_path / f"m{suffix}"
        path.write_text(original.to_toml() if suffix == ".toml" else original.to_json(),
                        encoding="utf-8")
        assert load_tableau(path) == original


def test_round_trip_keeps_exact_surds_and_floats():
    data = json.loads(gauss2().to_json())
    again = ButcherTableau.from_dict(data)
    assert again.A[0, 1] == R(1, 4) - S3 / 6 and not again.A.has(sp.Float)
    assert again.c[1] == R(1, 2) + S3 / 6
    floats = ButcherTableau.from_dict(json.loads(float_tableau().to_json()))
    assert all(entry.is_Float for entry in floats.A)
    assert [float(entry) for entry in floats.b] == [0.25, 0.75]


def test_to_dict_shape():
    data = with_metadata(rk4()).to_dict()
    assert data["A"][1] == ["1/2", 0, 0, 0]
    assert data["b"] == ["1/6", "1/3", "1/3", "1/6"]
    assert data["c"] == [0, "1/2", "1/2", 1]
    assert data["aliases"] == ["alias one", "Alias-2"]
    assert data["order"] == 2 and data["control_order"] == 1
    assert data["order_source"] == "Theorem 1 of the paper"
    assert data["control_order_source"] == "Table 2"
    assert set(data) == {"name", "aliases", "citation", "order", "control_order", "order_source",
                         "control_order_source", "A", "b", "c"}


def test_rounded_entries_are_floats_only_when_a_float_keeps_their_digits():
    """0.25 is a float exactly; 2/3 to 28 digits is not, so it is written as its decimal text
    (a JSON float would drop 12 of its digits)."""
    long = "0.6666666666666666666666666667"
    tableau = ButcherTableau.from_dict({"A": [[0, 0], [long, 0]], "b": [0.25, 0.75]})
    data = tableau.to_dict()
    assert data["b"] == [0.25, 0.75] and all(type(x) is float for x in data["b"])
    assert data["A"] == [[0, 0], [long, 0]] and data["c"] == [0, long]
    again = ButcherTableau.from_dict(json.loads(tableau.to_json()))
    assert again == tableau and again.A[1, 0] == sp.Float(long, 28)


def test_json_text_is_indented_and_keeps_unicode():
    text = ButcherTableau("Störmer–Verlet stage", A=[[0]], b=[1]).to_json()
    assert '"name": "Störmer–Verlet stage"' in text
    lines = text.splitlines()
    assert lines[0] == "{" and lines[1].startswith('  "name"') and lines[-1] == "}"
