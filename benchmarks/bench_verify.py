"""Cost of a convergence study: ``verify`` for RK4 on lq with N = 10 … 640, split into
derivation, code generation, solving, the reference and the residual checks, cold (fresh cache
and process) and with a second, warm run; the NumPy backend against CasADi/IPOPT.
Target: under 10 s in total. Run: python benchmarks/bench_verify.py"""

import os
import sys
import tempfile
import time

os.environ["OCGEN_CACHE"] = tempfile.mkdtemp(prefix="ocgen-bench-verify-")

from ocgen.verify import format_verification, verify  # noqa: E402

STEPS = (10, 20, 40, 80, 160, 320, 640)
TARGET = 10.0


def report(label, v, wall):
    t = v.timings
    parts = {k: t[k] for k in ("derive", "generate", "solve", "reference", "residuals")}
    other = wall - sum(parts.values())
    shares = ", ".join(f"{k} {s:.2f} s ({100 * s / wall:.0f}%)" for k, s in
                       [*parts.items(), ("other", other)])
    print(f"{label}: total {wall:.2f} s — {shares}")
    solve = [(row["steps"], row.get("solve", 0.0)) for row in t["per_step_count"]]
    print("   solve per N: " + ", ".join(f"{n}: {s:.2f} s" for n, s in solve))


def main():
    results = {}
    for backend in ("numpy", "casadi"):
        for run in ("cold", "warm"):
            start = time.perf_counter()
            try:
                v = verify("rk4", "lq", STEPS, "stage", backend=backend)
            except Exception as err:  # e.g. casadi missing
                print(f"{backend} {run}: unavailable ({err})")
                break
            wall = time.perf_counter() - start
            results[backend, run] = (v, wall)
            report(f"{backend:6} {run}", v, wall)
    v, wall = results["numpy", "cold"]
    print()
    print(format_verification(v))
    print()
    print(f"ratio total / target ({TARGET:g} s), numpy cold: {wall / TARGET:.2f}")
    if ("casadi", "cold") in results:
        print(f"ratio numpy / casadi total (cold): "
              f"{wall / results['casadi', 'cold'][1]:.2f}")
    return 0 if v.passed else 1


if __name__ == "__main__":
    sys.exit(main())
