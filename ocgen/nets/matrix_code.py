"""Printing a network's matrix-level derivation (:mod:`ocgen.nets.matrix`) through
``templates/numpy/network.py.j2``, and the module a network trains with.

Matrix nodes print as NumPy matrix products (``numpy.dot``, ``.T``, the sum over the points X 1
as a product with the column ``ones``, broadcasting for β1ᵀ), pointwise nodes as elementwise
NumPy (linear combinations with their scalar factors first, everything else through the CSE
emitter of :mod:`ocgen.codegen`), pairings as ``numpy.vdot``. The tableau's numbers are exact
until printed, as on the scalar path. The same inputs give byte-identical text, whatever the
width.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import warnings
from functools import cache

import sympy as sp

from .. import __version__
from ..codegen import Emitter, _environment, _float, _NumPyPrinter, _numeric
from ..derive import OutsideTheoryWarning
from ..errors import InputError
from ..tableau import ButcherTableau, load_tableau
from ..text import docstring_text, python_string
from .matrix import (POINTS, Assign, NetworkDerivation, array, arrays_of, dead_after,
                     derive_network, entry, natural, prune, reads, supports)
from .model import Architecture, network_problem, scalar_derivable
from .names import KERNELS
from .numba_code import KernelPrinter


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
        return text if isinstance(e, (sp.MatrixSymbol, sp.Transpose, sp.Identity)) \
            else f"({text})"

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
                text = f"{self._coefficient(coefficient)}{text}" if coefficient != -1 \
                    else f"-{text}"
            parts.append(text)
        text = parts[0]
        for part in parts[1:]:  # numpy.dot: less call overhead than @ on small 2-D arrays
            text = f"numpy.dot({text}, {part})"
        if total:  # by BLAS against a column of ones: half the time of .sum(axis=1)
            text = f"numpy.dot({text}, ones)"
        if coefficient == 1 or scaled is not None:
            return text
        if coefficient == -1:
            return f"-{text}"
        return f"{self._coefficient(coefficient)}{text}"

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
        for v in sorted(combination, key=lambda x: natural(x.name)):
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

    def lines(self, nodes, arrays: dict, exported=None, in_place: bool = True,
              dead=None) -> list[str]:
        """The nodes in order, each array computed in place: in one new buffer per node, or,
        given ``exported`` (the names read after a straight-line block), in the buffer of an
        input that nothing later reads (``numpy.tanh(Z, out=Z)``); ``dead`` gives those
        buffers for nodes that are part of a larger block (its :func:`dead_after`).
        Otherwise (``in_place`` False, for the few numbers per point of the loss), as plain
        expressions sharing common subexpressions."""
        out, run = [], []
        if dead is None and exported is not None:
            dead = dead_after(nodes, exported)

        def flush():
            if run:
                out.extend(self.emit.sequence([(entry(n.target), n.value) for n in run]))
                run.clear()

        for k, node in enumerate(nodes):
            name = str(node.target.name)
            reusable = dead[k] if dead is not None else set()
            if node.kind == "pointwise":
                if node.value == 0:
                    flush()
                    out.append(f"{name} = numpy.zeros(({self.scalar(node.target.rows)}, "
                               f"{self.scalar(node.target.cols)}), dtype=theta.dtype)")
                    continue
                code = _InPlace(self, arrays, reusable).assign(name, node.value) \
                    if in_place else None
                if code is None:
                    run.append(node)
                    continue
                flush()
                out.extend(code)
                continue
            flush()
            if node.kind == "number":
                out.append(f"{name} = {self.scalar(node.value)}")
            elif node.accumulate or not (in_place and isinstance(node.value, sp.MatAdd)):
                out.append(f"{name} {'+=' if node.accumulate else '='} "
                           f"{self.matrix(node.value)}")
            else:
                out.extend(self._sum_in_place(name, node.value))
        flush()
        return out

    def _sum_in_place(self, name, value) -> list[str]:
        """target = A + B − C … as a first term that is a new array (a product) and in-place
        additions; a sum starting with an existing array (or a view, X.T, β broadcast) starts
        with numpy.add or numpy.subtract."""
        texts = [self.matrix(t) for t in value.args]
        new = [t for t in texts if not _IDENTIFIER.match(t.lstrip("-"))]
        first = next((t for t in new if not t.startswith("-")), None)
        if first is not None:
            texts.remove(first)
            lines = [f"{name} = {first}"]
        else:
            first = next(t for t in texts if not t.startswith("-"))
            texts.remove(first)
            other = texts.pop(0)
            ufunc, other = ("subtract", other[1:]) if other.startswith("-") else ("add", other)
            lines = [f"{name} = numpy.{ufunc}({first}, {other})"]
        lines += [f"{name} -= {t[1:]}" if t.startswith("-") else f"{name} += {t}"
                  for t in texts]
        return lines


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.T)?\Z")
"""An array or its transpose: a name, not a new array."""


class _InPlace:
    """Code computing a pointwise expression with in-place ufuncs: one new array for the
    result, written over by each operation (``out=``), new ones only for inner sums and
    products; None when the expression holds something else."""

    FUNCTIONS = (sp.tanh, sp.exp, sp.log, sp.cosh, sp.sinh)

    def __init__(self, printer: NodePrinter, arrays: dict, reusable: set):
        self.printer, self.arrays, self.reusable = printer, arrays, reusable
        self.lines: list[str] = []

    def assign(self, name, expr) -> list[str] | None:
        expr = _numeric(expr)
        if not self._is_array(expr):
            return None
        leaves = [x.name for x in sp.preorder_traversal(expr) if isinstance(x, sp.Symbol)]
        self.reusable = {x for x in self.reusable if leaves.count(x) == 1}  # read once only
        try:
            text, owned = self._value(expr, name)
        except NotImplementedError:
            return None
        if owned and text != name and self.lines[-1].endswith(f"out={text})"):
            self.lines[-1] = f"{name} = {self.lines[-1]}"
        elif text != name:
            self.lines.append(f"{name} = {text}")
        return self.lines

    def _is_array(self, expr) -> bool:
        return any(s.name in self.arrays for s in expr.free_symbols)

    def _temporary(self) -> str:
        name = f"_t{self.printer.emit.counter}"
        self.printer.emit.counter += 1
        return name

    def _buffer(self, leaf: str, into: str) -> str:
        """Where an operation on ``leaf`` writes: over ``leaf`` if it is dead, else ``into``."""
        if leaf in self.reusable:
            self.reusable = self.reusable - {leaf}
            return leaf
        return into

    def _call(self, ufunc, args, buffer, owned_buffer) -> str:
        out = f", out={buffer}" if owned_buffer else ""
        call = f"numpy.{ufunc}({', '.join(args)}{out})"
        self.lines.append(call if owned_buffer else f"{buffer} = {call}")
        return buffer

    def _value(self, expr, into) -> tuple[str, bool]:
        """(text, whether it names a buffer this code owns and may write over)."""
        if isinstance(expr, sp.Symbol) and expr.name in self.arrays:
            return expr.name, False
        if not self._is_array(expr):
            return self.printer.scalar(expr), False
        if isinstance(expr, sp.Mul):
            return self._product(expr, into)
        if isinstance(expr, sp.Add):
            return self._sum(expr, into)
        if isinstance(expr, sp.Pow) and expr.exp == 2:
            base, owned = self._value(expr.base, into)
            return self._unary("multiply", [base, base], base, owned, into)
        if isinstance(expr, self.FUNCTIONS):
            base, owned = self._value(expr.args[0], into)
            return self._unary(type(expr).__name__, [base], base, owned, into)
        raise NotImplementedError

    def _unary(self, ufunc, args, base, owned, into):
        if owned:
            return self._call(ufunc, args, base, True), True
        buffer = self._buffer(base, into)
        return self._call(ufunc, args, buffer, buffer == base), True

    @staticmethod
    def _leaves_last(terms):
        """Inner sums and products first: the first of them makes the result's array."""
        return sorted(terms, key=lambda t: isinstance(t, sp.Symbol))

    def _product(self, expr, into):
        scalar = sp.Mul(*(f for f in expr.args if not self._is_array(f)))
        factors = self._leaves_last(f for f in expr.args if self._is_array(f))
        text, owned = self._value(factors[0], into)
        for factor in factors[1:]:
            other, other_owned = self._value(factor, self._temporary())
            text, owned = self._combine("multiply", text, owned, other, other_owned, into)
        if scalar != 1:
            factor = self.printer.scalar(scalar)
            text, owned = self._combine("multiply", text, owned, f"({factor})"
                                        if isinstance(scalar, sp.Add) else factor, False, into)
        return text, owned

    def _combine(self, ufunc, text, owned, other, other_owned, into):
        """text ∘ other into an owned buffer (commutative operations)."""
        if owned:
            self.lines.append(f"{text} {'*=' if ufunc == 'multiply' else '+='} {other}")
            return text, True
        if other_owned:
            self.lines.append(f"{other} {'*=' if ufunc == 'multiply' else '+='} {text}")
            return other, True
        buffer = self._buffer(text, into)
        return self._call(ufunc, [text, other], buffer, buffer == text), True

    def _grouped(self, terms) -> list:
        """Array terms sharing a scalar factor c ≠ ±1 as one term c·(Σ v): one multiplication
        for the group instead of one per term (RK4's y_{n+1} = y + h/6 (F_1 + F_4) + ...)."""
        arrays = [x for x in set().union(*(t.free_symbols for t in terms))
                  if x.name in self.arrays]
        groups: dict = {}
        for term in terms:
            c, v = term.as_independent(*arrays, as_Add=False)
            groups.setdefault(c, []).append(v)
        grouped = []
        for c, vs in groups.items():
            if len(vs) > 1 and c not in (1, -1):
                grouped.append(sp.Mul(c, sp.Add(*vs), evaluate=False))
            else:
                grouped.extend(c * v for v in vs)
        return grouped

    def _sum(self, expr, into):
        scalar = sp.Add(*(t for t in expr.args if not self._is_array(t)))
        terms = self._leaves_last(self._grouped([t for t in expr.args if self._is_array(t)]))
        positive = [t for t in terms if not t.could_extract_minus_sign()]
        negative = [-t for t in terms if t.could_extract_minus_sign()]
        if positive:
            text, owned = self._value(positive[0], into)
            for term in positive[1:]:
                other, other_owned = self._value(term, self._temporary())
                text, owned = self._combine("add", text, owned, other, other_owned, into)
            for term in negative:
                other, _ = self._value(term, self._temporary())
                if owned:
                    self.lines.append(f"{text} -= {other}")
                else:
                    buffer = self._buffer(text, into)
                    text, owned = self._call("subtract", [text, other], buffer,
                                             buffer == text), True
        else:
            text, owned = self._value(negative[0], into)
            rest = sp.Add(*negative[1:])
            if rest != 0:
                other, other_owned = self._value(rest, self._temporary())
                text, owned = self._combine("add", text, owned, other, other_owned, into)
            start = self.printer.scalar(scalar) if scalar != 0 else None
            if owned:
                self._call("subtract" if start else "negative",
                           [start, text] if start else [text], text, True)
            else:
                buffer = self._buffer(text, into)
                text = self._call("subtract" if start else "negative",
                                  [start, text] if start else [text], buffer, buffer == text)
                owned = True
            return text, owned
        if scalar != 0:
            value = self.printer.scalar(scalar)
            text, owned = self._combine("add", text, owned, value, False, into)
        return text, owned


def _arrays(derivation: NetworkDerivation) -> dict:
    """Every array of the generated code, by name (pointwise symbols are looked up here)."""
    nodes = [*derivation.forward_start, *derivation.forward, *derivation.forward_post,
             *derivation.terminal, *derivation.layer.forward, *derivation.layer.backward]
    for sweep in derivation.sweeps.values():
        nodes += [*sweep.start, *sweep.loop, *sweep.core, *sweep.extras]
    found = arrays_of(nodes)
    for X in (array("y"), array("p"), array("c", 1, POINTS), array("weight", 1, POINTS)):
        found.setdefault(X.name, X)  # read by pointwise nodes only
    return found


def input_hash(derivation: NetworkDerivation, kernels: str = "numpy") -> str:
    """SHA-256 of everything the generated text depends on (first 16 hex digits)."""
    arch = derivation.arch
    described = {"generator": __version__, "backend": f"{kernels}-network",
                 "tableau": derivation.tableau.to_dict(), "dynamics": arch.dynamics,
                 "activation": arch.activation, "loss": arch.loss, "net": arch.depth == "net",
                 "tikhonov": str(sp.nsimplify(arch.tikhonov, rational=True)),
                 "gamma": str(sp.nsimplify(arch.gamma, rational=True))
                 if arch.dynamics == "antisymmetric" else None, "controls": arch.controls}
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def network_context(derivation: NetworkDerivation, kernels: str = "numpy") -> dict:
    """What the network template needs, as strings and lists of code lines; with ``kernels``
    "numba", runs of loopable nodes become compiled kernels (:mod:`ocgen.nets.numba_code`)."""
    arch, tableau = derivation.arch, derivation.tableau
    printer = NodePrinter()
    compiled = KernelPrinter(printer) if kernels == "numba" else None
    arrays = _arrays(derivation)

    def code(nodes, exported=None, in_place=True):
        printer.emit.reset()
        if compiled is not None:
            return compiled.lines(nodes, arrays, exported, in_place)
        return printer.lines(nodes, arrays, exported, in_place)

    def read(nodes):
        return set().union(*(reads(n) for n in nodes))

    kept = set(derivation.kept)
    layer = derivation.layer
    products = [Assign(sp.MatrixSymbol("f_Y'V", *layer.Y.shape), layer.cotangent_Y, "matrix"),
                Assign(sp.MatrixSymbol("f_K'V", *layer.K.shape), layer.cotangent_K, "matrix"),
                Assign(sp.MatrixSymbol("f_beta'V", *layer.beta.shape), layer.cotangent_beta,
                       "matrix")]
    sweeps = {}
    for form, sweep in derivation.sweeps.items():
        outputs = {sweep.previous.name, sweep.step_gradient.name,
                   *(X.name for X in (*sweep.unknowns, *sweep.stage_costates))}
        sweeps[form] = {
            "start": code(sweep.start), "loop": code(sweep.loop),
            "core": code(sweep.core, outputs | read(sweep.extras)),
            "extras": code(sweep.extras, outputs),
            "unknowns": [X.name for X in sweep.unknowns],
            "multipliers": sorted((X.name for X in sweep.unknowns if X.name.startswith("lam")),
                                  key=natural),
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
        "version": __version__, "hash": input_hash(derivation, kernels),
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
        "layer_forward": code(layer.forward, in_place=False),
        "layer_backward": code(layer.backward, in_place=False) + code(products, in_place=False),
        "forward_start": code(derivation.forward_start),
        "forward": code(derivation.forward, None if derivation.implicit else
                        kept | read(derivation.forward_post)),
        "stage_unknowns": [X.name for X in derivation.stage_unknowns],
        "forward_post": code(derivation.forward_post, kept | {"y_next", "cost"}),
        "terminal_cost": code(prune(derivation.terminal, {"terminal"}), in_place=False),
        "terminal_gradient": code(prune(derivation.terminal, {"p_end", "gW", "gmu"}),
                                  in_place=False),
        "kept": list(derivation.kept),
        "value_index": [derivation.kept.index(n) for n in derivation.stage_values],
        "slope_index": [derivation.kept.index(n) for n in derivation.stage_slopes],
        "sweeps": sweeps,
        "kernels": compiled.definitions() if compiled is not None else [],
    }


def generate_network(arch: Architecture, tableau, kernels: str = "numpy") -> str:
    """The source text of the matrix-level module of ``arch`` discretised by ``tableau``."""
    return _render(arch_key(arch), load_tableau(tableau), arch, kernels)


def arch_key(arch: Architecture) -> tuple:
    return (arch.dynamics, arch.activation, arch.loss, arch.depth == "net",
            float(arch.tikhonov), float(arch.gamma) if arch.dynamics == "antisymmetric" else 0.0,
            arch.controls)


@cache
def _render(key, tableau: ButcherTableau, arch: Architecture, kernels: str) -> str:
    derivation = derive_network(arch, tableau)
    return _environment().get_template("numpy/network.py.j2").render(
        **network_context(derivation, kernels))


def control_dim(module, width: int) -> int:
    """m, the controls of one layer: the scalar module's CONTROL_DIM, or d² + d (K row-major,
    then β) for the matrix-level module, which serves every width."""
    return getattr(module, "CONTROL_DIM", None) or width * width + width


def network_module(arch: Architecture, tableau, matrix: bool | None = None,
                   kernels: str = "numpy"):
    """The generated module a network trains with.

    By default (``matrix`` None) the matrix-level module for the tanh, symmetric and
    antisymmetric dynamics with a tableau, except that an implicit tableau keeps the scalar
    derivation's module where that derivation takes the network (:func:`scalar_derivable`):
    its Newton solves converge where the matrix module's fixed-point iteration may not (large
    h‖K‖). A pair (hamiltonian dynamics) or a problem file's network has the scalar module.
    ``matrix`` True or False asks for one of them. ``kernels`` "numba" asks for the matrix-level
    module with compiled kernels (:mod:`ocgen.nets.numba_code`), implicit tableaux included
    (with its fixed-point iteration).
    """
    from ..cache import import_source
    from ..pair import load_method
    from ..solve import generated_module
    tableau = load_method(tableau)
    if kernels not in KERNELS:
        raise InputError(f"unknown kernels {kernels!r} (choose from {', '.join(KERNELS)})",
                         key="kernels")
    if kernels == "numba":
        if matrix is False or not (supports(arch) and isinstance(tableau, ButcherTableau)):
            raise InputError("the numba kernels run the matrix-level module: tanh, symmetric "
                             "or antisymmetric dynamics with a Butcher tableau", key="kernels")
        if importlib.util.find_spec("numba") is None:
            raise InputError("the numba kernels need Numba, which is not installed: "
                             "pip install 'ocgen[numba]'", key="kernels")
        matrix = True
    if matrix is None:
        matrix = (supports(arch) and isinstance(tableau, ButcherTableau)
                  and (tableau.is_explicit or not scalar_derivable(arch)))
    if not matrix:
        return generated_module(tableau, network_problem(arch), arch.controls)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideTheoryWarning)
        return import_source(generate_network(arch, tableau, kernels))
