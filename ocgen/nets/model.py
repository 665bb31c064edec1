"""A network as an optimal control problem (MATH.md 6), and the trained model.

The architecture becomes an ensemble problem: states y ∈ ℝᵈ, controls θ = (K, β) (K row-major,
then β), per-member parameters (label c, loss weight ω, regularisation share ς) and free
parameters (W, μ) of the terminal cost

    Φ = ω · ℓ(η(Wᵀy + μ), c),   L = ς · α/2 (|K|² + |β|²),

with η the logistic sigmoid and ℓ the squared error ½(η − c)² or the cross-entropy. Summed
over the members, ω = 1/K gives the mean loss and ς = 1/K counts the Tikhonov term once. The
derivation and the generated module then supply J_h and every gradient.

Hamiltonian dynamics (Haber–Ruthotto; Chang et al.; MATH.md 6) split the width d into y (the
first d/2 states) and z (the others): y' = σ(K z + β₁), z' = −σ(Kᵀ y + β₂) with K of size
d/2 × d/2. The problem puts y and z in the two parts of a partitioned pair, so a pair such as
Störmer–Verlet (Lobatto IIIA for y, IIIB for z) discretises it; θ = (K, β₁, β₂).

A problem file is a network too (``dynamics="problem"``): its states are the layer state, its
controls the layer parameters, its member parameter ``c`` receives the labels, and its free
parameters must be W1 … Wd, mu, so that the prediction is η(Wᵀy(T) + μ); its own costs are the
loss and regularisation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import sympy as sp

from ..errors import DerivativeSizeError, InputError, OcgenError
from ..files import read_data_file, write_text_atomic
from ..limits import (MAX_DATA_FILE_BYTES, MAX_DERIVATIVE_NODES, MAX_LAYERS,
                      MAX_NETWORK_PARAMETERS, check_count)
from ..numbers import finite_real
from ..pair import PartitionedTableau
from ..problem import OptimalControlProblem, problem_from_dict
from ..tableau import ButcherTableau
from .names import ACTIVATION_NAMES, CONTROL_MODES, DEPTHS, DYNAMICS, LOSSES

MATRIX_DYNAMICS = ("tanh", "symmetric", "antisymmetric")
"""Dynamics derived at the level of matrices (:mod:`ocgen.nets.matrix`), so at any width up to
MAX_MATRIX_WIDTH; the others are derived entry by entry, up to width 16."""
MAX_MATRIX_WIDTH = 1024
MAX_SCALAR_WIDTH = 16


def logistic(x):
    """η(x) = 1/(1 + e⁻ˣ) = (1 + tanh(x/2))/2, a form that neither overflows nor cancels."""
    return (1 + sp.tanh(x / 2)) / 2


def softplus(x):
    """log(1 + eˣ) = x/2 + log(2 cosh(x/2)); its derivative is η(x). Finite for |x| < 1400."""
    return x / 2 + sp.log(2 * sp.cosh(x / 2))


ACTIVATIONS = dict(zip(ACTIVATION_NAMES, (sp.tanh, logistic, softplus)))


@dataclass(frozen=True)
class Architecture:
    """What a network is, before training: the problem it defines and its discretisation."""

    width: int
    layers: int
    dynamics: str = "tanh"
    activation: str = "tanh"
    depth: str = "resnet"
    horizon: float = 1.0
    loss: str = "squares"
    mean_loss: bool = False
    tikhonov: float = 0.0
    smoothness: float = 0.0
    gamma: float = 0.01
    controls: str = "step"
    problem: dict | None = field(default=None, compare=False)
    """The table of a problem file, for ``dynamics="problem"``."""

    def __post_init__(self):
        def need(ok, option, message):
            if not ok:
                raise InputError(message, key=option)

        for option, value in (("width", self.width), ("layers", self.layers)):
            need(isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                 and value >= 1, option, f"must be a positive integer, found {value!r}")
        check_count(self.layers, MAX_LAYERS, "layers", key="layers")
        if self.problem is None and self.dynamics in MATRIX_DYNAMICS:
            need(self.width <= MAX_MATRIX_WIDTH, "width",
                 f"at most {MAX_MATRIX_WIDTH}, found {self.width}")
        else:
            need(self.width <= MAX_SCALAR_WIDTH, "width",
                 f"at most {MAX_SCALAR_WIDTH} (the scalar derivation unrolls K), found "
                 f"{self.width}")
        dynamics = (*DYNAMICS, "problem") if self.problem is not None else DYNAMICS
        need(self.problem is None or self.dynamics == "problem", "dynamics",
             "a problem file's network has dynamics \"problem\"")
        need(self.dynamics not in ("problem", "hamiltonian") or self.depth != "net", "depth",
             "the plain Net (h = 1 on f − y) is defined for the tanh, symmetric and "
             "antisymmetric dynamics only")
        need(self.dynamics != "hamiltonian" or self.width % 2 == 0, "width",
             f"hamiltonian dynamics split the width into y and z: it must be even, found "
             f"{self.width}")
        for option, value, names in (("dynamics", self.dynamics, dynamics),
                                     ("activation", self.activation, ACTIVATIONS),
                                     ("depth", self.depth, DEPTHS), ("loss", self.loss, LOSSES),
                                     ("controls", self.controls, CONTROL_MODES)):
            need(value in names, option, f"unknown {option} {value!r} (choose from "
                                         f"{', '.join(names)})")
        need(finite_real(self.horizon) and self.horizon > 0, "horizon",
             f"must be a positive number, found {self.horizon!r}")
        for option in ("tikhonov", "smoothness", "gamma"):
            value = getattr(self, option)
            need(finite_real(value) and value >= 0, option,
                 f"must be a number ≥ 0, found {value!r}")
        # one control group per layer here; Objective counts the stage groups too
        check_count(self.layers * (self.kernel**2 + self.width), MAX_NETWORK_PARAMETERS,
                    f"parameters in {self.layers} layers of width {self.width}", key="layers")

    @property
    def kernel(self) -> int:
        """The side of K: d/2 for hamiltonian dynamics (K couples z to y), else d."""
        return self.width // 2 if self.dynamics == "hamiltonian" else self.width

    @property
    def total_time(self) -> float:
        """T: the horizon, or L for the plain Net (one unit step per layer)."""
        return float(self.layers) if self.depth == "net" else float(self.horizon)

    @property
    def learns_steps(self) -> bool:
        return self.depth in ("odenet", "odenet-simplex")

    def to_json(self) -> dict:
        data = {"width": self.width, "layers": self.layers, "dynamics": self.dynamics,
                "activation": self.activation, "depth": self.depth, "horizon": self.horizon,
                "loss": self.loss, "mean_loss": self.mean_loss, "tikhonov": self.tikhonov,
                "smoothness": self.smoothness, "gamma": self.gamma, "controls": self.controls}
        if self.problem is not None:
            data["problem"] = self.problem
        return data


def network_problem(arch: Architecture) -> OptimalControlProblem:
    """The ensemble problem of MATH.md 6 for ``arch`` (members are supplied at run time; the
    two placeholder members only fix the shapes)."""
    if arch.problem is not None:
        return file_network(arch.problem)
    d, k = arch.width, arch.kernel
    real = dict(real=True)
    y = sp.Matrix([sp.Symbol(f"y{i + 1}", **real) for i in range(d)])
    K = sp.Matrix(k, k, lambda i, j: sp.Symbol(f"K{i + 1}_{j + 1}", **real))
    beta = sp.Matrix([sp.Symbol(f"beta{i + 1}", **real) for i in range(d)])
    W = sp.Matrix([sp.Symbol(f"W{i + 1}", **real) for i in range(d)])
    mu, c, weight, share = (sp.Symbol(n, **real) for n in ("mu", "c", "weight", "share"))
    sigma = ACTIVATIONS[arch.activation]
    if arch.dynamics == "tanh":
        f = (K * y + beta).applyfunc(sigma)
    elif arch.dynamics == "symmetric":
        f = -K.T * (K * y + beta).applyfunc(sigma)
    elif arch.dynamics == "hamiltonian":  # y = y[:k], z = y[k:]
        f = sp.Matrix.vstack((K * y[k:, :] + beta[:k, :]).applyfunc(sigma),
                             -(K.T * y[:k, :] + beta[k:, :]).applyfunc(sigma))
    else:
        gamma = sp.nsimplify(arch.gamma, rational=True)
        f = ((K - K.T - gamma * sp.eye(d)) * y + beta).applyfunc(sigma)
    if arch.depth == "net":
        f = f - y
    zeta = (W.T * y)[0] + mu
    if arch.loss == "squares":
        loss = (logistic(zeta) - c) ** 2 / 2
    else:
        loss = softplus(zeta) - c * zeta
    controls = (*K, *beta)
    alpha = sp.nsimplify(arch.tikhonov, rational=True)
    running = share * alpha / 2 * sum(u**2 for u in controls) if alpha else sp.S.Zero
    members = [(weight, (0.0, 0.0)), (c, (0.0, 0.0))]
    if alpha:
        members.append((share, (0.0, 0.0)))
    try:
        return OptimalControlProblem(
            name=f"network_{arch.dynamics}_{arch.activation}_{arch.loss}_d{d}"
                 + ("_net" if arch.depth == "net" else ""),
            time=sp.Symbol("t", **real), states=tuple(y), controls=controls,
            dynamics=tuple(f), running_cost=running, terminal_cost=weight * loss, t0=0.0,
            T=arch.total_time, initial_states=((0.0,) * d, (0.0,) * d),
            member_parameters=tuple(members), free_parameters=(*((w, 0.0) for w in W),
                                                               (mu, 0.0)),
            partition=(0,) * k + (1,) * k if arch.dynamics == "hamiltonian" else (),
            description=f"ODE network y' = f(y, K, beta) ({arch.dynamics}, "
                        f"{arch.activation}) of width {d}, output eta(W'y(T) + mu), "
                        f"{arch.loss} loss")
    except DerivativeSizeError as err:
        hint = ("; the matrix-level derivation takes these dynamics at any width"
                if arch.dynamics in MATRIX_DYNAMICS else "")
        raise InputError(f"{d} is too wide for the entry-by-entry derivation of "
                         f"{arch.dynamics} dynamics with the {arch.activation} activation "
                         f"(its first derivatives have more than {MAX_DERIVATIVE_NODES} nodes, "
                         f"the limit){hint}", key="width") from err


SCALAR_REACH = ("with the tanh activation, the entry-by-entry derivation takes widths up to "
                "12 for tanh dynamics, 9 for antisymmetric, 6 for symmetric and 16 for "
                "hamiltonian")
"""What :func:`scalar_derivable` finds for the resnet with the squares loss (the other
activations, losses and regularisers reach a little less or more)."""


def scalar_derivable(arch: Architecture) -> bool:
    """Whether the entry-by-entry derivation takes a network of the built-in dynamics: width
    at most MAX_SCALAR_WIDTH and first derivatives within MAX_DERIVATIVE_NODES (SCALAR_REACH).
    A problem file's network is always derived entry by entry; the file's own limits apply."""
    if arch.problem is not None:
        return True
    if arch.width > MAX_SCALAR_WIDTH:
        return False
    # the derivatives' size depends on the layer, loss and regulariser, not on L, T, the
    # learned steps or the controls' grouping
    return _derivable(replace(arch, layers=1, horizon=1.0, mean_loss=False, smoothness=0.0,
                              depth="net" if arch.depth == "net" else "resnet",
                              controls="step"))


@cache
def _derivable(arch: Architecture) -> bool:
    try:
        network_problem(arch)
    except InputError:
        return False
    return True


def file_network(table: dict, source: str = "problem") -> OptimalControlProblem:
    """The problem of a problem file's table, checked to be a network: member parameter ``c``
    only (the labels) and free parameters exactly W1 … Wd, mu (the output). The data set
    supplies the initial states and labels, so the file leaves out ``initial_state(s)`` and
    ``member_parameters`` (c is declared for it; two placeholder members fix the shapes)."""
    if not isinstance(table.get("states"), list):
        raise InputError("expected a list of state names", source=source, key="states")
    for key in ("initial_state", "initial_states", "member_parameters"):
        if key in table:
            raise InputError("leave this out: the data set supplies the initial states and "
                             "the labels c", source=source, key=key)
    placeholder = [0.0] * len(table["states"])
    table = {**table, "initial_states": [placeholder, placeholder],  # the data supply these
             "member_parameters": {"c": [0.0, 0.0]}}
    problem = problem_from_dict(table, source)
    expected = [f"W{i + 1}" for i in range(problem.state_dim)] + ["mu"]
    if [q.name for q in problem.free_parameter_symbols] != expected:
        raise InputError(f"a network's problem has the free parameters {', '.join(expected)} "
                         "(in this order; the prediction is eta(W'y(T) + mu))", source=source,
                         key="free_parameters")
    if problem.solution is not None:
        raise InputError("a network's problem has no closed-form solution", source=source,
                         key="solution")
    return problem


@dataclass(frozen=True, eq=False)
class Network:
    """A trained network: its architecture, tableau (or pair) and parameters.

    ``theta`` (L, G, m): the controls of each layer, G = 1 for step controls and G = S for
    stage controls (for the built-in dynamics m = k² + d: K (k × k, k = d, or d/2 for
    hamiltonian dynamics) row-major, then β); ``W`` (d,), ``mu``; ``time_steps`` h (L,).
    """

    architecture: Architecture
    tableau: ButcherTableau | PartitionedTableau
    theta: np.ndarray
    W: np.ndarray
    mu: float
    time_steps: np.ndarray
    data: dict = field(default_factory=dict)

    @cached_property
    def module(self):
        from .matrix_code import network_module
        return network_module(self.architecture, self.tableau)

    @property
    def K(self) -> np.ndarray:
        """(L, G, k, k), for the built-in dynamics."""
        return unpack_controls(self.theta, self.architecture.width,
                               self.architecture.kernel)[0]

    @property
    def beta(self) -> np.ndarray:
        """(L, G, d), for the built-in dynamics."""
        return unpack_controls(self.theta, self.architecture.width,
                               self.architecture.kernel)[1]

    @property
    def free(self) -> np.ndarray:
        return np.append(self.W, self.mu)

    def flow(self, points) -> np.ndarray:
        """The points after each layer, (L + 1, n, d): y' = f(y) run from the padded inputs."""
        y0 = padded(points, self.architecture.width)
        params = np.zeros((len(self.module.PARAMETER_NAMES), y0.shape[1]))
        trajectory = self.module.forward(self.theta, self.time_steps, y0, params,
                                         free=self.free)
        return trajectory["y"].transpose(0, 2, 1)

    def logits(self, points) -> np.ndarray:
        """ζ = Wᵀy(T) + μ per point."""
        return self.flow(points)[-1] @ self.W + self.mu

    def predict(self, points) -> np.ndarray:
        """η(Wᵀ y(T) + μ): the probability of label 1 for each point."""
        return output(self.logits(points))

    def to_json(self) -> dict:
        """The model file (schema in the README)."""
        tableau = self.tableau.to_dict()
        parts = ("first", "second") if isinstance(self.tableau, PartitionedTableau) else \
            ("A", "b", "c")
        arch = self.architecture
        step = arch.controls == "step"
        if arch.problem is None:
            weights = {"K": (self.K[:, 0] if step else self.K).tolist(),
                       "beta": (self.beta[:, 0] if step else self.beta).tolist()}
        else:
            weights = {"theta": (self.theta[:, 0] if step else self.theta).tolist()}
        return {"format": "ocgen-network", "version": 1,
                "tableau": {key: tableau[key] for key in ("name", *parts)},
                **arch.to_json(), **weights, "W": self.W.tolist(), "mu": float(self.mu),
                "time_steps": self.time_steps.tolist(), "data": self.data}

    def save(self, path) -> Path:
        path = Path(path)
        try:
            write_text_atomic(path, json.dumps(self.to_json(), indent=1) + "\n")
        except OSError as err:
            raise OcgenError(f"{path}: cannot write: {err.strerror or err}") from None
        return path


def padded(points, width: int) -> np.ndarray:
    """Points (n, d0) padded with zeros to the width, as initial states (width, n)."""
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] > width:
        raise OcgenError(f"points must have shape (n, d0) with d0 ≤ {width} (the width), "
                         f"found {points.shape}")
    y0 = np.zeros((width, points.shape[0]))
    y0[:points.shape[1]] = points.T
    return y0


def output(logits) -> np.ndarray:
    """η(ζ) = (1 + tanh(ζ/2))/2, the logistic sigmoid (MATH.md 6)."""
    return 0.5 + 0.5 * np.tanh(0.5 * np.asarray(logits, dtype=float))


def pack_controls(K: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """θ (L, G, k² + d) from K (L, G, k, k) and β (L, G, d): K row-major, then β."""
    L, G, _ = beta.shape
    return np.concatenate([K.reshape(L, G, -1), beta], axis=-1)


def unpack_controls(theta: np.ndarray, width: int,
                    kernel: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """K (L, G, k, k) and β (L, G, d) from θ (L, G, k² + d); k = ``kernel``, default d."""
    L, G, _ = theta.shape
    k = width if kernel is None else kernel
    return theta[..., :k * k].reshape(L, G, k, k), theta[..., k * k:]


_ARCHITECTURE_KEYS = ("width", "layers", "dynamics", "activation", "depth", "horizon", "loss",
                      "mean_loss", "tikhonov", "smoothness", "gamma", "controls")
_MODEL_KEYS = {"format", "version", "tableau", *_ARCHITECTURE_KEYS, "W", "mu", "time_steps",
               "data"}
_WEIGHT_KEYS = {False: ("K", "beta"), True: ("problem", "theta")}
"""The controls' keys: K and beta for the built-in dynamics, the problem and theta for a
problem file's network."""


def load_network(path) -> Network:
    """A model file written by :meth:`Network.save`; errors name the file and the key."""
    source = str(path)
    data = read_data_file(path, MAX_DATA_FILE_BYTES)

    def fail(key, message):
        return InputError(message, source=source, key=key)

    if data.get("format") != "ocgen-network":
        raise fail("format", "not an ocgen network model (expected \"ocgen-network\")")
    from_problem = data.get("dynamics") == "problem"
    expected = _MODEL_KEYS | set(_WEIGHT_KEYS[from_problem])
    unknown = sorted(set(data) - expected)
    if unknown:
        raise fail(unknown[0], "unknown key in a model file")
    missing = sorted(expected - {"data", "version"} - set(data))
    if missing:
        raise fail(None, f"missing key {missing[0]!r}")
    if not isinstance(data["tableau"], dict):
        raise fail("tableau", "expected a table with A, b, c (or first and second for a pair)")
    kind = PartitionedTableau if "first" in data["tableau"] else ButcherTableau
    tableau = kind.from_dict({"name": "model", **data["tableau"]}, source=f"{source}: tableau")
    options = {key: data[key] for key in _ARCHITECTURE_KEYS}
    if not isinstance(options["mean_loss"], bool):
        raise fail("mean_loss", f"expected true or false, found {options['mean_loss']!r}")
    if from_problem:
        if not isinstance(data["problem"], dict):
            raise fail("problem", "expected the table of a problem file")
        file_network(data["problem"], f"{source}: problem")
        options["problem"] = data["problem"]
    try:
        arch = Architecture(**options)
    except InputError as err:
        raise err.located(source=source) from None
    except TypeError as err:
        raise fail(None, f"bad option: {err}") from None
    L, d, k = arch.layers, arch.width, arch.kernel
    G = 1 if arch.controls == "step" else tableau.stages
    per_layer = () if G == 1 else (G,)
    if from_problem:
        m = len(data["problem"]["controls"])
        theta = _array(data["theta"], (L, *per_layer, m), source, "theta").reshape(L, G, m)
    else:
        K = _array(data["K"], (L, *per_layer, k, k), source, "K")
        beta = _array(data["beta"], (L, *per_layer, d), source, "beta")
        theta = pack_controls(K.reshape(L, G, k, k), beta.reshape(L, G, d))
    W = _array(data["W"], (d,), source, "W")
    mu = float(_array(data["mu"], (), source, "mu"))
    steps = _array(data["time_steps"], (L,), source, "time_steps")
    _check_steps(steps, arch, source)
    if not isinstance(data.get("data", {}), dict):
        raise fail("data", "expected a table describing the data set")
    return Network(arch, tableau, theta, W, mu, steps, data.get("data", {}))


def _array(value, shape, source, key) -> np.ndarray:
    entries = np.array(value, dtype=object).ravel()
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in entries):
        raise InputError(f"expected numbers in an array of shape {shape}", source=source,
                         key=key)
    try:
        array = np.array(value, dtype=float)
    except OverflowError:  # an integer beyond float64's range
        raise InputError("values must be finite", source=source, key=key) from None
    if array.shape != shape:
        raise InputError(f"expected shape {shape}, found {array.shape}", source=source, key=key)
    if not np.all(np.isfinite(array)):
        raise InputError("values must be finite", source=source, key=key)
    return array


def _check_steps(steps, arch: Architecture, source) -> None:
    """h_n ≥ 0; the architecture's own steps for resnet and net (T/L, 1); Σ h = T (to 1e-9
    relative) for odenet-simplex."""
    fixed = {"resnet": (arch.horizon / arch.layers, "T/L"), "net": (1.0, "1")}.get(arch.depth)
    if fixed is not None and not np.allclose(steps, fixed[0], rtol=1e-12, atol=0):
        raise InputError(f"a {arch.depth} has the steps {fixed[0]:g} ({fixed[1]}), found "
                         f"{steps.min():g} … {steps.max():g}", source=source, key="time_steps")
    if np.any(steps < 0):
        raise InputError(f"steps must be ≥ 0, found {steps.min():g}", source=source,
                         key="time_steps")
    if arch.depth == "odenet-simplex" and abs(steps.sum() - arch.horizon) > 1e-9 * arch.horizon:
        raise InputError(f"odenet-simplex steps sum to the horizon {arch.horizon:g}, found "
                         f"{steps.sum():g}", source=source, key="time_steps")
