"""ocgen: Runge–Kutta tableaux and optimal control problems to solvers whose discrete
optimality conditions are derived (SymPy), generated (Jinja2) and checked."""

__version__ = "0.1.0"
