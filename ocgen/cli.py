"""The ``ocgen`` command line: parse, call the library, print. No mathematics lives here.

Every command is one small function ``cmd_<name>(args) -> int`` registered by a function
decorated with :func:`command`, which adds its subparser and sets ``func``. To add a command
(``generate``, ``solve``, ``verify``, …) write both and nothing else changes::

    @command
    def _add_solve(sub):
        p = sub.add_parser("solve", help="…")
        p.add_argument(...)
        p.set_defaults(func=cmd_solve)

User errors (:class:`ocgen.errors.OcgenError`) print ``ocgen: error: <message>`` on stderr
and exit with status 2, without a traceback (argparse reports usage errors the same way). A
solve that fails numerically (:class:`ocgen.errors.SolveError`) prints the same line and exits
with status 1, as a solve that did not converge does.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Callable

from . import __version__
from .errors import OcgenError, SolveError
from .text import terminal_text

EXIT_NOT_SOLVED = 1
EXIT_USER_ERROR = 2

COMMANDS: list[Callable[[Any], None]] = []
"""Functions that each add one subcommand to the parser (in order of registration)."""


def command(register: Callable[[Any], None]) -> Callable[[Any], None]:
    """Decorator: ``register(subparsers)`` adds a subcommand and sets ``func`` on it."""
    COMMANDS.append(register)
    return register


def _print_json(data: Any) -> None:
    """Print RFC 8259 JSON: a value that is not a finite number is written as null, and the
    top-level object says where (``non_finite``)."""
    paths: list[str] = []
    data = _finite(data, "", paths)
    if paths and isinstance(data, dict):
        data["non_finite"] = {
            "reason": "NaN and infinite values are not JSON numbers; they are written as null",
            "count": len(paths), "first": paths[:10]}
    print(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False))


def _finite(value: Any, path: str, found: list[str]) -> Any:
    """``value`` with every non-finite float replaced by None; their paths go to ``found``."""
    if isinstance(value, float) and not math.isfinite(value):
        found.append(path or "(top level)")
        return None
    if isinstance(value, dict):
        return {k: _finite(v, f"{path}.{k}" if path else str(k), found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


# -- ocgen tableau list | show ---------------------------------------------------------------
@command
def _add_tableau(sub) -> None:
    p = sub.add_parser("tableau", help="list or show the built-in Butcher tableaux and pairs",
                       description="List the built-in Butcher tableaux and partitioned pairs or "
                                   "show one of them.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = actions.add_parser("list", help="list the built-in tableaux and pairs")
    lst.add_argument("--json", action="store_true",
                     help="print a JSON list (of the tableaux, or of the pairs with --pairs)")
    lst.add_argument("--pairs", action="store_true",
                     help="list only the partitioned Runge–Kutta pairs")
    lst.set_defaults(func=cmd_tableau_list)
    show = actions.add_parser("show", help="show one tableau or pair")
    show.add_argument("tableau", metavar="TABLEAU",
                      help="built-in name (case-insensitive, aliases) or a .toml/.json file")
    fmt = show.add_mutually_exclusive_group()
    fmt.add_argument("--latex", action="store_true", help="print a LaTeX array (one per part)")
    fmt.add_argument("--json", action="store_true",
                     help="print the tableau as JSON (loadable again as a tableau file)")
    _exact_decimals_argument(show)
    show.set_defaults(func=cmd_tableau_show)


def _exact_decimals_argument(p) -> None:
    p.add_argument("--exact-decimals", action="store_true",
                   help="read decimals and floats in tableau files as the exact rationals they "
                        "spell (0.1 = 1/10) instead of rounded numbers judged with a tolerance")


def _progress(items, what: str):
    """``items`` with a progress bar on stderr when it is a terminal (and there are several)."""
    from tqdm import tqdm
    items = list(items)
    return tqdm(items, desc=what, file=sys.stderr, leave=False,
                disable=len(items) < 2 or not sys.stderr.isatty())


def cmd_tableau_list(args) -> int:
    from .pair import builtin_pairs
    from .tableau import builtin_tableaux
    rows = [{"name": t.name, "aliases": list(t.aliases), "stages": t.stages, "kind": t.kind,
             "order": t.literature_order, "control_order": t.literature_control_order}
            for t in builtin_tableaux()]
    pairs = [{"name": p.name, "aliases": list(p.aliases), "stages": p.stages,
              "symplectic": p.is_symplectic or ("separable" if p.is_symplectic_separable
                                                 else False),
              "order": p.literature_order, "separable_order": p.literature_separable_order,
              "control_order": p.literature_control_order} for p in builtin_pairs()]
    if args.json:
        _print_json(pairs if args.pairs else rows)
        return 0
    dash = lambda x: "-" if x is None else str(x)  # noqa: E731
    if not args.pairs:
        _print_table([("name", "stages", "kind", "order", "control order", "aliases")] + [
            (r["name"], str(r["stages"]), r["kind"], dash(r["order"]), dash(r["control_order"]),
             ", ".join(r["aliases"])) for r in rows])
        print("\nPartitioned pairs (A, b for y; Â, b̂ for z):")
    symplectic = {True: "yes", "separable": "separable", False: "no"}
    _print_table([("name", "stages", "symplectic", "order", "separable", "control order",
                   "aliases")] + [
        (r["name"], str(r["stages"]), symplectic[r["symplectic"]], dash(r["order"]),
         dash(r["separable_order"]), dash(r["control_order"]), ", ".join(r["aliases"]))
        for r in pairs])
    print("\n(orders as recorded in the library; `ocgen order NAME` checks them)")
    return 0


def _print_table(table: list[tuple[str, ...]]) -> None:
    """Columns padded to their widths; the last column is not padded."""
    widths = [max(len(row[k]) for row in table) for k in range(len(table[0]) - 1)]
    for row in table:
        print("  ".join(x.ljust(w) for x, w in zip(row, widths)) + "  " + row[-1])


def cmd_tableau_show(args) -> int:
    from .order import format_tableau
    from .pair import PartitionedTableau, load_method
    t = load_method(args.tableau, exact_decimals=args.exact_decimals)
    if isinstance(t, PartitionedTableau):
        return _show_pair(t, args)
    if args.json:
        print(t.to_json())
    elif args.latex:
        print(t.latex())
    else:
        print(f"{t.name}: {t.stages} stage{'s' if t.stages != 1 else ''}, {t.kind}")
        if t.aliases:
            print(f"aliases: {', '.join(t.aliases)}")
        if t.citation:
            print(f"source: {t.citation}")
        recorded = [f"{what} {value}" for what, value in (
            ("order", t.literature_order), ("control order", t.literature_control_order))
            if value is not None]
        if recorded:
            print(f"literature: {', '.join(recorded)}")
        if not t.is_exact:
            print(f"rounded entries ({t.digits} digits): verdicts use the tolerance "
                  f"{t.tolerance:g}")
        print(format_tableau(t))
    return 0


def _show_pair(p, args) -> int:
    from .order import format_tableau
    if args.json:
        print(p.to_json())
        return 0
    if args.latex:
        print(f"% {p.name}: first part (A, b, c)\n{p.first.latex()}\n"
              f"% second part (Â, b̂, ĉ)\n{p.second.latex()}")
        return 0
    print(f"{p.name}: partitioned pair, {p.stages} stage{'s' if p.stages != 1 else ''}")
    for label, text in (("aliases: ", ", ".join(p.aliases)), ("", p.description),
                        ("source: ", p.citation)):
        if text:
            print(label + text)
    recorded = [f"{what} {value}" for what, value in (
        ("order", p.literature_order), ("separable order", p.literature_separable_order),
        ("control order", p.literature_control_order)) if value is not None]
    if recorded:
        print(f"literature: {', '.join(recorded)}")
    if not p.is_exact:
        print(f"rounded entries ({p.digits} digits): verdicts use the tolerance "
              f"{p.tolerance:g}")
    for label, part in (("first part (A, b, c), for y", p.first),
                        ("second part (Â, b̂, ĉ), for z", p.second)):
        print(f"{label}:\n{format_tableau(part)}")
    return 0


# -- ocgen order -----------------------------------------------------------------------------
@command
def _add_order(sub) -> None:
    p = sub.add_parser(
        "order", help="certify classical and optimal-control order (exact)",
        description="Check the order conditions of each tableau exactly: classical order "
                    "(rooted trees) and optimal-control order (bi-coloured trees of the pair "
                    "with the partner tableau; Hager's conditions through order 4). For a "
                    "partitioned pair: its order (P-trees), its order on separable problems "
                    "and its optimal-control order (trees of the pair with its partner pair).")
    p.add_argument("tableaux", nargs="+", metavar="TABLEAU",
                   help="built-in name of a tableau or pair (case-insensitive, aliases) or a "
                        ".toml/.json file")
    p.add_argument("--max-order", type=int, default=8, metavar="P",
                   help="check classical conditions up to order P (default 8)")
    p.add_argument("--max-control-order", type=int, default=6, metavar="Q",
                   help="check optimal-control conditions up to order Q (default 6)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per tableau (a list when several are given)")
    _exact_decimals_argument(p)
    p.set_defaults(func=cmd_order)


def cmd_order(args) -> int:
    from . import order, pair_order
    from .pair import PartitionedTableau, load_method
    methods = [load_method(spec, exact_decimals=args.exact_decimals)
               for spec in _progress(args.tableaux, "loading")]  # all input errors first

    def report(method):
        module = pair_order if isinstance(method, PartitionedTableau) else order
        make = module.certificate if args.json else module.format_certificate
        return make(method, args.max_order, args.max_control_order)

    results = [report(m) for m in _progress(methods, "certifying")]
    if args.json:
        _print_json(results[0] if len(results) == 1 else results)
    else:
        print("\n\n".join(results))
    return 0


# -- ocgen generate | solve | verify ------------------------------------------------------
def positive_int(text: str) -> int:
    """argparse type: a positive integer, refused while parsing (before any file is loaded)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}")
    return value


def _problem_arguments(p, steps: bool = False) -> None:
    p.add_argument("--tableau", required=True, metavar="T",
                   help="built-in name of a tableau or of a partitioned pair (for a problem "
                        "with parts; case-insensitive, aliases) or a .toml/.json file")
    p.add_argument("--problem", required=True, metavar="P",
                   help="built-in problem (lq, nl, vdp, tanh_ensemble, tv_tracking, ...) or a "
                        ".toml file")
    p.add_argument("--controls", choices=("stage", "tied", "step"), default="stage",
                   help="control parametrisation (default: stage)")
    p.add_argument("--backend", choices=("numpy", "casadi"), default="numpy",
                   help="numpy (L-BFGS-B on the generated gradient) or casadi (IPOPT)")
    _exact_decimals_argument(p)
    if steps:
        p.add_argument("--steps", type=positive_int, required=True, metavar="N",
                       help="number of steps")


def _writable(path: str):
    """An output file we may write: its folder exists and is writable (checked before any work).

    A file is replaced inside its folder; a device such as /dev/stdout is written in place.
    """
    from pathlib import Path
    if not path:
        raise OcgenError("the output path is empty; give a file name")
    path = Path(path)
    if path.is_dir():
        raise OcgenError(f"{path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise OcgenError(f"{path}: the folder {path.parent} does not exist")
    from .files import written_in_place
    target = path if written_in_place(path) else Path(os.path.realpath(path)).parent
    if not os.access(target, os.W_OK):
        raise OcgenError(f"{path}: permission denied")
    return path


def _inputs(args):
    """Load tableau and problem; report MATH.md 3.3 on stderr once."""
    import warnings

    from .derive import OutsideTheoryWarning, component_tableaux, outside_theory_reason
    from .pair import load_method
    from .problem import load_problem
    tableau = load_method(args.tableau, exact_decimals=args.exact_decimals)
    problem = load_problem(args.problem)
    component_tableaux(problem, tableau)  # a pair needs a problem with parts
    reason = outside_theory_reason(tableau, args.controls)
    if reason:
        print(f"ocgen: warning: {reason}", file=sys.stderr)
    warnings.simplefilter("ignore", OutsideTheoryWarning)
    return tableau, problem


@command
def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="derive and write a standalone solver module",
                       description="Derive the discrete optimality system and write a "
                                   "standalone module (imports only numpy, or casadi).")
    _problem_arguments(p)
    p.add_argument("-o", "--output", metavar="PATH",
                   help="file to write (default: generated/<tableau>_<problem>_<controls>_"
                        "<backend>.py)")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args) -> int:
    from pathlib import Path

    from .codegen import generate, module_name, write_module
    path = None if args.output is None else _writable(args.output)
    tableau, problem = _inputs(args)
    text = generate(tableau, problem, args.controls, args.backend)  # before anything is written
    if path is None:
        name = module_name(tableau, problem, args.controls, args.backend)
        path = Path("generated") / f"{name}.py"
        path.parent.mkdir(exist_ok=True)
    print(f"wrote {write_module(text, path)}")
    return 0


@command
def _add_solve(sub) -> None:
    p = sub.add_parser("solve", help="solve the discrete problem",
                       description="Solve the discretised optimal control problem and report "
                                   "states, costates, controls and the KKT residual.")
    _problem_arguments(p, steps=True)
    p.add_argument("--tolerance", type=float, default=1e-10,
                   help="KKT tolerance: max |dJ/du| / (h b) (default 1e-10)")
    p.add_argument("--max-iterations", type=positive_int, default=None, metavar="K",
                   help="iteration limit of the optimiser (L-BFGS-B and its Newton-Krylov "
                        "polish: default 5000; IPOPT: default 3000); a solve that stops there "
                        "is reported as not converged")
    p.add_argument("--json", action="store_true", help="print the solution as JSON")
    p.set_defaults(func=cmd_solve)


def _solve(tableau, problem, steps, controls, backend, tolerance=1e-10, max_iterations=None):
    limit = {} if max_iterations is None else {"max_iterations": max_iterations}
    if backend == "casadi":
        from .solve_casadi import solve_casadi
        return solve_casadi(tableau, problem, steps, controls, tolerance=tolerance, **limit)
    from .solve import solve
    return solve(tableau, problem, steps, controls, tolerance=tolerance, **limit)


def format_solution(solution) -> str:
    """A short human-readable summary of a Solution."""
    lines = [f"{solution.tableau.name} on {solution.problem.name}: {solution.steps} steps, "
             f"{solution.controls_mode} controls, {solution.backend} backend",
             f"  objective J_h     {solution.objective:.15g}"]
    if solution.problem.solution is not None:
        exact = float(solution.problem.solution.objective.evalf(17))
        error = solution.objective - exact
        lines.append(f"  continuous J*     {exact:.15g}   (J_h - J* = {error:.3e})")
    for (q, _), value in zip(solution.problem.free_parameters, solution.free_parameters):
        lines.append(f"  free parameter    {terminal_text(q.name)} = {value:.15g}")
    status = "converged" if solution.converged else "NOT converged"
    lines.append(f"  {status} in {solution.iterations} iterations; KKT residual "
                 f"max|dJ/du|/(h b){', |dJ/dq|' if solution.free_parameters.size else ''} = "
                 f"{solution.kkt_residual:.2e} ({solution.message})")
    lines.append("  time: " + ", ".join(f"{k} {v:.3f} s" for k, v in solution.timings.items()))
    return "\n".join(lines)


def cmd_solve(args) -> int:
    if not 0 < args.tolerance < float("inf"):
        raise OcgenError(f"--tolerance must be a positive number, found {args.tolerance}")
    tableau, problem = _inputs(args)
    solution = _solve(tableau, problem, args.steps, args.controls, args.backend, args.tolerance,
                      args.max_iterations)
    if args.json:
        _print_json(solution.to_json())
    else:
        print(format_solution(solution))
    return 0 if solution.converged else 1


@command
def _add_verify(sub) -> None:
    p = sub.add_parser("verify", help="convergence study against the continuous optimum",
                       description="Solve for a sequence of N, measure errors against the "
                                   "continuous solution (closed form or BVP reference), fit "
                                   "observed orders and compare with the certificate.")
    _problem_arguments(p)
    p.add_argument("--steps", default="10,20,40,80,160", metavar="N1,N2,...",
                   help="comma-separated step counts (default 10,20,40,80,160)")
    p.add_argument("--json", action="store_true", help="print every number as JSON")
    p.add_argument("--plot", metavar="FILE", help="write a log-log PNG of errors against h")
    p.set_defaults(func=cmd_verify)


def _steps(text: str) -> tuple[int, ...]:
    try:
        steps = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise OcgenError(f"--steps: expected comma-separated integers, found {text!r}") from None
    if len(steps) < 2 or any(n < 1 for n in steps):
        raise OcgenError("--steps: give at least two positive step counts")
    return steps


def cmd_verify(args) -> int:
    from .verify import format_verification, plot_verification, verify
    if args.plot is not None:
        _writable(args.plot)
    steps = _steps(args.steps)
    tableau, problem = _inputs(args)
    result = verify(tableau, problem, steps, controls=args.controls,
                    backend=args.backend, progress=lambda ns: _progress(ns, "solving"))
    if args.plot:
        plot_verification(result, args.plot)
    if args.json:
        _print_json(result.to_json())
    else:
        print(format_verification(result))
        if args.plot:
            print(f"plot written to {args.plot}")
    return 0 if result.verdict["overall"] != "fail" else 1


# -- ocgen demo ------------------------------------------------------------------------------
@command
def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="the main job: RK4 and SSPRK3 on lq, end to end, then "
                                    "a spiral network",
                       description="Certificate, generation, solve and verification of RK4 on "
                                   "the lq problem, then SSPRK3 showing its order reduction, "
                                   "then a spiral classifier trained with RK4 and Euler.")
    p.add_argument("--output", default="ocgen-demo", metavar="DIR",
                   help="folder for the generated modules and plots (default ocgen-demo)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from pathlib import Path

    from .codegen import generate, module_name, write_module
    from .order import format_certificate
    from .problem import load_problem
    from .solve import solve
    from .tableau import load_tableau
    from .verify import format_verification, plot_verification, verify
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    problem = load_problem("lq")
    for name in ("rk4", "ssprk3"):
        tableau = load_tableau(name)
        rule = "=" * 78
        print(f"{rule}\n{tableau.name} on lq: {problem.description}\n{rule}")
        print(format_certificate(tableau))
        path = folder / f"{module_name(tableau, problem, 'stage', 'numpy')}.py"
        write_module(generate(tableau, problem, "stage", "numpy"), path)
        print(f"\ngenerated solver: {path}")
        print(format_solution(solve(tableau, problem, 20)))
        print()
        result = verify(tableau, problem, (10, 20, 40, 80, 160))
        plot = folder / f"{module_name(tableau, problem, 'stage', 'numpy')}_convergence.png"
        plot_verification(result, plot)
        print(format_verification(result))
        print(f"convergence plot: {plot}\n")
    _demo_networks(folder)
    return 0


def _demo_networks(folder) -> None:
    """The network part of the demo: a spiral classifier as an ensemble problem (MATH.md 6),
    trained with RK4 and with Euler on the derived costate; the RK4 flow as figures."""
    from .nets import train
    from .nets.plots import plot_flow
    from .network_commands import format_training
    rule = "=" * 78
    print(f"{rule}\nNetworks: a spiral classifier is an optimal control problem (MATH.md 6)\n"
          f"{rule}")
    for name in ("rk4", "euler"):
        result = train("spiral", name, layers=20, optimizer="lbfgs", iterations=300)
        print(format_training(result))
        if name == "rk4":
            network, data = result.network, result.training
            png, gif = folder / "network_rk4_flow.png", folder / "network_rk4_flow.gif"
            plot_flow(network.flow(data.points), data.labels, network.W, network.mu, png, gif)
            print(f"flow of the points through the layers: {png}, {gif}")
        print()


# -- entry point -----------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors are one ``ocgen: error:`` line (and JSON on stdout when
    ``--json`` was given)."""

    json_errors = False  # set by main() from the command line

    def error(self, message):
        """One line, like every other error: ``ocgen: error: ocgen solve: …; see --help``."""
        _report(self.json_errors, f"{self.prog}: {message}",
                hint=f"; see `{self.prog} --help`")
        self.exit(EXIT_USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ocgen",
        description="Runge–Kutta tableaux and optimal control problems to solvers with "
                    "derived, checked discrete optimality conditions.")
    parser.add_argument("--version", action="version", version=f"ocgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import experiment_commands, network_commands
    for register in (*COMMANDS, *network_commands.COMMANDS, *experiment_commands.COMMANDS):
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``ocgen`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    stdout, sys.stdout = sys.stdout, _Stdout(sys.stdout)
    try:
        return _main(argv)
    finally:
        sys.stdout = stdout


class _Stdout:
    """sys.stdout that, once its reader has gone (``ocgen … | head``), discards the rest
    quietly: no BrokenPipeError traceback, and the command keeps its own exit status."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()

    def _discard(self) -> None:
        os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _main(argv: list[str]) -> int:
    parser = build_parser()
    _Parser.json_errors = "--json" in argv
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    json_output = getattr(args, "json", False)  # demo and generate have no --json
    try:
        return args.func(args) or 0
    except SolveError as err:  # the input was fine, the numerics failed
        _report(json_output, str(err))
        return EXIT_NOT_SOLVED
    except OcgenError as err:
        _report(json_output, str(err), getattr(err, "source", None), getattr(err, "key", None))
    except OSError as err:  # e.g. an output path that cannot be written
        where = f"{err.filename}: " if err.filename else ""
        _report(json_output, f"{where}{err.strerror or err}",
                str(err.filename) if err.filename else None)
    return EXIT_USER_ERROR


def _report(json_output: bool, message: str, file: str | None = None, key: str | None = None,
            *, hint: str = "") -> None:
    """``ocgen: error: <message><hint>`` on stderr; with --json also ``{"error": {…}}`` (without
    the hint) on stdout."""
    print(f"ocgen: error: {terminal_text(message + hint)}", file=sys.stderr)
    if json_output:
        _print_json({"error": {"message": message, "file": file, "key": key}})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
