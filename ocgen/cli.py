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
and exit with status 2, without a traceback (argparse reports usage errors the same way).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

from . import __version__
from .errors import OcgenError

EXIT_USER_ERROR = 2

COMMANDS: list[Callable[[Any], None]] = []
"""Functions that each add one subcommand to the parser (in order of registration)."""


def command(register: Callable[[Any], None]) -> Callable[[Any], None]:
    """Decorator: ``register(subparsers)`` adds a subcommand and sets ``func`` on it."""
    COMMANDS.append(register)
    return register


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# -- ocgen tableau list | show ---------------------------------------------------------------
@command
def _add_tableau(sub) -> None:
    p = sub.add_parser("tableau", help="list or show the built-in Butcher tableaux",
                       description="List the built-in Butcher tableaux or show one of them.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = actions.add_parser("list", help="list the built-in tableaux")
    lst.add_argument("--json", action="store_true", help="print a JSON list")
    lst.set_defaults(func=cmd_tableau_list)
    show = actions.add_parser("show", help="show one tableau")
    show.add_argument("tableau", metavar="TABLEAU",
                      help="built-in name (case-insensitive, aliases) or a .toml/.json file")
    fmt = show.add_mutually_exclusive_group()
    fmt.add_argument("--latex", action="store_true", help="print a LaTeX array")
    fmt.add_argument("--json", action="store_true",
                     help="print the tableau as JSON (loadable again as a tableau file)")
    show.set_defaults(func=cmd_tableau_show)


def cmd_tableau_list(args) -> int:
    from .tableau import builtin_tableaux
    rows = [{"name": t.name, "aliases": list(t.aliases), "stages": t.stages, "kind": t.kind,
             "order": t.literature_order, "control_order": t.literature_control_order}
            for t in builtin_tableaux()]
    if args.json:
        _print_json(rows)
        return 0
    dash = lambda x: "-" if x is None else str(x)  # noqa: E731
    table = [("name", "stages", "kind", "order", "control order", "aliases")] + [
        (r["name"], str(r["stages"]), r["kind"], dash(r["order"]), dash(r["control_order"]),
         ", ".join(r["aliases"])) for r in rows]
    widths = [max(len(row[k]) for row in table) for k in range(5)]
    for row in table:
        print("  ".join(x.ljust(w) for x, w in zip(row, widths)) + "  " + row[5])
    print("\n(orders as recorded in the library; `ocgen order NAME` checks them)")
    return 0


def cmd_tableau_show(args) -> int:
    from .order import format_tableau
    from .tableau import load_tableau
    t = load_tableau(args.tableau)
    if args.json:
        print(t.to_json())
    elif args.latex:
        print(t.latex())
    else:
        print(f"{t.name}: {t.stages} stages, {t.kind}")
        if t.aliases:
            print(f"aliases: {', '.join(t.aliases)}")
        if t.citation:
            print(f"source: {t.citation}")
        recorded = [f"{what} {value}" for what, value in (
            ("order", t.literature_order), ("control order", t.literature_control_order))
            if value is not None]
        if recorded:
            print(f"literature: {', '.join(recorded)}")
        print(format_tableau(t))
    return 0


# -- ocgen order -----------------------------------------------------------------------------
@command
def _add_order(sub) -> None:
    p = sub.add_parser(
        "order", help="certify classical and optimal-control order (exact)",
        description="Check the order conditions of each tableau exactly: classical order "
                    "(rooted trees) and optimal-control order (bi-coloured trees of the pair "
                    "with the partner tableau; Hager's conditions through order 4).")
    p.add_argument("tableaux", nargs="+", metavar="TABLEAU",
                   help="built-in name (case-insensitive, aliases) or a .toml/.json file")
    p.add_argument("--max-order", type=int, default=8, metavar="P",
                   help="check classical conditions up to order P (default 8)")
    p.add_argument("--max-control-order", type=int, default=6, metavar="Q",
                   help="check optimal-control conditions up to order Q (default 6)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per tableau (a list when several are given)")
    p.set_defaults(func=cmd_order)


def cmd_order(args) -> int:
    from .order import certificate, format_certificate
    from .tableau import load_tableau
    tableaux = [load_tableau(spec) for spec in args.tableaux]  # all input errors first
    if args.json:
        certs = [certificate(t, args.max_order, args.max_control_order) for t in tableaux]
        _print_json(certs[0] if len(certs) == 1 else certs)
    else:
        print("\n\n".join(format_certificate(t, args.max_order, args.max_control_order)
                          for t in tableaux))
    return 0


# -- ocgen demo ------------------------------------------------------------------------------
@command
def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="a tour: the order certificates of RK4 and SSPRK3")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from .order import format_certificate
    from .tableau import load_tableau
    print("Order certificates, decided in exact arithmetic: the classical order (rooted trees)")
    print("and the optimal-control order (bi-coloured trees of the method paired with its")
    print("partner tableau, which the discrete costate runs on; MATH.md 3-4).")
    for name in ("rk4", "ssprk3"):
        print()
        print(format_certificate(load_tableau(name)))
    return 0


# -- entry point -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocgen",
        description="Runge–Kutta tableaux and optimal control problems to solvers with "
                    "derived, checked discrete optimality conditions.")
    parser.add_argument("--version", action="version", version=f"ocgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``ocgen`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    try:
        return args.func(args) or 0
    except OcgenError as err:
        print(f"ocgen: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # e.g. `ocgen tableau list | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
