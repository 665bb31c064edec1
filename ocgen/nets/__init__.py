"""Deep learning as optimal control (MATH.md 6): a network is an ensemble problem.

Data points are ensemble members, layers are steps with step controls (K_n, β_n), and the
output weights W, μ are free parameters of the terminal cost. Gradients come from
:mod:`ocgen.derive` and the generated module like every other problem's.

    >>> from ocgen import nets
    >>> result = nets.train("spiral", "rk4", layers=20, iterations=2000)
    >>> result.final["validation_accuracy"], result.network.predict([[0.1, 0.2]])
"""

from __future__ import annotations

from .datasets import Dataset, load_data
from .model import Architecture, Network, load_network
from .training import TrainingResult, train_network

__all__ = ["Architecture", "Dataset", "Network", "TrainingResult", "load_network", "train"]


def train(dataset="spiral", tableau="rk4", layers: int = 20, *, width: int | None = None,
          train_size: int | None = None, validation_size: int | None = None,
          noise: float | None = None, seed: int = 0, optimizer: str = "lipschitz",
          iterations: int = 1000, batch_size: int = 64, learning_rate: float = 1e-2,
          tolerance: float = 1e-8, progress=None, **architecture) -> TrainingResult:
    """Train a network on ``dataset`` (a built-in name, a .csv/.npz file or a Dataset),
    discretised by ``tableau`` with ``layers`` layers.

    ``width`` defaults to the data's dimension; ``architecture`` takes the other fields of
    :class:`Architecture` (dynamics, activation, depth, horizon, loss, mean_loss, tikhonov,
    smoothness, gamma, controls).
    """
    training, validation = load_data(dataset, train_size, validation_size, noise=noise,
                                     seed=seed)
    arch = Architecture(width=training.dimension if width is None else width, layers=layers,
                        **architecture)
    return train_network(training, tableau, arch, optimizer=optimizer, iterations=iterations,
                         seed=seed, validation=validation, batch_size=batch_size,
                         learning_rate=learning_rate, tolerance=tolerance, progress=progress)
