"""Manufactured optimal control problems with explicit time (MATH.md 1), derived with SymPy.

Pick the optimal state y*(t) and costate p*(t) first, then choose the forcing that makes them
the solution of Pontryagin's system for a tracking problem

    minimise  Φ(y(T)) + ∫ ½|u|² + ½|y − z(t)|² dt   subject to  y' = f₀(t, y, u) + w(t),

with H = L + pᵀf (MATH.md 1):
    H_u = 0        gives  u* = φ(t, y*, p*)    (for f₀ affine in u: u* = −f₀,uᵀ p*),
    y' = f         gives  w = y*' − f₀(t, y*, u*),
    p' = −∇_y H    gives  z = y* + p*' + f₀,yᵀ p*   (∇_y L = y − z),
    p(T) = ∇Φ(y*(T)) and y(0) = y*(0) are the caller's to choose (checked by the tests),
    J* = Φ(y*(T)) + ∫ L(t, y*, u*) dt, integrated exactly (Manufactured.objective).

With f₀ linear in (y, u) and L convex the problem is convex, so the Pontryagin solution is
the global optimum. ``python tests/manufactured.py`` prints the built-in problem files
``tv_tracking.toml`` and ``tv_oscillator.toml``; tests/test_manufactured.py checks the
shipped files against this derivation and the closed forms against Pontryagin's system.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

t = sp.Symbol("t", real=True)


@dataclass(frozen=True)
class Manufactured:
    """A problem made to have the solution (y*, p*, u*): its data and closed form."""

    name: str
    states: tuple[sp.Symbol, ...]
    controls: tuple[sp.Symbol, ...]
    dynamics: tuple[sp.Expr, ...]
    running_cost: sp.Expr
    terminal_cost: sp.Expr
    horizon: tuple[int, int]
    state: tuple[sp.Expr, ...]
    costate: tuple[sp.Expr, ...]
    control: tuple[sp.Expr, ...]

    def objective(self) -> sp.Expr:
        """J* = Φ(y*(T)) + ∫ L(t, y*, u*) dt, integrated exactly (a few seconds)."""
        on_path = {**dict(zip(self.states, self.state)), **dict(zip(self.controls, self.control))}
        T = self.horizon[1]
        return self.terminal_cost.xreplace({s: v.subs(t, T) for s, v in zip(self.states,
                                                                                self.state)}) \
            + sp.integrate(sp.expand(self.running_cost.xreplace(on_path)), (t, *self.horizon))


def manufacture(name, states, controls, base_dynamics, terminal_cost, y_star, p_star,
                horizon=(0, 1)) -> Manufactured:
    """The forcing w(t), z(t) that makes (y*, p*) optimal (formulas in the module docstring)."""
    y, u = sp.Matrix(states), sp.Matrix(controls)
    f0 = sp.Matrix(base_dynamics)
    ys, ps = sp.Matrix(y_star), sp.Matrix(p_star)
    on_path = dict(zip(states, y_star))
    # H_u = u + f₀,uᵀ p = 0 (L = ½|u|² + …); solved, not assumed
    H_u = u + f0.jacobian(u).T * ps
    found = sp.solve(list(H_u.xreplace(on_path)), list(controls), dict=True)
    assert len(found) == 1, "the control law must be unique"
    us = sp.Matrix([sp.simplify(found[0][c]) for c in controls])
    at_star = {**on_path, **dict(zip(controls, us))}
    w = ys.diff(t) - f0.xreplace(at_star)
    z = ys + ps.diff(t) + f0.jacobian(y).T.xreplace(at_star) * ps
    w, z = w.applyfunc(sp.expand), z.applyfunc(sp.expand)
    dynamics = tuple(f0[k] + w[k] for k in range(len(states)))
    running = (sum(c**2 for c in controls) + sum((y[k] - z[k])**2
                                                  for k in range(len(states)))) / 2
    return Manufactured(name, tuple(states), tuple(controls), dynamics, running, terminal_cost,
                        tuple(horizon), tuple(y_star), tuple(p_star), tuple(us))


def tv_tracking() -> Manufactured:
    """One state, y' = cos(t) y + u + w(t): y* = 1 + sin(3t)/3, p* = (1 − t)(1 + t²), Φ = 0."""
    y, u = sp.symbols("y u", real=True)
    return manufacture("tv_tracking", [y], [u], [sp.cos(t) * y + u], sp.S.Zero,
                       [1 + sp.sin(3 * t) / 3], [(1 - t) * (1 + t**2)])


def tv_oscillator() -> Manufactured:
    """Two states, y1' = y2 + w1, y2' = −sin(t) y1 + u + w2: y* = (cos 2t, t e^{−t}),
    Φ = |y|²/2, p* = (cos 2 + sin(1 − t), t² e^{−1}) so that p*(1) = y*(1)."""
    y1, y2, u = sp.symbols("y1 y2 u", real=True)
    return manufacture("tv_oscillator", [y1, y2], [u], [y2, -sp.sin(t) * y1 + u],
                       (y1**2 + y2**2) / 2, [sp.cos(2 * t), t * sp.exp(-t)],
                       [sp.cos(2) + sp.sin(1 - t), t**2 * sp.exp(-1)])


def _text(expr) -> str:
    return sp.sstr(expr, order="none")


def toml_text(m: Manufactured, description: str) -> str:
    """The problem file (schema in the README) of a manufactured problem."""
    names = lambda symbols: "[" + ", ".join(f'"{s}"' for s in symbols) + "]"  # noqa: E731
    exprs = lambda values: "[" + ", ".join(f'"{_text(e)}"' for e in values) + "]"  # noqa: E731
    initial = [sp.nsimplify(v.subs(t, m.horizon[0])) for v in m.state]
    return "\n".join([
        f'name = "{m.name}"',
        f'description = "{description}"',
        'citation = "Manufactured solution: the forcing is derived from the chosen optimal '
        'state and costate with SymPy (tests/manufactured.py), checked against Pontryagin\'s '
        'system by tests/test_manufactured.py"',
        f"states = {names(m.states)}",
        f"controls = {names(m.controls)}",
        f"horizon = [{m.horizon[0]}, {m.horizon[1]}]",
        f"initial_state = [{', '.join(_text(v) for v in initial)}]",
        f"dynamics = {exprs(m.dynamics)}",
        f'running_cost = "{_text(m.running_cost)}"',
        f'terminal_cost = "{_text(m.terminal_cost)}"',
        "",
        "[solution]",
        f"state = {exprs(m.state)}",
        f"costate = {exprs(m.costate)}",
        f"control = {exprs(m.control)}",
        f'objective = "{_text(m.objective())}"',
        ""])


DESCRIPTIONS = {
    "tv_tracking": "Time-dependent tracking problem with a manufactured solution: minimise "
                   "1/2 ∫ (u² + (y - z(t))²) dt, y' = cos(t) y + u + w(t), y(0) = 1; "
                   "y* = 1 + sin(3t)/3, p* = (1 - t)(1 + t²), u* = -p*",
    "tv_oscillator": "Time-dependent two-state problem with a manufactured solution: minimise "
                     "|y(1)|²/2 + 1/2 ∫ (u² + |y - z(t)|²) dt, y1' = y2 + w1(t), "
                     "y2' = -sin(t) y1 + u + w2(t); y* = (cos 2t, t exp(-t)), "
                     "p* = (cos 2 + sin(1 - t), t² exp(-1)), u* = -p2*",
}
PROBLEMS = {"tv_tracking": tv_tracking, "tv_oscillator": tv_oscillator}


if __name__ == "__main__":
    import sys
    from pathlib import Path

    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    for key, make in PROBLEMS.items():
        text = toml_text(make(), DESCRIPTIONS[key])
        if folder is None:
            print(text)
        else:
            (folder / f"{key}.toml").write_text(text, encoding="utf-8")
