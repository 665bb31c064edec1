"""The built-in examples whose generated code is committed under ``generated/``.

``python -m ocgen.examples`` rewrites them; the test suite regenerates and compares them
byte for byte, so a change in the derivation or the templates shows up as a diff.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .codegen import generate, module_name
from .problem import load_problem
from .tableau import load_tableau

EXAMPLES = (
    ("rk4", "lq", "stage", "numpy"),
    ("gauss2", "lq", "stage", "numpy"),
    ("kutta3", "nl", "stage", "numpy"),
    ("rk4", "vdp", "stage", "numpy"),
    ("rk4", "tanh_ensemble", "step", "numpy"),
    ("rk4", "lq", "stage", "casadi"),
    ("gauss2", "vdp", "stage", "casadi"),
)

NETWORK_EXAMPLES = (("rk4", "numpy"), ("rk4", "numba"))
"""The matrix-level module of the default network (tanh dynamics and activation, squares
loss, step controls: the paper's), which serves every width and depth, with either kernels."""


def example_files() -> dict[str, str]:
    """File name → generated text for every example."""
    from .nets.matrix_code import generate_network
    from .nets.model import Architecture
    files = {}
    for tableau, problem, controls, backend in EXAMPLES:
        name = module_name(load_tableau(tableau), load_problem(problem), controls, backend)
        files[f"{name}.py"] = generate(tableau, problem, controls, backend)
    network = Architecture(width=2, layers=20)
    for tableau, kernels in NETWORK_EXAMPLES:
        files[f"{tableau}_network_tanh_step_{kernels}.py"] = generate_network(network, tableau,
                                                                            kernels)
    return files


def write_examples(folder: str | Path = "generated") -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in example_files().items():
        (folder / name).write_text(text, encoding="utf-8")
        written.append(folder / name)
    return written


if __name__ == "__main__":
    for path in write_examples(sys.argv[1] if len(sys.argv) > 1 else "generated"):
        print(path)
