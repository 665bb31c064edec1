"""Training a network: the discrete problem of MATH.md 6 minimised over x = (θ, W, μ[, h]).

J and ∂J/∂θ, ∂J/∂(W, μ), ∂J/∂h come from the generated module (the derived costate sweep):
the matrix-level module of :mod:`ocgen.nets.matrix` for the built-in dynamics, the scalar
derivation's for a problem file's network (:func:`~ocgen.nets.matrix_code.network_module`).
The only term added here is the smoothness in depth α₂/2 Σ_n |θ_{n+1} − θ_n|²/h_n, a
quadratic in the controls that couples neighbouring steps (it is not part of any one step's
Lagrangian).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from ..derive import Method
from ..errors import InputError, OcgenError
from ..limits import MAX_NETWORK_PARAMETERS, check_count
from ..numbers import finite_real
from ..pair import load_method
from ..solve import NUMERIC_ERRORS
from .datasets import Dataset
from .matrix_code import control_dim, network_module
from .model import (SCALAR_REACH, Architecture, Network, output, padded,
                    scalar_derivable)
from .names import OPTIMIZERS, PRECISIONS
from .optimizers import adam, gradient_descent, projected_gradient_norm
from .simplex import project_to_simplex

DEFAULT_TOLERANCE = 1e-8
ENTRIES_PER_SWEEP = 16384
"""Points are swept in parts of about this many state entries (width × points; J and ∇J are
sums over the points), but at least 640 points: memory stays bounded however many points
there are, and one stage's arrays stay in the processor's cache (measured with RK4 at
d = 2…128, the loss + gradient of 10⁴–2·10⁴ points took 0.5–0.8× the time of one sweep)."""


def points_per_sweep(width: int) -> int:
    """How many points one sweep takes at this width (see ENTRIES_PER_SWEEP)."""
    return max(640, ENTRIES_PER_SWEEP // width)


class Objective:
    """J(x) and ∇J(x) of a network on one set of points, x = (θ, W, μ[, h]) flat.

    The sweeps at the point last evaluated are kept, so a gradient there costs one costate
    sweep and a repeated value nothing. ``reversible``: the forward sweep keeps only the final
    state and the costate sweep rebuilds the others by undoing each step (a pair whose step is
    explicitly invertible, e.g. Störmer–Verlet on hamiltonian dynamics), so memory does not
    grow with the layers. ``precision`` "float32" runs the sweeps of the matrix-level module in
    single precision (x, J and ∇J stay float64 for the optimiser). ``kernels`` "numba" runs it
    with compiled kernels (:func:`~ocgen.nets.matrix_code.network_module`).
    """

    def __init__(self, arch: Architecture, tableau: Method, points: np.ndarray,
                 labels: np.ndarray, h: np.ndarray | None = None, reversible: bool = False,
                 precision: str = "float64", kernels: str = "numpy"):
        self.arch, self.tableau, self.reversible = arch, tableau, reversible
        self.module = network_module(arch, tableau, kernels=kernels)
        if precision not in PRECISIONS:
            raise InputError(f"unknown precision {precision!r} (choose from "
                             f"{', '.join(PRECISIONS)})", key="precision")
        if precision != "float64" and not hasattr(self.module, "NETWORK"):
            raise InputError(f"{precision} needs the matrix-level module: tanh, symmetric or "
                             "antisymmetric dynamics with an explicit tableau, or an implicit "
                             "one beyond the entry-by-entry derivation's reach "
                             f"({SCALAR_REACH}); this network has the scalar derivation's",
                             key="precision")
        if reversible and not getattr(self.module, "REVERSIBLE", False):
            raise InputError(f"{tableau.name} on {arch.dynamics} dynamics has no explicit "
                             "inverse step to rebuild the states from: use a pair such as "
                             "Störmer–Verlet with hamiltonian dynamics", key="reversible")
        d, L = arch.width, arch.layers
        self.groups = self.module.N_GROUPS
        self.theta_shape = (L, self.groups, control_dim(self.module, d))
        self.n_theta = int(np.prod(self.theta_shape))
        check_count(self.n_theta, MAX_NETWORK_PARAMETERS, f"parameters in {L} layers of "
                    f"{self.groups} control group{'s' * (self.groups > 1)}", key="layers")
        self.fixed_h = None if arch.learns_steps else (
            np.ones(L) if arch.depth == "net" else np.full(L, arch.horizon / L)) \
            if h is None else np.asarray(h, dtype=float)
        self.y0 = padded(points, d).astype(precision)
        self.labels = np.asarray(labels, dtype=float)
        self.params = self.member_parameters(np.arange(self.labels.size), self.labels.size)
        self.part_size = points_per_sweep(d)
        self._last = None

    def member_parameters(self, members, batch: int) -> np.ndarray:
        """The label c, the loss weight (1/K for the mean loss, K/B for a batch of B out of K
        otherwise) and the Tikhonov share 1/B of each member, as the module names them."""
        total = self.labels.size
        values = {"c": self.labels[members],
                  "weight": 1 / batch if self.arch.mean_loss else total / batch,
                  "share": 1 / batch}
        return np.array([np.broadcast_to(values[name], len(members))
                         for name in self.module.PARAMETER_NAMES])

    @property
    def size(self) -> int:
        return self.n_theta + self.arch.width + 1 + (self.arch.layers
                                                      if self.arch.learns_steps else 0)

    def split(self, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """θ (L, G, m), free parameters (W, μ), h (L,)."""
        theta = x[:self.n_theta].reshape(self.theta_shape)
        free = x[self.n_theta:self.n_theta + self.arch.width + 1]
        h = x[self.n_theta + self.arch.width + 1:] if self.arch.learns_steps else self.fixed_h
        return theta, free, h

    def join(self, theta, free, h) -> np.ndarray:
        return np.concatenate([np.ravel(theta), free] + ([h] if self.arch.learns_steps else []))

    def project(self, x) -> np.ndarray:
        """P onto the feasible set: controls within their bounds (a problem file may have
        them), h ≥ 0 (odenet), the simplex Σ h = T (odenet-simplex)."""
        x = x.copy()
        theta = x[:self.n_theta].reshape(self.theta_shape)
        np.clip(theta, self.module.CONTROL_LOWER, self.module.CONTROL_UPPER, out=theta)
        if not self.arch.learns_steps:
            return x
        h = x[-self.arch.layers:]
        x[-self.arch.layers:] = (project_to_simplex(h, self.arch.horizon)
                                 if self.arch.depth == "odenet-simplex" else np.maximum(h, 0))
        return x

    def value(self, x, members=None) -> float:
        return self._sweeps(x, members, gradient=False)[0]

    def gradient(self, x, members=None) -> np.ndarray:
        return self._sweeps(x, members, gradient=True)[1]

    def value_and_gradient(self, x, members=None) -> tuple[float, np.ndarray]:
        return self._sweeps(x, members, gradient=True)

    def forget(self) -> None:
        """Drop the kept sweeps (the next evaluation computes them again)."""
        self._last = None

    def _sweeps(self, x, members, gradient: bool):
        """(J, ∇J or None) at x. The sweeps at the point last evaluated are kept (when the
        points go in one part), so asking again costs nothing and a gradient after a value
        costs one costate sweep."""
        last = self._last
        fresh = (last is None or not _same_members(last["members"], members)
                 or not np.array_equal(last["x"], x))
        if fresh or (gradient and last["gradient"] is None):
            self._last = last = self._evaluate(x, members, gradient,
                                               None if fresh else last["trajectories"])
        return last["value"], last["gradient"]

    def _parts(self, members) -> list[tuple[np.ndarray, np.ndarray]]:
        """(y0, params) of the parts swept one after the other: the batch ``members`` or all
        points, in parts of at most ``part_size`` points (loss weight and Tikhonov share those
        of the whole batch, so that the parts' J and ∇J add up to the batch's)."""
        chosen = np.arange(self.labels.size) if members is None else np.asarray(members)
        if chosen.size == 0:
            raise InputError("a batch needs at least one point", key="members")
        count = -(-chosen.size // self.part_size)
        if members is None and count == 1:
            return [(self.y0, self.params)]
        return [(self.y0[:, part], self.member_parameters(part, chosen.size))
                for part in np.array_split(chosen, count)]

    def _evaluate(self, x, members, gradient: bool, trajectories=None) -> dict:
        """Forward sweeps (reusing ``trajectories`` where given) and, if asked, costate
        sweeps over the parts; J, ∇J, Φ and y_N summed or joined over them."""
        theta, free, h = self.split(x)
        parts = self._parts(members)
        value, d_theta, d_h = self._smoothness(theta, h)
        terminal, ends, kept = 0.0, [], []
        total = 0.0 if gradient else None
        keep = {"keep": False} if self.reversible else {}
        rebuild = {"reversible": True} if self.reversible else {}
        for (y0, params), trajectory in zip(parts, trajectories or [None] * len(parts)):
            if trajectory is None:
                with np.errstate(over="ignore", invalid="ignore"):
                    trajectory = self.module.forward(theta, h, y0, params, free=free, **keep)
            value += trajectory["objective"]
            terminal += trajectory["terminal_cost"]
            ends.append(_final_state(trajectory))
            if gradient:
                co = self.module.costate(theta, trajectory, h, params,
                                         full=self.arch.learns_steps, free=free, **rebuild)
                own = [co["gradient"].ravel(), co["gradient_free"]]
                if self.arch.learns_steps:
                    own.append(co["gradient_h"])
                total = total + np.concatenate(own, dtype=float)
            kept.append(trajectory if len(parts) == 1 else None)
        if gradient and self.arch.smoothness:
            total += self.join(d_theta, np.zeros(self.arch.width + 1), d_h)
        return {"x": x.copy(), "members": None if members is None else np.array(members),
                "trajectories": kept, "value": value,
                "gradient": total, "terminal_cost": terminal,
                "y_end": np.concatenate(ends, axis=-1)}

    def _smoothness(self, theta, h):
        """S = α₂/2 Σ_n |θ_{n+1} − θ_n|²/h_n, ∂S/∂θ and ∂S/∂h_n = −α₂/2 |θ_{n+1} − θ_n|²/h_n²."""
        alpha = self.arch.smoothness
        if not alpha:
            return 0.0, 0.0, 0.0
        jump = np.diff(theta, axis=0)
        squares = np.sum(jump**2, axis=(1, 2))
        value = alpha / 2 * float(np.sum(squares / h[:-1]))
        scaled = alpha * jump / h[:-1, None, None]
        d_theta = np.zeros_like(theta)
        d_theta[:-1] -= scaled
        d_theta[1:] += scaled
        d_h = np.zeros_like(h)
        d_h[:-1] = -alpha / 2 * squares / h[:-1] ** 2
        return value, d_theta, d_h

    def outputs(self, x) -> tuple[np.ndarray, float]:
        """η(Wᵀy_N + μ) per point at x, and the loss: the terminal cost Φ summed over the
        points (the objective without its running cost and smoothness term)."""
        self._sweeps(x, None, gradient=False)
        free = self.split(x)[1]
        return output(free[:-1] @ self._last["y_end"] + free[-1]), self._last["terminal_cost"]


def _same_members(kept, members) -> bool:
    """Whether ``members`` is the batch kept (its copy): all points, or the same points."""
    if kept is None or members is None:
        return kept is None and members is None
    return np.array_equal(kept, members)


def _final_state(trajectory) -> np.ndarray:
    """y_N (d, points) of a forward sweep of either module, without stacking the others."""
    for key, last in (("y_end", False), ("states", True), ("y", True)):
        if key in trajectory:
            return trajectory[key][-1] if last else trajectory[key]
    raise KeyError("y_end")


@dataclass
class TrainingResult:
    """What ``ocgen train`` reports: the trained network, its history and final numbers."""

    network: Network
    training: Dataset
    validation: Dataset | None
    config: dict
    history: list[dict]
    final: dict
    iterations: int
    converged: bool
    message: str
    timings: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def predict(self, points) -> np.ndarray:
        return self.network.predict(points)

    def to_json(self) -> dict:
        return {"config": self.config, **self.final,
                "time_steps": self.network.time_steps.tolist(), "history": self.history,
                "iterations": self.iterations, "converged": self.converged,
                "message": self.message, "timings": self.timings, **self.extra}


def accuracy(probabilities, labels) -> float:
    return float(np.mean((np.asarray(probabilities) >= 0.5) == (np.asarray(labels) == 1)))


def initial_point(objective: Objective, seed: int) -> np.ndarray:
    """K ~ N(0, 1), β = 0 (as in the paper; a problem file's controls all N(0, 1), projected
    into their bounds); W ~ N(0, 1/d), μ = 0; h = T/L."""
    arch = objective.arch
    rng = np.random.default_rng(seed)
    theta = np.zeros(objective.theta_shape)
    d = arch.width
    drawn = theta.shape[-1] if arch.problem is not None else arch.kernel ** 2
    theta[..., :drawn] = rng.standard_normal((arch.layers, 1, drawn))
    W = rng.standard_normal(d) / np.sqrt(d)
    h = np.full(arch.layers, arch.total_time / arch.layers)
    return objective.join(theta, np.append(W, 0.0), h)


def train_network(dataset: Dataset, tableau, arch: Architecture, *,
                  optimizer: str = "lipschitz", iterations: int = 1000, seed: int = 0,
                  validation: Dataset | None = None, batch_size: int = 64,
                  learning_rate: float = 1e-2, tolerance: float = DEFAULT_TOLERANCE,
                  log_every: int | None = None, progress=None,
                  reversible: bool = False, precision: str = "float64",
                  kernels: str = "numpy") -> TrainingResult:
    """Train ``arch`` discretised by ``tableau`` (a tableau, or a pair for hamiltonian
    dynamics) on ``dataset`` (MATH.md 6).

    ``progress``: a callable taking the number of finished iterations (a progress bar).
    ``reversible``: rebuild the states in the costate sweep instead of storing them
    (:class:`Objective`). ``precision``: "float32" runs the sweeps in single precision.
    ``kernels``: "numba" runs the sweeps with compiled kernels.
    """
    tableau = load_method(tableau)
    _check_options(dataset, arch, optimizer, iterations, batch_size, learning_rate, tolerance)
    start = time.perf_counter()
    objective = Objective(arch, tableau, dataset.points, dataset.labels, reversible=reversible,
                          precision=precision, kernels=kernels)
    checker = (Objective(arch, tableau, validation.points, validation.labels,
                         reversible=reversible, precision=precision, kernels=kernels)
               if validation is not None else None)
    timings = {"derive_and_generate": time.perf_counter() - start}
    x0 = objective.project(initial_point(objective, seed))
    log_every = log_every or max(1, iterations // 100)
    history: list[dict] = []

    def record(k, x, step):
        eta, data_loss = objective.outputs(x)
        entry = {"iteration": k, "objective": float(objective.value(x)),
                 "train_loss": data_loss,
                 "train_accuracy": accuracy(eta, dataset.labels),
                 "gradient_norm": projected_gradient_norm(x, objective.gradient(x),
                                                          objective.project),
                 "step": step}
        if checker is not None:
            eta_v, entry["validation_loss"] = checker.outputs(x)
            entry["validation_accuracy"] = accuracy(eta_v, validation.labels)
        history.append(entry)

    def callback(k, x, J, g, step):
        if k % log_every == 0 or k == iterations:
            record(k, x, step)
        if progress is not None:
            progress(k)
        return False

    start = time.perf_counter()
    try:
        record(0, x0, None)
        outcome = _run(optimizer, objective, x0, iterations, tolerance, callback, seed,
                       batch_size, learning_rate)
    except NUMERIC_ERRORS as err:
        advice = ("the plain Net's steps are 1: a resnet (steps T/L) may help"
                  if arch.depth == "net" else "a smaller step h‖K‖ may help (more layers "
                  "for the same horizon, or a smaller horizon), or another optimiser")
        raise OcgenError(f"training failed: the network's sweeps overflowed or failed "
                         f"({type(err).__name__}: {err}); {advice}") from None
    timings["train"] = time.perf_counter() - start
    x = outcome.x
    if history[-1]["iteration"] != outcome.iterations:
        record(outcome.iterations, x, None)
    theta, free, h = objective.split(x)
    network = Network(arch, tableau, theta.copy(), free[:-1].copy(), float(free[-1]), h.copy(),
                      data=dict(dataset.description))
    last = history[-1]
    final = {key: last.get(key) for key in ("train_loss", "validation_loss", "train_accuracy",
                                            "validation_accuracy", "gradient_norm")}
    final["objective"] = float(last["objective"])
    config = {"tableau": tableau.name, **arch.to_json(), "reversible": reversible,
              "precision": precision, "kernels": kernels,
              "optimizer": optimizer,
              "iterations": iterations, "seed": seed, "data": dataset.description,
              "validation": validation.description if validation is not None else None,
              "train_size": dataset.size,
              "validation_size": validation.size if validation is not None else 0}
    if optimizer == "adam":  # the batches are at most the training set
        config.update(batch_size=min(batch_size, dataset.size), learning_rate=learning_rate)
    return TrainingResult(network, dataset, validation, config, history, final,
                          outcome.iterations,
                          outcome.converged, outcome.message, timings, outcome.extra)


def _run(optimizer, objective, x0, iterations, tolerance, callback, seed, batch_size,
         learning_rate):
    if optimizer in ("armijo", "lipschitz"):
        return gradient_descent(objective.value, objective.gradient, x0, objective.project,
                                iterations, optimizer, tolerance, callback)
    if optimizer == "adam":
        return adam(objective.value_and_gradient, x0, objective.project, iterations,
                    _batches(objective.labels.size, batch_size, seed), learning_rate, callback)
    if optimizer == "lbfgs":
        return _lbfgs(objective, x0, iterations, tolerance, callback)
    from .ipopt import train_ipopt
    return train_ipopt(objective, x0, iterations, tolerance, callback)


def _batches(size: int, batch: int, seed: int):
    """Mini-batches of a fresh random permutation per epoch (the last short batch dropped
    unless it is the only one)."""
    rng = np.random.default_rng(seed + 1)
    batch = min(batch, size)
    while True:
        order = rng.permutation(size)
        for start in range(0, size - batch + 1, batch):
            yield np.sort(order[start:start + batch])


def _lbfgs(objective, x0, iterations, tolerance, callback):
    """SciPy's L-BFGS-B on the exact gradient, with h ≥ 0 for odenet and a problem file's
    control bounds."""
    from .optimizers import Outcome
    module, arch = objective.module, objective.arch
    lower = objective.join(np.broadcast_to(module.CONTROL_LOWER, objective.theta_shape),
                           np.full(arch.width + 1, -np.inf), np.zeros(arch.layers))
    upper = objective.join(np.broadcast_to(module.CONTROL_UPPER, objective.theta_shape),
                           np.full(arch.width + 1, np.inf), np.full(arch.layers, np.inf))
    bounds = [(None if np.isinf(a) else a, None if np.isinf(b) else b)
              for a, b in zip(lower, upper)]
    count = 0

    def each(intermediate_result):
        nonlocal count
        count += 1
        x = intermediate_result.x
        return callback(count, x, intermediate_result.fun, None, None)

    result = minimize(objective.value_and_gradient, x0, jac=True, method="L-BFGS-B",
                      bounds=bounds, callback=each,
                      options={"maxiter": iterations, "maxfun": 4 * iterations,
                               "gtol": tolerance, "ftol": 0.0, "maxcor": 20})
    x = result.x
    converged = projected_gradient_norm(x, objective.gradient(x), objective.project) <= tolerance
    return Outcome(x, int(result.nit), converged, f"L-BFGS-B: {result.message}")


def _check_options(dataset, arch, optimizer, iterations, batch_size, learning_rate,
                   tolerance):
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {optimizer!r} (choose from "
                         f"{', '.join(OPTIMIZERS)})", key="optimizer")
    for key, value in (("iterations", iterations), ("batch_size", batch_size)):
        if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                and value >= 1):
            raise InputError(f"must be a positive integer, found {value!r}", key=key)
    for key, value in (("learning_rate", learning_rate), ("tolerance", tolerance)):
        if not (finite_real(value) and value > 0):
            raise InputError(f"must be a positive number, found {value!r}", key=key)
    if dataset.labels is None:
        raise InputError("training needs labels", source=dataset.name)
    if dataset.dimension > arch.width:
        raise InputError(f"the width {arch.width} is below the data's dimension "
                         f"{dataset.dimension} (points are padded with zeros, never cut)",
                         key="width")
    if optimizer == "lbfgs" and arch.depth == "odenet-simplex":
        raise InputError("L-BFGS-B handles bounds, not the simplex Σ h = T of odenet-simplex; "
                         "use armijo, lipschitz, adam or ipopt", key="optimizer")
    if arch.smoothness and arch.learns_steps:
        raise InputError("the smoothness term divides by h_n, which learned steps may drive "
                         "to 0; use it with net or resnet", key="smoothness")
    if optimizer == "ipopt" and not scalar_derivable(arch):  # last: it builds the problem
        raise InputError(f"IPOPT's NLP comes from the entry-by-entry derivation, which does not "
                         f"take {arch.dynamics} dynamics with the {arch.activation} activation "
                         f"at width {arch.width} ({SCALAR_REACH}); use a smaller width or "
                         "another optimiser", key="optimizer")
