"""Exact order certificates for every built-in tableau, side by side with nodepy.

For each built-in method this prints the time of ``ocgen.order.certificate`` (classical order
up to 8 and optimal-control order up to 6, exact), the time of ``classical_order`` alone, and
— for the methods nodepy also ships, matched by their coefficients — the time of nodepy's
``order(mode='exact')`` (classical order only, SymPy ``simplify`` per condition) with the
ratios nodepy / ocgen (classical order: the same task; certificate: ocgen also decides the
optimal-control order). Rows where ocgen's tableau is given in floating point are shown in
parentheses and left out of the summary (a tolerance decides them, not exact arithmetic).

Each timing is the best of a few runs in one process. ocgen's per-tableau cache is cleared
before every run; the tree tables (built once per process, tableau-independent) are built
before timing and their one-off cost is printed.

    python benchmarks/bench_order.py [--markdown] [--no-nodepy] [NAME ...]

nodepy is an optional benchmark-only dependency (``pip install nodepy six``).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ocgen import order
from ocgen.tableau import builtin_tableaux, load_tableau
from ocgen.trees import symplectic_classes, trees_up_to


def best_time(fn, budget: float = 0.3, runs: int = 3) -> tuple[float, object]:
    """Minimum wall time of ``fn()`` over up to ``runs`` runs (fewer once ``budget`` is spent)."""
    best, result, spent = float("inf"), None, 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent > budget:
            break
    return best, result


def fresh(fn):
    def run():
        order._prepare.cache_clear()
        return fn()
    return run


def nodepy_methods():
    try:
        from nodepy import rk
    except Exception as err:  # ImportError, or nodepy's own missing 'six'
        print(f"(nodepy not available: {err}; ocgen timings only)", file=sys.stderr)
        return {}
    return {name: m for name, m in rk.loadRKM("All").items() if name != "Söderlind43"}


def _float_tableau(A, b):
    return (np.array(A, dtype=float), np.array(b, dtype=float).ravel())


def match(tableau, methods):
    """The nodepy method with the same coefficients (to 1e-12), or None."""
    A, b = _float_tableau(tableau.A.tolist(), list(tableau.b))
    for name, m in methods.items():
        try:
            mA, mb = _float_tableau(m.A, m.b)
        except (TypeError, ValueError):
            continue
        if mA.shape == A.shape and np.allclose(mA, A, atol=1e-12) and np.allclose(mb, b,
                                                                               atol=1e-12):
            return name, m
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="built-in tableaux (default: all)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--no-nodepy", action="store_true", help="skip nodepy")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    for q in range(1, 9):
        tuple(trees_up_to(q))
    for q in range(1, 7):
        symplectic_classes(q)
    trees_time = time.perf_counter() - t0

    tableaux = [load_tableau(n) for n in args.names] if args.names else list(builtin_tableaux())
    methods = {} if args.no_nodepy else nodepy_methods()

    header = ["method", "s", "exact", "order", "OC order", "certificate s", "classical s",
              "nodepy", "nodepy order", "nodepy exact s", "÷ classical", "÷ certificate"]
    rows, ratios, cert_ratios, worst = [], [], [], 0.0
    for t in tableaux:
        cert_time, cert = best_time(fresh(lambda: order.certificate(t)))
        classical_time, classical = best_time(fresh(lambda: order.classical_order(t)))
        worst = max(worst, cert_time)
        found = match(t, methods) if methods else None
        nd_name = nd_order = nd_time = ratio = cert_ratio = ""
        if found:
            nd_name, m = found
            seconds, p = best_time(lambda: m.order(mode="exact"), budget=1.0)
            nd_order, nd_time = str(p), f"{seconds:.3f}"
            ratio = f"{seconds / classical_time:.1f}×"
            cert_ratio = f"{seconds / cert_time:.1f}×"
            if cert["exact"]:
                ratios.append(seconds / classical_time)
                cert_ratios.append(seconds / cert_time)
            else:  # ocgen judges a float tableau with a tolerance: not the same task
                ratio, cert_ratio = f"({ratio})", f"({cert_ratio})"
            if p != classical.order:
                nd_order += " (differs!)"
        oc = cert["control_order"]
        rows.append([t.name, str(t.stages), "yes" if cert["exact"] else "float",
                     f"{'≥' if cert['order_at_least'] else ''}{cert['order']}",
                     "—" if oc is None else f"{'≥' if cert['control_order_at_least'] else ''}{oc}",
                     f"{cert_time:.3f}", f"{classical_time:.4f}", nd_name, nd_order, nd_time,
                     ratio, cert_ratio])

    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[k]) for r in rows + [header]) for k in range(len(header))]
        for row in [header] + rows:
            print("  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip())
    print()
    print(f"tree tables (once per process): {trees_time:.3f} s")
    print(f"slowest certificate: {worst:.3f} s (target < 0.5 s)")
    for what, values in (("classical order only", ratios),
                         ("full certificate (classical + control)", cert_ratios)):
        if values:
            print(f"nodepy exact order() / ocgen {what}, {len(values)} shared exact methods: "
                  f"min {min(values):.1f}×, median {float(np.median(values)):.1f}×, "
                  f"max {max(values):.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
