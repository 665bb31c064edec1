"""Problem files: built-ins load, bad files give one located error."""

import pytest
import sympy as sp

from ocgen.errors import InputError
from ocgen.problem import builtin_problem_names, load_problem

GOOD = """
name = "custom"
states = ["x"]
controls = ["v"]
horizon = [0, 2]
initial_state = [1]
dynamics = ["-a*x + v"]
running_cost = "v**2/2"
terminal_cost = "x**2"
[parameters]
a = "1/2"
[bounds]
v = [-1, "inf"]
"""


def write(tmp_path, text, name="p.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_builtins_load():
    assert {"lq", "nl", "vdp", "tanh_ensemble"} <= set(builtin_problem_names())
    assert load_problem("vdp").state_dim == 2
    assert load_problem("tanh_ensemble").members == 8


def test_closed_forms_satisfy_the_optimality_system():
    """The lq and nl closed forms solve y' = f, p' = -H_y, u = -p, with J* as stated."""
    from ocgen.derive import continuous_system
    for name in ("lq", "nl"):
        problem = load_problem(name)
        sol, t = problem.solution, problem.time
        system = continuous_system(problem)
        subs = {problem.states[0]: sol.state[0], problem.controls[0]: sol.control[0],
                system.costates[0]: sol.costate[0]}
        assert sp.simplify(sp.diff(sol.state[0], t) - problem.dynamics[0].subs(subs)) == 0
        assert sp.simplify(sp.diff(sol.costate[0], t) + system.H_y[0].subs(subs)) == 0
        assert sp.simplify(system.control_law[0].subs(subs) - sol.control[0]) == 0


def test_good_file(tmp_path):
    problem = load_problem(write(tmp_path, GOOD))
    assert problem.name == "custom" and problem.T == 2.0
    assert problem.control_bounds == ((-1.0, float("inf")),)
    x, = problem.states
    v, = problem.controls
    assert problem.dynamics[0] == -x / 2 + v


@pytest.mark.parametrize("change, where", [
    (('dynamics = ["-a*x + v"]', 'dynamics = ["-a*x + w"]'), "dynamics[0]"),       # undeclared
    (('dynamics = ["-a*x + v"]', 'dynamics = ["x", "v"]'), "dynamics"),             # dimension
    (('running_cost = "v**2/2"', 'running_cost = "abs(v)"'), "running_cost"),       # unknown fn
    (('terminal_cost = "x**2"', 'terminal_cost = "__import__(\'os\').system(\'touch pwned\')"'),
     "terminal_cost"),                                                               # unsafe
    (('terminal_cost = "x**2"', 'terminal_cost = "v"'), "terminal_cost"),           # control in Φ
    (('horizon = [0, 2]', 'horizon = [2, 0]'), "horizon"),
    (('initial_state = [1]', 'initial_state = [1, 2]'), "initial_state"),
    (('v = [-1, "inf"]', 'v = [1, -1]'), "bounds.v"),
    (('states = ["x"]', 'states = ["x"]\nunknown = 3'), "unknown"),
])
def test_bad_files_name_file_and_key(tmp_path, change, where):
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(InputError) as err:
        load_problem(path)
    assert str(path) in str(err.value) and where in str(err.value)
    assert not (tmp_path / "pwned").exists()


def test_empty_and_invalid_files(tmp_path):
    for text in ("", "states = [", "states = 3"):
        with pytest.raises(InputError):
            load_problem(write(tmp_path, text))


def test_unknown_problem_name():
    with pytest.raises(InputError, match="unknown problem"):
        load_problem("no-such-problem")


def test_closed_form_of_an_ensemble_is_rejected(tmp_path):
    text = GOOD.replace("initial_state = [1]", "initial_states = [[1], [2]]") + (
        '[solution]\nstate = ["1"]\ncostate = ["0"]\ncontrol = ["0"]\nobjective = "0"\n')
    with pytest.raises(InputError, match="solution"):
        load_problem(write(tmp_path, text))
