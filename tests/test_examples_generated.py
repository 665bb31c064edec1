"""generated/ holds exactly what the generator emits today (CI fails on any difference).

The files are generated inside the tests, not while pytest collects them, so that mutation
testing (README) sees the generator run under each mutant."""

from pathlib import Path

from ocgen.examples import example_files

GENERATED = Path(__file__).resolve().parent.parent / "generated"


def test_committed_generated_code_is_current():
    files = example_files()
    committed = sorted(path.name for path in GENERATED.glob("*.py"))
    assert sorted(files) == committed, (
        "generated/ does not hold one file per example: run `python -m ocgen.examples`")
    for name, text in files.items():
        assert (GENERATED / name).read_text(encoding="utf-8") == text, (
            f"generated/{name} differs from the generator's output: run "
            "`python -m ocgen.examples`")


def test_generated_code_holds_no_data():
    """Initial states and member parameters are arguments: no data array reaches the text,
    and the NumPy module does not even fix the number of members."""
    for name, text in example_files().items():
        assert "INITIAL_STATES" not in text and "PARAMETER_VALUES" not in text, name
        assert ("MEMBERS = " in text) == name.endswith("_casadi.py"), name
