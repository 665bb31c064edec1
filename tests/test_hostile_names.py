"""Hostile and colliding names: user text never becomes code, and a user's symbol names never
change what is derived (issue: code execution through names, wrong answers from collisions)."""

import ast
import contextlib
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ocgen.cli import main
from ocgen.codegen import generate
from ocgen.problem import load_problem, problem_from_dict
from ocgen.tableau import ButcherTableau, load_tableau

MARKER = "PWNED_BY_NAME"

INJECTIONS = [
    f'""";import os; os.system("touch {MARKER}"); """',
    f"''';import os; os.system('touch {MARKER}'); '''",
    f'" + __import__("os").system("touch {MARKER}") + "',
    "\\U0001F600 \\N{BULLET} \\x41 \\",
    "{{ 7 * 7 }} {% raw %}",
    "$\\alpha_$",
    "Gauß–Légendre ✓ # not a comment",
    "x" * 300,
]

NOT_PRINTABLE = ["a\x00b", "two\nlines", "red \x1b[31mtext", "line\u2028separator",
                 "carriage\rreturn"]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _tableau_file(folder, name, implicit=False):
    path = folder / "t.json"
    A = [["1"]] if implicit else [["0"]]
    path.write_text(json.dumps({"name": name, "A": A, "b": ["1"]}), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", INJECTIONS)
@pytest.mark.parametrize("backend", ["numpy", "casadi"])
@pytest.mark.parametrize("implicit", [False, True])
def test_every_template_compiles_with_hostile_names(name, backend, implicit, in_tmp):
    """Tableau and problem names reach the module only as escaped text: it parses, and its
    literals give back the names exactly."""
    tableau = ButcherTableau(name=name, A=[[1 if implicit else 0]], b=[1])
    problem = dataclasses.replace(load_problem("lq"), name=name, description=name)
    text = generate(tableau, problem, "stage", backend)
    tree = ast.parse(text)
    constants = {node.targets[0].id: node.value for node in tree.body
                 if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    assert ast.literal_eval(constants["TABLEAU"]) == name
    assert ast.literal_eval(constants["PROBLEM"]) == name
    namespace = {}
    exec(compile(text, "generated", "exec"), namespace)  # defining the module runs no payload
    assert not (in_tmp / MARKER).exists()


@pytest.mark.parametrize("command", ["solve", "verify", "generate"])
@pytest.mark.parametrize("backend", ["numpy", "casadi"])
def test_injection_through_a_tableau_file_runs_nothing(command, backend, in_tmp, capsys):
    path = _tableau_file(in_tmp, INJECTIONS[0])
    steps = {"solve": ["--steps", "4"], "verify": ["--steps", "4,8"], "generate": []}[command]
    code = main([command, "--tableau", str(path), "--problem", "lq", "--backend", backend,
                 *steps])
    out, err = capsys.readouterr()
    assert code in (0, 1) and "Traceback" not in err
    assert not (in_tmp / MARKER).exists()
    if command == "generate":  # written inside generated/, under a file-system-safe name
        written = list((in_tmp / "generated").iterdir())
        assert len(written) == 1 and written[0].suffix == ".py"
        ast.parse(written[0].read_text(encoding="utf-8"))


def test_injection_through_a_problem_name_runs_nothing(in_tmp, capsys):
    problem = in_tmp / "p.toml"
    problem.write_text(
        "name = '\"\"\";import os; os.system(\"touch " + MARKER + "\"); \"\"\"'\n"
        'states = ["y"]\ncontrols = ["u"]\nhorizon = [0, 1]\ninitial_state = [1]\n'
        'dynamics = ["u"]\nrunning_cost = "(u**2 + y**2)/2"\n', encoding="utf-8")
    for backend in ("numpy", "casadi"):
        assert main(["solve", "--tableau", "rk4", "--problem", str(problem), "--steps", "4",
                     "--backend", backend]) == 0
    assert not (in_tmp / MARKER).exists()
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("name", NOT_PRINTABLE)
def test_names_with_control_characters_are_refused(name, in_tmp, capsys):
    path = _tableau_file(in_tmp, name)
    assert main(["order", str(path)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"ocgen: error: {path}: name: character ") and err.count("\n") == 1
    assert "\x1b" not in err and "\x00" not in err and out == ""


def test_problem_text_fields_are_checked(in_tmp, capsys):
    base = ('states = ["y"]\ncontrols = ["u"]\nhorizon = [0, 1]\ninitial_state = [1]\n'
            'dynamics = ["u"]\n')
    for key in ("name", "description", "citation"):
        path = in_tmp / f"{key}.toml"
        path.write_text(base + f'{key} = "bell \\u0007 \\u001b[2J"\n', encoding="utf-8")
        assert main(["solve", "--tableau", "rk4", "--problem", str(path), "--steps", "2"]) == 2
        err = capsys.readouterr().err
        assert f"{key}: character 5 is '\\x07'" in err and "\x1b" not in err


@pytest.mark.parametrize("word", ["lambda", "class", "None", "yield", "naïve", "1y", "a-b"])
def test_unusable_symbol_names_are_refused_by_name(word, in_tmp, capsys):
    path = in_tmp / "p.toml"
    path.write_text(f'states = ["{word}"]\ncontrols = ["u"]\nhorizon = [0, 1]\n'
                    'initial_state = [1]\ndynamics = ["u"]\n', encoding="utf-8")
    assert main(["solve", "--tableau", "rk4", "--problem", str(path), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "states[0]" in err and "not a usable symbol name" in err and "dynamics" not in err


# -- collisions: a user's names never change the derivation ----------------------------------
# Names the derivation, the templates and the verification use for their own quantities.
INTERNAL_NAMES = ["t", "h", "rho", "y_0", "y_1", "Y_0_0", "F_0_0", "u_0_0", "p_0", "p_1",
                  "lam_0_0", "P_0_0", "q_0", "q_1", "_t0", "p_a", "p_b", "zero", "full",
                  "numpy", "casadi", "M", "r", "R", "J", "cost", "members", "y", "Y", "u", "p",
                  "q", "theta", "c_running", "y0_0", "p0_0", "out_p_0", "y_next_0", "control_0"]
ROLES = {"states[0]": "a", "states[1]": "b", "controls[0]": "v", "time": "s",
         "member_parameters": "k"}


def _problem(**names):
    """Two states, one control, explicit time and a member parameter, in every expression."""
    a, b, v, s, k = (names.get(role, default) for role, default in
                     (("a", "a"), ("b", "b"), ("v", "v"), ("s", "s"), ("k", "k")))
    return problem_from_dict({
        "name": "roles", "states": [a, b], "controls": [v], "time": s, "horizon": [0, 1],
        "initial_state": [1, "1/2"], "member_parameters": {k: [2.0]},
        "dynamics": [f"{b} + {k}*{v}*(1 + {s}/4)", f"-{a}/2 + {v}"],
        "running_cost": f"({v}**2 + {a}**2)/2 + {s}*{b}**2/4 + {k}*{a}/8",
        "terminal_cost": f"{k}*{a}**2/4 + {b}/2",
    }, source="roles.toml")


def _code(text):
    """The generated module without the lines that quote user names or the input hash."""
    body = text[text.index("\nimport "):]
    return [line for line in body.splitlines()
            if not line.startswith(("PROBLEM =", "INPUT_HASH =", "PARAMETER_NAMES ="))]


@pytest.fixture(scope="module")
def neutral_code():
    return {(tableau, backend): _code(generate(load_tableau(tableau), _problem(), "stage",
                                               backend))
            for tableau in ("euler", "backward_euler") for backend in ("numpy", "casadi")}


@pytest.mark.parametrize("start", range(len(INTERNAL_NAMES)), ids=INTERNAL_NAMES)
def test_user_names_never_change_the_numpy_code(start, neutral_code):
    """Case i names the roles a, b, v, s, k with internal names i, …, i + 4 (cyclically), so
    every internal name takes every role once."""
    names = {role: INTERNAL_NAMES[(start + k) % len(INTERNAL_NAMES)]
             for k, role in enumerate(("a", "b", "v", "s", "k"))}
    code = _code(generate(load_tableau("euler"), _problem(**names), "stage", "numpy"))
    assert code == neutral_code["euler", "numpy"], names


@pytest.mark.parametrize("tableau, backend, name", [
    *(("backward_euler", "numpy", n) for n in ("M", "r", "R", "J", "zero", "members", "Y_0_0")),
    *(("euler", "casadi", n) for n in ("t", "h", "y_0", "q_0", "p_a", "casadi", "R_0_0")),
    ("backward_euler", "casadi", "lam_0_0")])
def test_user_names_never_change_implicit_or_casadi_code(tableau, backend, name, neutral_code):
    for role in ("a", "v", "s", "k"):
        code = _code(generate(load_tableau(tableau), _problem(**{role: name}), "stage", backend))
        assert code == neutral_code[tableau, backend], f"{name!r} as {role}"


def _solve_json(capsys, problem_path, *extra):
    assert main(["solve", "--tableau", "rk4", "--problem", str(problem_path), "--steps", "10",
                 "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


LQ = ('states = ["y"]\ncontrols = ["u"]\nhorizon = [0, 1]\ninitial_state = [1]\n'
      'dynamics = ["y/2 + u"]\nrunning_cost = "(u**2 + 2*y**2)/2"\n')


@pytest.mark.parametrize("backend", ["numpy", "casadi"])
def test_member_parameter_named_like_the_internal_state(backend, in_tmp, capsys):
    """Φ = a² y_0 with y_0 a parameter, against the same problem with the parameter called w."""
    results = []
    for param in ("y_0", "w"):
        path = in_tmp / f"{param}.toml"
        path.write_text(LQ + f'terminal_cost = "a**2*{param}*y"\n'
                        f"member_parameters = {{ a = [1.5], {param} = [0.5] }}\n")
        results.append(_solve_json(capsys, path, "--backend", backend))
    colliding, neutral = results
    assert colliding["objective"] == pytest.approx(neutral["objective"], rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(colliding["costates"], neutral["costates"], rtol=1e-10)


@pytest.mark.parametrize("backend", ["numpy", "casadi"])
def test_grid_control_uses_member_parameters(backend, in_tmp, capsys):
    """u = φ(t, y, p) = −t·p_1 with t a member parameter (t = 2) and time called tau; the
    parameters c and y, the costate's name p_y and the internal q_0 also name parameters.
    A second state z makes the states' axis longer than the members' one."""
    path = in_tmp / "grid.toml"
    path.write_text('states = ["y", "z"]\ncontrols = ["u"]\ntime = "tau"\nhorizon = [0, 1]\n'
                    'initial_state = [1, 0]\n'
                    'dynamics = ["t*u + c*y*tau + p_y - q_0", "y - z"]\n'
                    'running_cost = "u**2/2 + y**2/2 + z**2/2"\n'
                    "member_parameters = { t = [2.0], c = [0.25], p_y = [0.5], q_0 = [0.5] }\n")
    data = _solve_json(capsys, path, "--backend", backend)
    grid, costates = np.array(data["grid_control"]), np.array(data["costates"])
    np.testing.assert_allclose(grid[:, 0], -2 * costates[:, 0], rtol=1e-13, atol=1e-15)


def test_verify_reference_is_independent_of_names(in_tmp, capsys):
    """The BVP reference of ocgen verify renames user symbols too (time called c_running,
    a state called y0_0, a parameter called p0_0)."""
    results = []
    for time, state, param in (("c_running", "y0_0", "p0_0"), ("s", "a", "k")):
        path = in_tmp / f"{state}.toml"
        path.write_text(f'time = "{time}"\nstates = ["{state}"]\ncontrols = ["u"]\n'
                        'horizon = [0, 1]\ninitial_state = [1]\n'
                        f'dynamics = ["{state}/2 + {param}*u + {time}/4"]\n'
                        f'running_cost = "(u**2 + 2*{state}**2)/2"\n'
                        f"member_parameters = {{ {param} = [0.75] }}\n")
        assert main(["verify", "--tableau", "rk4", "--problem", str(path), "--steps", "4,8",
                     "--json"]) in (0, 1)
        results.append(json.loads(capsys.readouterr().out))
    colliding, neutral = results
    assert colliding["errors"] and colliding["errors"].keys() == neutral["errors"].keys()
    for quantity, errors in neutral["errors"].items():
        np.testing.assert_allclose(colliding["errors"][quantity], errors, rtol=1e-9)


# -- the command line under hostile conditions -----------------------------------------------
def test_json_errors_on_stdout(in_tmp, capsys):
    for argv in (["solve", "--tableau", "rk4", "--problem", "missing.toml", "--steps", "2"],
                 ["order", "nonsense", "--max-order", "3"],
                 ["solve", "--tableau", "rk4", "--problem", "lq", "--steps", "two"]):
        with pytest.raises(SystemExit) if "two" in argv else contextlib.nullcontext():
            code = main([*argv, "--json"])
            assert code == 2
        out, err = capsys.readouterr()
        error = json.loads(out)["error"]
        assert error["message"] and err.count("ocgen") >= 1 and "Traceback" not in err
    assert error["file"] is None and "two" in error["message"]


def test_json_error_names_file_and_key(in_tmp, capsys):
    path = in_tmp / "bad.toml"
    path.write_text(LQ.replace('"y/2 + u"', '"y/2 + w"'))
    assert main(["solve", "--tableau", "rk4", "--problem", str(path), "--steps", "2",
                 "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error == {"message": error["message"], "file": str(path), "key": "dynamics[0]"}


def test_non_finite_numbers_are_null_with_a_reason(capsys):
    from ocgen.cli import _print_json
    _print_json({"objective": float("nan"), "states": [[1.0, float("inf")]], "ok": 1.5})
    text = capsys.readouterr().out
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert data["objective"] is None and data["states"] == [[1.0, None]] and data["ok"] == 1.5
    assert data["non_finite"]["count"] == 2
    assert data["non_finite"]["first"] == ["objective", "states[0][1]"]


def test_closed_pipe_is_not_a_traceback(tmp_path):
    """The reader goes away after 10 bytes of a JSON document far larger than a pipe buffer."""
    env = {**os.environ, "OCGEN_CACHE": os.environ["OCGEN_CACHE"]}
    process = subprocess.Popen(
        [sys.executable, "-m", "ocgen.cli", "solve", "--tableau", "rk4", "--problem", "lq",
         "--steps", "300", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    process.stdout.read(10)
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0 and "Traceback" not in err and "Exception" not in err


def test_plot_title_with_dollar_signs(in_tmp, capsys):
    path = _tableau_file(in_tmp, "$\\alpha_$ and $$")
    plot = in_tmp / "plot.png"
    assert main(["verify", "--tableau", str(path), "--problem", "lq", "--steps", "4,8",
                 "--plot", str(plot)]) in (0, 1)
    assert plot.stat().st_size > 0 and "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("typo, meant", [("gaus2", "Gauss 2"), ("dopri", "Dormand-Prince 5"),
                                         ("rk-45", "Fehlberg 4(5) order 5"),
                                         ("radauiia", "Radau IIA 2"),
                                         ("Gaus-Legendre 2", "Gauss 2")])
def test_unknown_tableau_suggestions_use_aliases(typo, meant, capsys):
    assert main(["order", typo]) == 2
    err = capsys.readouterr().err
    assert f"unknown tableau or pair {typo!r}; did you mean" in err and meant in err


@pytest.mark.parametrize("argv", [["order", ""], ["order", "  "],
                                  ["solve", "--tableau", "rk4", "--problem", "", "--steps", "2"]])
def test_empty_names(argv, capsys):
    assert main(argv) == 2
    assert "ocgen: error: empty " in capsys.readouterr().err


def test_error_messages_escape_control_characters(in_tmp, capsys):
    """A key or value quoted in an error reaches the terminal with its escapes shown."""
    path = in_tmp / "keys.toml"
    path.write_text('states = ["y"]\n"\\u001b[2J\\u0007" = 1\n', encoding="utf-8")
    assert main(["solve", "--tableau", "rk4", "--problem", str(path), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "\\x1b[2J\\x07: unknown key" in err and "\x1b" not in err and "\x07" not in err


@pytest.mark.parametrize("argv, status", [
    (["solve", "--tableau", "rk4", "--problem", "missing_problem", "--steps", "3"], 2),
    (["solve", "--tableau", "rk4", "--problem", "lq", "--steps", "300", "--max-iterations",
      "1"], 1),
])
def test_closed_pipe_keeps_the_exit_status(argv, status):
    """Nothing read (`| head -c 0`): an error, or a solve that did not converge, still exits
    with its own status and no traceback."""
    process = subprocess.Popen([sys.executable, "-m", "ocgen.cli", *argv, "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == status and "Traceback" not in err
