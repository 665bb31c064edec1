"""Optimal control problems: minimise Φ(y(T)) + ∫ L(t, y, u) dt subject to y' = f(t, y, u).

MATH.md section 1. An *ensemble* problem has several initial states (rows of
``initial_states``) that share one control; costs are summed over the ensemble, and
``member_parameters`` (e.g. labels) take one value per member. ``free_parameters`` are
constants optimised with the controls (output weights of a network, rate constants of a
parameter estimation); ∂J/∂q is derived like every other condition. A ``partition`` splits the
states into the two parts of a partitioned Runge–Kutta pair (:mod:`ocgen.pair`): part 0 is
integrated by the pair's first tableau, part 1 by its second. Problems come from Python
(:class:`OptimalControlProblem`) or TOML files parsed by the whitelisting parser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from .errors import DerivativeSizeError, InputError
from .expr import PROBLEM_FUNCTIONS, parse_expression
from .files import read_data_file, tomllib
from .library import data_texts
from .limits import (MAX_CONTROLS, MAX_DERIVATIVE_NODES, MAX_MEMBER_PARAMETERS, MAX_STATES,
                     check_count, node_count)
from .text import check_text, is_symbol_name


@dataclass(frozen=True)
class ClosedForm:
    """A known solution: state, costate and control as expressions in t, and the optimal cost."""

    state: tuple[sp.Expr, ...]
    costate: tuple[sp.Expr, ...]
    control: tuple[sp.Expr, ...]
    objective: sp.Expr


@dataclass(frozen=True)
class OptimalControlProblem:
    """An OCP with symbolic data. ``initial_states`` has shape (members, states)."""

    name: str
    time: sp.Symbol
    states: tuple[sp.Symbol, ...]
    controls: tuple[sp.Symbol, ...]
    dynamics: tuple[sp.Expr, ...]
    running_cost: sp.Expr
    terminal_cost: sp.Expr
    t0: float
    T: float
    initial_states: tuple[tuple[float, ...], ...]
    control_bounds: tuple[tuple[float, float], ...] = ()
    member_parameters: tuple[tuple[sp.Symbol, tuple[float, ...]], ...] = ()
    free_parameters: tuple[tuple[sp.Symbol, float], ...] = ()
    partition: tuple[int, ...] = ()
    """The part (0: first, 1: second) of each state, or () when the states are not split."""
    solution: ClosedForm | None = None
    description: str = ""
    citation: str = ""
    source: str = field(default="", compare=False)

    def __post_init__(self):
        where = dict(source=self.source)
        if not (isinstance(self.name, str) and self.name.strip()):
            raise InputError(f"expected a non-empty string, found {self.name!r}", key="name",
                             **where)
        check_text(self.name, key="name", **where)
        for key in ("description", "citation"):
            check_text(getattr(self, key), key=key, multiline=True, **where)
        d, m = len(self.states), len(self.controls)
        if d == 0 or m == 0:
            raise InputError("a problem needs at least one state and one control", **where)
        if len(self.dynamics) != d:
            raise InputError(f"dynamics has {len(self.dynamics)} entries, expected {d} "
                             "(one per state)", key="dynamics", **where)
        names = [s.name for s in (self.time, *self.states, *self.controls,
                                  *(p for p, _ in self.member_parameters),
                                  *(q for q, _ in self.free_parameters))]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InputError(f"symbol name used twice: {', '.join(dup)}", **where)
        if not self.T > self.t0:
            raise InputError(f"horizon end {self.T} must exceed its start {self.t0}",
                             key="horizon", **where)
        if not math.isfinite(self.T - self.t0):
            raise InputError(f"horizon [{self.t0}, {self.T}] must have a finite length",
                             key="horizon", **where)
        if not self.initial_states or any(len(row) != d for row in self.initial_states):
            raise InputError(f"each initial state needs {d} entries", key="initial_state", **where)
        if not np.all(np.isfinite(self.initial_states)):
            raise InputError("initial states must be finite", key="initial_state", **where)
        members = len(self.initial_states)
        for sym, values in self.member_parameters:
            if len(values) != members:
                raise InputError(f"needs one value per ensemble member ({members}), found "
                                 f"{len(values)}", key=f"member_parameters.{sym}", **where)
            if not np.all(np.isfinite(values)):
                raise InputError("values must be finite", key=f"member_parameters.{sym}", **where)
        for sym, value in self.free_parameters:
            if not math.isfinite(value):
                raise InputError(f"initial value {value} must be finite",
                                 key=f"free_parameters.{sym}", **where)
        if self.solution is not None and members > 1:
            raise InputError("a closed-form solution describes one trajectory; an ensemble "
                             f"({members} initial states) cannot have one", key="solution",
                             **where)
        if self.partition:
            _check_partition(self.partition, d, self.source)
        if self.control_bounds and len(self.control_bounds) != m:
            raise InputError(f"expected bounds for {m} controls", key="bounds", **where)
        for (lo, hi), u in zip(self.control_bounds, self.controls):
            if not lo <= hi:
                raise InputError(f"lower bound {lo} exceeds upper bound {hi}",
                                 key=f"bounds.{u}", **where)
            if lo == math.inf or hi == -math.inf:
                raise InputError(f"bounds [{lo}, {hi}] leave no finite value (the lower bound "
                                 "must be below inf, the upper above -inf)",
                                 key=f"bounds.{u}", **where)
        constants = {*(p for p, _ in self.member_parameters), *self.free_parameter_symbols}
        allowed = {self.time, *self.states, *self.controls, *constants}
        for key, expr in [*(("dynamics", e) for e in self.dynamics),
                          ("running_cost", self.running_cost)]:
            _check_symbols(expr, allowed, key, self.source)
        _check_symbols(self.terminal_cost, set(self.states) | constants, "terminal_cost",
                       self.source)
        _check_differentiable(self)

    @property
    def state_dim(self) -> int:
        return len(self.states)

    @property
    def control_dim(self) -> int:
        return len(self.controls)

    @property
    def members(self) -> int:
        """Number of ensemble members (1 for an ordinary problem)."""
        return len(self.initial_states)

    @property
    def free_parameter_symbols(self) -> tuple[sp.Symbol, ...]:
        """The free parameters q, optimised with the controls."""
        return tuple(q for q, _ in self.free_parameters)

    def part_states(self, part: int) -> tuple[sp.Symbol, ...]:
        """The states of ``part`` (0: first, 1: second) of the partition."""
        return tuple(y for y, k in zip(self.states, self.partition) if k == part)

    @property
    def is_separable(self) -> bool:
        """Split into parts, with the dynamics of each part free of that part's states: y' = f(t,
        z, u), z' = g(t, y, u) (the problems of splitting methods such as Ruth's)."""
        return bool(self.partition) and not any(
            y in self.dynamics[l].free_symbols
            for y, k in zip(self.states, self.partition)
            for l, other in enumerate(self.partition) if other == k)

    @property
    def is_autonomous(self) -> bool:
        return not any(self.time in e.free_symbols for e in (*self.dynamics, self.running_cost))

    def initial_state_array(self) -> np.ndarray:
        """Initial states as an array of shape (states, members)."""
        return np.array(self.initial_states, dtype=float).T.copy()

    def member_parameter_arrays(self) -> dict[str, np.ndarray]:
        return {sym.name: np.array(values, dtype=float) for sym, values in self.member_parameters}

    def free_parameter_array(self) -> np.ndarray:
        """Initial values of the free parameters, shape (free parameters,)."""
        return np.array([value for _, value in self.free_parameters], dtype=float)

    def bounds_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper control bounds (±inf where unbounded), each of shape (controls,)."""
        m = self.control_dim
        if not self.control_bounds:
            return np.full(m, -np.inf), np.full(m, np.inf)
        lo, hi = zip(*self.control_bounds)
        return np.array(lo, dtype=float), np.array(hi, dtype=float)


def _check_symbols(expr: sp.Expr, allowed: set, key: str, source: str) -> None:
    extra = expr.free_symbols - allowed
    if extra:
        raise InputError(f"uses {', '.join(sorted(map(str, extra)))}, which may not appear here",
                         source=source, key=key)


def _check_partition(partition, d: int, source: str) -> None:
    if len(partition) != d or any(k not in (0, 1) for k in partition):
        raise InputError(f"partition must give the part (0 or 1) of each of the {d} states, "
                         f"found {partition!r}", source=source, key="parts")
    for k, name in enumerate(PARTS):
        if k not in partition:
            raise InputError(f"the {name} part has no states (a pair integrates each part with "
                             "one of its tableaux; give both parts at least one state)",
                             source=source, key=f"parts.{name}")


def _check_differentiable(problem: OptimalControlProblem) -> None:
    """f, L and Φ must have derivatives SymPy can write down (no Abs, sign, Piecewise …), of
    at most MAX_DERIVATIVE_NODES nodes in all: the derivation works on these."""
    variables = (problem.time, *problem.states, *problem.controls,
                 *problem.free_parameter_symbols)
    budget = MAX_DERIVATIVE_NODES
    for key, expr in [*((f"dynamics[{i}]", e) for i, e in enumerate(problem.dynamics)),
                      ("running_cost", problem.running_cost),
                      ("terminal_cost", problem.terminal_cost)]:
        for v in variables:
            dv = sp.diff(expr, v)
            budget -= node_count(dv, budget) if dv != 0 else 0
            if budget < 0:
                raise DerivativeSizeError(
                    f"the first derivatives of dynamics and costs have more than "
                    f"{MAX_DERIVATIVE_NODES} nodes (the limit); simplify the expressions",
                    source=problem.source, key=key)
            if dv.has(sp.Derivative, sp.Subs, sp.Piecewise, sp.sign, sp.Abs, sp.DiracDelta):
                raise InputError(f"is not differentiable with respect to {v} in closed form",
                                 source=problem.source, key=key)


# -- files -----------------------------------------------------------------------------------
_KEYS = {"name", "description", "citation", "time", "states", "controls", "parameters",
         "member_parameters", "horizon", "initial_state", "initial_states", "dynamics",
         "running_cost", "terminal_cost", "bounds", "solution", "free_parameters", "parts"}
PARTS = ("first", "second")
"""The keys of the ``parts`` table, in the order of the parts of a pair (ocgen.pair)."""


def problem_from_dict(data: dict, source: str = "") -> OptimalControlProblem:
    """Build a problem from a parsed TOML table (schema in the README); errors name file and key."""
    def fail(key, message):
        return InputError(message, source=source, key=key)

    for key in data:
        if key not in _KEYS:
            raise fail(key, f"unknown key (expected one of: {', '.join(sorted(_KEYS))})")
    for key in ("states", "controls", "dynamics", "horizon"):
        if key not in data:
            raise fail(None, f"missing required key {key!r}")

    def names(key):
        value = data[key]
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise fail(key, f"expected a non-empty list of names, found {value!r}")
        for i, v in enumerate(value):
            check_name(v, f"{key}[{i}]")
        return [sp.Symbol(v, real=True) for v in value]

    def check_name(name, key):
        if not is_symbol_name(name) or name in PROBLEM_FUNCTIONS or name in ("pi", "E"):
            raise fail(key, f"{name!r} is not a usable symbol name (ASCII letters, digits and "
                            "_, not starting with a digit; not a Python keyword or a function "
                            "name)")

    time_name = data.get("time", "t")
    check_name(time_name, "time")
    time = sp.Symbol(time_name, real=True)
    states, controls = names("states"), names("controls")
    check_count(len(states), MAX_STATES, "states", source=source, key="states")
    check_count(len(controls), MAX_CONTROLS, "controls", source=source, key="controls")

    constants: dict[str, sp.Expr] = {}
    params = data.get("parameters", {})
    if not isinstance(params, dict):
        raise fail("parameters", "expected a table of name = value")
    for pname, value in params.items():
        check_name(pname, f"parameters.{pname}")
        constants[pname] = _parse(value, constants, f"parameters.{pname}", source)

    def parameter_table(table, layout):
        """(symbol, key, value) of a table of parameters, names checked."""
        raw = data.get(table, {})
        if not isinstance(raw, dict):
            raise fail(table, f"expected a table of {layout}")
        check_count(len(raw), MAX_MEMBER_PARAMETERS, table.replace("_", " "), source=source,
                    key=table)
        for pname, value in raw.items():
            check_name(pname, f"{table}.{pname}")
            yield sp.Symbol(pname, real=True), f"{table}.{pname}", value

    member_params = [(sym, _floats(values, key, source)) for sym, key, values in
                     parameter_table("member_parameters", "name = [values per member]")]
    free_params = [(sym, _float(_parse(value, constants, key, source), key, source))
                   for sym, key, value in
                   parameter_table("free_parameters", "name = initial value")]

    declared = {s.name: s for s in (time, *states, *controls, *(p for p, _ in member_params),
                                     *(q for q, _ in free_params))}
    clash = set(declared) & set(constants)
    if clash:
        raise fail("parameters", f"{', '.join(sorted(clash))} declared twice")
    symbols = {**declared, **constants}

    def expr(key, value):
        return _parse(value, symbols, key, source)

    dyn = data["dynamics"]
    if not isinstance(dyn, list):
        raise fail("dynamics", f"expected a list of expressions (one per state), found {dyn!r}")
    dynamics = tuple(expr(f"dynamics[{i}]", v) for i, v in enumerate(dyn))
    running = expr("running_cost", data.get("running_cost", 0))
    terminal = expr("terminal_cost", data.get("terminal_cost", 0))

    horizon = data["horizon"]
    if not (isinstance(horizon, list) and len(horizon) == 2):
        raise fail("horizon", f"expected [t0, T], found {horizon!r}")
    t0, T = (_float(expr(f"horizon[{i}]", v), f"horizon[{i}]", source)
             for i, v in enumerate(horizon))

    if ("initial_state" in data) == ("initial_states" in data):
        raise fail(None, "give exactly one of 'initial_state' (a list) or 'initial_states' "
                         "(a list of lists, one per ensemble member)")
    if "initial_state" in data:
        rows = [data["initial_state"]]
        keys = ["initial_state"]
    else:
        rows = data["initial_states"]
        if not (isinstance(rows, list) and rows):
            raise fail("initial_states", "expected a non-empty list of lists")
        keys = [f"initial_states[{i}]" for i in range(len(rows))]
    initial = tuple(tuple(_float(expr(f"{k}[{j}]", v), f"{k}[{j}]", source)
                          for j, v in enumerate(_list(row, k, source)))
                    for k, row in zip(keys, rows))

    bounds = ()
    raw_bounds = data.get("bounds", {})
    if not isinstance(raw_bounds, dict):
        raise fail("bounds", "expected a table: control = [lower, upper]")
    for name in raw_bounds:
        if name not in {u.name for u in controls}:
            raise fail(f"bounds.{name}", "not a declared control")
    if raw_bounds:
        pairs = []
        for u in controls:
            pair = raw_bounds.get(u.name, ["-inf", "inf"])
            key = f"bounds.{u.name}"
            if not (isinstance(pair, list) and len(pair) == 2):
                raise fail(key, f"expected [lower, upper], found {pair!r}")
            pairs.append(tuple(_bound(v, symbols, f"{key}[{i}]", source)
                               for i, v in enumerate(pair)))
        bounds = tuple(pairs)

    partition = _partition(data["parts"], states, source) if "parts" in data else ()

    solution = None
    if "solution" in data:
        sol = data["solution"]
        if not isinstance(sol, dict):
            raise fail("solution", "expected a table with state, costate, control, objective")
        only_t = {time.name: time, **constants}
        parts = {}
        for key, size in (("state", len(states)), ("costate", len(states)),
                          ("control", len(controls))):
            values = _list(sol.get(key), f"solution.{key}", source)
            if len(values) != size:
                raise fail(f"solution.{key}", f"expected {size} expressions, found {len(values)}")
            parts[key] = tuple(_parse(v, only_t, f"solution.{key}[{i}]", source)
                               for i, v in enumerate(values))
        if "objective" not in sol:
            raise fail("solution", "missing 'objective'")
        objective = _parse(sol["objective"], constants, "solution.objective", source)
        solution = ClosedForm(parts["state"], parts["costate"], parts["control"], objective)

    for key in ("name", "description", "citation"):
        if key in data and not isinstance(data[key], str):
            raise fail(key, f"expected a string, found {data[key]!r}")
    return OptimalControlProblem(
        name=data.get("name", Path(source).stem if source else "problem"),
        time=time, states=tuple(states), controls=tuple(controls), dynamics=dynamics,
        running_cost=running, terminal_cost=terminal, t0=t0, T=T, initial_states=initial,
        control_bounds=bounds, member_parameters=tuple(member_params),
        free_parameters=tuple(free_params), partition=partition, solution=solution,
        description=data.get("description", ""), citation=data.get("citation", ""),
        source=source)


def _partition(table, states, source) -> tuple[int, ...]:
    """The ``parts`` table, e.g. ``{first = ["q"], second = ["p"]}``: each state in exactly one
    part, each part a non-empty list of declared state names."""
    if not isinstance(table, dict):
        raise InputError("expected a table: first = [state names], second = [state names]",
                         source=source, key="parts")
    for key in table:
        if key not in PARTS:
            raise InputError("unknown key (expected first and second: the states integrated by "
                             "the first and by the second tableau of a pair)", source=source,
                             key=f"parts.{key}")
    names = [s.name for s in states]
    part: dict[str, int] = {}
    for k, key in enumerate(PARTS):
        if key not in table:
            raise InputError(f"missing key {key!r} (the states of the {key} part)",
                             source=source, key="parts")
        value = table[key]
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise InputError(f"expected a non-empty list of state names, found {value!r}",
                             source=source, key=f"parts.{key}")
        for i, name in enumerate(value):
            where = f"parts.{key}[{i}]"
            if name not in names:
                raise InputError(f"{name!r} is not a declared state (states: "
                                 f"{', '.join(names)})", source=source, key=where)
            if name in part:
                raise InputError(f"{name!r} is already in the {PARTS[part[name]]} part (each "
                                 "state belongs to exactly one part)", source=source, key=where)
            part[name] = k
    missing = [n for n in names if n not in part]
    if missing:
        raise InputError(f"the parts do not cover the state: {', '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} in no part (each state belongs "
                         "to exactly one of first, second)", source=source, key="parts")
    return tuple(part[n] for n in names)


def _parse(value, symbols, key, source) -> sp.Expr:
    try:
        return parse_expression(value, symbols, PROBLEM_FUNCTIONS, key=key)
    except InputError as err:
        raise err.located(source=source, key=key) from None


def _list(value, key, source) -> list:
    if not isinstance(value, list):
        raise InputError(f"expected a list, found {value!r}", source=source, key=key)
    return value


def _float(value: sp.Expr, key: str, source: str) -> float:
    if not value.is_number or not value.is_real:
        raise InputError(f"expected a real number, found {value}", source=source, key=key)
    return float(value)


def _floats(values, key, source) -> tuple[float, ...]:
    return tuple(_float(_parse(v, {}, f"{key}[{i}]", source), f"{key}[{i}]", source)
                 for i, v in enumerate(_list(values, key, source)))


def _bound(value, symbols, key, source) -> float:
    if isinstance(value, str) and value.strip().lstrip("+-") in ("inf", "infinity"):
        return float("-inf") if value.strip().startswith("-") else float("inf")
    return _float(_parse(value, symbols, key, source), key, source)


# -- the built-in problems --------------------------------------------------------------------
@cache
def _builtin_texts() -> dict[str, str]:
    return data_texts("problems")


def builtin_problem_names() -> list[str]:
    return list(_builtin_texts())


@cache
def _builtin(name: str) -> OptimalControlProblem:
    return problem_from_dict(tomllib.loads(_builtin_texts()[name]), source=f"{name}.toml")


def load_problem(spec: Any) -> OptimalControlProblem:
    """A built-in name (``lq``, ``nl``, …) or the path of a problem TOML file."""
    if isinstance(spec, OptimalControlProblem):
        return spec
    text = str(spec)
    if not text.strip():
        raise InputError("empty problem name: give a built-in name "
                         f"({', '.join(builtin_problem_names())}) or a .toml file")
    if text.lower() in _builtin_texts():
        return _builtin(text.lower())
    path = Path(text)
    if path.suffix.lower() in (".toml", ".json") or path.is_file():
        return problem_from_dict(read_data_file(path), source=str(path))
    raise InputError(f"unknown problem {text!r} (built-in: {', '.join(builtin_problem_names())};"
                     " or give a .toml file)")
