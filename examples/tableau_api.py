"""ocgen's tableau API from Python: load methods, inspect them, find their partner and orders.

Run from anywhere:

    python examples/tableau_api.py

Methods are loaded by built-in name (case-insensitive, aliases work) or from a .toml/.json
file; every entry is an exact SymPy number, so the verdicts below are exact.
"""

from pathlib import Path

import sympy as sp

from ocgen.errors import InputError
from ocgen.order import classical_order, control_order
from ocgen.tableau import ButcherTableau, ZeroWeightError, load_tableau

HERE = Path(__file__).resolve().parent


def show_matrix(label: str, matrix: sp.Matrix) -> None:
    print(f"  {label} =")
    for i in range(matrix.rows):
        print("    [" + ", ".join(str(entry) for entry in matrix.row(i)) + "]")


def describe(tableau: ButcherTableau) -> None:
    print(f"{tableau.name}: {tableau.stages} stages, {tableau.kind}")
    show_matrix("A", tableau.A)
    print("  b =", list(tableau.b))
    print("  c =", list(tableau.c))

    # The partner tableau Ã = 1bᵀ − B⁻¹AᵀB drives the costate (MATH.md 3.2);
    # it exists only when every weight b_i ≠ 0.
    try:
        show_matrix("partner Ã", tableau.partner().A)
    except ZeroWeightError as err:
        print(f"  no partner tableau: {err}")
    print(f"  symplectic (its own partner): {tableau.is_symplectic}")

    # Classical order, and the order of the discretised optimal control problem.
    classical = classical_order(tableau)
    control = control_order(tableau)
    print(f"  classical order: {classical.order}")
    if control.order is None:
        print(f"  control order: undefined ({control.reason})")
    else:
        print(f"  control order: {control.order}")
    print()


def main() -> None:
    # Built-in methods, by name or alias.
    describe(load_tableau("RK4"))
    describe(load_tableau("explicit midpoint"))  # b_1 = 0: no partner, control order undefined

    # A user's own methods, from a TOML and a JSON file.
    describe(load_tableau(HERE / "custom_tableau.toml"))
    describe(load_tableau(HERE / "custom_tableau.json"))

    # A method written in Python; the LaTeX is ready for a paper.
    r = sp.Rational
    heun = ButcherTableau("Heun 2", A=[[0, 0], [1, 0]], b=[r(1, 2), r(1, 2)])
    print(heun.latex())
    print()
    print(heun.to_toml())  # the same method as a file ocgen reads back

    # Bad input is refused with the place named, never evaluated.
    try:
        ButcherTableau.from_dict({"A": [[0, 0], ["__import__('os')", 0]], "b": [1, 0]},
                                 source="typed-in")
    except InputError as err:
        print(f"refused: {err}")


if __name__ == "__main__":
    main()
