"""Where ``ocgen generate`` writes: safe file names, whole files, errors that name the path."""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ocgen.cli import main
from ocgen.codegen import module_name, write_module
from ocgen.errors import OcgenError
from ocgen.problem import load_problem
from ocgen.tableau import load_tableau

ROOT = Path(__file__).resolve().parents[1]
SLUG = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*")
HOSTILE = ["/srv/escaped", "../x", "../../x", "", "\x00", "名前", "é/../ü", "a" * 1000,
           " __--**__ ", '""";import os; os.system("touch PWNED"); """', "C:\\x\\y", "\n\t"]


def fails(capsys, *argv: str) -> str:
    """Run ``ocgen argv`` expecting a user error; its one stderr line."""
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("ocgen: error:")
    return err.strip()


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


def test_failed_replace_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "module.py"
    write_module("OLD = 1\n", path)

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OcgenError, match=f"^{re.escape(str(path))}: cannot write: No space"):
        write_module("NEW = 2\n", path)
    assert path.read_text(encoding="utf-8") == "OLD = 1\n"
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.skipif(sys.platform != "linux", reason="needs RLIMIT_FSIZE and SIGXFSZ")
def test_file_size_limit_keeps_the_previous_file(tmp_path):
    path = tmp_path / "module.py"
    write_module("OLD = 1\n", path)
    script = ("import resource, signal, sys\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
              "from ocgen.codegen import write_module\n"
              "write_module('x = 1\\n' * 10000, sys.argv[1])\n")
    run = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode != 0 and f"{path}: cannot write: File too large" in run.stderr
    assert path.read_text(encoding="utf-8") == "OLD = 1\n"
    assert list(tmp_path.iterdir()) == [path]


def test_new_files_get_the_usual_mode(tmp_path):
    path = write_module("X = 1\n", tmp_path / "module.py")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_symlinked_output_is_written_through(tmp_path):
    target, link = tmp_path / "real.py", tmp_path / "link.py"
    link.symlink_to(target)
    write_module("X = 1\n", link)
    assert link.is_symlink() and target.read_text(encoding="utf-8") == "X = 1\n"


def test_empty_output_path_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = fails(capsys, "generate", "--tableau", "rk4", "--problem", "lq", "-o", "")
    assert "output path is empty" in line
    line = fails(capsys, "verify", "--tableau", "rk4", "--problem", "lq", "--plot", "")
    assert "output path is empty" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_device_write_error_names_the_path(capsys):
    line = fails(capsys, "generate", "--tableau", "euler", "--problem", "lq", "-o", "/dev/full")
    assert line == "ocgen: error: /dev/full: cannot write: No space left on device"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # written to, never replaced


@pytest.mark.skipif(not os.path.isdir("/proc/sys"), reason="needs Linux /proc")
@pytest.mark.parametrize("option", ["-o", "--plot"])
def test_unwritable_folder_is_refused_before_any_work(capsys, option):
    command = "generate" if option == "-o" else "verify"
    target = "/proc/sys/ocgen-output"
    # an unknown tableau would be reported first if inputs were loaded before the check
    line = fails(capsys, command, "--tableau", "no-such-tableau", "--problem", "lq",
                 option, target)
    assert line == f"ocgen: error: {target}: permission denied"
