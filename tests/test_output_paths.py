"""Where ``ocgen generate`` writes: safe file names."""

import re
from types import SimpleNamespace

import pytest

from ocgen.cli import main
from ocgen.codegen import module_name
from ocgen.problem import load_problem
from ocgen.tableau import load_tableau

SLUG = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*")
HOSTILE = ["/srv/escaped", "../x", "../../x", "", "\x00", "名前", "é/../ü", "a" * 1000,
           " __--**__ ", '""";import os; os.system("touch PWNED"); """', "C:\\x\\y", "\n\t"]


@pytest.mark.parametrize("tableau, problem, name", [
    ("rk4", "lq", "rk4_lq_stage_numpy"),
    ("lobattoiiic*3", "tanh_ensemble", "lobattoiiicstar3_tanh_ensemble_stage_numpy"),
    ("3/8 rule", "vdp", "3_8rule_vdp_stage_numpy"),
])
def test_builtin_names(tableau, problem, name):
    assert module_name(load_tableau(tableau), load_problem(problem), "stage", "numpy") == name


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda name: repr(name)[:24])
def test_hostile_names_give_a_safe_slug(hostile):
    name = module_name(SimpleNamespace(name=hostile), SimpleNamespace(name=hostile),
                       "stage", "numpy")
    assert SLUG.fullmatch(name) and len(name) <= 120
    assert name.endswith("_stage_numpy")


def test_slug_fallbacks_and_bounds():
    nothing = SimpleNamespace(name="\x00/..")
    assert module_name(nothing, nothing, "step", "casadi") == "tableau_problem_step_casadi"
    long = SimpleNamespace(name="a" * 1000)
    assert module_name(long, long, "stage", "numpy") == f"{'a' * 48}_{'a' * 48}_stage_numpy"
    spaced = SimpleNamespace(name="__My--Problem__(2)")
    assert module_name(long, spaced, "tied", "numpy").split("_")[1:] == ["my", "problem",
                                                                          "2", "tied", "numpy"]


def default_name(tableau_name: str) -> str:
    """The module name ``generate`` gives a tableau called ``tableau_name`` on lq."""
    return module_name(SimpleNamespace(name=tableau_name), load_problem("lq"), "stage", "numpy")


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_generate_writes_only_inside_generated(tmp_path, monkeypatch, capsys, kind):
    work = tmp_path / "work"
    work.mkdir()
    name = ("" if kind == "absolute" else "../..") + str(tmp_path / "escaped")
    spec = tmp_path / "hostile.toml"
    spec.write_text(f"name = {name!r}\nA = [[\"0\"]]\nb = [\"1\"]\n", encoding="utf-8")
    monkeypatch.chdir(work)
    before = set(tmp_path.rglob("*"))
    assert main(["generate", "--tableau", str(spec), "--problem", "lq"]) == 0
    written = set(tmp_path.rglob("*")) - before
    assert written == {work / "generated", work / "generated" / f"{default_name(name)}.py"}
    assert f"wrote generated/{default_name(name)}.py" in capsys.readouterr().out
