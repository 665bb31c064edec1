"""Peak memory of the costate sweep against depth: stored states vs the reversible sweep.

A Hamiltonian network y' = tanh(K z + β₁), z' = −tanh(Kᵀ y + β₂) (MATH.md 6) of width d on n
points, discretised by Störmer–Verlet with L layers (step controls, T = 1). One loss and
gradient evaluation of the generated module, two ways:

- stored: forward() keeps y_n, Y_n, F_n of every layer, costate() reads them;
- reversible: forward(keep=False) keeps y_N only, costate(reversible=True) rebuilds each
  layer's states backwards by the explicitly inverted Verlet step (ADDENDA.md 1).

Peak memory is traced by tracemalloc (NumPy reports its buffers to it) from just before the
forward sweep to the end of the costate sweep, so it includes the per-call copies of θ
(θ.tolist() and the gradient), which grow with L in both ways. Each row prints both peaks,
their ratio, the size of θ and the gradient difference max|g_stored − g_reversible| / max|g|.

Run: python benchmarks/bench_reversible.py [--width 4] [--points 1000]
     [--layers 10,30,100,300,1000]
"""

import argparse
import time
import tracemalloc

import numpy as np

from ocgen.nets.datasets import generate
from ocgen.nets.model import Architecture
from ocgen.nets.training import Objective
from ocgen.pair import load_pair


def evaluate(module, theta, h, y0, params, free, reversible):
    """(J, ∂J/∂θ, peak bytes, seconds) of one forward and one costate sweep."""
    tracemalloc.reset_peak()
    start_bytes = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    if reversible:
        trajectory = module.forward(theta, h, y0, params, free=free, keep=False)
        co = module.costate(theta, trajectory, h, params, full=False, free=free,
                            reversible=True)
    else:
        trajectory = module.forward(theta, h, y0, params, free=free)
        co = module.costate(theta, trajectory, h, params, full=False, free=free)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - start_bytes
    return trajectory["objective"], co["gradient"], peak, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--layers", default="10,30,100,300,1000")
    args = parser.parse_args()
    data = generate("donut2d", args.points, seed=0)
    depths = [int(x) for x in args.layers.split(",")]
    print(f"Störmer–Verlet Hamiltonian network, width {args.width}, {args.points} points, "
          "step controls; one loss + gradient")
    print(f"{'layers':>6} {'stored MiB':>11} {'reversible MiB':>15} {'ratio':>7} "
          f"{'theta MiB':>10} {'rel. gradient diff':>19} {'stored s':>9} {'reversible s':>13}")
    tracemalloc.start()
    for L in depths:
        arch = Architecture(width=args.width, layers=L, dynamics="hamiltonian")
        objective = Objective(arch, load_pair("stormer_verlet"), data.points, data.labels)
        module, y0, params = objective.module, objective.y0, objective.params
        rng = np.random.default_rng(L)
        theta = rng.standard_normal((L, 1, module.CONTROL_DIM))
        theta[..., arch.kernel ** 2:] = 0.0  # β = 0, K ~ N(0, 1) as in the paper
        h = np.full(L, 1.0 / L)
        free = np.append(rng.standard_normal(args.width) / np.sqrt(args.width), 0.0)
        J1, g1, peak1, t1 = evaluate(module, theta, h, y0, params, free, False)
        J2, g2, peak2, t2 = evaluate(module, theta, h, y0, params, free, True)
        assert J1 == J2
        diff = float(np.max(np.abs(g1 - g2)) / np.max(np.abs(g1)))
        mib = 2.0 ** 20
        print(f"{L:>6} {peak1 / mib:>11.2f} {peak2 / mib:>15.2f} {peak1 / peak2:>7.1f} "
              f"{theta.nbytes / mib:>10.3f} {diff:>19.1e} {t1:>9.3f} {t2:>13.3f}")
    tracemalloc.stop()


if __name__ == "__main__":
    main()
