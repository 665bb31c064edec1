"""The documented input limits (ocgen.limits): oversized input is refused before any work,
through the command line, with one located line and exit status 2; input at the limits works."""

import json
import math
import os

import pytest
import tomli_w

import ocgen.solve
from ocgen import limits
from ocgen.cli import main
from ocgen.errors import InputError
from ocgen.problem import builtin_problem_names, load_problem, problem_from_dict
from ocgen.solve import solve
from ocgen.tableau import builtin_tableaux, load_tableau

BASE = {"states": ["y"], "controls": ["u"], "horizon": [0, 1], "initial_state": [1],
        "dynamics": ["u"], "running_cost": "(u**2 + y**2)/2"}


@pytest.fixture
def no_derivation(monkeypatch):
    """Fail the test if a solve gets as far as deriving its module."""
    def refuse(*args, **kwargs):
        raise AssertionError("derivation started before the input was refused")
    import ocgen.solve_casadi  # imported before patching, so it keeps the real function
    monkeypatch.setattr(ocgen.solve, "generated_module", refuse)
    monkeypatch.setattr(ocgen.solve_casadi, "generated_module", refuse)


def refused(capsys, *argv) -> str:
    """Run ``ocgen solve`` with ``argv`` and return its one-line error (exit status 2)."""
    code = main(["solve", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("ocgen: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    return err


def solve_problem(capsys, path, steps="5", tableau="rk4"):
    return refused(capsys, "--tableau", tableau, "--problem", str(path), "--steps", steps)


def write_problem(tmp_path, name="p.toml", **changes):
    """A problem file: BASE with ``changes`` (a change to None removes the key)."""
    data = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    path = tmp_path / name
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def nested_sin(levels: int) -> str:
    return "sin(" * levels + "y" + ")" * levels


# -- file size, text and list lengths ---------------------------------------------------------
def test_symlink_to_dev_zero_is_refused_by_size(capsys, tmp_path, no_derivation):
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    err = solve_problem(capsys, link)
    assert f"{link}: not a regular file" in err


def test_fifo_is_refused_without_blocking(capsys, tmp_path, no_derivation):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    assert f"{fifo}: not a regular file" in solve_problem(capsys, fifo)


def test_file_larger_than_the_limit(capsys, tmp_path, no_derivation):
    path = write_problem(tmp_path)
    with path.open("a", encoding="utf-8") as file:
        file.write("# " + "x" * limits.MAX_FILE_BYTES + "\n")
    err = solve_problem(capsys, path)
    assert f"{path}: file larger than the limit of {limits.MAX_FILE_BYTES} bytes" in err


def test_50_mb_citation_is_refused_by_file_size(capsys, tmp_path, no_derivation):
    path = write_problem(tmp_path)
    with path.open("a", encoding="utf-8") as file:
        file.write('citation = "' + "x" * 50_000_000 + '"\n')
    assert "file larger than the limit" in solve_problem(capsys, path)


def test_75_mb_list_in_a_tableau_is_refused_by_file_size(capsys, tmp_path, no_derivation):
    path = tmp_path / "t.json"
    path.write_text('{"A": [[0]], "b": [' + "1, " * 25_000_000 + "1]}", encoding="utf-8")
    assert path.stat().st_size > 75e6
    err = refused(capsys, "--tableau", str(path), "--problem", "lq", "--steps", "5")
    assert f"{path}: file larger than the limit" in err


def test_citation_over_the_text_limit(capsys, tmp_path, no_derivation):
    long = "x" * (limits.MAX_TEXT_LENGTH + 1)
    err = solve_problem(capsys, write_problem(tmp_path, citation=long))
    assert (f"p.toml: citation: {limits.MAX_TEXT_LENGTH + 1} characters, more than the limit "
            f"of {limits.MAX_TEXT_LENGTH}") in err


def test_names_over_the_name_limit(capsys, tmp_path, no_derivation):
    long = "n" * (limits.MAX_NAME_LENGTH + 1)
    path = tmp_path / "t.toml"
    path.write_text(f'name = "{long}"\nA = [[0]]\nb = [1]\n', encoding="utf-8")
    err = refused(capsys, "--tableau", str(path), "--problem", "lq", "--steps", "5")
    assert f"t.toml: name: {limits.MAX_NAME_LENGTH + 1} characters" in err
    err = solve_problem(capsys, write_problem(tmp_path, parameters={long: 1}))
    assert "parameters.nnnn" in err and "characters in a name" in err


def test_list_over_the_list_limit(capsys, tmp_path, no_derivation):
    path = tmp_path / "t.toml"
    entries = ", ".join(["0"] * (limits.MAX_LIST_LENGTH + 1))
    path.write_text(f"A = [[0]]\nb = [{entries}]\n", encoding="utf-8")
    err = refused(capsys, "--tableau", str(path), "--problem", "lq", "--steps", "5")
    assert f"t.toml: b: {limits.MAX_LIST_LENGTH + 1} entries, more than the limit" in err


def test_integer_with_a_million_digits(capsys, tmp_path, no_derivation):
    path = tmp_path / "t.toml"
    path.write_text("A = [[" + "9" * 1_000_000 + "]]\nb = [1]\n", encoding="utf-8")
    err = refused(capsys, "--tableau", str(path), "--problem", "lq", "--steps", "5")
    assert "t.toml: invalid TOML:" in err and "digits" in err
    path = tmp_path / "t.json"
    path.write_text('{"A": [[' + "9" * 1_000_000 + ']], "b": [1]}', encoding="utf-8")
    err = refused(capsys, "--tableau", str(path), "--problem", "lq", "--steps", "5")
    assert "t.json: invalid JSON:" in err and "digits" in err


# -- sizes of tableaux and problems ---------------------------------------------------------
def tableau_file(tmp_path, stages: int):
    path = tmp_path / f"s{stages}.json"
    A = [[f"1/{i + j + 2}" if j < i else 0 for j in range(stages)] for i in range(stages)]
    path.write_text(json.dumps({"A": A, "b": [f"1/{stages}"] * stages}), encoding="utf-8")
    return path


def test_50_stages_are_refused(capsys, tmp_path, no_derivation):
    path = tableau_file(tmp_path, 50)
    err = refused(capsys, "--tableau", str(path), "--problem", "lq", "--steps", "5")
    assert f"s50.json: A: 50 stages, more than the limit of {limits.MAX_STAGES}" in err


def test_a_tableau_at_the_stage_limit_loads(tmp_path):
    assert load_tableau(tableau_file(tmp_path, limits.MAX_STAGES)).stages == limits.MAX_STAGES


def states_problem(tmp_path, states: int):
    names = [f"y{k}" for k in range(states)]
    return write_problem(tmp_path, f"d{states}.toml", states=names, initial_state=[1] * states,
                         dynamics=[f"-{y} + u" for y in names], running_cost="u**2")


def test_100_states_are_refused(capsys, tmp_path, no_derivation):
    err = solve_problem(capsys, states_problem(tmp_path, 100))
    assert f"d100.toml: states: 100 states, more than the limit of {limits.MAX_STATES}" in err


def test_a_problem_at_the_state_limit_loads(tmp_path):
    assert load_problem(states_problem(tmp_path, limits.MAX_STATES)).state_dim == \
        limits.MAX_STATES


def test_too_many_controls_and_member_parameters(capsys, tmp_path, no_derivation):
    names = [f"u{k}" for k in range(limits.MAX_CONTROLS + 1)]
    path = write_problem(tmp_path, controls=names, dynamics=["u0"], running_cost="y**2")
    err = solve_problem(capsys, path)
    assert f"controls: {limits.MAX_CONTROLS + 1} controls, more than the limit" in err
    table = {f"q{k}": [1] for k in range(limits.MAX_MEMBER_PARAMETERS + 1)}
    err = solve_problem(capsys, write_problem(tmp_path, member_parameters=table))
    assert f"member_parameters: {limits.MAX_MEMBER_PARAMETERS + 1} member parameters" in err


# -- expressions: size and depth after substituting parameters -----------------------------------
def test_product_of_161_sines_is_refused_by_derivative_size(capsys, tmp_path, no_derivation):
    product = "*".join(f"sin(y+{i})" for i in range(161))
    err = solve_problem(capsys, write_problem(tmp_path, dynamics=[f"u + {product}"]))
    assert (f"p.toml: dynamics[0]: the first derivatives of dynamics and costs have more than "
            f"{limits.MAX_DERIVATIVE_NODES} nodes") in err


def test_chain_of_200_parameters_is_refused_by_depth(capsys, tmp_path, no_derivation):
    chain = {"a0": 1, **{f"a{i}": f"sqrt(a{i - 1} + 1)" for i in range(1, 201)}}
    err = solve_problem(capsys, write_problem(tmp_path, parameters=chain,
                                              dynamics=["a200*y + u"]))
    assert "p.toml: parameters.a" in err
    assert f"nested deeper than {limits.MAX_EXPRESSION_DEPTH} levels" in err


def test_chain_of_parameters_is_refused_by_size(capsys, tmp_path, no_derivation):
    doubling = {"a0": 2, **{f"a{i}": f"a{i - 1}*(a{i - 1} + pi)" for i in range(1, 40)}}
    err = solve_problem(capsys, write_problem(tmp_path, parameters=doubling,
                                              dynamics=["a39*y + u"]))
    assert "p.toml: parameters.a" in err
    assert f"with more than {limits.MAX_EXPRESSION_NODES} nodes" in err


def test_190_nested_sines_are_refused_by_depth(capsys, tmp_path, no_derivation):
    err = solve_problem(capsys, write_problem(tmp_path, dynamics=[f"u + {nested_sin(190)}"]))
    assert f"p.toml: dynamics[0]: expression nested deeper than {limits.MAX_EXPRESSION_DEPTH}" \
        in err


def test_the_deepest_accepted_expression_derives_and_solves():
    deepest = limits.MAX_EXPRESSION_DEPTH - 2  # Add(u, sin(...sin(y))) has two more levels
    data = {**BASE, "dynamics": [f"u + {nested_sin(deepest)}"]}
    problem = problem_from_dict(data)
    assert solve("rk4", problem, 4).converged
    ocgen.solve.generated_module("rk4", problem, backend="casadi")
    data["dynamics"] = [f"u + {nested_sin(deepest + 1)}"]
    with pytest.raises(InputError, match="nested deeper"):
        problem_from_dict(data)


# -- steps: validated while parsing, then against memory ---------------------------------------
@pytest.mark.parametrize("steps", ["0", "-3", "ten"])
def test_steps_that_are_not_positive_fail_while_parsing(capsys, monkeypatch, steps):
    monkeypatch.setattr("ocgen.problem.load_problem", lambda *a: pytest.fail("problem loaded"))
    with pytest.raises(SystemExit) as exit_:
        main(["solve", "--tableau", "rk4", "--problem", "lq", "--steps", steps])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert f"argument --steps: expected a positive integer, found '{steps}'" in err
    assert "Traceback" not in err


def test_ten_million_steps_of_an_ensemble_exceed_memory(capsys, tmp_path, no_derivation):
    path = write_problem(tmp_path, "e.toml", initial_state=None,
                         initial_states=[[k] for k in range(1000)])
    err = solve_problem(capsys, path, steps="10000000")
    assert "--steps 10000000: RK4 on e would need about" in err
    assert "GiB of memory, more than the limit of" in err


def test_huge_step_count_exceeds_memory(capsys, no_derivation):
    for backend in ("numpy", "casadi"):
        err = refused(capsys, "--tableau", "rk4", "--problem", "lq", "--backend", backend,
                      "--steps", "99999999999999999999")
        assert "--steps 99999999999999999999: RK4 on lq would need about" in err


def test_verify_checks_its_largest_step_count(capsys, no_derivation):
    code = main(["verify", "--tableau", "rk4", "--problem", "lq",
                 "--steps", "10,99999999999999999999"])
    err = capsys.readouterr().err
    assert code == 2 and "--steps 99999999999999999999: RK4 on lq would need" in err


def test_memory_estimate_grows_with_every_dimension():
    base = limits.solve_bytes(stages=4, states=2, controls=1, members=8, steps=100)
    for field in ("stages", "states", "controls", "members", "steps"):
        sizes = dict(stages=4, states=2, controls=1, members=8, steps=100)
        sizes[field] *= 2
        assert limits.solve_bytes(**sizes) > base
    assert limits.solve_bytes(4, 2, 1, 8, 100, "casadi") > base


# -- the limits leave every built-in alone -----------------------------------------------------
def test_builtins_are_within_the_limits():
    assert max(t.stages for t in builtin_tableaux()) <= limits.MAX_STAGES
    for name in builtin_problem_names():
        load_problem(name)
    assert solve("rk4", "tanh_ensemble", 4, "step").steps == 4


def _tableau(tmp_path, A, b, name="field") -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "A": A, "b": b}))
    return str(path)


@pytest.mark.parametrize("A, b, bound", [
    ([[0, 0], ["cos(pi/23)/2", 0]], ["1/2", "cos(pi/19)/2"], 99),  # 11 · 9
    ([[0, 0, 0, 0], ["sqrt(2)/100", 0, 0, 0], ["sqrt(3)/100", "sqrt(5)/100", 0, 0],
      ["sqrt(7)/100", "sqrt(11)/100", "sqrt(13)/100", 0]], ["1/4"] * 4, 64),  # 2^6
    ([[0, 0], ["2**(1/5)/2", 0]], ["3**(1/6)/2", "5**(1/6)/2"], 180),
])
def test_number_field_too_large_for_exact_verdicts(capsys, tmp_path, A, b, bound):
    path = _tableau(tmp_path, A, b)
    for argv in (["order", path], ["verify", "--tableau", path, "--problem", "lq",
                                    "--steps", "2,4"]):
        assert main(argv) == 2
        err = capsys.readouterr().err  # verify may warn first (Σ b_i ≠ 1)
        assert err.splitlines()[-1].startswith(
            f"ocgen: error: {path}: the exact entries generate a number field of degree up to "
            f"{bound} (") and err.count("ocgen: error:") == 1 and "Traceback" not in err


def test_number_fields_within_the_limit_are_judged_exactly(capsys, tmp_path):
    """Five independent square roots (degree 32) still get an exact verdict, and every single
    trigonometric constant the parser accepts (denominators up to 24) fits the limit."""
    import sympy as sp

    from ocgen.numbers import field_degree_bound
    path = _tableau(tmp_path, [[0, 0, 0, 0], ["sqrt(2)/100", 0, 0, 0],
                               ["sqrt(3)/100", "sqrt(5)/100", 0, 0],
                               ["sqrt(7)/100", "sqrt(11)/100", "1/100", 0]], ["1/4"] * 4)
    assert main(["order", path, "--json", "--max-order", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["exact"] and data["order"] == 1  # Σ b_i c_i ≠ 1/2
    for f in (sp.cos, sp.sin, sp.tan):
        for q in range(1, 25):
            angles = [sp.pi * sp.Rational(p, q) for p in range(1, 2 * q) if math.gcd(p, q) == 1]
            assert all(field_degree_bound([f(x)])[0] <= limits.MAX_FIELD_DEGREE for x in angles)
