"""The ``ocgen`` command line (ocgen.cli.main), run in-process with captured output."""

import json

import pytest
import sympy as sp

from ocgen.cli import main
from ocgen.tableau import builtin_names, load_tableau


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tableau_list(capsys):
    code, out, err = run(capsys, "tableau", "list")
    assert code == 0 and err == ""
    assert out.splitlines()[0].split()[:3] == ["name", "stages", "kind"]
    for name in builtin_names():
        assert name in out


def test_tableau_list_json(capsys):
    code, out, _ = run(capsys, "tableau", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == builtin_names()
    assert {"name", "aliases", "stages", "kind", "order", "control_order"} <= set(rows[0])


def test_tableau_show_text_and_latex(capsys):
    code, out, _ = run(capsys, "tableau", "show", "RK4")
    assert code == 0 and "1/6" in out and "explicit" in out
    code, out, _ = run(capsys, "tableau", "show", "rk4", "--latex")
    assert code == 0 and out.startswith("\\begin{array}")


def test_tableau_show_json_round_trip(capsys, tmp_path):
    code, out, _ = run(capsys, "tableau", "show", "gauss3", "--json")
    assert code == 0
    path = tmp_path / "copy.json"
    path.write_text(out, encoding="utf-8")
    copy, original = load_tableau(path), load_tableau("gauss3")
    assert copy.name == original.name
    for M, N in ((copy.A, original.A), (copy.b, original.b), (copy.c, original.c)):
        assert all(sp.simplify(x - y) == 0 for x, y in zip(M, N))
    # and a file path works wherever a name does
    code, out, _ = run(capsys, "order", str(path), "--json")
    assert code == 0 and json.loads(out)["order"] == 6


def test_order_json_keys(capsys):
    code, out, err = run(capsys, "order", "ssprk3", "--json")
    assert code == 0 and err == ""
    cert = json.loads(out)
    assert {"name", "stages", "explicit", "kind", "order", "order_at_least", "control_order",
            "control_order_reason", "weights_positive", "symplectic", "exact", "tolerance",
            "partner", "c_tilde", "failed_conditions"} <= set(cert)
    assert cert["order"] == 3 and cert["control_order"] == 2  # MATH.md 4
    failed = [f for f in cert["failed_conditions"] if f["kind"] == "control"]
    assert failed[0]["formula"] == "Σ d_j²/b_j" and failed[0]["value"] == "5/6"


def test_order_several_gives_a_list(capsys):
    code, out, _ = run(capsys, "order", "rk4", "midpoint", "--json", "--max-order", "5",
                       "--max-control-order", "4")
    certs = json.loads(out)
    assert code == 0 and [c["order"] for c in certs] == [4, 2]
    assert certs[0]["control_order"] == 4 and certs[0]["control_order_at_least"] is True
    assert certs[1]["control_order"] is None and "b_1 = 0" in certs[1]["control_order_reason"]


def test_order_text(capsys):
    code, out, _ = run(capsys, "order", "SSPRK3")
    assert code == 0
    assert "Classical order: 3" in out and "Optimal-control order: 2" in out
    assert "Σ d_j²/b_j = 5/6, needs 1/3" in out


def test_every_command_has_help(capsys):
    # The end-to-end demo itself (solves and verifies) is tested with the solver commands.
    for name in ("tableau", "order", "demo"):
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
    assert "ocgen" in capsys.readouterr().out


def _assert_user_error(code, out, err, *fragments):
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocgen: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_unknown_tableau(capsys):
    _assert_user_error(*run(capsys, "order", "no-such-method"), "unknown tableau")
    _assert_user_error(*run(capsys, "tableau", "show", "no-such-method"), "unknown tableau")


def test_missing_and_malformed_files(capsys, tmp_path):
    _assert_user_error(*run(capsys, "order", str(tmp_path / "missing.toml")), "no such file")
    bad = tmp_path / "bad.toml"
    bad.write_text('A = [[0, 0], [1, 0]]\nb = ["1/2", "__import__(\'os\')"]\n', encoding="utf-8")
    _assert_user_error(*run(capsys, "order", str(bad)), "bad.toml", "b[1]")
    ragged = tmp_path / "ragged.json"
    ragged.write_text('{"A": [[0, 0], [1]], "b": [0.5, 0.5]}', encoding="utf-8")
    _assert_user_error(*run(capsys, "tableau", "show", str(ragged)), "ragged.json", "A[1]")


def test_bad_max_order(capsys):
    _assert_user_error(*run(capsys, "order", "rk4", "--max-order", "0"), "max_order")


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["order"])  # argparse: TABLEAU is required
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == ("ocgen: error: ocgen order: the following arguments are required: TABLEAU; "
                   "see `ocgen order --help`\n")
    assert main([]) == 2
