"""``ocgen experiment``: parse, call :mod:`ocgen.experiments`, print or write JSON.

:data:`COMMANDS` are added to the parser by :func:`ocgen.cli.build_parser`.
"""

from __future__ import annotations

import signal
import sys
import time

from .cli import _print_json, positive_int

EXIT_INTERRUPTED = 130


def add_experiment(sub) -> None:
    from .library import data_texts  # the built-in specs, without importing the experiments
    names = ", ".join(data_texts("experiments"))
    p = sub.add_parser(
        "experiment", help="run a grid of training runs in parallel and write a report",
        description="Run the training runs a spec declares (a grid over the options of "
                    "`ocgen train`) on a local process pool or a Dask cluster, store each "
                    "under the hash of its configuration (a rerun skips finished runs) and "
                    f"write DIR/REPORT.md and DIR/results.json. Built-in specs: {names}.")
    p.add_argument("spec", metavar="SPEC", help=f"a built-in spec ({names}) or a .toml file")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default: ocgen-<spec name>, with -quick for --quick)")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="processes of the local pool (default: the number of cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on the Dask distributed scheduler at ADDRESS (tcp://host:port) "
                        "instead of the local pool")
    p.add_argument("--quick", action="store_true",
                   help="shrink every run (the spec's [quick] table): a check in about a minute")
    p.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                   dest="overrides", help="replace an option in every run, e.g. --set "
                                          "iterations=2000 (repeatable)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run the failed runs again (finished ones are always skipped)")
    p.add_argument("--json", action="store_true",
                   help="print results.json instead of the summary")
    p.set_defaults(func=cmd_experiment)


def cmd_experiment(args) -> int:
    from .experiments import load_spec, run_experiment
    from .experiments.spec import parse_override
    overrides = dict(parse_override(text) for text in args.overrides)
    spec = load_spec(args.spec, quick=args.quick, overrides=overrides)
    bar = None
    show = not args.json

    def announce(spec, folder, executor, pending):
        nonlocal bar
        if not show:
            return
        workers = executor["workers"]
        where = (f"the Dask cluster at {executor['scheduler']} ({workers} workers)"
                 if executor["executor"] == "dask" else
                 f"a local pool of {workers} process{'' if workers == 1 else 'es'}")
        total = len(spec.tasks)
        print(f"{spec.name}{' (quick)' if spec.quick else ''}: {total} task"
              f"{'' if total == 1 else 's'}, {pending} to run "
              f"on {where}, {total - pending} finished earlier; results in {folder}",
              flush=True)
        if sys.stderr.isatty():
            from tqdm import tqdm
            bar = tqdm(total=total, desc="runs", unit="run", file=sys.stderr, leave=False)

    def progress(done, total, failed):
        if bar is not None:
            bar.update(done - bar.n)
            if failed:
                bar.set_postfix(failed=failed)

    start = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = run_experiment(spec, args.out, workers=args.workers, scheduler=args.scheduler,
                                retry_failed=args.retry_failed, progress=progress,
                                announce=announce)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print("ocgen: interrupted; the finished runs are kept: run the same command again to "
              "resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()
    if args.json:
        _print_json(result.results)
    else:
        print(format_experiment(result, time.perf_counter() - start))
    return 1 if result.failed else 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def format_experiment(result, elapsed: float) -> str:
    """A summary: one line per run and study, then the files written (``elapsed``: seconds
    the command took)."""
    r = result.results
    counts = r["counts"]
    lines = []
    width = max([len(f"{x['dataset']}  {x['label']}") for x in r["runs"]] + [10])
    for run in r["runs"]:
        name = f"{run['dataset']}  {run['label']}".ljust(width)
        if run["status"] == "ok":
            lines.append(f"  {name}  validation accuracy {_percent(run['validation_accuracy'])}"
                         f"  training {_percent(run['train_accuracy'])}  "
                         f"({run['iterations']} iterations, {run['wall_time']:.1f} s)")
        else:
            lines.append(f"  {name}  FAILED: {run['error']}")
    for study in r["consistency"]:
        if study["status"] != "ok":
            lines.append(f"  consistency {study['tableau']}  FAILED: {study['error']}")
            continue
        orders = "  ".join(
            f"{k} {_order(study['orders'][k])} ({_order(study['predicted'][k], 'd')})"
            for k in ("state", "costate", "gradient"))
        lines.append(f"  consistency {study['tableau']}: observed (predicted) orders  {orders}")
    lines.append(f"{counts['ran']} run now, {counts['skipped']} finished earlier, "
                 f"{counts['failed']} failed, in {elapsed:.1f} s")
    lines.append(f"wrote {result.folder / 'REPORT.md'}")
    lines.append(f"wrote {result.folder / 'results.json'}")
    return "\n".join(lines)


def _percent(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _order(x, spec=".2f") -> str:
    return "-" if x is None else format(x, spec)


COMMANDS = (add_experiment,)
