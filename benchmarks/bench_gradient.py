"""Generated NumPy code: gradient cost, forward speed against a hand-written loop, and the
time to derive and generate each built-in example. Run: python benchmarks/bench_gradient.py"""

import time
import warnings

import numpy as np

from ocgen.codegen import _render, generate
from ocgen.derive import _discretise, discretise
from ocgen.examples import EXAMPLES
from ocgen.solve import generated_module


def best(f, repeat=7):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def hand_written_rk4(f, L, y0, u, h):
    """The loop a user would write: classical RK4 with one control per stage, and the
    running cost by the same quadrature (J_h of MATH.md 2)."""
    y = y0
    ys, stages, cost = [y], [], 0.0
    for n in range(len(h)):
        Y1 = y
        k1 = f(Y1, u[n, 0])
        Y2 = y + h[n] / 2 * k1
        k2 = f(Y2, u[n, 1])
        Y3 = y + h[n] / 2 * k2
        k3 = f(Y3, u[n, 2])
        Y4 = y + h[n] * k3
        k4 = f(Y4, u[n, 3])
        y = y + h[n] / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        cost = cost + h[n] / 6 * (L(Y1, u[n, 0]) + 2 * L(Y2, u[n, 1]) + 2 * L(Y3, u[n, 2])
                                  + L(Y4, u[n, 3]))
        ys.append(y)
        stages.append((Y1, Y2, Y3, Y4))
    return np.array(ys), np.array(stages), np.sum(cost)


def vdp_f(y, u):
    return np.stack([y[1], -y[0] + (1 - y[0] ** 2) * y[1] + u[0]])


def vdp_L(y, u):
    return (y[0] ** 2 + y[1] ** 2 + u[0] ** 2) / 2


def lq_f(y, u):
    return y / 2 + u[0]


def lq_L(y, u):
    return (u[0] ** 2 + 2 * y[0] ** 2) / 2


def ratios():
    rng = np.random.default_rng(0)
    rows = []
    for problem, members, f, L in (("lq", 1, lq_f, lq_L), ("vdp", 1000, vdp_f, vdp_L)):
        module = generated_module("rk4", problem)[0]
        N = 1000
        theta = 0.1 * rng.normal(size=(N, module.N_GROUPS, module.CONTROL_DIM))
        h = module.uniform_steps(N)
        y0 = module.data["y0"] + 0.1 * rng.normal(size=(module.STATE_DIM, members))
        y0_hand = y0[:, 0] if members == 1 else y0  # a single trajectory: state vector (D,)
        forward = best(lambda: module.forward(theta, h, y0))
        gradient = best(lambda: module.objective_and_gradient(theta, h, y0))
        loop = best(lambda: hand_written_rk4(f, L, y0_hand, theta, h))
        J_hand = hand_written_rk4(f, L, y0_hand, theta, h)[2]
        assert abs(J_hand - module.forward(theta, h, y0)["objective"]) <= 1e-9 * abs(J_hand)
        rows.append((problem, N, members, forward, gradient, loop))
    print("problem  N     members  forward[s]  J and dJ/du[s]  ratio  hand RK4[s]  forward/hand")
    for problem, N, members, forward, gradient, loop in rows:
        print(f"{problem:8s} {N:5d} {members:8d} {forward:10.4f} {gradient:12.4f} "
              f"{gradient / forward:17.2f} {loop:12.4f} {forward / loop:13.2f}")


def generation_times():
    print("\nexample                             derive[s]  generate[s]")
    for tableau, problem, controls, backend in EXAMPLES:
        _discretise.cache_clear()
        _render.cache_clear()
        from ocgen.problem import load_problem
        from ocgen.tableau import load_tableau
        t, p = load_tableau(tableau), load_problem(problem)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            discretise(p, t, controls)
        derived = time.perf_counter()
        generate(t, p, controls, backend)
        print(f"{tableau + ' x ' + problem + ' (' + controls + ')':35s} "
              f"{derived - start:9.3f} {time.perf_counter() - derived:12.3f}")


if __name__ == "__main__":
    ratios()
    generation_times()
