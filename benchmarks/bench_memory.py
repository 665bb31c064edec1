"""Peak memory of one loss + gradient of an ODE network (MATH.md 6): ocgen, PyTorch and JAX on
the network of bench_network.py (spiral data, tanh, RK4 or Euler, width d, L layers), float64
on the CPU.

Each contender runs in a fresh process: it builds its loss + gradient, calls it once (JAX
compiles, every allocator warms up), drops what it kept (ocgen keeps the sweeps of the last
point for a repeated request), returns freed heap memory to the system (glibc's
malloc_trim), resets the peak resident size (``/proc/self/clear_refs``) and calls it again. The
peak is VmHWM − VmRSS around that second call, in MiB: what the call itself holds at its
highest, whatever allocator holds it. Linux with glibc only.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_memory.py
     [--width 2,64] [--points 10000] [--layers 20] [--tableaux rk4,euler]
Needs the bench extra (pip install -e .[bench]).
"""

import argparse
import ctypes
import json
import os
import subprocess
import sys

import numpy as np

import bench_network

CONTENDERS = ("ocgen", "torch", "jax")


def resident() -> dict[str, float]:
    """VmRSS and VmHWM of this process in MiB."""
    sizes = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                sizes[key] = int(value.split()[0]) / 1024
    return sizes


def measure(contender: str, width: int, points: int, layers: int, tableau_name: str) -> dict:
    """In this process: the peak of one loss + gradient of ``contender`` above what it held
    before, and J (to check that every contender computed the same network)."""
    import threadpoolctl
    threadpoolctl.threadpool_limits(1, user_api="blas")
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    from ocgen.nets.datasets import training_and_validation
    from ocgen.nets.model import Architecture
    from ocgen.nets.training import initial_point
    from ocgen.tableau import load_tableau
    data, _ = training_and_validation("spiral", points, 0)
    arch = Architecture(width=width, layers=layers)
    tableau = load_tableau(tableau_name)
    A, b = bench_network.explicit_tableau(tableau)
    objective, vg, _, _ = bench_network.ocgen_contender(arch, tableau, data)
    x = initial_point(objective, seed=0)
    if contender == "torch":
        import torch
        torch.set_num_threads(1)
        vg = bench_network.torch_contender(arch, A, b, data)[0]
    elif contender == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
        vg = bench_network.jax_contender(arch, A, b, data)[0]
    J, _ = vg(x)
    objective.forget()  # ocgen keeps its last sweeps for a repeated x: not part of the call
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # VmHWM := VmRSS
    before = resident()["VmRSS"]
    J_again, _ = vg(x)
    peak = resident()["VmHWM"] - before
    return {"contender": contender, "peak_mib": peak, "J": J, "J_again": J_again,
            "process_mib": resident()["VmHWM"]}


def run(contender, width, points, layers, tableau) -> dict:
    """measure() in a fresh interpreter."""
    command = [sys.executable, __file__, "--measure", contender, "--width", str(width),
               "--points", str(points), "--layers", str(layers), "--tableaux", tableau]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", default="2,64")
    parser.add_argument("--points", type=int, default=10000)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--tableaux", default="rk4")
    parser.add_argument("--measure", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, int(args.width), args.points, args.layers,
                                 args.tableaux)))
        return
    print(f"peak memory of one loss + gradient above the process's resident size before it, "
          f"MiB; {args.points} points, {args.layers} layers, float64, one thread")
    print("| d | tableau | ocgen | PyTorch | JAX | ocgen ÷ PyTorch | ocgen ÷ JAX | "
          "whole process (ocgen / PyTorch / JAX) |")
    print("|---|---|---|---|---|---|---|---|")
    for width in (int(w) for w in args.width.split(",")):
        for tableau in args.tableaux.split(","):
            r = {c: run(c, width, args.points, args.layers, tableau) for c in CONTENDERS}
            J = r["ocgen"]["J"]
            for c, result in r.items():
                for value in (result["J"], result["J_again"]):
                    if not np.isclose(value, J, rtol=1e-12, atol=0):
                        sys.exit(f"{c} computed J = {value}, ocgen {J}: not the same network")
            peak = {c: r[c]["peak_mib"] for c in CONTENDERS}
            process = " / ".join(f"{r[c]['process_mib']:.0f}" for c in CONTENDERS)
            print(f"| {width} | {tableau} | {peak['ocgen']:.1f} | {peak['torch']:.1f} | "
                  f"{peak['jax']:.1f} | {peak['ocgen'] / peak['torch']:.2f} | "
                  f"{peak['ocgen'] / peak['jax']:.2f} | {process} |", flush=True)


if __name__ == "__main__":
    main()
