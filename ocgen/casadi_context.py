"""What ``templates/casadi/module.py.j2`` needs: the derivation printed for CasADi SX.

The CasADi backend transcribes the discrete problem of MATH.md 2 into an NLP for IPOPT. Every
expression comes from :mod:`ocgen.derive` (stage slopes, stage equations, next state, step and
terminal cost, the multiplier-form costate step); this module only prints them with a SymPy
printer whose functions are CasADi's, and with the same common-subexpression elimination as the
NumPy backend. Constraints are written "next - step = 0":

    Y_ni - (y_n + h_n sum_j a_ij f_nj) = 0        y_{n+1} - (y_n + h_n sum_i b_i f_ni) = 0

so that CasADi's multipliers (Lagrangian f + lam_g' g) are the negatives of those of MATH.md 3.1.
"""

from __future__ import annotations

from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

from .codegen import Emitter, _common_context
from .derive import Discretisation, InternalSymbol

#: SymPy function name -> CasADi function (all act elementwise on SX).
CASADI_FUNCTIONS = {
    name: f"casadi.{name}" for name in (
        "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "asinh",
        "acosh", "atanh", "exp", "log", "log10", "log1p", "expm1", "sqrt", "erf", "floor")
}
CASADI_FUNCTIONS.update({"ceiling": "casadi.ceil", "Abs": "casadi.fabs", "Min": "casadi.fmin",
                         "Max": "casadi.fmax"})


class CasadiPrinter(PythonCodePrinter):
    """Python code acting on casadi.SX: functions from ``casadi``, constants from ``numpy``,
    x**-n written as 1/x**n and x**(1/2) as casadi.sqrt(x)."""

    printmethod = "_casadicode"
    language = "Python with CasADi"
    _kf = CASADI_FUNCTIONS
    _kc = {"Exp1": "numpy.e", "E": "numpy.e", "Pi": "numpy.pi", "Infinity": "numpy.inf",
           "NaN": "numpy.nan", "ComplexInfinity": "numpy.nan"}

    def __init__(self, settings=None):
        super().__init__({"fully_qualified_modules": True, **(settings or {})})

    def _print_Pow(self, expr, rational=False):
        if expr.exp.is_Integer and expr.exp.is_negative:
            base = self.parenthesize(expr.base, PRECEDENCE["Pow"])
            return f"1/{base}" if expr.exp == -1 else f"1/({base}**{-expr.exp})"
        return self._hprint_Pow(expr, rational=rational, sqrt="casadi.sqrt")


def _flat(rows) -> list:
    return [x for row in rows for x in row]


def casadi_context(disc: Discretisation) -> dict:
    """Everything the CasADi template needs, as strings and small lists.

    ``step``: lines computing stage slopes ``F_i_k``, stage residuals ``R_i_k`` (stage equations
    Y_i - y - h sum_j a_ij f_j), ``y_next_k`` and ``cost`` of one step; ``terminal``: Phi and
    grad Phi and dPhi/dq of the free parameters q; ``costate``: p_n, stage costates P_i, dl/du_g
    and dl/dq of the multiplier form from given p_{n+1} and Lambda; ``grid_control``:
    u = phi(t, y, p) where known.
    """
    problem, tableau, sym = disc.problem, disc.tableau, disc.symbols
    s, d, m = tableau.stages, problem.state_dim, problem.control_dim
    emit = Emitter(CasadiPrinter())
    ctx = _common_context(disc, "casadi")

    # Stage equations in the form "Y_i - (stage value the method assigns) = 0".
    residual_names = [f"R_{i}_{k}" for i in range(s) for k in range(d)]
    if disc.implicit:
        residuals = list(disc.stage_residual)
    else:
        assigned = dict(disc.stage_sequence)
        residuals = [Y - assigned[Y] for Y in _flat(sym.Y)]
    pairs = list(disc.slopes)
    pairs += [(InternalSymbol(n), e) for n, e in zip(residual_names, residuals)]
    pairs += [(InternalSymbol(f"y_next_{k}"), e) for k, e in enumerate(disc.next_state)]
    pairs += [(InternalSymbol("cost"), disc.step_cost)]
    ctx["step"] = emit.sequence(pairs)
    ctx["residual_names"] = residual_names
    ctx["next_names"] = [f"y_next_{k}" for k in range(d)]

    emit.reset()
    ctx["terminal_names"] = [f"p_end_{k}" for k in range(d)]
    ctx["terminal_free_names"] = [f"g_free_{j}" for j in range(len(sym.free))]
    ctx["terminal"] = emit.block(ctx["terminal_names"] + ["terminal_cost"]
                                 + ctx["terminal_free_names"],
                                 list(disc.terminal_costate) + [disc.terminal_cost]
                                 + list(disc.terminal_parameter_gradient))

    step = disc.multiplier
    emit.reset()
    ctx["previous_names"] = [f"p_prev_{k}" for k in range(d)]
    ctx["stage_costate_names"] = [f"P_{i}_{k}" for i in range(s) for k in range(d)]
    ctx["gradient_names"] = [f"g_u_{g}_{l}" for g in range(disc.n_groups) for l in range(m)]
    ctx["free_gradient_names"] = [f"g_w_{j}" for j in range(len(sym.free))]
    ctx["costate"] = emit.block(
        ctx["previous_names"] + ctx["stage_costate_names"] + ctx["gradient_names"]
        + ctx["free_gradient_names"],
        list(step.previous_costate) + _flat(step.stage_costates) + _flat(step.control_gradient)
        + list(step.parameter_gradient))

    emit.reset()
    ctx["grid_names"] = [f"control_{l}" for l in range(m)]
    ctx["grid_control"] = (emit.block(ctx["grid_names"], list(disc.grid_control))
                           if disc.grid_control is not None else None)
    ctx["lam_flat"] = [str(x) for x in _flat(sym.lam)]
    ctx["Y_flat"] = [str(x) for x in _flat(sym.Y)]
    ctx["u_flat"] = [str(x) for x in _flat(sym.u)]
    ctx["members"] = problem.members
    return ctx
