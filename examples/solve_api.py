"""From a problem file to a verified solver with the Python API.

Run from the repository root:  python examples/solve_api.py
"""

from pathlib import Path

import numpy as np

from ocgen.solve import generated_module, solve
from ocgen.taylor import taylor_test
from ocgen.verify import format_verification, verify

HERE = Path(__file__).resolve().parent
problem = str(HERE / "custom_problem.toml")

# 1. The generated module: J_h and its exact gradient from one forward and one costate sweep.
module, timings = generated_module("gauss2", problem)
theta = np.zeros((40, module.N_GROUPS, module.CONTROL_DIM))
J, gradient = module.objective_and_gradient(theta)
direction = np.random.default_rng(0).normal(size=theta.shape)
check = taylor_test(lambda x: module.objective_and_gradient(x)[0], theta, gradient, direction)
print(f"J_h(0) = {J:.6f}; Taylor test rates {[round(r, 3) for r in check.rates]} (2 = exact)")

# 2. The discrete optimum (L-BFGS-B with the bounds |u| <= 0.3).
solution = solve("gauss2", problem, 40)
print(f"J_h* = {solution.objective:.10f}, converged: {solution.converged}, "
      f"KKT residual {solution.kkt_residual:.1e}, "
      f"controls on a bound: {int(np.sum(np.abs(solution.controls) >= 0.3))}")

# 3. Convergence against the continuous optimum of a problem with a closed form.
print(format_verification(verify("kutta3", "nl", (20, 40, 80))))
