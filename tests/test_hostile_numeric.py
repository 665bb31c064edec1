"""Hostile numbers: non-finite and complex input is refused at load (exit 2, file and key
named)."""

import importlib.util
import math

import pytest

from ocgen.cli import main
from ocgen.errors import InputError
from ocgen.problem import OptimalControlProblem, load_problem

HAS_CASADI = importlib.util.find_spec("casadi") is not None
BACKENDS = ["numpy", pytest.param("casadi", marks=pytest.mark.skipif(
    not HAS_CASADI, reason="casadi not installed"))]

# Hager's LQ problem (MATH.md 5); each case below changes one key.
LQ = {"states": '["y"]', "controls": '["u"]', "horizon": "[0, 1]", "initial_state": "[1]",
      "dynamics": '["y/2 + u"]', "running_cost": '"(u**2 + 2*y**2)/2"'}


def problem_file(tmp_path, name="case", bounds=None, **changes) -> str:
    """A problem file: LQ with ``changes`` (a value None drops the key) and ``bounds``."""
    keys = {**LQ, **changes}
    text = "\n".join(f"{k} = {v}" for k, v in keys.items() if v is not None)
    if bounds:
        text += "\n[bounds]\n" + "\n".join(f"{k} = {v}" for k, v in bounds.items())
    path = tmp_path / f"{name}.toml"
    path.write_text(text + "\n")
    return str(path)


def tableau_file(tmp_path, A: str, b: str, name="odd") -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\nA = {A}\nb = {b}\n')
    return str(path)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def assert_one_error_line(err: str, *parts: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocgen: error:"), err
    for part in parts:
        assert part in lines[0], (part, err)


# -- item 7: refused at load -------------------------------------------------------------------
REFUSED = [
    ({"bounds": {"u": '["inf", "inf"]'}}, "bounds.u"),
    ({"bounds": {"u": '["-inf", "-inf"]'}}, "bounds.u"),
    ({"horizon": '[0, "1e400"]'}, "horizon[1]"),
    ({"horizon": '["-1e308", "1e308"]'}, "horizon"),  # finite ends, infinite length
    ({"initial_state": '["1e400"]'}, "initial_state[0]"),
    ({"initial_state": '["-exp(1000)"]'}, "initial_state[0]"),
    ({"running_cost": '"log(-1)*u**2"'}, "running_cost"),
    ({"running_cost": '"sqrt(-2)*u**2 + y**2"'}, "running_cost"),
    ({"dynamics": '["y*sqrt(1 - sqrt(5)) + u"]'}, "dynamics[0]"),
    ({"running_cost": '"exp(exp(exp(1000)))*u**2"'}, "running_cost"),
    ({"terminal_cost": '"exp(800)*y"'}, "terminal_cost"),  # e^800 > 1.8e308
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("change,key", REFUSED)
def test_non_finite_and_complex_problem_values_are_refused(tmp_path, capsys, change, key,
                                                           backend):
    path = problem_file(tmp_path, **change)
    code, out, err = run(capsys, "solve", "--tableau", "rk4", "--problem", path, "--steps", 4,
                         "--backend", backend)
    assert code == 2 and out == ""
    assert_one_error_line(err, "case.toml", key)


def test_member_parameters_must_be_finite(tmp_path, capsys):
    path = problem_file(tmp_path, initial_state=None, initial_states="[[1], [2]]",
                        running_cost='"c*u**2 + y**2"')
    with open(path, "a") as f:
        f.write('[member_parameters]\nc = [1, "1e400"]\n')
    code, _, err = run(capsys, "solve", "--tableau", "rk4", "--problem", path, "--steps", 4)
    assert code == 2
    assert_one_error_line(err, "member_parameters.c[1]")


@pytest.mark.parametrize("entry", ["1" + "0" * 400, '"1e400"', '"sqrt(-1)"'])
def test_tableau_entries_must_be_finite_reals(tmp_path, capsys, entry):
    path = tableau_file(tmp_path, f"[[0, 0], [{entry}, 0]]", "[0.5, 0.5]")
    code, _, err = run(capsys, "solve", "--tableau", path, "--problem", "lq", "--steps", 4)
    assert code == 2
    assert_one_error_line(err, "odd.toml", "A[1][0]")


@pytest.mark.parametrize("field,value", [("T", math.inf), ("t0", -math.inf),
                                         ("initial_states", ((math.nan,),))])
def test_python_problems_must_be_finite_too(field, value):
    lq = load_problem("lq")
    values = {f: getattr(lq, f) for f in ("name", "time", "states", "controls", "dynamics",
                                           "running_cost", "terminal_cost", "t0", "T",
                                           "initial_states")}
    with pytest.raises(InputError):
        OptimalControlProblem(**{**values, field: value})
