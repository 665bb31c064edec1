"""Numba kernels for a network's matrix-level module: the optional ``numba`` kernels.

At small widths (d = 2, a thousand points) the NumPy module's time goes to the overhead of
its many calls on small arrays: about five per stage of the forward sweep and eleven of the
costate sweep. Here each run of consecutive nodes that are affine or polynomial in their arrays
(K Y + β1ᵀ, y + h Σ a_ij F_j, dZ = V ⊙ (1 − S²), Kᵀ dZ, dZ Yᵀ, dZ 1, ...) is printed as one
``numba.njit`` function: a loop nest per pointwise node and a call of one of a few
:data:`HELPERS` per matrix term, the longest loop innermost (along the points, or the sum over
them), so that it vectorises. Nodes with a transcendental function (σ itself, the loss) stay
NumPy calls: NumPy's SIMD ``tanh`` is an order of magnitude faster than a scalar one in a loop.
The products are loops, not BLAS: the kernels pay at small widths (RK4, 1000 points: 0.5–0.6×
the NumPy module's time at d = 2, 0.9× at d = 8) and lose from d = 16 up.

The nodes, their order and the arrays' precision are those of the NumPy module
(:mod:`ocgen.nets.matrix_code`); what changes is how a run of them is computed. The kernels
reassociate sums and contract products into fused multiply-adds (``fastmath`` without the
no-NaN and no-infinity flags, so those propagate as in NumPy) and, for float32 arrays, carry
sums and coefficients in float64 before rounding to float32; so results agree with the NumPy
module to rounding, not bit for bit.
"""

from __future__ import annotations

import re

import sympy as sp

from ..codegen import _NumPyPrinter, _numeric
from .matrix import POINTS, WIDTH, Assign, alias_of, dead_after, reads

DECORATOR = ('@numba.njit(cache=True, fastmath={"reassoc", "contract", "nsz", "arcp"}, '
             'error_model="numpy")')
"""Every kernel's: compiled on first use and cached beside the module; reassociation lets the
sums along the points vectorise; NaN, infinity and division by zero behave as in NumPy."""

HELPERS = (
    "def _add_product(T, c, A, B):\n"
    '    """T += c A B, the longest loop innermost."""\n'
    "    rows, inner = A.shape\n"
    "    cols = B.shape[1]\n"
    "    if inner >= cols:\n"
    "        for i in range(rows):\n"
    "            for j in range(cols):\n"
    "                s = 0.0\n"
    "                for k in range(inner):\n"
    "                    s += A[i, k] * B[k, j]\n"
    "                T[i, j] += c * s\n"
    "    else:\n"
    "        for i in range(rows):\n"
    "            for k in range(inner):\n"
    "                a = c * A[i, k]\n"
    "                for j in range(cols):\n"
    "                    T[i, j] += a * B[k, j]",
    "def _add(T, c, X):\n"
    '    """T += c X."""\n'
    "    for i in range(T.shape[0]):\n"
    "        for j in range(T.shape[1]):\n"
    "            T[i, j] += c * X[i, j]",
    "def _add_column(T, c, x):\n"
    '    """T += c x 1\': the column x (rows, 1) along the points."""\n'
    "    for i in range(T.shape[0]):\n"
    "        a = c * x[i, 0]\n"
    "        for j in range(T.shape[1]):\n"
    "            T[i, j] += a",
    "def _add_total(T, c, X):\n"
    '    """T += c X 1: the sum over the points."""\n'
    "    for i in range(T.shape[0]):\n"
    "        s = 0.0\n"
    "        for k in range(X.shape[1]):\n"
    "            s += X[i, k]\n"
    "        T[i, 0] += c * s",
    "def _add_identity(T, c):\n"
    '    """T += c I."""\n'
    "    for i in range(T.shape[0]):\n"
    "        T[i, i] += c",
)
"""The matrix terms of the nodes: compiled once per module and argument types, called from
the kernels."""


class _LoopPrinter(_NumPyPrinter):
    """Scalars as in the NumPy module; an array's entry symbol X as ``X[_i, _j]``."""

    def __init__(self, entries: set[str]):
        super().__init__({"fully_qualified_modules": True})
        self.entries = entries

    def _print_Symbol(self, expr):
        if expr.name in self.entries:
            return f"{expr.name}[_i, _j]"
        return super()._print_Symbol(expr)


def _factors(term) -> tuple:
    """(coefficient, factors, summed over the points, broadcast along the points) of a matrix
    term: ``c A B``, ``c X 1`` (a sum over the points), ``c β 1ᵀ`` (a column broadcast)."""
    if isinstance(term, sp.MatMul):
        coefficient, factors = term.as_coeff_matrices()
    else:
        coefficient, factors = sp.S.One, [term]
    factors, total, broadcast = list(factors), False, False
    if isinstance(factors[-1], sp.OneMatrix):
        total = factors[-1].shape == (POINTS, 1)
        broadcast = not total
        factors.pop()
    for f in factors:
        inner = f.arg if isinstance(f, sp.Transpose) else f
        if not isinstance(inner, (sp.MatrixSymbol, sp.Identity)) \
                or (isinstance(f, sp.Identity) and len(factors) > 1):
            raise NotImplementedError(f"no loop for {term}")
    if not factors or len(factors) > (1 if total or broadcast else 2):
        raise NotImplementedError(f"no loop for {term}")
    return coefficient, factors, total, broadcast


def loopable(node: Assign, arrays: dict) -> bool:
    """Whether a node is printed as loops: a matrix node of sums of (up to two-factor) products,
    or a pointwise node without functions that reads arrays of its own shape (not a constant,
    such as the zeros a fixed-point iteration starts from, which NumPy fills in the
    module's precision)."""
    if node.kind == "matrix":
        if isinstance(node.value, sp.MatrixSymbol):
            return True
        try:
            for term in _matrix_terms(node.value):
                _factors(term)
        except NotImplementedError:
            return False
        return True
    if node.kind != "pointwise" or node.value.atoms(sp.Function):
        return False
    read = [arrays[x.name] for x in node.value.free_symbols if x.name in arrays]
    return bool(read) and all(X.shape == node.target.shape for X in read)


def _matrix_terms(value) -> list:
    """The terms of a matrix expression, a scalar times a sum distributed: c (A + B) is c A,
    c B."""
    terms = []
    for term in (value.args if isinstance(value, sp.MatAdd) else (value,)):
        if isinstance(term, sp.MatMul):
            coefficient, factors = term.as_coeff_matrices()
            if len(factors) == 1 and isinstance(factors[0], sp.MatAdd):
                terms += [coefficient * t for t in _matrix_terms(factors[0])]
                continue
        terms.append(term)
    return terms


class Kernel:
    """One run of loopable nodes as the body of a ``numba.njit`` function: the arrays it
    reads (inputs, accumulated ones included), the scalars, and the ``outputs`` it returns."""

    def __init__(self, nodes: list[Assign], arrays: dict, outputs: list[str]):
        self.nodes, self.arrays, self.outputs = nodes, arrays, outputs
        defined: set[str] = set()
        inputs: list[str] = []
        scalars: set[str] = set()
        for node in nodes:
            read = reads(node) | ({node.target.name} if node.accumulate else set())
            for name in sorted(read):
                if name in arrays and name not in defined and name not in inputs:
                    inputs.append(name)
            scalars |= {s.name for s in node.value.free_symbols  # h; d, points: the sizes
                        if s.name not in arrays} - {WIDTH.name, POINTS.name}
            if not node.accumulate:
                defined.add(node.target.name)
        self.inputs, self.scalars = inputs, sorted(scalars)
        self.body = self._body()

    def arguments(self) -> list[str]:
        return [*self.inputs, *self.scalars, "d", "points"]

    def _body(self) -> list[str]:
        dtype = f"{self.inputs[0]}.dtype"  # every array read has the module's precision
        printer, lines = _LoopPrinter(set(self.arrays)), []
        for node in self.nodes:
            name = node.target.name
            rows, cols = (printer.doprint(n) for n in node.target.shape)
            if alias_of(node) is not None:
                lines.append(f"{name} = {node.value.name}")  # an alias, as in NumPy
                continue
            if not node.accumulate:
                fill = "empty" if node.kind == "pointwise" else "zeros"
                lines.append(f"{name} = numpy.{fill}(({rows}, {cols}), {dtype})")
            if node.kind == "pointwise":
                value = printer.doprint(_numeric(node.value))
                op = "+=" if node.accumulate else "="
                lines += [f"for _i in range({rows}):", f"    for _j in range({cols}):",
                          f"        {name}[_i, _j] {op} {value}"]
                continue
            lines += [self._term(name, term) for term in _matrix_terms(node.value)]
        return lines

    @staticmethod
    def _term(name, term) -> str:
        """target += term, by one of the :data:`HELPERS`."""
        coefficient, factors, total, broadcast = _factors(term)
        c = _LoopPrinter(set()).doprint(_numeric(coefficient))
        c = f"{c}.0" if coefficient.is_Integer else c  # a float, as every other coefficient
        operands = ", ".join(f"{f.arg.name}.T" if isinstance(f, sp.Transpose) else f.name
                             for f in factors if not isinstance(f, sp.Identity))
        if isinstance(factors[0], sp.Identity):
            return f"_add_identity({name}, {c})"
        helper = ("_add_total" if total else "_add_column" if broadcast
                  else "_add" if len(factors) == 1 else "_add_product")
        return f"{helper}({name}, {c}, {operands})"


class KernelPrinter:
    """Code lines for a block of nodes, loopable runs as calls of kernels kept in
    ``self.kernels`` (in order of first use; one function for runs alike but for their arrays'
    names, since each kernel is compiled apart, about half a second each)."""

    def __init__(self, printer):
        self.printer = printer  # the NumPy module's NodePrinter, for everything else
        self.kernels: dict[str, tuple[str, str]] = {}  # text, arrays by position -> name, text

    def lines(self, nodes, arrays: dict, exported=None, in_place: bool = True) -> list[str]:
        """As :meth:`~ocgen.nets.matrix_code.NodePrinter.lines`. A kernel returns what it
        assigns and the block reads later or exports (everything, when ``exported`` is None);
        the NumPy lines between kernels reuse the buffers dead in the whole block."""
        nodes = list(nodes)
        if not in_place:
            return self.printer.lines(nodes, arrays, exported, in_place)
        dead = dead_after(nodes, exported) if exported is not None else None
        fits = [loopable(node, arrays) for node in nodes]
        out, k = [], 0
        while k < len(nodes):
            end = k
            while end < len(nodes) and fits[end] == fits[k]:
                end += 1
            run = nodes[k:end]
            if fits[k] and not all(alias_of(n) is not None for n in run):
                wanted = ({n.target.name for n in run} if exported is None else
                          set(exported).union(*(reads(n) for n in nodes[end:])))
                outputs = list(dict.fromkeys(n.target.name for n in run
                                             if not n.accumulate and n.target.name in wanted))
                out.append(self._call(Kernel(run, arrays, outputs)))
            else:
                out += self.printer.lines(run, arrays, dead=None if dead is None else
                                          dead[k:end])
            k = end
        return out

    def _call(self, kernel: Kernel) -> str:
        """The call of the kernel; a run that differs from an earlier one only in its arrays'
        names (RK4's second and third stage) calls the earlier one's function."""
        arguments = ", ".join(kernel.arguments())
        outputs = kernel.outputs
        text = "\n".join([f"({arguments}):",
                          *(f"    {line}" for line in kernel.body),
                          f"    return {', '.join(outputs)}{',' if len(outputs) == 1 else ''}"
                          if outputs else "    return None"])
        arrays = list(dict.fromkeys([*kernel.inputs, *(n.target.name for n in kernel.nodes)]))
        positions = {name: f"_{k}" for k, name in enumerate(arrays)}
        shape = re.sub(r"\b(" + "|".join(map(re.escape, arrays)) + r")\b",
                       lambda m: positions[m.group(1)], text)
        name, _ = self.kernels.setdefault(shape, (f"_kernel_{len(self.kernels)}", text))
        call = f"{name}({arguments})"
        if not outputs:
            return call
        return f"{', '.join(outputs)}{',' if len(outputs) == 1 else ''} = {call}"

    def definitions(self) -> list[str]:
        """The helpers' and the kernels' source, one function each."""
        if not self.kernels:
            return []
        return [*(f"{DECORATOR}\n{helper}" for helper in HELPERS),
                *(f"{DECORATOR}\ndef {name}{text}" for name, text in self.kernels.values())]
