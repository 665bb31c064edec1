"""Printing a network's matrix-level derivation (:mod:`ocgen.nets.matrix`) through
``templates/numpy/network.py.j2``, and the module a network trains with.

Matrix nodes print as NumPy matrix products (``@``, ``.T``, ``.sum(axis=1, keepdims=True)`` for
a product with a column of ones, broadcasting for β1ᵀ), pointwise nodes as elementwise NumPy
(linear combinations with their scalar factors first, everything else through the CSE emitter of
:mod:`ocgen.codegen`), pairings as ``numpy.vdot``. The tableau's numbers are exact until printed,
as on the scalar path. The same inputs give byte-identical text, whatever the width.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from functools import cache

import sympy as sp

from .. import __version__
from ..codegen import Emitter, _environment, _float, _NumPyPrinter, _numeric
from ..derive import OutsideTheoryWarning
from ..tableau import ButcherTableau, load_tableau
from ..text import docstring_text, python_string
from .matrix import (POINTS, Assign, NetworkDerivation, derive_network, entry, prune,
                     supports)
from .model import Architecture, network_problem


class _Printer(_NumPyPrinter):
    """The scalar printer of the NumPy backend, with pairings and totals."""

    def _print_Pairing(self, expr):
        return f"numpy.vdot({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_Total(self, expr):
        return f"numpy.sum({self._print(expr.args[0])})"


def _small(X) -> bool:
    """An array without the points axis (K, β, W, a d × d product)."""
    return POINTS not in X.shape[0].free_symbols | X.shape[1].free_symbols


class NodePrinter:
    """Code lines for :class:`~ocgen.nets.matrix.Assign` nodes."""

    def __init__(self):
        self.emit = Emitter(_Printer({"fully_qualified_modules": True}))

    def scalar(self, expr) -> str:
        return self.emit.expr(expr)

    # matrix expressions
    def matrix(self, e) -> str:
        if isinstance(e, sp.MatrixSymbol):
            return e.name
        if isinstance(e, sp.Transpose):
            return f"{self._atom(e.arg)}.T"
        if isinstance(e, sp.Identity):
            return f"numpy.identity({self.scalar(e.rows)})"
        if isinstance(e, sp.MatAdd):
            return self._sum([self.matrix(t) for t in e.args])
        if isinstance(e, sp.MatMul):
            return self._product(e)
        raise NotImplementedError(f"cannot print {type(e).__name__}: {e}")

    def _atom(self, e) -> str:
        text = self.matrix(e)
        return text if isinstance(e, (sp.MatrixSymbol, sp.Transpose)) else f"({text})"

    @staticmethod
    def _sum(terms: list[str]) -> str:
        text = terms[0]
        for term in terms[1:]:
            text += f" - {term[1:]}" if term.startswith("-") else f" + {term}"
        return text

    def _product(self, e) -> str:
        coefficient, factors = e.as_coeff_matrices()
        factors = list(factors)
        total = False
        if isinstance(factors[-1], sp.OneMatrix):
            if factors[-1].shape == (POINTS, 1):
                total = True  # X 1: the sum over the points
            # (·) 1ᵀ with a column: broadcast along the points
            factors.pop()
        scaled = None
        if coefficient != 1 and not _small(e) and not total:
            scaled = next((k for k, f in enumerate(factors) if _small(f)), None)
        parts = []
        for k, f in enumerate(factors):
            text = self._atom(f)
            if k == scaled:
                text = f"({self._coefficient(coefficient)}{text})" if coefficient != -1 \
                    else f"(-{text})"
            parts.append(text)
        text = " @ ".join(parts)
        if total:
            text = f"{text if len(parts) == 1 else '(' + text + ')'}.sum(axis=1, keepdims=True)"
        single = len(parts) == 1
        if coefficient == 1 or scaled is not None:
            return text
        if coefficient == -1:
            return f"-{text}" if single else f"-({text})"
        return f"{self._coefficient(coefficient)}{text}" if single \
            else f"{self._coefficient(coefficient)}({text})"

    def _factor(self, c) -> str:
        """A scalar factor; a fraction in parentheses, so that it reads as one number."""
        text = self.scalar(c)
        return f"({text})" if isinstance(_numeric(c), sp.Rational) and not c.is_Integer else text

    def _coefficient(self, c) -> str:
        text = self.scalar(c)
        return f"({text})*" if isinstance(_numeric(c), sp.Add) else f"{text}*"

    # pointwise expressions
    def linear(self, expr, arrays: dict) -> str | None:
        """Σ c·v over arrays v with scalar c, scalars first (one array operation per term);
        None when expr is not such a combination."""
        combination = {}
        for term in sp.Add.make_args(sp.expand(expr)):
            found = [x for x in term.free_symbols if x.name in arrays]
            if len(found) != 1:
                return None
            v, = found
            c = sp.cancel(term / v)
            if c.free_symbols & set(found) or any(x.name in arrays for x in c.free_symbols):
                return None
            combination[v] = combination.get(v, 0) + c
        parts = []
        for v in sorted(combination, key=lambda x: _natural(x.name)):
            c = _numeric(combination[v])
            if c == 0:
                continue
            if c == 1:
                parts.append(v.name)
            elif c == -1:
                parts.append(f"-{v.name}")
            elif isinstance(c, sp.Add):
                parts.append(f"({self.scalar(c)})*{v.name}")
            elif c.could_extract_minus_sign():
                parts.append(f"-{self._factor(-c)}*{v.name}")
            else:
                parts.append(f"{self._factor(c)}*{v.name}")
        return self._sum(parts) if parts else None

    def lines(self, nodes, arrays: dict) -> list[str]:
        """The nodes in order; neighbouring pointwise nodes share common subexpressions."""
        out, run = [], []

        def flush():
            if run:
                out.extend(self.emit.sequence([(entry(n.target), n.value) for n in run]))
                run.clear()

        for node in nodes:
            operator = "+=" if node.accumulate else "="
            name = str(node.target.name)
            if node.kind == "pointwise":
                if node.value == 0:
                    flush()
                    out.append(f"{name} = numpy.zeros(({self.scalar(node.target.rows)}, "
                               f"{self.scalar(node.target.cols)}))")
                    continue
                text = self.linear(node.value, arrays)
                if text is None:
                    run.append(node)
                    continue
                flush()
                out.append(f"{name} {operator} {text}")
                continue
            flush()
            value = self.matrix(node.value) if node.kind == "matrix" else self.scalar(node.value)
            out.append(f"{name} {operator} {value}")
        flush()
        return out


def _natural(name: str):
    head, _, tail = name.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (name, -1)


def _arrays(derivation: NetworkDerivation) -> dict:
    """Every array of the generated code, by name (pointwise symbols are looked up here)."""
    found = {}
    nodes = [*derivation.forward_start, *derivation.forward, *derivation.forward_post,
             *derivation.terminal, *derivation.layer.forward, *derivation.layer.backward]
    for sweep in derivation.sweeps.values():
        nodes += [*sweep.start, *sweep.loop, *sweep.core, *sweep.extras]
    for node in nodes:
        if isinstance(node.target, sp.MatrixSymbol):
            found[node.target.name] = node.target
        if node.kind == "matrix":
            found.update((X.name, X) for X in node.value.atoms(sp.MatrixSymbol))
    for name in ("c", "weight", "share", "y", "p"):
        found.setdefault(name, sp.MatrixSymbol(name, 1, POINTS))
    return found


def input_hash(derivation: NetworkDerivation) -> str:
    """SHA-256 of everything the generated text depends on (first 16 hex digits)."""
    arch = derivation.arch
    described = {"generator": __version__, "backend": "numpy-network",
                 "tableau": derivation.tableau.to_dict(), "dynamics": arch.dynamics,
                 "activation": arch.activation, "loss": arch.loss, "net": arch.depth == "net",
                 "tikhonov": str(sp.nsimplify(arch.tikhonov, rational=True)),
                 "gamma": str(sp.nsimplify(arch.gamma, rational=True))
                 if arch.dynamics == "antisymmetric" else None, "controls": arch.controls}
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def network_context(derivation: NetworkDerivation) -> dict:
    """What the network template needs, as strings and lists of code lines."""
    arch, tableau = derivation.arch, derivation.tableau
    printer = NodePrinter()
    arrays = _arrays(derivation)

    def code(nodes):
        printer.emit.reset()
        return printer.lines(nodes, arrays)

    layer = derivation.layer
    products = [Assign(sp.MatrixSymbol("f_Y'V", *layer.Y.shape), layer.cotangent_Y, "matrix"),
                Assign(sp.MatrixSymbol("f_K'V", *layer.K.shape), layer.cotangent_K, "matrix"),
                Assign(sp.MatrixSymbol("f_beta'V", *layer.beta.shape), layer.cotangent_beta,
                       "matrix")]
    sweeps = {}
    for form, sweep in derivation.sweeps.items():
        sweeps[form] = {
            "start": code(sweep.start), "loop": code(sweep.loop), "core": code(sweep.core),
            "extras": code(sweep.extras),
            "unknowns": [X.name for X in sweep.unknowns],
            "multipliers": sorted((X.name for X in sweep.unknowns if X.name.startswith("lam")),
                                  key=_natural),
            "previous": sweep.previous.name,
            "stage_costates": [X.name for X in sweep.stage_costates],
            "step_gradient": sweep.step_gradient.name}
    problem = network_problem(Architecture(width=1, layers=1, dynamics=arch.dynamics,
                                           activation=arch.activation, loss=arch.loss,
                                           tikhonov=arch.tikhonov))
    parameter_names = [q.name for q, _ in problem.member_parameters]
    net = " (plain Net: f - y, h = 1)" if arch.depth == "net" else ""
    gamma = f", gamma {arch.gamma}" if arch.dynamics == "antisymmetric" else ""
    regularisation = f", Tikhonov {arch.tikhonov}" if arch.tikhonov else ""
    return {
        "version": __version__, "hash": input_hash(derivation),
        "tableau_doc": docstring_text(tableau.name), "kind": tableau.kind,
        "tableau_literal": python_string(tableau.name),
        "network_doc": docstring_text(f"{arch.dynamics} dynamics{net}, {arch.activation} "
                                      f"activation{gamma}, {arch.loss} loss{regularisation}"),
        "network_literal": python_string(f"{arch.dynamics}_{arch.activation}_{arch.loss}"
                                         + ("_net" if arch.depth == "net" else "")),
        "controls": arch.controls, "controls_literal": python_string(arch.controls),
        "s": tableau.stages, "n_groups": derivation.n_groups,
        "groups": list(derivation.groups),
        "c": [_float(sp.N(x, 17)) for x in tableau.c],
        "parameter_names": parameter_names,
        "parameter_names_literal": "(" + ", ".join(python_string(n) for n in parameter_names)
                                   + ("," if len(parameter_names) == 1 else "") + ")",
        "regularised": bool(arch.tikhonov),
        "layer_forward": code(layer.forward), "layer_backward": code(layer.backward)
        + code(products),
        "forward_start": code(derivation.forward_start), "forward": code(derivation.forward),
        "stage_unknowns": [X.name for X in derivation.stage_unknowns],
        "forward_post": code(derivation.forward_post),
        "terminal_cost": code(prune(derivation.terminal, {"terminal"})),
        "terminal_gradient": code(prune(derivation.terminal, {"p_end", "gW", "gmu"})),
        "kept": list(derivation.kept),
        "value_index": [derivation.kept.index(n) for n in derivation.stage_values],
        "slope_index": [derivation.kept.index(n) for n in derivation.stage_slopes],
        "sweeps": sweeps,
    }


def generate_network(arch: Architecture, tableau) -> str:
    """The source text of the matrix-level module of ``arch`` discretised by ``tableau``."""
    return _render(arch_key(arch), load_tableau(tableau), arch)


def arch_key(arch: Architecture) -> tuple:
    return (arch.dynamics, arch.activation, arch.loss, arch.depth == "net",
            float(arch.tikhonov), float(arch.gamma) if arch.dynamics == "antisymmetric" else 0.0,
            arch.controls)


@cache
def _render(key, tableau: ButcherTableau, arch: Architecture) -> str:
    derivation = derive_network(arch, tableau)
    return _environment().get_template("numpy/network.py.j2").render(
        **network_context(derivation))


def network_module(arch: Architecture, tableau: ButcherTableau):
    """The generated module a network trains with: the matrix-level one for the built-in
    dynamics (any width), else the scalar derivation's module of the network problem."""
    from ..cache import import_source
    from ..solve import generated_module
    if not supports(arch):
        return generated_module(tableau, network_problem(arch), arch.controls)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideTheoryWarning)
        return import_source(generate_network(arch, tableau))
