"""Train an ODE network on a data file, inspect it, save it and use it again (MATH.md 6).

The network y' = tanh(K(t) y + beta(t)), prediction eta(W'y(T) + mu), is an ensemble optimal
control problem: its gradient is the derived costate sweep of the generated module, checked
here by a Taylor test. Run: python examples/train_network.py (writes two_moons_model.json
in the current folder).
"""

from pathlib import Path

import numpy as np

from ocgen import nets
from ocgen.nets.training import Objective
from ocgen.taylor import taylor_test

# 160 points to train on, 40 held out, from a CSV file (columns x1, x2, label)
result = nets.train(Path(__file__).parent / "two_moons.csv", "rk4", layers=10, validation_size=40,
                    optimizer="lbfgs", iterations=200, seed=1)
print(f"validation accuracy {result.final['validation_accuracy']:.3f}, "
      f"projected gradient norm {result.final['gradient_norm']:.2e}")

# the gradient used for training is exact: the Taylor remainder falls like epsilon^2
objective = Objective(result.network.architecture, result.network.tableau,
                      result.training.points, result.training.labels)
x = objective.join(result.network.theta, result.network.free, result.network.time_steps)
direction = np.random.default_rng(0).standard_normal(x.size)
check = taylor_test(objective.value, x, objective.gradient(x), direction, epsilon=1e-4)
print(f"Taylor test: observed rates {np.round(check.rates, 3)} (2 means exact)")

# save, load, predict
path = result.network.save("two_moons_model.json")
network = nets.load_network(path)
print("P(class 1) at (0, 0.25) and (1, -0.25):", network.predict([[0.0, 0.25], [1.0, -0.25]]))
