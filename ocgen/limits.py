"""Documented limits on user input, checked before any work is done.

Input files are untrusted: each limit bounds the time or memory one file can make ocgen spend,
and is checked before the work it guards, with a message naming the file, the key and the limit.

=========================  ==========  ==========================================================
limit                      value       what it bounds
=========================  ==========  ==========================================================
MAX_FILE_BYTES             1 MiB       size of a tableau or problem file (read no further)
MAX_DATA_FILE_BYTES        64 MiB      size of a data set file (.csv or .npz; for .npz also the
                                       unpacked arrays together), and of a network model file
MAX_DATA_POINTS            1 000 000   points of one data set, read or generated
MAX_DATA_COLUMNS           64          coordinates of a data point
MAX_NAME_LENGTH            200         a name: table keys, ``name``, ``time``, states, controls,
                                       aliases
MAX_TEXT_LENGTH            10 000      any other string (description, citation); expressions
                                       have their own 2000-character limit (ocgen.expr)
MAX_LIST_LENGTH            100 000     any list in a file, so also the ensemble members
MAX_STAGES                 32          stages of a tableau
MAX_STATES                 64          states of a problem file
MAX_CONTROLS               64          controls of a problem file
MAX_MEMBER_PARAMETERS      256         member parameters of a problem file, and free
                                       parameters (each)
MAX_EXPRESSION_NODES       2 000       nodes of one expression, parameters substituted
MAX_EXPRESSION_DEPTH       64          nesting of one expression, parameters substituted
MAX_DERIVATIVE_NODES       20 000      nodes of all first derivatives of f, L and Φ
MAX_FIELD_DEGREE           32          degree bound of the number field of a tableau's exact
                                       entries, for exact order verdicts
MAX_LAYERS                 100 000     layers of a network
MAX_NETWORK_PARAMETERS     50 000 000  parameters of a network, L·G·(k² + d) (400 MB a vector;
                                       L-BFGS keeps about 20 vectors)
MEMORY_FRACTION            1/2         of physical memory, for the arrays of a solve
MEMORY_FALLBACK            8 GiB       that memory limit where physical memory is unknown
=========================  ==========  ==========================================================
"""

from __future__ import annotations

import os

import sympy as sp

from .errors import InputError, OcgenError

MAX_FILE_BYTES = 1 << 20
MAX_DATA_FILE_BYTES = 64 << 20
MAX_DATA_POINTS = 1_000_000
MAX_DATA_COLUMNS = 64
MAX_NAME_LENGTH = 200
MAX_TEXT_LENGTH = 10_000
MAX_LIST_LENGTH = 100_000
MAX_STAGES = 32
MAX_STATES = 64
MAX_CONTROLS = 64
MAX_MEMBER_PARAMETERS = 256
MAX_EXPRESSION_NODES = 2_000
MAX_EXPRESSION_DEPTH = 64
MAX_DERIVATIVE_NODES = 20_000
MAX_FIELD_DEGREE = 32
"""Five square roots (degree 32) take 2 s to bring into one field; six (64) over 5 minutes,
as do cos(π/23) with cos(π/19) (bound 11·9 = 99)."""
MAX_LAYERS = 100_000
"""The sweeps loop over the layers in Python; the built-in experiments use 20."""
MAX_NETWORK_PARAMETERS = 50_000_000
"""L·G·(k² + d) with G control groups (S for stage controls): 400 MB a vector of parameters,
of which L-BFGS keeps about 20."""
MEMORY_FRACTION = 0.5
MEMORY_FALLBACK = 8 << 30
"""The memory limit where the physical memory cannot be read."""
BYTES_PER_VALUE = {"numpy": 400, "casadi": 4000}
"""Peak bytes a solve holds per stored number, by backend: measured 280-390 for NumPy (Python
floats in per-step tuples, their arrays, costates, optimiser history) and 1400-3500 for CasADi
(IPOPT's sparse KKT system), on lq and tanh_ensemble with RK4."""


def check_count(count: int, limit: int, what: str, *, source: str | None = None,
                key: str | None = None) -> None:
    """InputError when ``count`` (of ``what``) exceeds ``limit``."""
    if count > limit:
        raise InputError(f"{count} {what}, more than the limit of {limit}", source=source, key=key)


def check_expression(expr: sp.Basic, *, key: str | None = None) -> None:
    """InputError when ``expr`` has more nodes or deeper nesting than the limits allow.

    Walks at most MAX_EXPRESSION_NODES nodes without recursion, so a deep or huge tree (e.g. one
    built from a chain of ``parameters``) is refused before SymPy recurses through it.
    """
    nodes, stack = 0, [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_EXPRESSION_NODES:
            raise InputError(f"expression with more than {MAX_EXPRESSION_NODES} nodes (the "
                             "limit, counted with parameters substituted)", key=key)
        if depth > MAX_EXPRESSION_DEPTH:
            raise InputError(f"expression nested deeper than {MAX_EXPRESSION_DEPTH} levels (the "
                             "limit, counted with parameters substituted)", key=key)
        stack.extend((arg, depth + 1) for arg in node.args)


def node_count(expr: sp.Basic, stop: int) -> int:
    """Nodes of ``expr``, counting no further than ``stop + 1``."""
    nodes, stack = 0, [expr]
    while stack and nodes <= stop:
        nodes += 1
        stack.extend(stack.pop().args)
    return nodes


def solve_bytes(stages: int, states: int, controls: int, members: int, steps: int,
                backend: str = "numpy") -> int:
    """Estimated peak bytes of a solve: states and stage values with their costates, and the
    stage controls, for every step, at :data:`BYTES_PER_VALUE` each."""
    values = steps * ((stages + 1) * states * members + stages * controls)
    return values * BYTES_PER_VALUE[backend]


def memory_limit() -> int:
    """MEMORY_FRACTION of the physical memory (MEMORY_FALLBACK where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * MEMORY_FRACTION)
    except (AttributeError, ValueError, OSError):
        return MEMORY_FALLBACK


def check_memory(tableau, problem, steps: int, backend: str = "numpy") -> None:
    """OcgenError when a solve with ``steps`` steps would hold more than :func:`memory_limit`."""
    need = solve_bytes(tableau.stages, problem.state_dim, problem.control_dim, problem.members,
                       steps, backend)
    limit = memory_limit()
    if need > limit:
        raise OcgenError(f"--steps {steps}: {tableau.name} on {problem.name} would need about "
                         f"{_gib(need)} of memory, more than the limit of {_gib(limit)} "
                         f"({MEMORY_FRACTION:.0%} of physical memory)")


def _gib(size: int) -> str:
    return f"{size / 2**30:.3g} GiB"
