"""One training iteration of an ODE network (MATH.md 6): the loss and its gradient, in ocgen, in
PyTorch (autograd) and in JAX (jit(value_and_grad)), on the CPU, side by side, all in float64
(or all in float32 with --precision float32).

The network is the paper's: spiral data, width d, L layers with step controls (K_n, β_n), T = 1,
y' = tanh(K y + β) discretised by an explicit Runge-Kutta tableau (RK4 and forward Euler),
output η(Wᵀy(T) + μ) with the logistic η, loss ½ Σ_k (η_k − c_k)². Every contender maps the same
flat x = (θ, W, μ) (θ_n = K_n row-major, then β_n) to (J, ∇J), taking and returning NumPy
arrays as an optimiser would; ocgen is the training objective (one forward and one costate
sweep of the generated module). J must agree to 1e-12 and ∇J to 1e-10 (relative; 1e-5 and
1e-4 in float32) before anything is timed. The whole process runs on --threads cores (default
one), each library limited to as many threads. Times are the best of several interleaved
repetitions; the forward pass alone is timed too, to express the gradient's cost in forward
passes. JAX's first call (trace + compile) and ocgen's derivation + code generation (fresh
module cache) are reported apart.

ocgen's module is the matrix-level one (ocgen.nets.matrix): matrix products over all points at
once, the same text for every width; its derive + generate time is measured from cleared caches
for each width. "ocgen-numba" is the same module with the numba kernels (--kernels numba); its
first call (Numba's compilation, from an empty cache) is reported apart, as JAX's is.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_network.py
     [--width 2,16,64] [--points 1000] [--layers 20] [--tableaux rk4,euler] [--repeat 7]
     [--threads N] [--precision float32] [--kernels numpy,numba] [--plot FILE.png]
Needs the bench extra (pip install -e .[bench]): torch, jax, threadpoolctl; and numba for the
numba kernels (pip install -e .[numba]).
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

TABLEAUX = (("rk4", "RK4"), ("euler", "Euler"))
TARGET = 0.1  # seconds per timed batch of calls
TOLERANCES = {"float64": (1e-12, 1e-10), "float32": (1e-5, 1e-4)}  # J, ∇J (relative)
PRECISION = "float64"  # of every contender; set by --precision


def network_loss(x, y0, c, A, b, h, L, d, tanh, sigmoid):
    """J(x) for a batch of points y0 (n, d) with labels c (n,), written once for PyTorch
    tensors and JAX arrays alike: explicit RK stages Y_i = y + h Σ_j a_ij F_j,
    F_i = tanh(K Y_i + β), y⁺ = y + h Σ_i b_i F_i."""
    m = d * d + d
    theta = x[:L * m].reshape(L, m)
    W, mu = x[L * m:L * m + d], x[L * m + d]
    y = y0
    for n in range(L):
        K, beta = theta[n, :d * d].reshape(d, d), theta[n, d * d:]
        F = []
        for i in range(len(b)):
            Y = y
            for j in range(i):
                if A[i][j]:
                    Y = Y + (h * A[i][j]) * F[j]
            F.append(tanh(Y @ K.T + beta))
        y = y + h * sum(b[i] * F[i] for i in range(len(b)) if b[i])
    eta = sigmoid(y @ W + mu)
    return 0.5 * ((eta - c) ** 2).sum()


def explicit_tableau(tableau):
    A = [[float(a) for a in row] for row in tableau.A.tolist()]
    if any(A[i][j] for i in range(len(A)) for j in range(i, len(A))):
        raise ValueError(f"{tableau.name}: the benchmark writes explicit tableaux only")
    return A, [float(v) for v in tableau.b]


def points(data, arch):
    """The inputs as rows (n, d), padded with zeros to the width as ocgen pads them."""
    from ocgen.nets.model import padded
    return padded(data.points, arch.width).T.copy()


def forget_derivations():
    """Clear ocgen's in-process caches, so that the next network is derived and generated
    from scratch (the module cache folder is fresh too)."""
    from ocgen import cache
    from ocgen.nets import matrix, matrix_code
    for cached in (matrix_code._render, matrix._derive, matrix.network_layer, matrix._terminal):
        cached.cache_clear()
    cache._MODULES.clear()


def ocgen_contender(arch, tableau, data, kernels="numpy"):
    from ocgen.nets.training import Objective
    forget_derivations()
    start = time.perf_counter()
    objective = Objective(arch, tableau, data.points, data.labels, precision=PRECISION,
                          kernels=kernels)
    setup = time.perf_counter() - start

    def fresh(method):  # the objective keeps its last sweeps; time them, not the cache
        def call(x):
            objective.forget()
            return method(x)
        return call

    return objective, fresh(objective.value_and_gradient), fresh(objective.value), setup


def torch_contender(arch, A, b, data):
    import torch
    dtype = getattr(torch, PRECISION)
    y0, c = (torch.tensor(a, dtype=dtype) for a in (points(data, arch), data.labels * 1.0))
    h, L, d = 1.0 / arch.layers, arch.layers, arch.width

    def loss(x):
        return network_loss(x, y0, c, A, b, h, L, d, torch.tanh, torch.sigmoid)

    def value_and_gradient(x):
        x = torch.tensor(x, dtype=dtype, requires_grad=True)
        J = loss(x)
        (g,) = torch.autograd.grad(J, x)
        return J.item(), g.numpy()

    def value(x):
        with torch.no_grad():
            return loss(torch.tensor(x, dtype=dtype)).item()

    return value_and_gradient, value


def jax_contender(arch, A, b, data):
    import jax
    import jax.numpy as jnp
    dtype = np.dtype(PRECISION)
    y0, c = (jnp.asarray(a, dtype=dtype) for a in (points(data, arch), data.labels * 1.0))
    h, L, d = 1.0 / arch.layers, arch.layers, arch.width

    def loss(x, y0, c):
        return network_loss(x, y0, c, A, b, h, L, d, jnp.tanh, jax.nn.sigmoid)

    jitted_vg, jitted_loss = jax.jit(jax.value_and_grad(loss)), jax.jit(loss)

    def value_and_gradient(x):
        J, g = jitted_vg(x.astype(dtype, copy=False), y0, c)
        return float(J), np.asarray(g, dtype=float)

    def value(x):
        return float(jitted_loss(x.astype(dtype, copy=False), y0, c))

    return value_and_gradient, value


def first_call(f, x):
    start = time.perf_counter()
    f(x)
    return time.perf_counter() - start


def per_call(f, x, number):
    start = time.perf_counter()
    for _ in range(number):
        f(x)
    return (time.perf_counter() - start) / number


def check_agreement(results):
    """Largest relative differences of J and ∇J from ocgen's; fails above TOLERANCES."""
    tol_J, tol_g = TOLERANCES[PRECISION]
    J0, g0 = results["ocgen"]
    worst = {}
    for name, (J, g) in results.items():
        dJ = abs(J - J0) / abs(J0)
        dg = np.max(np.abs(g - g0)) / np.max(np.abs(g0))
        worst[name] = (dJ, dg)
        if not (dJ <= tol_J and dg <= tol_g):
            sys.exit(f"{name} disagrees with ocgen: |ΔJ|/|J| = {dJ:.1e}, "
                     f"max|Δg|/max|g| = {dg:.1e}")
    return worst


def bench_tableau(name, label, arch, data, repeat, kernels):
    from ocgen.nets.training import initial_point
    from ocgen.tableau import load_tableau
    tableau = load_tableau(name)
    A, b = explicit_tableau(tableau)
    objective, ocgen_vg, ocgen_value, setup = ocgen_contender(arch, tableau, data)
    x = initial_point(objective, seed=0)
    contenders = {"ocgen": (ocgen_vg, ocgen_value)}
    numba_compile = None
    if "numba" in kernels:
        _, numba_vg, numba_value, _ = ocgen_contender(arch, tableau, data, "numba")
        numba_compile = first_call(numba_vg, x) + first_call(numba_value, x)
        contenders["ocgen-numba"] = (numba_vg, numba_value)
    contenders.update(torch=torch_contender(arch, A, b, data),
                      jax=jax_contender(arch, A, b, data))
    compile_vg = first_call(contenders["jax"][0], x)
    compile_forward = first_call(contenders["jax"][1], x)

    results = {k: vg(x) for k, (vg, _) in contenders.items()}
    gradient_error = check_agreement(results)
    forward_error = {k: abs(value(x) - results["ocgen"][0]) / abs(results["ocgen"][0])
                     for k, (_, value) in contenders.items()}
    if max(forward_error.values()) > TOLERANCES[PRECISION][0]:
        sys.exit(f"forward passes disagree: {forward_error}")

    # calls per timed batch, so that each batch takes about TARGET seconds
    jobs = [(k, kind, f) for k, fs in contenders.items() for kind, f in zip(("vg", "fw"), fs)]
    number = {(k, kind): max(1, round(TARGET / min(first_call(f, x) for _ in range(3))))
              for k, kind, f in jobs}
    times = {(k, kind): [] for k, kind, _ in jobs}
    for _ in range(repeat):  # interleaved: ocgen, torch, jax, ocgen, ...
        for kind in ("vg", "fw"):
            for k, kind_, f in jobs:
                if kind_ == kind:
                    times[k, kind].append(per_call(f, x, number[k, kind]))
    best = {key: min(t) * 1e3 for key, t in times.items()}

    print(f"\n{label} ({len(b)} stage{'s' * (len(b) > 1)}), d = {arch.width}, "
          f"L = {arch.layers}, {data.points.shape[0]} points, {x.size} parameters, "
          f"J = {results['ocgen'][0]:.6f}")
    print("          loss+grad [ms]  forward [ms]  grad = forwards  |ΔJ|/|J|  max|Δg|/max|g|")
    for k in contenders:
        vg, fw = best[k, "vg"], best[k, "fw"]
        error = ("  (reference)" if k == "ocgen" else
                 f"{gradient_error[k][0]:9.1e} {gradient_error[k][1]:15.1e}")
        print(f"{k:11s} {vg:11.3f} {fw:13.3f} {vg / fw:16.2f} {error}")
    print(f"one-off: jax first call (trace + compile + run) {compile_vg:.3f} s for loss+grad, "
          f"{compile_forward:.3f} s forward; ocgen derive + generate {setup:.3f} s"
          + (f"; ocgen-numba first calls (compile, empty cache) {numba_compile:.3f} s"
             if numba_compile is not None else ""))
    return {"width": arch.width, "tableau": label, "ms": {k: best[k, "vg"] for k in contenders},
            "forwards": {k: best[k, "vg"] / best[k, "fw"] for k in contenders},
            "setup": setup, "compile": compile_vg, "numba_compile": numba_compile}


def pin_to_cores(count):
    """Run the whole process (every thread of every contender) on ``count`` of the cores it
    may use; returns them. XLA's CPU runtime keeps a second worker thread busy whatever its
    flags say (1.9 cores of CPU time per second of wall time measured with jax 0.10), so
    limiting each library's threads alone does not make a one-thread comparison."""
    cores = sorted(os.sched_getaffinity(0))[:count]
    for thread in os.listdir("/proc/self/task"):  # the threads so far (numpy's BLAS pool)
        os.sched_setaffinity(int(thread), cores)  # and, inherited, every later one
    return cores


def numpy_blas():
    """numpy's BLAS as threadpoolctl sees it (library, version, kernel, threads)."""
    import threadpoolctl
    for pool in threadpoolctl.threadpool_info():
        if pool["user_api"] == "blas" and "numpy" in pool["filepath"]:
            return pool
    sys.exit("threadpoolctl finds no BLAS in numpy")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", default="2",
                        help="one width or several, comma-separated (e.g. 2,16,64)")
    parser.add_argument("--tableaux", default=",".join(name for name, _ in TABLEAUX))
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1,
                        help="cores for the whole process, and threads for numpy's BLAS, torch "
                             "and XLA alike (default 1: the generated sweeps run on one "
                             "thread)")
    parser.add_argument("--precision", choices=tuple(TOLERANCES), default="float64",
                        help="of every contender (ocgen: Objective(precision=...))")
    parser.add_argument("--kernels", default="numpy,numba", choices=("numpy", "numpy,numba"),
                        help="ocgen's kernels to time: NumPy calls (the reference every "
                             "contender is checked against) and, by default, the numba ones")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="also plot loss + gradient time and derive + generate time "
                             "against the width (one tableau per line style)")
    args = parser.parse_args()
    global PRECISION
    PRECISION = args.precision

    import threadpoolctl
    threads = args.threads
    cores = pin_to_cores(threads)  # before any library starts its threads
    limits = threadpoolctl.threadpool_limits(threads, user_api="blas")  # noqa: F841 (kept)
    blas = numpy_blas()  # before torch brings its own thread pools
    if threads == 1:  # before jax is imported
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_"
                                   "eigen=false intra_op_parallelism_threads=1").strip()
    import jax
    import torch
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    torch.set_num_threads(threads)

    print(f"numpy {np.__version__}: {blas['internal_api']} {blas['version']}, kernel "
          f"{blas.get('architecture')}, {blas['num_threads']} BLAS threads; ocgen's generated "
          "sweeps are NumPy matrix products and ufuncs")
    print("environment: " + ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in
                                      ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")))
    print(f"torch {torch.__version__}: {torch.get_num_threads()} intra-op threads, CPU, "
          f"{PRECISION}")
    print(f"jax {jax.__version__}: {jax.devices()[0].platform}, {PRECISION}, "
          + ("1 thread (XLA_FLAGS)" if threads == 1 else
             f"XLA's default thread pool ({os.cpu_count()} cores)"))
    print(f"the process runs on core{'s' * (len(cores) > 1)} {', '.join(map(str, cores))}")

    from ocgen.nets.datasets import training_and_validation
    from ocgen.nets.model import Architecture
    data, _ = training_and_validation("spiral", args.points, 0)
    tableaux = [(name, label) for name, label in TABLEAUX if name in args.tableaux.split(",")]
    rows = []
    for width in (int(w) for w in args.width.split(",")):
        arch = Architecture(width=width, layers=args.layers)  # resnet, tanh, squares, sum
        for name, label in tableaux:
            with tempfile.TemporaryDirectory(prefix="ocgen-bench-network-") as cache:
                os.environ["OCGEN_CACHE"] = cache  # a fresh module cache: derivation timed cold
                rows.append(bench_tableau(name, label, arch, data, args.repeat, args.kernels))
    print(f"\n{args.points} points, {args.layers} layers; loss + gradient in ms (ratio to ocgen's)"
          "; gradient ÷ forward; derive + generate and first calls in s")
    mine = [k for k in ("ocgen", "ocgen-numba") if k in rows[0]["ms"]]
    print("| d | tableau | " + " | ".join(mine) + " | PyTorch | JAX | "
          + " | ".join(f"{k} ÷ PyTorch | {k} ÷ JAX" for k in mine)
          + " | gradient ÷ forward (" + " / ".join(mine) + " / PyTorch / JAX) | derive + "
          "generate | " + ("Numba first calls | " if "ocgen-numba" in mine else "")
          + "JAX first call |")
    print("|---" * (7 + 3 * len(mine) + ("ocgen-numba" in mine)) + "|")
    for r in rows:
        ms, fw = r["ms"], r["forwards"]
        print(f"| {r['width']} | {r['tableau']} | "
              + "".join(f"{ms[k]:.3g} | " for k in mine)
              + f"{ms['torch']:.3g} | {ms['jax']:.3g} | "
              + "".join(f"{ms[k] / ms['torch']:.2f} | {ms[k] / ms['jax']:.2f} | " for k in mine)
              + " / ".join(f"{fw[k]:.2f}" for k in (*mine, "torch", "jax"))
              + f" | {r['setup']:.2f} | "
              + (f"{r['numba_compile']:.2f} | " if "ocgen-numba" in mine else "")
              + f"{r['compile']:.2f} |")
    if args.plot:
        plot(rows, args)


def plot(rows, args):
    """Loss + gradient time of each contender and ocgen's derive + generate time against d."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    styles = dict(zip((label for _, label in TABLEAUX), ("-", "--")))
    colours = {"ocgen": "C0", "ocgen-numba": "C3", "torch": "C1", "jax": "C2"}
    colours = {k: c for k, c in colours.items() if k in rows[0]["ms"]}
    names = {"ocgen": "ocgen", "ocgen-numba": "ocgen, numba kernels", "torch": "PyTorch",
             "jax": "JAX jit"}
    for label in dict.fromkeys(r["tableau"] for r in rows):
        mine = [r for r in rows if r["tableau"] == label]
        widths = [r["width"] for r in mine]
        for k, colour in colours.items():
            left.loglog(widths, [r["ms"][k] for r in mine], styles[label], color=colour,
                        marker="o", label=f"{names[k]}, {label}")
        right.semilogx(widths, [r["setup"] for r in mine], styles[label], color="C0",
                       marker="o", label=f"ocgen derive + generate, {label}")
        right.semilogx(widths, [r["compile"] for r in mine], styles[label], color="C2",
                       marker="o", label=f"JAX first call, {label}")
        if "ocgen-numba" in colours:
            right.semilogx(widths, [r["numba_compile"] for r in mine], styles[label],
                           color="C3", marker="o", label=f"Numba first calls, {label}")
    left.set(xlabel="width d", ylabel="loss + gradient [ms]",
             title=f"{args.points} points, {args.layers} layers, {PRECISION}, one core")
    right.set(xlabel="width d", ylabel="seconds", title="one-off cost", ylim=(0, None))
    for axes in (left, right):
        axes.set_xticks([r["width"] for r in rows], [str(r["width"]) for r in rows])
        axes.minorticks_off()
        axes.legend(fontsize=7)
    fig.savefig(args.plot, dpi=110)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
