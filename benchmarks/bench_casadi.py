"""CasADi backend: the generated transcription against a hand-written CasADi Opti transcription
of the same NLP (RK4, stage controls, stage values as unknowns, same IPOPT options) and against
the NumPy backend's L-BFGS-B solve; then a scaling table for N = 100 ... 2000.

Run: python benchmarks/bench_casadi.py   (prints ratios; target generated / Opti <= 1.2)
"""

import time
import warnings

import casadi

from ocgen.problem import load_problem
from ocgen.solve import generated_module, solve
from ocgen.solve_casadi import solve_casadi
from ocgen.tableau import load_tableau

REPEAT = 5
RK4_A = [[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1, 0]]
RK4_B = [1 / 6, 1 / 3, 1 / 3, 1 / 6]


def best(f, repeat=REPEAT):
    """Smallest wall time of ``repeat`` runs and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - start)
    return min(times), result


def vdp_model(x, u):
    """f and L on columns x (2, n), u (1, n); elementwise."""
    x1, x2 = x[0, :], x[1, :]
    return casadi.vertcat(x2, -x1 + (1 - x1 ** 2) * x2 + u), (x1 ** 2 + x2 ** 2 + u ** 2) / 2


def lq_model(x, u):
    return x / 2 + u, (u ** 2 + 2 * x ** 2) / 2


MODELS = {"lq": (lq_model, [1.0], 1.0), "vdp": (vdp_model, [1.0, 0.0], 3.0)}
OPTIONS = {"ipopt.print_level": 0, "ipopt.sb": "yes", "ipopt.tol": 1e-10, "ipopt.max_iter": 3000,
           "ipopt.bound_relax_factor": 0.0, "ipopt.honor_original_bounds": "yes"}


def _opti(problem, N):
    model, y0, T = MODELS[problem]
    opti = casadi.Opti()
    y = casadi.horzcat(casadi.DM(y0), opti.variable(len(y0), N))  # y_0 given, y_1..y_N unknown
    Y = [opti.variable(len(y0), N) for _ in RK4_B]  # stage values
    u = opti.variable(len(RK4_B), N)  # stage controls
    return opti, model, T / N, y, Y, u


def _opti_solve(opti, J, options, expand):
    opti.minimize(J)
    ipopt = {k[len("ipopt."):]: v for k, v in options.items() if k.startswith("ipopt.")}
    opti.solver("ipopt", {"print_time": False, "expand": expand}, ipopt)
    solution = opti.solve()
    return float(solution.value(J)), solution.stats()["iter_count"]


def opti_rk4_loop(problem, N, options, expand):
    """What a CasADi user often writes: Opti, a loop over steps, RK4 stage equations and the
    step as constraints, the running cost by the method's weights."""
    opti, model, h, y, Y, u = _opti(problem, N)
    s, J = len(RK4_B), 0
    for n in range(N):
        f, L = zip(*(model(Y[i][:, n], u[i, n]) for i in range(s)))
        for i in range(s):
            opti.subject_to(Y[i][:, n] == y[:, n] + h * sum(
                RK4_A[i][j] * f[j] for j in range(s) if RK4_A[i][j]))
        opti.subject_to(y[:, n + 1] == y[:, n] + h * sum(RK4_B[i] * f[i] for i in range(s)))
        J = J + h * sum(RK4_B[i] * L[i] for i in range(s))
    return _opti_solve(opti, J, options, expand)


def opti_rk4_vectorised(problem, N, options, expand):
    """The same NLP written by an experienced user: every equation over all steps at once."""
    opti, model, h, y, Y, u = _opti(problem, N)
    s = len(RK4_B)
    f, L = zip(*(model(Y[i], u[i, :]) for i in range(s)))
    for i in range(s):
        opti.subject_to(Y[i] == y[:, :-1] + h * sum(
            RK4_A[i][j] * f[j] for j in range(s) if RK4_A[i][j]))
    opti.subject_to(y[:, 1:] == y[:, :-1] + h * sum(RK4_B[i] * f[i] for i in range(s)))
    J = h * sum(RK4_B[i] * casadi.sum2(L[i]) for i in range(s))
    return _opti_solve(opti, J, options, expand)


def side_by_side(problems=("lq", "vdp"), sizes=(200, 1000)):
    print("RK4, stage controls; seconds (best of %d, interleaved, for the generated NLP and "
          "vectorised Opti); same IPOPT options (tol 1e-10)" % REPEAT)
    print("gen = setup + solve of the generated NLP, the like-for-like build + solve; call = the "
          "whole solve_casadi call (also costates from lam_g, grid control, bookkeeping)")
    print("Opti: loop = subject_to per step, vec = one subject_to per equation over all steps; "
          "SX = expand=True, MX = expand=False")
    print("problem     N    gen   call | loop SX  loop MX   vec SX   vec MX | gen/best Opti | "
          "NumPy L-BFGS-B  gen/NumPy | max |J - J_gen|/J")
    tableau = load_tableau("rk4")
    for problem in problems:
        generated_module(tableau, problem, "stage", "casadi")
        solve("rk4", problem, 8)  # NumPy module generated and imported once, outside the timing
        for N in sizes:
            # interleaved, best of REPEAT, so that load on the machine hits all alike
            runs, opti = [], {"loop SX": [], "loop MX": [], "vec SX": [], "vec MX": []}
            for r in range(REPEAT):
                runs.append(solve_casadi(tableau, problem, N))
                for name, f, expand in (("loop SX", opti_rk4_loop, True),
                                        ("loop MX", opti_rk4_loop, False),
                                        ("vec SX", opti_rk4_vectorised, True),
                                        ("vec MX", opti_rk4_vectorised, False)):
                    if r == 0 or name.startswith("vec"):  # the loops take seconds: once
                        opti[name].append(best(lambda: f(problem, N, OPTIONS, expand), 1))
            opti = {name: min(results) for name, results in opti.items()}
            t_gen = min(r.timings["setup"] + r.timings["solve"] for r in runs)
            t_call = min(sum(r.timings[k] for k in ("generate", "setup", "solve", "costates"))
                         for r in runs)
            J = runs[-1].objective
            t_np, numpy_sol = best(lambda: solve(tableau, problem, N), repeat=1)
            fastest = min(t for t, _ in opti.values())
            error = max(abs(r[0] - J) for _, r in opti.values())
            error = max(error, abs(numpy_sol.objective - J)) / abs(J)
            print(f"{problem:7s} {N:5d} {t_gen:6.3f} {t_call:6.3f} | "
                  + " ".join(f"{opti[k][0]:7.3f} " for k in opti)
                  + f"| {t_gen / fastest:13.2f} | {t_np:14.3f} {t_gen / t_np:10.3f} | "
                  f"{error:17.1e}")


def scaling(problems=("lq", "vdp"), sizes=(100, 250, 500, 1000, 2000), tableaux=("rk4",)):
    print("\nscaling: generated transcription, MX (default) and SX; seconds; "
          "derive + generate are cached (see below)")
    print("tableau  problem     N   setup   solve  iters |  SX setup  SX solve  iters")
    for name in tableaux:
        for problem in problems:
            for N in sizes:
                mx = solve_casadi(name, problem, N)
                sx = solve_casadi(name, problem, N, symbolic="SX")
                assert abs(mx.objective - sx.objective) <= 1e-12 * abs(mx.objective)
                print(f"{name:8s} {problem:7s} {N:5d} {mx.timings['setup']:7.3f} "
                      f"{mx.timings['solve']:7.3f} {mx.iterations:6d} | "
                      f"{sx.timings['setup']:9.3f} {sx.timings['solve']:9.3f} "
                      f"{sx.iterations:6d}")


def cold_generation():
    """One-time cost of deriving and generating (cached afterwards by process and on disk)."""
    from ocgen.codegen import _render, generate
    from ocgen.derive import _discretise, discretise

    print("\nderive + generate, cold (seconds)")
    for name, problem in (("rk4", "lq"), ("rk4", "vdp"), ("gauss2", "vdp")):
        _discretise.cache_clear()
        _render.cache_clear()
        t, p = load_tableau(name), load_problem(problem)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            discretise(p, t, "stage")
        derived = time.perf_counter()
        generate(t, p, "stage", "casadi")
        print(f"{name:8s} {problem:7s} derive {derived - start:6.3f}  "
              f"generate {time.perf_counter() - derived:6.3f}")


if __name__ == "__main__":
    side_by_side()
    scaling()
    scaling(problems=("vdp",), sizes=(100, 500, 2000), tableaux=("gauss2",))
    cold_generation()
