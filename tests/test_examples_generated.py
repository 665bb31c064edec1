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
