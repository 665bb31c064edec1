"""The files in examples/: the custom tableau files load with the intended exact values, and
the API script runs. Expected values are derived by hand in the example files' comments."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

from ocgen.files import read_data_file
from ocgen.order import classical_order, control_order
from ocgen.tableau import load_tableau

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CUSTOM_TOML = EXAMPLES / "custom_tableau.toml"
CUSTOM_JSON = EXAMPLES / "custom_tableau.json"
ALL_KEYS = {"name", "aliases", "citation", "order", "control_order", "A", "b", "c"}


R = sp.Rational
S3 = sp.sqrt(3)


def order3_residuals(t):
    """Order 3 (Σb = 1, Σbc = 1/2, Σbc² = 1/3, Σ b_i a_ij c_j = 1/6) and Hager's extra
    optimal-control condition of order 3, Σ d_j²/b_j = 1/3 (MATH.md 4), as residuals."""
    A, b, c, s = t.A, t.b, t.c, t.stages
    d = [sum(b[i] * A[i, j] for i in range(s)) for j in range(s)]
    return [sum(b) - 1,
            sum(b[i] * c[i] for i in range(s)) - R(1, 2),
            sum(b[i] * c[i] ** 2 for i in range(s)) - R(1, 3),
            sum(b[i] * A[i, j] * c[j] for i in range(s) for j in range(s)) - R(1, 6),
            sum(d[j] ** 2 / b[j] for j in range(s)) - R(1, 3)]


@pytest.mark.parametrize("path", [CUSTOM_TOML, CUSTOM_JSON], ids=["toml", "json"])
def test_example_files_show_every_key(path):
    data = read_data_file(path)
    assert set(data) == ALL_KEYS
    assert data["citation"] and data["aliases"]


def test_custom_toml():
    t = load_tableau(CUSTOM_TOML)
    assert t.name == "Kutta family 3 (c2 = 2/5)"
    assert t.aliases == ("RK3 c2=2/5", "my-rk3")
    assert "Kutta" in t.citation
    assert t.A == sp.ImmutableMatrix([[0, 0, 0], [R(2, 5), 0, 0], [R(-7, 8), R(15, 8), 0]])
    assert t.b == sp.ImmutableMatrix([R(1, 12), R(25, 36), R(2, 9)])
    assert t.c == sp.ImmutableMatrix([0, R(2, 5), 1])
    assert t.is_exact and t.kind == "explicit" and t.weights_positive
    assert (t.literature_order, t.literature_control_order) == (3, 3)
    assert all(r == 0 for r in order3_residuals(t))


def test_custom_json():
    t = load_tableau(CUSTOM_JSON)
    g = (3 - S3) / 6
    assert t.name.startswith("SDIRK 2-stage order 3")
    assert t.aliases == ("SDIRK23 minus", "my-sdirk3")
    assert sp.simplify(t.A[0, 0] - g) == 0 and sp.simplify(t.A[1, 1] - g) == 0
    assert t.A[0, 1] == 0 and sp.simplify(t.A[1, 0] - (1 - 2 * g)) == 0
    assert t.b == sp.ImmutableMatrix([R(1, 2), R(1, 2)])
    assert sp.simplify(t.c[1] - (1 - g)) == 0
    assert t.is_exact and t.kind == "diagonally implicit" and not t.is_symplectic
    assert (t.literature_order, t.literature_control_order) == (3, 3)
    assert all(sp.simplify(r) == 0 for r in order3_residuals(t))


def test_custom_files_have_partners():
    for path in (CUSTOM_TOML, CUSTOM_JSON):
        t = load_tableau(path)
        assert t.partner().b == t.b


@pytest.mark.parametrize("path", [CUSTOM_TOML, CUSTOM_JSON], ids=["toml", "json"])
def test_custom_files_orders(path):
    t = load_tableau(path)
    assert classical_order(t).order == 3
    assert control_order(t).order == 3


def test_api_script_runs():
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, str(Path("examples") / "tableau_api.py")], cwd=ROOT,
                          env=env, capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    # RK4 (MATH.md 3.2 and 4): its partner, orders 4 and 4
    assert "RK4: 4 stages, explicit" in out
    for row in ("[1/6, -2/3, 1/3, 1/6]", "[1/6, 1/3, -1/6, 1/6]", "[1/6, 1/3, 1/3, -1/3]",
                "[1/6, 1/3, 1/3, 1/6]"):
        assert row in out
    rk4_part = out.split("Explicit midpoint")[0]
    assert "classical order: 4" in rk4_part and "control order: 4" in rk4_part
    # explicit midpoint: b_1 = 0
    assert "no partner tableau" in out and "control order: undefined (b_1 = 0" in out
    # the two custom files
    assert "Kutta family 3 (c2 = 2/5): 3 stages, explicit" in out
    assert "SDIRK 2-stage order 3" in out and "diagonally implicit" in out
    assert out.count("classical order: 3") == 2 and out.count("control order: 3") == 2
    assert "symplectic (its own partner): False" in out
    assert "\\begin{array}" in out
    assert "refused: typed-in: A[1][0]: unknown function '__import__'" in out


def test_solve_api_script_runs():
    done = subprocess.run([sys.executable, str(Path("examples") / "solve_api.py")], cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "Taylor test rates [2.0, 2.0, 2.0]" in lines[0]
    assert "converged: True" in lines[1] and "controls on a bound: 0" not in lines[1]
    assert lines[-1] == "verdict: pass"


def test_network_script_runs(tmp_path):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "train_network.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    accuracy = float(lines[0].split()[2].rstrip(","))
    assert accuracy >= 0.95  # two moons with noise 0.1 separate almost perfectly
    rates = [float(r) for r in lines[1].split("[")[1].split("]")[0].split()]
    assert min(rates) >= 1.95
    assert (tmp_path / "two_moons_model.json").is_file()
