"""Code generation: print a :class:`~ocgen.derive.Discretisation` through Jinja2 templates.

The derivation hands over equations; this module only turns them into code lines (with
common-subexpression elimination) and lets ``templates/<backend>/module.py.j2`` arrange them.
Output is deterministic: the same inputs give byte-identical text.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from dataclasses import replace as replace_fields
from functools import cache
from pathlib import Path

import jinja2
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from . import __version__
from .errors import OcgenError
from .derive import (CostateStep, Discretisation, InternalSymbol, LinearStages, Method,
                     discretise)
from .files import write_text_atomic, written_in_place
from .pair import PartitionedTableau, load_method
from .problem import PARTS, OptimalControlProblem, load_problem
from .tableau import as_number
from .text import docstring_text, python_string

BACKENDS = ("numpy", "casadi")


class _NumPyPrinter(NumPyPrinter):
    """NumPy printer writing x**-n as 1/x**n."""

    def _print_Pow(self, expr, rational=False):
        if expr.exp.is_Integer and expr.exp.is_negative:
            base = self.parenthesize(expr.base, sp.printing.precedence.PRECEDENCE["Pow"])
            power = "" if expr.exp == -1 else f"**{-expr.exp}"
            return f"1/{base}{power}" if power == "" else f"1/({base}{power})"
        return super()._print_Pow(expr, rational=rational)


def _numeric(expr: sp.Expr) -> sp.Expr:
    """Irrational constants (surds of the tableau) as 17-digit floats; rationals stay exact."""
    return as_number(expr).replace(
        lambda e: e.is_number and not e.is_Rational and not e.is_Float and not e.free_symbols,
        lambda e: e.evalf(17))


class Emitter:
    """Turns assignments into code lines with CSE; temporaries are numbered across a function."""

    def __init__(self, printer):
        self.printer = printer
        self.counter = 0

    def reset(self) -> None:
        self.counter = 0

    def expr(self, expr) -> str:
        return self.printer.doprint(_numeric(expr))

    def block(self, targets: list[str], exprs: list[sp.Expr], members=None) -> list[str]:
        """``target = expr`` lines, sharing common subexpressions as ``_t<k>`` temporaries.

        With ``members`` (the symbols that carry the ensemble axis), a result that depends on
        none of them gets ``+ zero`` so that every result is an array over the members.
        """
        exprs = [_numeric(e) for e in exprs]
        _check_internal(exprs)
        temps = (InternalSymbol(f"_t{k}") for k in range(self.counter, 10**9))
        replacements, reduced = sp.cse(exprs, symbols=temps, order="canonical")
        self.counter += len(replacements)
        lines = [f"{s} = {self.printer.doprint(e)}" for s, e in replacements]
        for target, expr, original in zip(targets, reduced, exprs):
            code = self.printer.doprint(expr)
            if members is not None and not original.free_symbols & members:
                code += " + zero"
            lines.append(f"{target} = {code}")
        return lines

    def sequence(self, pairs, members=None) -> list[str]:
        """Ordered assignments (symbol, expr), CSE'd in runs that do not use their own targets."""
        lines, run = [], []
        for target, expr in pairs:
            if any(expr.has(t) for t, _ in run):
                lines += self.block([str(t) for t, _ in run], [e for _, e in run], members)
                run = []
            run.append((target, expr))
        if run:
            lines += self.block([str(t) for t, _ in run], [e for _, e in run], members)
        return lines


def _check_internal(exprs) -> None:
    """Generated code speaks only of internal symbols (a user's name could shadow one)."""
    stray = {x for e in exprs for x in e.free_symbols if not isinstance(x, InternalSymbol)}
    if stray:  # a derivation bug, not a user error
        raise RuntimeError(f"user symbols reached generated code: {sorted(map(str, stray))}")


@dataclass(frozen=True)
class PrintedLinear:
    """Code for stage unknowns: ``sequence`` lines, or lines filling ``M`` and ``r``."""

    names: list
    sequence: list | None
    system: list | None


def _linear(stages: LinearStages, emit: Emitter, members: set) -> PrintedLinear:
    names = [str(x) for row in stages.unknowns for x in row]
    if stages.sequence is not None:
        return PrintedLinear(names, emit.sequence(stages.sequence, members), None)
    M, r = stages.matrix, stages.rhs
    entries = [(i, j) for i in range(M.rows) for j in range(M.cols) if M[i, j] != 0]
    lines = emit.block([f"M[:, {i}, {j}]" for i, j in entries] +
                       [f"r[:, {i}]" for i in range(r.rows)],
                       [M[i, j] for i, j in entries] + list(r))
    return PrintedLinear(names, None, lines)


def _tuple(names) -> str:
    return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"


def _costate_step(step: CostateStep, emit: Emitter, members: set, multipliers) -> dict:
    """Lines of one backward step: the stage unknowns, then p_n, ∂J_h/∂u and the step's part of
    ∂J_h/∂q (``core``), then the stage costates and the step-size terms (``extras``, skipped
    when only those gradients are wanted)."""
    emit.reset()
    linear = _linear(step.stages, emit, members)
    d, s = len(step.previous_costate), len(step.stage_costates)
    G, m = len(step.control_gradient), len(step.control_gradient[0])
    p = [f"out_p_{k}" for k in range(d)]
    P = [f"out_P_{i}_{k}" for i in range(s) for k in range(d)]
    g_u = [f"out_g_{g}_{l}" for g in range(G) for l in range(m)]
    g_w = [f"out_gw_{j}" for j in range(len(step.parameter_gradient))]
    core = emit.block(p + g_u + g_w, list(step.previous_costate)
                      + [e for row in step.control_gradient for e in row]
                      + list(step.parameter_gradient), members)
    extras = emit.block(P + ["out_g_h", "out_rho"],
                        [e for row in step.stage_costates for e in row]
                        + [step.step_gradient, step.previous_time_costate], members)
    lam = _tuple([str(x) for row in multipliers for x in row]) if multipliers else "None"
    return {"linear": linear, "core": core, "extras": extras,
            "returns_core": f"{_tuple(p)}, None, {lam}, {_tuple(g_u)}, {_tuple(g_w)}, None, None",
            "returns": f"{_tuple(p)}, {_tuple(P)}, {lam}, {_tuple(g_u)}, {_tuple(g_w)}, "
                       "out_g_h, out_rho"}


def _reuse_slopes(step: CostateStep, disc: Discretisation) -> CostateStep:
    """The costate step with every stage slope f(τ_i, Y_i, u_g(i)) written as F_i, the value
    the forward sweep computed (e.g. tanh(z) in the derivative 1 − tanh(z)²): the same
    expressions, evaluated without recomputing the dynamics."""
    slopes = {expr: F for F, expr in disc.slopes if not (expr.is_Symbol or expr.is_number)}
    replace = lambda e: e.xreplace(slopes)  # noqa: E731
    rows = lambda rows: tuple(tuple(replace(e) for e in row) for row in rows)  # noqa: E731
    stages = step.stages
    if stages.sequence is not None:
        stages = replace_fields(stages, sequence=tuple((x, replace(e))
                                                       for x, e in stages.sequence))
    else:
        stages = replace_fields(stages, matrix=stages.matrix.xreplace(slopes),
                                rhs=stages.rhs.xreplace(slopes))
    return replace_fields(
        step, stages=stages, previous_costate=tuple(map(replace, step.previous_costate)),
        stage_costates=rows(step.stage_costates), control_gradient=rows(step.control_gradient),
        parameter_gradient=tuple(map(replace, step.parameter_gradient)),
        step_gradient=replace(step.step_gradient),
        previous_time_costate=replace(step.previous_time_costate))


def input_hash(tableau: Method, problem: OptimalControlProblem, controls: str,
               backend: str) -> str:
    """SHA-256 of everything the generated text depends on (first 16 hex digits). Not the
    data: initial states and member parameter values are arguments of the generated code, and
    only the CasADi transcription depends on the number of members."""
    described = {
        "generator": __version__, "backend": backend, "controls": controls,
        "tableau": tableau.to_dict(),
        "problem": {"name": problem.name, "time": str(problem.time),
                    "states": [str(s) for s in problem.states],
                    "controls": [str(u) for u in problem.controls],
                    "dynamics": [sp.srepr(e) for e in problem.dynamics],
                    "running_cost": sp.srepr(problem.running_cost),
                    "terminal_cost": sp.srepr(problem.terminal_cost),
                    "horizon": [problem.t0, problem.T],
                    "bounds": problem.control_bounds,
                    "member_parameters": [str(p) for p, _ in problem.member_parameters],
                    "free_parameters": [(str(q), v) for q, v in problem.free_parameters]},
    }
    if problem.partition:
        described["problem"]["partition"] = list(problem.partition)
    if backend == "casadi":
        described["problem"]["members"] = problem.members
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def template_dir() -> Path:
    """The Jinja2 templates: ocgen/templates in a wheel, templates/ beside ocgen/ in a source
    tree (an editable install or a checkout on the path)."""
    here = Path(__file__).resolve().parent
    for folder in (here / "templates", here.parent / "templates"):
        if (folder / "numpy" / "module.py.j2").is_file():
            return folder
    raise OcgenError(f"the code templates are missing (looked in {here / 'templates'} and "
                     f"{here.parent / 'templates'}); reinstall ocgen")


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)


def _float(x: float) -> str:
    """A float literal at full precision (``numpy.inf`` for infinities)."""
    x = float(x)
    if x in (float("inf"), float("-inf")):
        return "numpy.inf" if x > 0 else "-numpy.inf"
    return repr(x)


def numpy_context(disc: Discretisation) -> dict:
    """Everything the NumPy template needs, as strings and small lists."""
    problem, sym = disc.problem, disc.symbols
    emit = Emitter(_NumPyPrinter({"fully_qualified_modules": True}))
    d, m = problem.state_dim, problem.control_dim
    members = {*sym.y, *(x for row in sym.Y for x in row), *sym.p, *sym.params, sym.rho,
               *(x for row in sym.lam for x in row), *(x for row in sym.P for x in row)}
    ctx = _common_context(disc, "numpy")
    if disc.implicit:
        R, J = disc.stage_residual, disc.stage_jacobian
        entries = [(i, j) for i in range(J.rows) for j in range(J.cols) if J[i, j] != 0]
        ctx["newton"] = emit.block(
            [f"R[{i}]" for i in range(R.rows)] + [f"J[:, {i}, {j}]" for i, j in entries],
            list(R) + [J[i, j] for i, j in entries])
        emit.reset()
        ctx["forward"] = emit.sequence(list(disc.slopes))
    else:
        ctx["newton"] = None
        ctx["forward"] = emit.sequence(list(disc.stage_sequence))
    ctx["forward_post"] = emit.block([f"y_next_{k}" for k in range(d)] + ["cost"],
                                     list(disc.next_state) + [disc.step_cost], members)
    emit.reset()
    n_free = len(sym.free)
    ctx["terminal"] = emit.block([f"p_end[{k}]" for k in range(d)] + ["cost[...]"]
                                 + [f"g_free[{j}]" for j in range(n_free)],
                                 list(disc.terminal_costate) + [disc.terminal_cost]
                                 + list(disc.terminal_parameter_gradient))
    members |= {x for row in sym.F for x in row}
    ctx["multiplier"] = _costate_step(_reuse_slopes(disc.multiplier, disc), emit, members,
                                      sym.lam)
    ctx["partner"] = (_costate_step(_reuse_slopes(disc.partner, disc), emit, members, None)
                      if disc.partner else None)
    ctx["F"] = [[str(x) for x in row] for row in sym.F]
    ctx["forward_returns"] = ", ".join([_tuple([str(x) for row in sym.Y for x in row]),
                                        _tuple([str(x) for row in sym.F for x in row]),
                                        _tuple([f"y_next_{k}" for k in range(d)]), "cost"])
    ctx["unpack"] = "\n    ".join(
        [f"{', '.join(map(str, sym.y))}, = y"]
        + [f"{', '.join(map(str, row))}, = u[{g}]" for g, row in enumerate(sym.u)]
        + ([f"{', '.join(map(str, sym.params))}, = q"] if sym.params else [])
        + ([f"{', '.join(map(str, sym.free))}, = w"] if sym.free else []))
    emit.reset()
    ctx["grid_control"] = (emit.block([f"u[..., {l}, :]" for l in range(m)],
                                      list(disc.grid_control))
                           if disc.grid_control is not None else None)
    ctx["inverse"] = None
    if disc.inverse_sequence is not None:
        emit.reset()
        ctx["inverse"] = emit.sequence(list(disc.inverse_sequence),
                                       members | set(disc.next_symbols))
        ctx["unpack_inverse"] = "\n    ".join(
            [f"{', '.join(map(str, disc.next_symbols))}, = y_next"] + ctx["unpack"].split(
                "\n    ")[1:])
        ctx["inverse_returns"] = ", ".join([_tuple([str(x) for row in sym.Y for x in row]),
                                            _tuple([str(x) for row in sym.F for x in row]),
                                            _tuple([str(x) for x in sym.y])])
    return ctx


def _common_context(disc: Discretisation, backend: str) -> dict:
    """Numbers as literals, and the user's names only as escaped text (ocgen.text): the
    templates get no raw user strings."""
    problem, tableau, sym = disc.problem, disc.tableau, disc.symbols
    lower, upper = problem.bounds_arrays()
    pair = isinstance(tableau, PartitionedTableau)
    parameter_names = [p.name for p, _ in problem.member_parameters]
    free_names = [q.name for q, _ in problem.free_parameters]
    listed = lambda symbols: docstring_text(", ".join(map(str, symbols)))  # noqa: E731
    return {
        "tableau_doc": docstring_text(tableau.name), "problem_doc": docstring_text(problem.name),
        "state_doc": listed(problem.states), "control_doc": listed(problem.controls),
        "parameter_doc": listed(parameter_names) if parameter_names else "none",
        "outside_theory_doc": docstring_text(disc.outside_theory or ""),
        "tableau_literal": python_string(tableau.name),
        "problem_literal": python_string(problem.name),
        "controls_literal": python_string(disc.controls),
        "parameter_names_literal": _tuple([python_string(n) for n in parameter_names]),
        "free_doc": listed(free_names) if free_names else "none",
        "free_names_literal": _tuple([python_string(n) for n in free_names]),
        "free_values": [_float(v) for _, v in problem.free_parameters],
        "w": [str(x) for x in sym.free],
        "kind": (f"partitioned pair, {'implicit' if disc.implicit else 'explicit'} on this "
                 "problem") if pair else tableau.kind,
        "controls": disc.controls,
        "parts_doc": "; ".join(
            docstring_text(f"{key} part ({part.name}): "
                           + ", ".join(map(str, problem.part_states(k))))
            for k, (key, part) in enumerate(zip(PARTS, tableau.parts))) if pair else "",
        "partition": list(problem.partition) if pair else [],
        "version": __version__, "hash": input_hash(tableau, problem, disc.controls, backend),
        "s": tableau.stages, "d": problem.state_dim, "m": problem.control_dim,
        "n_groups": disc.n_groups, "groups": list(disc.groups),
        "c": [_float(sp.N(x, 17)) for x in disc.stage_times],
        "group_weights": [_float(sp.N(x, 17)) for x in disc.group_weights],
        "t0": _float(problem.t0), "T": _float(problem.T),
        "lower": [_float(x) for x in lower], "upper": [_float(x) for x in upper],
        "y": [str(x) for x in sym.y], "p": [str(x) for x in sym.p],
        "Y": [[str(x) for x in row] for row in sym.Y],
        "q": [str(x) for x in sym.params],
    }


def generate(tableau, problem, controls: str = "stage", backend: str = "numpy") -> str:
    """The source text of a standalone module for (tableau or pair, problem, controls,
    backend)."""
    if backend not in BACKENDS:
        raise OcgenError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    return _render(load_method(tableau), load_problem(problem), controls, backend)


@cache
def _render(tableau: Method, problem: OptimalControlProblem, controls: str,
            backend: str) -> str:
    disc = discretise(problem, tableau, controls)
    if backend == "numpy":
        context = numpy_context(disc)
    else:
        from .casadi_context import casadi_context
        context = casadi_context(disc)
    return _environment().get_template(f"{backend}/module.py.j2").render(**context)


def module_name(tableau: Method, problem: OptimalControlProblem, controls: str,
                backend: str) -> str:
    """A file-system friendly name, e.g. ``rk4_lq_stage_numpy``, safe whatever the names hold."""
    from .tableau import normalise_name
    return "_".join([_slug(normalise_name(tableau.name).replace("*", "star"), "tableau"),
                     _slug(problem.name, "problem"), controls, backend])


def _slug(text: str, fallback: str) -> str:
    """``text`` as lower-case ASCII letters, digits and single ``_`` (≤ 48; accents dropped,
    so Störmer gives stormer), else ``fallback``."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:48].rstrip("_")
    return slug or fallback


def write_module(text: str, path: str | Path) -> Path:
    """Write generated source to ``path`` (its folder must exist) and return the path.

    A file is replaced whole or not at all; a symlink is followed, and a device such as
    /dev/stdout is written in place. Errors raise OcgenError naming ``path``.
    """
    path = Path(path)
    try:
        if written_in_place(path):
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
        else:
            write_text_atomic(Path(os.path.realpath(path)), text)
    except OSError as err:
        raise OcgenError(f"{path}: cannot write: {err.strerror or err}") from None
    return path
