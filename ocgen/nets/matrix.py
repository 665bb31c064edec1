"""Networks derived at the level of matrices (MATH.md 3.1, 3.2, 6), for any width.

The scalar derivation unrolls every entry of K, so its cost, and that of its code, grows with
the width d. Here the points are the columns of one matrix Y (d × points) and the step
Lagrangian (MATH.md 3.1)

    ℓ = h Σ_i b_i L(θ_g(i)) + ⟨p, y + h Σ_i b_i F_i⟩ + Σ_i ⟨Λ_i, y + h Σ_j a_ij F_j − Y_i⟩,
    F_i = f(Y_i, θ_g(i)),   ⟨A, B⟩ = Σ over entries of A ⊙ B,

is differentiated in two parts, neither of which depends on d:

- **The tableau's part** (stage loop, stage multipliers or partner stage costates, p_n, ∂J/∂θ,
  ∂J/∂h): :func:`ocgen.derive.discretise` itself, on a one-state problem whose layer 𝒻(y, u)
  and regulariser ℛ(u) are functions nobody has written down (:func:`generic_problem`). ℓ meets
  f only through pairings with multipliers, so in that derivation each 𝒻_y(Y_j, u)·X is the
  vector–Jacobian product f_Y(Y_j)ᵀX, each 𝒻_u(Y_j, u)·X is f_θ(Y_j)ᵀX (summed over the points
  by the matrix product), and a multiplier times F_j is the pairing ⟨X, F_j⟩.
- **The layer's part**: f(Y, K, β) is written with SymPy matrix symbols as a short program of
  matrix and pointwise nodes (:func:`layer_nodes`, e.g. Z = K Y + β1ᵀ, S = σ(Z), F = −KᵀS). Its
  vector–Jacobian products come node by node from SymPy: ∂/∂X tr(Vᵀ g(X)) by matrix calculus,
  and sp.diff for pointwise nodes, where σ' is written through σ's value when it can be
  (1 − S² for tanh), so the costate reuses the forward's values.

The terminal cost (loss and output, MATH.md 6) and the Tikhonov term are derived the same way.
``tests/test_network_matrix.py`` expands every formula at d = 2 and 3 (:func:`evaluate`) and
compares it with :func:`ocgen.derive.discretise` of the scalar network problem.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from functools import cache

import sympy as sp

from ..codegen import _reuse_slopes
from ..derive import (CostateStep, Discretisation, InternalSymbol, OutsideTheoryWarning,
                      discretise)
from ..errors import OcgenError
from ..problem import OptimalControlProblem
from ..tableau import ButcherTableau
from .model import ACTIVATIONS, MATRIX_DYNAMICS, Architecture, network_problem

WIDTH = sp.Symbol("d", integer=True, positive=True)
POINTS = sp.Symbol("points", integer=True, positive=True)

MATRIX_CONTROLS = ("step", "stage")


def array(name: str, rows=WIDTH, cols=POINTS) -> sp.MatrixSymbol:
    """An array of the generated code: d × points unless said otherwise."""
    return sp.MatrixSymbol(name, rows, cols)


def entry(X: sp.MatrixSymbol) -> InternalSymbol:
    """The scalar standing for every entry of X in pointwise expressions."""
    return InternalSymbol(X.name, real=True)


class Pairing(sp.Function):
    """⟨A, B⟩ = Σ over all entries of A ⊙ B: the pairing of the Lagrangian, summed over the
    points (``numpy.vdot``)."""

    nargs = 2


class Total(sp.Function):
    """Σ over all entries (``numpy.sum``)."""

    nargs = 1


# -- the generic one-state problem --------------------------------------------------------------
class LayerY(sp.Function):
    """𝒻_y(y, u): stands for the vector–Jacobian product f_Y(Y)ᵀ(·)."""

    nargs = 2


class LayerU(sp.Function):
    """𝒻_u(y, u): stands for f_θ(Y)ᵀ(·), summed over the points."""

    nargs = 2


class Layer(sp.Function):
    """𝒻(y, u): a layer nobody has written down."""

    nargs = 2

    def fdiff(self, argindex=1):
        return (LayerY, LayerU)[argindex - 1](*self.args)


class RegulariserU(sp.Function):
    """ℛ'(u): stands for the gradient of the Tikhonov term."""

    nargs = 1


class Regulariser(sp.Function):
    """ℛ(u): the running cost, a function of the controls only."""

    nargs = 1

    def fdiff(self, argindex=1):
        return RegulariserU(*self.args)


def generic_problem(regularised: bool) -> OptimalControlProblem:
    """y' = 𝒻(y, u), L = ℛ(u) (or 0), Φ = 0: the network's step structure without its layer."""
    t, y, u = (sp.Symbol(n, real=True) for n in ("t", "y", "u"))
    return OptimalControlProblem(
        name="generic_layer", time=t, states=(y,), controls=(u,), dynamics=(Layer(y, u),),
        running_cost=Regulariser(u) if regularised else sp.S.Zero, terminal_cost=sp.S.Zero,
        t0=0.0, T=1.0, initial_states=((0.0,),))


# -- programs of matrix and pointwise nodes -----------------------------------------------------
@dataclass(frozen=True)
class Assign:
    """``target = value`` (or ``+=`` when ``accumulate``).

    ``kind``: "matrix" (a SymPy matrix expression; products are matrix products), "pointwise"
    (a scalar expression in :func:`entry` symbols, applied entry by entry), or "number" (a
    scalar, with :class:`Pairing` and :class:`Total`).
    """

    target: sp.Basic
    value: sp.Basic
    kind: str
    accumulate: bool = False


def _terms(expr) -> tuple:
    return sp.Add.make_args(expr) if not isinstance(expr, sp.MatAdd) else expr.args


@cache
def matrix_gradient(scalar, X: sp.MatrixSymbol):
    """∂ scalar / ∂X by SymPy's matrix calculus, term by term (its derivative of a sum of
    traces is not to be trusted)."""
    total = sp.ZeroMatrix(*X.shape)
    for term in _terms(sp.expand(scalar)):
        total = total + sp.diff(term, X)
    return total.doit() if isinstance(total, sp.MatAdd) else total


def proportion(numerator, denominator, arrays):
    """κ with numerator = κ · denominator and κ free of arrays (``arrays(expr)``: the array
    symbols in expr), or None. Both are linear in the arrays, so κ is the quotient of the
    coefficients of one array (small to cancel), checked on the whole. With decimals (a
    rounded tableau) the whole quotient is cancelled, which normalises 1.0·h to h."""
    vectors = sorted(arrays(denominator), key=sp.default_sort_key)
    if not vectors or numerator.has(sp.Float) or denominator.has(sp.Float):
        k = sp.cancel(numerator / denominator)
        return None if arrays(k) else k
    v = vectors[0]
    k = sp.cancel(sp.expand(numerator).coeff(v) / sp.expand(denominator).coeff(v))
    if arrays(k) or sp.expand(numerator - k * denominator) != 0:
        return None
    return k


def value_form(function, z: sp.Symbol, s: sp.Symbol):
    """σ'(z) as a function of s = σ(z) when σ is affine in a single function of z (tanh:
    1 − s²; the logistic: s − s²); otherwise σ'(z) itself."""
    value, slope = function(z), sp.diff(function(z), z)
    atoms = [a for a in value.atoms(sp.Function) if a.has(z)]
    if len(atoms) == 1:
        T = sp.Dummy("T")
        affine = value.xreplace({atoms[0]: T})
        scale, offset = sp.diff(affine, T), sp.sympify(affine.xreplace({T: 0}))
        if not (scale.has(z) or offset.has(z) or scale.has(T)) and scale != 0:
            rewritten = sp.expand(slope.xreplace({atoms[0]: (s - offset) / scale}))
            if not rewritten.has(z):
                return rewritten
    return sp.trigsimp(slope)


def arrays_of(nodes) -> dict[str, sp.MatrixSymbol]:
    """The arrays that nodes assign or multiply, by name."""
    found = {}
    for node in nodes:
        if isinstance(node.target, sp.MatrixSymbol):
            found[node.target.name] = node.target
        if node.kind == "matrix":
            found.update((X.name, X) for X in node.value.atoms(sp.MatrixSymbol))
    return found


def reverse(nodes: tuple[Assign, ...], output: sp.MatrixSymbol, cotangent, arrays: dict,
            wanted: tuple[sp.MatrixSymbol, ...], prefix: str = "d",
            values: dict | None = None) -> tuple[tuple[Assign, ...], dict]:
    """The vector–Jacobian products of a program: cotangents of ``wanted`` inputs from the
    cotangent of ``output`` (a MatrixSymbol, or a pointwise expression such as 1).

    Matrix nodes: ∂/∂X tr(V̄ᵀ value) by :func:`matrix_gradient`. Pointwise nodes: the chain
    rule with sp.diff; ``values`` maps a pointwise node's target to σ'(·) rewritten through its
    own value (:func:`value_form`). Returns the nodes computing intermediate cotangents (named
    ``prefix`` + name) and {wanted input: its cotangent expression (matrix)}.
    """
    parts: dict[str, list] = {output.name: [cotangent]}
    program: list[Assign] = []

    def settle(X: sp.MatrixSymbol):
        """One expression for X's cotangent: an alias, or a node ``dX``."""
        found = parts.pop(X.name)
        if len(found) == 1 and isinstance(found[0], (sp.MatrixSymbol, sp.Number)):
            return found[0]
        if all(isinstance(f, sp.MatrixExpr) for f in found):
            value = sp.MatAdd(*found).doit() if len(found) > 1 else found[0]
            kind = "matrix"
        else:
            value = sp.Add(*(entry(f) if isinstance(f, sp.MatrixSymbol) else f for f in found))
            if any(isinstance(f, sp.MatrixExpr) and not isinstance(f, sp.MatrixSymbol)
                   for f in found):
                raise NotImplementedError("a cotangent mixing matrix products and pointwise "
                                          "terms")
            kind = "pointwise"
        target = sp.MatrixSymbol(prefix + X.name, *X.shape)
        program.append(Assign(target, value, kind))
        return target

    for node in reversed(nodes):
        if node.target.name not in parts:
            continue
        bar = settle(node.target)
        if node.kind == "matrix":
            for X in node.value.atoms(sp.MatrixSymbol):
                g = matrix_gradient(sp.Trace(bar.T * node.value), X)
                if g != sp.ZeroMatrix(*X.shape) and g != 0:
                    parts.setdefault(X.name, []).append(g)
        else:
            slope_of = (values or {}).get(node.target.name, {})
            for x in sorted(node.value.free_symbols, key=str):
                if x.name not in arrays:
                    continue
                slope = slope_of.get(x.name, sp.diff(node.value, x))
                bar_entry = entry(bar) if isinstance(bar, sp.MatrixSymbol) else bar
                parts.setdefault(x.name, []).append(slope * bar_entry)
    outputs = {}
    for X in wanted:
        found = parts.get(X.name, [])
        if not found:
            outputs[X] = sp.ZeroMatrix(*X.shape)
        elif all(isinstance(f, sp.MatrixExpr) for f in found):
            outputs[X] = sp.MatAdd(*found).doit() if len(found) > 1 else found[0]
        else:
            outputs[X] = settle(X)
    return tuple(program), outputs


def reads(node: Assign) -> set[str]:
    """The names an assignment reads."""
    if node.kind == "matrix":
        return {X.name for X in node.value.atoms(sp.MatrixSymbol)}
    return {s.name for s in node.value.free_symbols}


def inline(parts: list[tuple[Assign, ...]], scalars: set[str]) -> list[tuple[Assign, ...]]:
    """A matrix node read once, by a pointwise node κ·X of the same part (κ a function of the
    ``scalars``), is computed there as κ·(its product), so that κ scales the small factor
    (Λ_j = (h Kᵀ) dZ_j)."""
    uses: dict[str, int] = {}
    for node in (n for part in parts for n in part):
        for name in reads(node):
            uses[name] = uses.get(name, 0) + 1
    result = []
    for part in parts:
        nodes, defined = list(part), {}
        for k, node in enumerate(part):
            if node.kind == "matrix" and not node.accumulate:
                defined[node.target.name] = k
            elif node.kind == "pointwise" and not node.accumulate:
                symbols = [x for x in node.value.free_symbols if x.name in defined]
                if len(symbols) != 1 or uses.get(symbols[0].name) != 1:
                    continue
                x, = symbols
                kappa = sp.cancel(node.value / x)
                if any(s.name not in scalars for s in kappa.free_symbols):
                    continue
                at = defined.pop(x.name)
                nodes[k] = Assign(node.target, _scaled(kappa, part[at].value), "matrix")
                nodes[at] = None
        result.append(tuple(n for n in nodes if n is not None))
    return result


def prune(nodes, needed: set[str]) -> tuple[Assign, ...]:
    """The nodes that the arrays named in ``needed`` depend on, in order."""
    kept, needed = [], set(needed)
    for node in reversed(nodes):
        if node.target.name in needed:
            kept.append(node)
            needed |= reads(node)
    return tuple(reversed(kept))


def alias_of(node: Assign) -> sp.Symbol | None:
    """Y when the node is X = Y, the same array under another name; else None."""
    value = node.value
    if not node.accumulate and (isinstance(value, sp.MatrixSymbol) or (
            node.kind == "pointwise" and isinstance(value, sp.Symbol))):
        return value
    return None


def dead_after(nodes, exported: set) -> list[set]:
    """For each node, the arrays it reads that were computed in this block and that neither a
    later node nor anything after the block reads (through an alias either): their buffers may
    be written over."""
    root, computed, aliases = {}, set(), set()
    for node in nodes:  # aliases X = Y share one buffer
        alias = alias_of(node)
        if alias is not None:
            root[node.target.name] = root.get(alias.name, alias.name)
            aliases.add(node.target.name)
    find = lambda name: root.get(name, name)  # noqa: E731
    later = {find(n) for n in exported}
    dead = [set() for _ in nodes]
    for k in range(len(nodes) - 1, -1, -1):
        read = {find(n) for n in reads(nodes[k])}
        dead[k] = {n for n in reads(nodes[k]) if find(n) not in later}
        later |= read
    for k, node in enumerate(nodes):
        dead[k] = {n for n in dead[k] if find(n) in computed}
        if node.target.name not in aliases:
            computed.add(find(node.target.name))
    return dead


# -- the layer -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerProducts:
    """f(Y, K, β) as a program, and its vector–Jacobian products for a cotangent V of F.

    ``forward`` computes F from Y, K, β; ``backward`` the intermediate cotangents, after which
    ``cotangent_Y`` = f_Yᵀ V and ``cotangent_K``, ``cotangent_beta`` = f_θᵀ V (summed over the
    points) are matrix expressions.
    """

    forward: tuple[Assign, ...]
    backward: tuple[Assign, ...]
    cotangent_Y: sp.MatrixExpr
    cotangent_K: sp.MatrixExpr
    cotangent_beta: sp.MatrixExpr
    Y: sp.MatrixSymbol
    K: sp.MatrixSymbol
    beta: sp.MatrixSymbol
    F: sp.MatrixSymbol
    V: sp.MatrixSymbol


def layer_nodes(dynamics: str, activation: str, gamma, net: bool, Y, K, beta):
    """f(Y, K, β) at matrix level for the built-in dynamics (MATH.md 6; the scalar form is
    :func:`ocgen.nets.model.network_problem`): tanh σ(KY + β1ᵀ), symmetric −Kᵀσ(KY + β1ᵀ),
    antisymmetric σ((K − Kᵀ − γI)Y + β1ᵀ); minus Y for the plain Net. Returns the nodes and F."""
    one = sp.OneMatrix(1, POINTS)
    Z, S, F = (array(n) for n in ("Z", "S", "F"))
    nodes = []
    weights = K
    if dynamics == "antisymmetric":
        weights = array("A", WIDTH, WIDTH)
        nodes.append(Assign(weights, K - K.T - gamma * sp.Identity(WIDTH), "matrix"))
    nodes.append(Assign(Z, weights * Y + beta * one, "matrix"))
    nodes.append(Assign(S, ACTIVATIONS[activation](entry(Z)), "pointwise"))
    out = -K.T * S if dynamics == "symmetric" else S
    nodes.append(Assign(F, out - Y if net else out, "matrix"))
    return tuple(nodes), F


@cache
def network_layer(dynamics: str, activation: str, gamma, net: bool) -> LayerProducts:
    """The layer and its derived vector–Jacobian products (generic names)."""
    Y, V = array("Y"), array("V")
    K, beta = array("K", WIDTH, WIDTH), array("beta", WIDTH, 1)
    nodes, F = layer_nodes(dynamics, activation, gamma, net, Y, K, beta)
    z, s = entry(array("Z")), entry(array("S"))
    values = {"S": {"Z": value_form(ACTIVATIONS[activation], z, s)}}
    arrays = arrays_of(nodes)
    backward, outputs = reverse(nodes, F, V, arrays, (Y, K, beta), values=values)
    return LayerProducts(nodes, backward, outputs[Y], outputs[K], outputs[beta], Y, K, beta, F, V)


# -- the terminal cost and the Tikhonov term -----------------------------------------------------
def _member_symbols(arch: Architecture) -> tuple[OptimalControlProblem, dict]:
    """The scalar network problem at width 1 (its loss is the one used here) and its symbols
    by name."""
    problem = network_problem(dataclasses.replace(arch, width=1, problem=None))
    names = {s.name: s for s in (*problem.states, *problem.controls,
                                 *(q for q, _ in problem.member_parameters),
                                 *problem.free_parameter_symbols)}
    return problem, names


def terminal_nodes(arch: Architecture) -> tuple[tuple[Assign, ...], Assign, dict]:
    """Φ summed over the points: ζ = Wᵀy + μ1ᵀ, φ = g(ζ, c, weight) per point, with g the
    scalar problem's loss (its terminal cost with μ = ζ − Wᵀy). Returns the nodes, the cost and
    {y, W, μ: the nodes' cotangent expressions} (p_N = ∂Φ/∂y, ∂Φ/∂W, ∂Φ/∂μ)."""
    return _terminal(Architecture(width=1, layers=1, loss=arch.loss))


@cache
def _terminal(arch: Architecture):
    problem, names = _member_symbols(arch)
    y, W, mu = array("y_end"), array("W", WIDTH, 1), array("mu", 1, 1)
    zeta, phi = array("zeta", 1, POINTS), array("phi", 1, POINTS)
    c, weight = array("c", 1, POINTS), array("weight", 1, POINTS)
    loss = problem.terminal_cost.xreplace(
        {names["mu"]: entry(zeta) - names["W1"] * names["y1"]})
    loss = loss.xreplace({names["c"]: entry(c), names["weight"]: entry(weight)})
    if loss.free_symbols - {entry(zeta), entry(c), entry(weight)}:
        raise OcgenError("the loss is not a function of Wᵀy + μ and the label alone")
    nodes = (Assign(zeta, W.T * y + mu * sp.OneMatrix(1, POINTS), "matrix"),
             Assign(phi, loss, "pointwise"))
    arrays = arrays_of(nodes)
    backward, outputs = reverse(nodes, phi, sp.S.One, arrays, (y, W, mu))
    cost = Assign(InternalSymbol("terminal", real=True), Total(entry(phi)), "number")
    return nodes + backward, cost, outputs


def tikhonov_term(arch: Architecture, K, beta, share_sum):
    """L(θ) summed over the points: (Σ share) α/2 (|K|² + |β|²), as traces."""
    alpha = sp.nsimplify(arch.tikhonov, rational=True)
    return share_sum * alpha / 2 * (sp.Trace(K.T * K) + sp.Trace(beta.T * beta))


def pairings(expr):
    """Traces tr(AᵀB) written as :class:`Pairing` of entry symbols (for printing)."""
    def pair(trace):
        arg = trace.arg
        if isinstance(arg, sp.MatMul) and len(arg.args) == 2 \
                and isinstance(arg.args[0], sp.Transpose):
            return Pairing(entry(arg.args[0].arg), entry(arg.args[1]))
        raise NotImplementedError(f"trace of {arg}")
    return expr.replace(lambda e: isinstance(e, sp.Trace), pair)


# -- the step ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sweep:
    """One step backwards in one costate form, as nodes.

    ``start`` and ``loop`` (implicit tableaux): the ``unknowns`` (Λ_i or P_i) from a start,
    iterated until they settle; ``core``: the rest of the step, p_n (``previous``) and the
    gradient accumulations gK_g, gbeta_g; ``extras``: the ``stage_costates`` and ∂J/∂h
    (``step_gradient``), computed only when asked for.
    """

    start: tuple[Assign, ...]
    loop: tuple[Assign, ...]
    unknowns: tuple[sp.MatrixSymbol, ...]
    core: tuple[Assign, ...]
    previous: sp.MatrixSymbol
    extras: tuple[Assign, ...]
    stage_costates: tuple[sp.MatrixSymbol, ...]
    step_gradient: InternalSymbol


@dataclass(frozen=True)
class NetworkDerivation:
    """Everything the network template arranges.

    Forward step: ``forward_start``, then ``forward`` (iterated until ``stage_unknowns``
    settle when the tableau is implicit), then ``forward_post`` (``y_next`` and the step's
    ``cost``). ``terminal``: Φ summed over the points (``terminal``), p_N (``p_end``), ∂Φ/∂W
    (``gW``), ∂Φ/∂μ (``gmu``). ``sweeps``: the costate forms. ``kept``: the forward's arrays
    the sweeps read.
    """

    arch: Architecture
    tableau: ButcherTableau
    groups: tuple[int, ...]
    layer: LayerProducts
    forward_start: tuple[Assign, ...]
    forward: tuple[Assign, ...]
    stage_unknowns: tuple[sp.MatrixSymbol, ...]
    forward_post: tuple[Assign, ...]
    terminal: tuple[Assign, ...]
    sweeps: dict
    kept: tuple[str, ...]
    stage_values: tuple[str, ...]
    stage_slopes: tuple[str, ...]

    @property
    def n_groups(self) -> int:
        return max(self.groups) + 1

    @property
    def implicit(self) -> bool:
        return bool(self.stage_unknowns)


def _rename(node: Assign, matrices: dict, entries: dict):
    return node.value.xreplace(matrices if node.kind == "matrix" else entries)


def _scaled(kappa, expr):
    return expr if kappa == 1 else kappa * expr


def _single_vector(expr, vectors: set):
    """v when expr = c·v for one array v and a scalar c, else None."""
    if len(vectors) != 1:
        return None
    v, = vectors
    return v if not sp.expand(expr / v).free_symbols & vectors else None


class _Step:
    """The generic one-state derivation read at matrix level (see the module docstring)."""

    def __init__(self, disc: Discretisation, arch: Architecture, layer: LayerProducts):
        sym, s = disc.symbols, disc.tableau.stages
        self.disc, self.layer, self.arch, self.s = disc, layer, arch, s
        self.y, self.p = array("y"), array("p")
        self.Y = [array(f"Y_{i}") for i in range(s)]
        self.F = [array(f"F_{i}") for i in range(s)]
        self.lam = [array(f"lam_{i}") for i in range(s)]
        self.P = [array(f"P_{i}") for i in range(s)]
        self.K = [array(f"K_{g}", WIDTH, WIDTH) for g in range(disc.n_groups)]
        self.beta = [array(f"beta_{g}", WIDTH, 1) for g in range(disc.n_groups)]
        self.share_sum = InternalSymbol("share_sum", real=True)
        pairs = [(sym.y, [self.y]), (sym.p, [self.p])] + [
            (row, [X]) for rows, Xs in ((sym.Y, self.Y), (sym.F, self.F), (sym.lam, self.lam),
                                        (sym.P, self.P)) for row, X in zip(rows, Xs)]
        self.rename = {x: entry(X) for row, Xs in pairs for x, X in zip(row, Xs)}
        self.rename[sym.rho] = sp.S.Zero  # autonomous: ρ ≡ 0 (MATH.md 3.1, time shifts)
        self.group_of = {row[0]: g for g, row in enumerate(sym.u)}
        self.stage_of = {entry(Y): i for i, Y in enumerate(self.Y)}
        self.vector_names = {X.name for X in (self.y, self.p, *self.Y, *self.F, *self.lam,
                                               *self.P)}
        self.unknown_of = {x: X for rows, Xs in ((sym.lam, self.lam), (sym.P, self.P))
                           for row, X in zip(rows, Xs) for x in row}
        self.regularised = not disc.problem.running_cost.is_zero

    # -- reading the generic derivation
    def read(self, expr):
        return sp.expand(sp.sympify(expr).xreplace(self.rename))

    def vectors(self, expr) -> set:
        return {x for x in expr.free_symbols if x.name in self.vector_names}

    def split(self, expr) -> tuple[dict, sp.Expr]:
        """expr = Σ atom · coefficient + rest, the atoms being 𝒻_y, 𝒻_u, ℛ', ℛ."""
        atoms, rest = {}, sp.S.Zero
        for term in sp.Add.make_args(self.read(expr)):
            found = term.atoms(LayerY, LayerU, RegulariserU, Regulariser)
            if not found:
                rest += term
                continue
            if len(found) > 1:
                raise OcgenError(f"a term with two layer derivatives: {term}")
            atom, = found
            coefficient, factor = term.as_independent(atom, as_Add=False)
            if factor != atom:
                raise OcgenError(f"not linear in {atom}: {term}")
            if coefficient.has(sp.Float):
                coefficient = sp.cancel(coefficient)
            atoms[atom] = atoms.get(atom, sp.S.Zero) + coefficient
        return atoms, rest

    def stage(self, atom) -> tuple[int, int]:
        """(stage j, group g) of 𝒻_y(Y_j, u_g) or 𝒻_u(Y_j, u_g)."""
        return self.stage_of[atom.args[0]], self.group_of[atom.args[1]]

    # -- the layer at one stage
    def renaming(self, label, g, cotangent=None, Y=None) -> tuple[dict, dict]:
        """Generic layer names → those of stage ``label`` (K, β of group g; V → cotangent)."""
        layer = self.layer
        names = {}
        for node in (*layer.forward, *layer.backward):
            for X in (node.target, *(node.value.atoms(sp.MatrixSymbol)
                                     if node.kind == "matrix" else ())):
                names[X] = array(f"{X.name}_{label}", *X.shape)
        names.update({layer.K: self.K[g], layer.beta: self.beta[g]})
        if Y is not None:
            names[layer.Y] = Y
        if cotangent is not None:
            names[layer.V] = cotangent
        return names, {entry(a): entry(b) for a, b in names.items()}

    def layer_forward(self, label, g, Y=None) -> tuple[Assign, ...]:
        matrices, entries = self.renaming(label, g, Y=Y)
        return tuple(Assign(matrices[n.target], _rename(n, matrices, entries), n.kind)
                     for n in self.layer.forward)

    def layer_backward(self, j, g, cotangent, want_Y: bool, kappa, done: set):
        """Stage j's vector–Jacobian products of ``cotangent``: the nodes not yet in ``done``,
        then dY_j = f_Yᵀ V (``want_Y``) and, unless ``kappa`` is None, gK_g += κ f_Kᵀ V and
        gbeta_g += κ f_βᵀ V."""
        layer = self.layer
        matrices, entries = self.renaming(j, g, cotangent)
        dY = array(f"dY_{j}")
        wanted = []
        if want_Y and dY.name not in done:
            wanted.append(Assign(dY, layer.cotangent_Y.xreplace(matrices), "matrix"))
        if kappa is not None:
            wanted += [
                Assign(self.gK(g), _scaled(kappa, layer.cotangent_K.xreplace(matrices)),
                       "matrix", True),
                Assign(self.gbeta(g), _scaled(kappa, layer.cotangent_beta.xreplace(matrices)),
                       "matrix", True)]
        needed = {X.name for a in wanted for X in a.value.atoms(sp.MatrixSymbol)}
        backward = tuple(Assign(matrices[n.target], _rename(n, matrices, entries), n.kind)
                         for n in layer.backward)
        nodes = [n for n in prune(backward, needed) if n.target.name not in done]
        done |= {n.target.name for n in nodes} | ({dY.name} if want_Y else set())
        return tuple(nodes) + tuple(wanted), dY

    def gK(self, g):
        return array(f"gK_{g}", WIDTH, WIDTH)

    def gbeta(self, g):
        return array(f"gbeta_{g}", WIDTH, 1)

    def regulariser(self, g):
        return tikhonov_term(self.arch, self.K[g], self.beta[g], self.share_sum)

    # -- forward
    def forward(self):
        disc = self.disc
        slopes = {F: f for F, f in disc.slopes}
        if not disc.implicit:
            nodes = []
            for target, value in disc.stage_sequence:
                if target in slopes:
                    i = next(i for i, row in enumerate(disc.symbols.F) if target in row)
                    nodes += self.layer_forward(i, disc.groups[i], self.Y[i])
                else:
                    i = next(i for i, row in enumerate(disc.symbols.Y) if target in row)
                    nodes.append(Assign(self.Y[i], self.read(value), "pointwise"))
            return (), tuple(nodes), ()
        # implicit: Gauss–Seidel on Y_i = y + h Σ_j a_ij F_j from F_j = f(y, θ_g(j))
        start, started = [], set()
        for i, g in enumerate(disc.groups):
            if g not in started:
                started.add(g)
                start += self.layer_forward(f"start_{g}", g, self.y)
            F_start = self.renaming(f"start_{g}", g)[0][self.layer.F]
            start.append(Assign(self.F[i], F_start, "matrix"))
        to_slopes = {f: entry(F) for F, f in zip(self.F, (f for _, f in disc.slopes))}
        loop = []
        for i, g in enumerate(disc.groups):
            fixed_point = disc.symbols.Y[i][0] - disc.stage_residual[i]
            loop.append(Assign(self.Y[i], self.read(fixed_point.xreplace(to_slopes)),
                               "pointwise"))
            loop += self.layer_forward(i, g, self.Y[i])
        return tuple(start), tuple(loop), tuple(self.Y)

    def forward_post(self):
        disc = self.disc
        return (Assign(array("y_next"), self.read(disc.next_state[0]), "pointwise"),
                Assign(InternalSymbol("cost", real=True),
                       self.number(disc.step_cost, {}, []), "number"))

    def number(self, expr, canon: dict, nodes: list) -> sp.Expr:
        """A scalar of the derivation: ℛ(u_g) → L(θ_g); (combination of multipliers) × F_j →
        the pairing ⟨·, F_j⟩ (through the stage's cotangent when proportional to it)."""
        atoms, rest = self.split(expr)
        total = sp.S.Zero
        for atom, coefficient in atoms.items():
            if not isinstance(atom, Regulariser):
                raise OcgenError(f"unexpected {atom} in a scalar of the step")
            total += coefficient * pairings(self.regulariser(self.group_of[atom.args[0]]))
        for j, F in enumerate(self.F):
            coefficient = sp.expand(sp.diff(rest, entry(F)))
            if coefficient == 0:
                continue
            rest = sp.expand(rest - coefficient * entry(F))
            if j in canon:
                C, C_value = canon[j]
                kappa = sp.cancel(coefficient / C_value)
                if not self.vectors(kappa) and not sp.denom(kappa).free_symbols:
                    total += kappa * Pairing(entry(C), entry(F))
                    continue
            W = array(f"W_{j}_h")
            nodes.append(Assign(W, coefficient, "pointwise"))
            total += Pairing(entry(W), entry(F))
        if rest != 0:
            raise OcgenError(f"a scalar of the step is not a sum of pairings: {rest}")
        return total

    # -- backward
    def sweep(self, step: CostateStep) -> Sweep:
        stages = step.stages
        flat = [x for row in stages.unknowns for x in row]
        if stages.sequence is not None:
            assignments = [(self.unknown_of[x], v) for x, v in stages.sequence]
        else:  # the stationarity conditions E(U) = r − M U = 0 as U = E(U) + U, last first
            E = stages.rhs - stages.matrix * sp.Matrix(flat)
            assignments = [(self.unknown_of[x], E[k] + x) for k, x in reversed(
                list(enumerate(flat)))]
        unknowns = [(X, *self.split(v)) for X, v in assignments]
        previous = self.split(step.previous_costate[0])
        gradients = [self.split(row[0]) for row in step.control_gradient]

        # each stage's cotangent: the coefficient of its first layer derivative without its
        # symbolic factors (W_j = b_j p + Σ_i a_ij Λ_i, MATH.md 3.1), or the one array in it
        canon = {}
        for atoms in [a for _, a, _ in unknowns] + [previous[0]] + [a for a, _ in gradients]:
            for atom, coefficient in atoms.items():
                if isinstance(atom, (LayerY, LayerU)):
                    j, _ = self.stage(atom)
                    if j not in canon:
                        canon[j] = self.cotangent(j, coefficient)

        def kappa(j, coefficient):
            k = proportion(coefficient, canon[j][1], self.vectors)
            if k is None:
                raise OcgenError(f"stage {j}: the cotangents of the layer are not "
                                 "proportional")
            return k

        theta = {}  # stage → (group, κ) of its f_θᵀ V in ∂J/∂θ_g
        regulariser = {}  # group → coefficient of ℛ'(u_g)
        for g, (atoms, rest) in enumerate(gradients):
            if rest != 0:
                raise OcgenError(f"a control gradient outside the layer: {rest}")
            for atom, coefficient in atoms.items():
                if isinstance(atom, LayerU):
                    j, group = self.stage(atom)
                    theta[j] = (group, kappa(j, coefficient))
                elif isinstance(atom, RegulariserU):
                    regulariser[self.group_of[atom.args[0]]] = coefficient
                else:
                    raise OcgenError(f"unexpected {atom} in a control gradient")

        def block(items, with_theta: bool) -> list[Assign]:
            nodes, done, ready, theta_done = [], set(), set(), set()

            def cotangent(j):
                C, value = canon[j]
                if j not in ready and C.name.startswith("W_"):
                    nodes.append(Assign(C, value, "pointwise"))
                ready.add(j)
                return C

            def products(j, g, want_Y):
                k = None
                if with_theta and j in theta and j not in theta_done:
                    k = theta[j][1]
                    theta_done.add(j)
                new, dY = self.layer_backward(j, g, cotangent(j), want_Y, k, done)
                nodes.extend(new)
                return dY

            for target, atoms, rest in items:
                value = rest
                for atom, coefficient in atoms.items():
                    if not isinstance(atom, LayerY):
                        raise OcgenError(f"unexpected {atom} in a costate")
                    j, g = self.stage(atom)
                    value += kappa(j, coefficient) * entry(products(j, g, True))
                nodes.append(Assign(target, sp.expand(value), "pointwise"))
            if with_theta:
                for j, (g, _) in sorted(theta.items()):
                    if j not in theta_done:
                        products(j, g, False)
                for g, coefficient in sorted(regulariser.items()):
                    term = self.regulariser(g)
                    for X, gX in ((self.K[g], self.gK(g)), (self.beta[g], self.gbeta(g))):
                        nodes.append(Assign(gX, _scaled(coefficient, matrix_gradient(term, X)),
                                            "matrix", True))
            return nodes

        previous_target = array("p_previous")
        if stages.sequence is not None:
            start, loop = (), ()
            core = block(unknowns + [(previous_target, *previous)], True)
        else:
            start = tuple(Assign(X, sp.S.Zero if X.name.startswith("lam") else entry(self.p),
                                 "pointwise") for X, _, _ in unknowns)
            loop = tuple(block(unknowns, False))
            core = block([(previous_target, *previous)], True)
        extras: list[Assign] = []
        costates = []
        for i, row in enumerate(step.stage_costates):
            value = self.read(row[0])
            if value in {entry(X) for X in self.P}:
                costates.append(self.arrays_of(value))
            else:
                costates.append(array(f"stage_costate_{i}"))
                extras.append(Assign(costates[-1], value, "pointwise"))
        g_h = InternalSymbol("g_h", real=True)
        extras.append(Assign(g_h, self.number(step.step_gradient, canon, extras), "number"))
        if self.read(step.previous_time_costate) != 0:
            raise OcgenError("the network's dynamics depend on time")
        start, loop, core, extras = inline(
            [tuple(start), tuple(loop), tuple(core), tuple(extras)],
            {self.disc.symbols.h.name, self.share_sum.name})
        return Sweep(start, loop, tuple(X for X, _, _ in unknowns), core, previous_target,
                     extras, tuple(costates), g_h)

    def arrays_of(self, v):
        return array(v.name)

    def cotangent(self, j, coefficient) -> tuple[sp.MatrixSymbol, sp.Expr]:
        """Stage j's cotangent V_j (an array, or a node ``W_j``) and its value."""
        factors = sp.factor_terms(coefficient).as_ordered_factors()
        common = sp.Mul(*(f for f in factors if not f.is_number and not self.vectors(f)))
        value = sp.expand(coefficient / common)
        v = _single_vector(value, self.vectors(value))
        return (self.arrays_of(v), v) if v is not None else (array(f"W_{j}"), value)


def _network_key(arch: Architecture) -> tuple:
    """What the derivation depends on (width, layers, horizon and data do not matter)."""
    return (arch.dynamics, arch.activation, arch.loss, arch.depth == "net",
            sp.nsimplify(arch.tikhonov, rational=True),
            sp.nsimplify(arch.gamma, rational=True) if arch.dynamics == "antisymmetric" else 0,
            arch.controls)


def supports(arch: Architecture) -> bool:
    """Whether the network is derived at matrix level (the built-in dynamics)."""
    return (arch.problem is None and arch.dynamics in MATRIX_DYNAMICS
            and arch.controls in MATRIX_CONTROLS)


def derive_network(arch: Architecture, tableau: ButcherTableau) -> NetworkDerivation:
    """The matrix-level derivation of ``arch`` discretised by ``tableau`` (module docstring)."""
    if not supports(arch):
        raise OcgenError(f"the {arch.dynamics} network is derived entry by entry, not at "
                         "matrix level")
    return _derive(_network_key(arch), tableau, arch)


@cache
def _derive(key, tableau, arch) -> NetworkDerivation:
    dynamics, activation, _, net, alpha, gamma, controls = key
    layer = network_layer(dynamics, activation, gamma, net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideTheoryWarning)
        disc = discretise(generic_problem(alpha != 0), tableau, controls)
    step = _Step(disc, arch, layer)
    start, forward, unknowns = step.forward()
    sweeps = {"multiplier": step.sweep(_reuse_slopes(disc.multiplier, disc))}
    if disc.partner is not None:
        sweeps["partner"] = step.sweep(_reuse_slopes(disc.partner, disc))
    terminal, cost, outputs = terminal_nodes(arch)
    y_end, W, mu = array("y_end"), array("W", WIDTH, 1), array("mu", 1, 1)
    terminal = terminal + (cost, Assign(array("p_end"), outputs[y_end], "matrix"),
                           Assign(array("gW", WIDTH, 1), outputs[W], "matrix"),
                           Assign(array("gmu", 1, 1), outputs[mu], "matrix"))
    produced = {n.target.name for n in (*start, *forward)} | {"y"}
    read = set()
    for sweep in sweeps.values():
        for node in (*sweep.start, *sweep.loop, *sweep.core, *sweep.extras):
            read |= ({X.name for X in node.value.atoms(sp.MatrixSymbol)} if node.kind == "matrix"
                     else {s.name for s in node.value.free_symbols})
    values = tuple(Y.name for Y in step.Y)
    slopes = tuple(F.name for F in step.F)
    kept = tuple(sorted((read & produced) | set(values) | set(slopes), key=natural))
    return NetworkDerivation(arch, tableau, disc.groups, layer, start, forward, unknowns,
                             step.forward_post(), terminal, sweeps, kept, values, slopes)


def natural(name: str):
    head, _, tail = name.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (name, -1)


# -- the check -----------------------------------------------------------------------------------
def evaluate(nodes, values: dict, width: int, points: int, held: frozenset = frozenset()):
    """Run ``nodes`` on explicit SymPy matrices: ``values`` maps array names to matrices and
    scalar symbols to expressions. An array named in ``held`` keeps its given (symbolic) value
    for the nodes after its assignment; what was computed for it is returned as well. Returns
    (the values after the run, {held name: computed}). The tests expand the derivation this way
    at small widths and compare it with the scalar derivation."""
    env, computed = dict(values), {}
    sizes = {WIDTH: width, POINTS: points}

    def shape(X):
        return tuple(int(n.xreplace(sizes)) for n in X.shape)

    def at(matrix, r, c):
        return matrix[r if matrix.rows > 1 else 0, c if matrix.cols > 1 else 0]

    for node in nodes:
        scalars = {s: env[s.name] for s in node.value.free_symbols
                   if isinstance(s, sp.Symbol) and s.name in env
                   and not isinstance(env[s.name], sp.MatrixBase)}
        if node.kind == "matrix":
            explicit = {X: sp.ImmutableMatrix(env[X.name])
                        for X in node.value.atoms(sp.MatrixSymbol)}
            value = node.value.xreplace({**explicit, **sizes})
            value = sp.Matrix(value.doit().as_explicit()) if isinstance(
                value, sp.MatrixExpr) else sp.Matrix(value)
            value = value.xreplace(scalars)
        elif node.kind == "pointwise":
            rows, cols = shape(node.target)
            arrays = [s for s in node.value.free_symbols
                      if isinstance(env.get(s.name), sp.MatrixBase)]
            value = sp.Matrix(rows, cols, lambda r, c: node.value.xreplace(
                {**scalars, **{s: at(env[s.name], r, c) for s in arrays}}))
        else:
            def pair(a, b):
                A, B = env[a.name], env[b.name]
                return sum(A[k] * B[k] for k in range(len(A)))
            value = node.value.xreplace(scalars).replace(
                lambda e: isinstance(e, Pairing), lambda e: pair(*e.args)).replace(
                lambda e: isinstance(e, Total), lambda e: sum(env[e.args[0].name]))
        name = node.target.name
        if node.accumulate:
            value = env.get(name, sp.zeros(*value.shape)) + value
        if name in held:
            computed[name] = value
        else:
            env[name] = value
    return env, computed
