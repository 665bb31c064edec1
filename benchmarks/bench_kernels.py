"""The kernels of an ODE network's loss + gradient (MATH.md 6), NumPy against XLA (JAX's jit) on
the CPU, one core for both, float64, side by side in one process: why ocgen's generated module is
where it is against JAX at a large width d (bench_network.py times the whole network; at small d
each jitted call here is mostly XLA's dispatch overhead, which a whole jitted network pays once).

Per stage the matrix-level module computes Z = K Y (+ β) and S = tanh(Z) in the forward sweep,
and Λ = Kᵀ dZ and ∂J/∂K += dZ Yᵀ in the costate sweep (Y, Z, dZ are d × points). Each product
is timed on all the points at once (XLA's and PyTorch's way) and, when the points are more, on
one part of ocgen.nets.training.points_per_sweep(d) of them (ocgen's way); tanh alone and the
fused stage tanh(K Y + β) (NumPy: numpy.dot, += β and tanh in place, as generated) per entry
of Z.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_kernels.py
     [--width 64] [--points 10000] [--repeat 7]
Needs the bench extra (pip install -e .[bench]): jax, threadpoolctl.
"""

import argparse
import os
import timeit
from functools import partial

import numpy as np

TARGET = 0.05  # seconds per timed batch of calls


def best_time(f, repeat) -> float:
    """Seconds per call: the best of ``repeat`` batches of about TARGET seconds each."""
    start = timeit.default_timer()
    f()
    number = max(1, round(TARGET / max(timeit.default_timer() - start, 1e-7)))
    return min(timeit.repeat(f, number=number, repeat=repeat)) / number


def kernels(d, points, part, rng):
    """(label, work per call, unit, numpy callable, XLA callable) for each kernel; XLA's take
    their arrays as arguments (closed-over constants would be folded at compile time)."""
    import jax
    import jax.numpy as jnp
    K, beta = rng.standard_normal((d, d)) / np.sqrt(d), rng.standard_normal((d, 1))
    products = (("Z = K Y", lambda K, Y, dZ: np.dot(K, Y), lambda K, Y, dZ: K @ Y),
                ("Λ = Kᵀ dZ", lambda K, Y, dZ: np.dot(K.T, dZ), lambda K, Y, dZ: K.T @ dZ),
                ("dZ Yᵀ", lambda K, Y, dZ: np.dot(dZ, Y.T), lambda K, Y, dZ: dZ @ Y.T))
    rows = []
    for n in sorted({points, min(part, points)}, reverse=True):
        arrays = (K, rng.standard_normal((d, n)), rng.standard_normal((d, n)))
        on_device = tuple(jnp.asarray(a) for a in arrays)
        rows += [(f"{label}, {n} points", 2 * d * d * n, "GFLOP/s", partial(f, *arrays),
                  partial(jax.jit(g), *on_device)) for label, f, g in products]
    Y = rng.standard_normal((d, points))
    on_device = tuple(jnp.asarray(a) for a in (K, Y, beta))

    def stage(K, Y, beta):
        Z = np.dot(K, Y)
        Z += beta
        return np.tanh(Z, out=Z)

    rows += [(f"tanh, {points} points", d * points, "ns/entry", partial(np.tanh, Y),
              partial(jax.jit(jnp.tanh), on_device[1])),
             (f"tanh(K Y + β), {points} points", d * points, "ns/entry", partial(stage, K, Y, beta),
              partial(jax.jit(lambda K, Y, beta: jnp.tanh(K @ Y + beta)), *on_device))]
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--points", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    import threadpoolctl
    from bench_network import numpy_blas, pin_to_cores
    core, = pin_to_cores(1)  # XLA's flags alone leave it a second thread
    limits = threadpoolctl.threadpool_limits(1, user_api="blas")  # noqa: F841 (kept)
    blas = numpy_blas()
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_"
                               "eigen=false intra_op_parallelism_threads=1").strip()
    import jax
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    from ocgen.nets.training import points_per_sweep

    print(f"numpy {np.__version__}: {blas['internal_api']} {blas['version']}, kernel "
          f"{blas.get('architecture')}, 1 thread; jax {jax.__version__}: XLA on the CPU, "
          f"1 thread; float64; the process runs on core {core}")
    print("environment: " + ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in
                                      ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")))
    rows = kernels(args.width, args.points, points_per_sweep(args.width),
                   np.random.default_rng(0))
    for _, _, _, f, g in rows:  # compile, and check that both compute the same
        np.testing.assert_allclose(f(), np.asarray(g()), rtol=1e-12, atol=1e-12)
    times = {label: ([], []) for label, *_ in rows}
    for _ in range(args.repeat):  # interleaved: numpy, XLA, numpy, ...
        for label, _, _, f, g in rows:
            times[label][0].append(best_time(f, 1))
            times[label][1].append(best_time(lambda: g().block_until_ready(), 1))
    print(f"\nd = {args.width}; one part = {points_per_sweep(args.width)} points")
    print("| kernel | numpy | XLA | unit | numpy ÷ XLA (time) |")
    print("|---|---|---|---|---|")
    for label, work, unit, _, _ in rows:
        t_numpy, t_xla = (min(t) for t in times[label])
        rate = (lambda t: work / t / 1e9) if unit == "GFLOP/s" else (lambda t: t / work * 1e9)
        print(f"| {label} | {rate(t_numpy):.3g} | {rate(t_xla):.3g} | {unit} | "
              f"{t_numpy / t_xla:.2f} |")


if __name__ == "__main__":
    main()
