"""The one-call entry point of :mod:`ocgen.nets`: data, architecture and training together."""


from __future__ import annotations

from ..errors import InputError
from ..files import read_data_file
from .datasets import load_data
from .model import Architecture, file_network
from .training import TrainingResult, train_network



def train(dataset="spiral", tableau="rk4", layers: int = 20, *, width: int | None = None,
          problem=None, train_size: int | None = None, validation_size: int | None = None,
          noise: float | None = None, seed: int = 0, optimizer: str = "lipschitz",
          iterations: int = 1000, batch_size: int = 64, learning_rate: float = 1e-2,
          tolerance: float = 1e-8, progress=None, reversible: bool = False,
          precision: str = "float64", kernels: str = "numpy", **architecture) -> TrainingResult:
    """Train a network on ``dataset`` (a built-in name, a .csv/.npz file or a Dataset),
    discretised by ``tableau`` (a tableau, or a pair such as "stormer_verlet" for
    ``dynamics="hamiltonian"``) with ``layers`` layers; ``reversible`` rebuilds the states in
    the costate sweep instead of storing them (:class:`ocgen.nets.training.Objective`);
    ``precision`` "float32" runs the sweeps in single precision (matrix-level module only);
    ``kernels`` "numba" runs them with compiled kernels (the ``numba`` extra).

    ``width`` defaults to the data's dimension; ``architecture`` takes the other fields of
    :class:`Architecture` (dynamics, activation, depth, horizon, loss, mean_loss, tikhonov,
    smoothness, gamma, controls). ``problem`` (a .toml file or its table) makes a problem
    file the network (see :func:`ocgen.nets.model.file_network`): its states set the width
    and its horizon the time.
    """
    training, validation = load_data(dataset, train_size, validation_size, noise=noise,
                                     seed=seed)
    if architecture.get("horizon") is None:
        architecture.pop("horizon", None)
    if problem is not None:
        defaults = Architecture(width=1, layers=1)
        for key in ("dynamics", "activation", "loss", "mean_loss", "tikhonov", "gamma",
                    "horizon"):
            if key in architecture and architecture[key] != getattr(defaults, key):
                raise InputError("does not apply to a problem file's network: its file "
                                 "defines the dynamics, costs and horizon", key=key)
        table = problem if isinstance(problem, dict) else read_data_file(problem)
        source = "problem" if isinstance(problem, dict) else str(problem)
        defined = file_network(table, source)
        if width is not None and width != defined.state_dim:
            raise InputError(f"the problem has {defined.state_dim} states; --width must "
                             "match or be left out", key="width")
        width = defined.state_dim
        architecture.update(dynamics="problem", problem=table,
                            horizon=defined.T - defined.t0)
    arch = Architecture(width=training.dimension if width is None else width, layers=layers,
                        **architecture)
    return train_network(training, tableau, arch, optimizer=optimizer, iterations=iterations,
                         seed=seed, validation=validation, batch_size=batch_size,
                         learning_rate=learning_rate, tolerance=tolerance, progress=progress,
                         reversible=reversible, precision=precision, kernels=kernels)
