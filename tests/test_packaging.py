"""The wheel carries everything `ocgen generate` needs: the templates (top-level templates/ in
the source tree, mapped to ocgen/templates by pyproject.toml) and the built-in data files."""

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

OFFLINE = ("Could not find a version", "No matching distribution", "Failed to establish",
           "Network is unreachable", "Temporary failure in name resolution")


def build_wheel(folder: Path, env: dict) -> Path:
    """`pip wheel . --no-deps`, in an isolated build environment (setuptools >= 77 from the
    package index); skipped when the index cannot be reached."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                           "--quiet", "-w", str(folder)],
                          env=env, cwd=folder.parent, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and any(sign in done.stderr for sign in OFFLINE):
        pytest.skip("the build backend cannot be installed offline")
    assert done.returncode == 0, done.stderr
    (wheel,) = folder.glob("ocgen-*.whl")
    return wheel


@pytest.mark.wheel
def test_installed_wheel_generates(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    wheel = build_wheel(tmp_path / "wheels", env)
    # the dependencies come from this interpreter; ocgen itself only from the wheel
    venv.create(tmp_path / "venv", system_site_packages=True, with_pip=False)
    python = next(p for p in (tmp_path / "venv" / "bin" / "python",
                              tmp_path / "venv" / "Scripts" / "python.exe") if p.exists())
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--no-index", "--force-reinstall", "--ignore-installed",
                    str(wheel)], check=True, env=env, cwd=tmp_path, timeout=300)
    work = tmp_path / "work"
    work.mkdir()
    run = subprocess.run([str(python), "-c",
                          "import ocgen, sys; from ocgen.cli import main; print(ocgen.__file__);"
                          "sys.exit(main(['generate', '--tableau', 'rk4', '--problem', 'lq',"
                          " '-o', 'rk4_lq.py']))"],
                         env=env, cwd=work, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    location = Path(run.stdout.splitlines()[0])
    assert tmp_path / "venv" in location.parents, f"ocgen imported from {location}"
    generated = (work / "rk4_lq.py").read_text(encoding="utf-8")
    assert generated == (ROOT / "generated" / "rk4_lq_stage_numpy.py").read_text(encoding="utf-8")
