"""generated/ holds exactly what the generator emits today (CI fails on any difference)."""

from pathlib import Path

import pytest

from ocgen.examples import example_files

GENERATED = Path(__file__).resolve().parent.parent / "generated"


@pytest.mark.parametrize("name, text", sorted(example_files().items()))
def test_committed_generated_code_is_current(name, text):
    path = GENERATED / name
    assert path.exists(), f"generated/{name} is missing: run `python -m ocgen.examples`"
    assert path.read_text(encoding="utf-8") == text, (
        f"generated/{name} differs from the generator's output: run `python -m ocgen.examples`")


@pytest.mark.parametrize("name, text", sorted(example_files().items()))
def test_generated_code_holds_no_data(name, text):
    """Initial states and member parameters are arguments: no data array reaches the text,
    and the NumPy module does not even fix the number of members."""
    assert "INITIAL_STATES" not in text and "PARAMETER_VALUES" not in text
    assert ("MEMBERS = " in text) == name.endswith("_casadi.py")
