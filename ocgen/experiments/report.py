"""The report of an experiment: ``DIR/REPORT.md`` (Markdown, relative links to the PNG figures
in ``DIR/figures/``) and ``DIR/results.json`` (everything in it, machine-readable).

Per data set: a table of the runs (training and validation loss and accuracy, the
generalisation gap, iterations, the final projected gradient norm, wall time), the learned time
steps and how sparse they are, the loss curves of all runs on one plot and the induced flows side
by side. For a consistency study: observed orders next to the predicted ones, the errors, a
convergence plot and a paragraph on what the orders mean.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..files import write_text_atomic
from .spec import Spec
from .store import RunStore, dump

FORMAT_VERSION = 1
CARRY = 0.95
"""A step-size profile is summarised by the fewest layers carrying this share of Σ h."""
ACTIVE = 1e-9
"""A layer is active when its step exceeds this fraction of Σ h."""
TIMING_KEYS = ("wall_time", "compute_time", "train_time", "timings", "executor", "counts",
               "finished")
"""Keys of results.json that depend on the machine or the invocation, not on the runs."""


def build_results(spec: Spec, store: RunStore, executor: dict, counts: dict,
                  wall_time: float) -> dict:
    """The content of results.json (figures not yet drawn; see :func:`write_report`)."""
    runs = [_run_entry(task, store) for task in spec.runs]
    datasets: dict[str, dict] = {}
    for run in runs:
        datasets.setdefault(run["dataset"], {"runs": []})["runs"].append(run)
    for name, group in datasets.items():
        varying = _varying([r["config"] for r in group["runs"]])
        group["varying"] = varying
        for run in group["runs"]:
            run["label"] = _label(run["config"], varying)
    consistency = [_study_entry(task, store) for task in spec.consistency]
    return {
        "format": "ocgen-experiment", "version": FORMAT_VERSION,
        "spec": {"name": spec.name, "description": spec.description, "source": spec.source,
                 "quick": spec.quick, "overrides": spec.overrides},
        "executor": executor, "counts": counts, "wall_time": wall_time,
        "compute_time": sum(r["wall_time"] or 0.0 for r in runs + consistency),
        "runs": runs,
        "datasets": {name: {"runs": [r["key"] for r in g["runs"]], "varying": g["varying"]}
                     for name, g in datasets.items()},
        "consistency": consistency,
        "figures": {},
    }


def _run_entry(task, store: RunStore) -> dict:
    record = store.record(task.key) or {"status": "not run"}
    entry = {"key": task.key, "dataset": task.config["dataset"], "config": task.config,
             "status": record["status"], "wall_time": record.get("wall_time"),
             "files": {k: f"runs/{task.key}/{v}" for k, v in record.get("files", {}).items()}}
    if record["status"] != "ok":
        entry["error"] = record.get("error", "the run did not finish")
        return entry
    result = store.result(task.key) or {}
    train_acc, val_acc = result.get("train_accuracy"), result.get("validation_accuracy")
    h = result.get("time_steps") or []
    entry.update({key: result.get(key) for key in (
        "train_loss", "validation_loss", "train_accuracy", "validation_accuracy",
        "gradient_norm", "objective", "iterations", "converged", "message")})
    entry["gap"] = (train_acc - val_acc) if train_acc is not None and val_acc is not None \
        else None
    entry["train_time"] = (result.get("timings") or {}).get("train")
    config = result.get("config") or {}
    entry["train_points"] = config.get("train_size")
    entry["validation_points"] = config.get("validation_size")
    entry["time_steps"] = h
    entry["learned_steps"] = task.config["depth"] in ("odenet", "odenet-simplex")
    entry.update(step_sparsity(h))
    entry["history"] = result.get("history", [])
    return entry


def step_sparsity(h) -> dict:
    """``active_layers`` (h_n > ACTIVE · Σh) and ``layers_carrying`` (the fewest layers whose
    steps sum to CARRY · Σh)."""
    h = np.asarray(h, dtype=float)
    total = float(np.sum(h)) if h.size else 0.0
    if not h.size or total <= 0:
        return {"active_layers": None, "layers_carrying": None}
    ordered = np.sort(h)[::-1]
    carrying = int(np.searchsorted(np.cumsum(ordered), CARRY * total * (1 - 1e-12)) + 1)
    return {"active_layers": int(np.sum(h > ACTIVE * total)),
            "layers_carrying": min(carrying, h.size)}


def _study_entry(task, store: RunStore) -> dict:
    record = store.record(task.key) or {"status": "not run"}
    entry = {"key": task.key, "tableau": task.config["tableau"], "config": task.config,
             "status": record["status"], "wall_time": record.get("wall_time"),
             "files": {k: f"runs/{task.key}/{v}" for k, v in record.get("files", {}).items()}}
    if record["status"] == "ok":
        entry.update(store.result(task.key) or {})
    else:
        entry["error"] = record.get("error", "the study did not finish")
    return entry


def _varying(configs: list[dict]) -> list[str]:
    """The options (besides the data set) whose values differ between the runs."""
    keys = [k for k in configs[0] if k != "dataset"]
    return [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]


def _label(config: dict, varying: list[str]) -> str:
    """The run among its data set's runs: the values of the options that vary."""
    if not varying:
        return f"{config['tableau']}, {config['depth']}"
    if len(varying) == 1 and varying[0] in ("tableau", "depth", "optimizer", "dynamics"):
        return str(config[varying[0]])

    def part(key):
        value = config[key]
        if key in ("tableau", "depth", "optimizer", "dynamics"):
            return str(value)
        if key in ("controls", "activation", "loss"):
            return f"{value} {key if key != 'loss' else 'loss'}"
        if isinstance(value, bool):
            return key.replace("_", " ") if value else f"no {key.replace('_', ' ')}"
        return f"{key.replace('_', ' ')} {value}"
    return ", ".join(part(k) for k in varying)


# -- figures and Markdown ---------------------------------------------------------------------

def write_report(results: dict, spec: Spec, store: RunStore, folder: Path) -> dict:
    """Draw the figures, then write REPORT.md and results.json; returns ``results``."""
    figures = folder / "figures"
    figures.mkdir(exist_ok=True)
    payloads = {t.key: t.payload for t in spec.runs}
    for name, group in results["datasets"].items():
        runs = [r for r in results["runs"] if r["dataset"] == name and r["status"] == "ok"]
        if not runs:
            continue
        stem = _file_stem(name)
        drawn = group.setdefault("figures", {})
        from .figures import plot_flows, plot_losses, plot_time_steps
        plot_losses([(r["label"], r["history"]) for r in runs], figures / f"{stem}_loss.png")
        drawn["loss"] = f"figures/{stem}_loss.png"
        learned = [(r["label"], r["time_steps"]) for r in runs if r["learned_steps"]]
        if learned:
            plot_time_steps(learned, figures / f"{stem}_time_steps.png")
            drawn["time_steps"] = f"figures/{stem}_time_steps.png"
        flows = [_flow(r, payloads[r["key"]], store) for r in runs]
        plot_flows(flows, figures / f"{stem}_flow.png")
        drawn["flow"] = f"figures/{stem}_flow.png"
    studies = [s for s in results["consistency"] if s["status"] == "ok"]
    if studies:
        from .figures import plot_consistency
        plot_consistency(studies, figures / "consistency.png")
        results["figures"]["consistency"] = "figures/consistency.png"
    write_text_atomic(folder / "results.json", dump(results))
    write_text_atomic(folder / "REPORT.md", markdown(results))
    return results


def prepare_report(spec: Spec) -> None:
    """Derive the generated module of every network the report will draw, so that the
    report's flows need no derivation later. Called while the workers run; best effort (a
    network that cannot be built fails as a run, and is reported there)."""
    from ..nets.datasets import GENERATORS, generate
    from ..nets.matrix_code import network_module
    from ..nets.model import Architecture
    seen = set()
    for task in spec.runs:
        c, data = task.config, task.payload["dataset"]
        try:
            dimension = generate(data, 1).dimension if data in GENERATORS else data.dimension
            arch = Architecture(width=c["width"] or dimension, layers=c["layers"],
                                **{k: c[k] for k in ARCHITECTURE_OPTIONS})
            key = (c["tableau"], arch)
            if key not in seen:
                seen.add(key)
                network_module(arch, task.payload["tableau"])
        except Exception:  # noqa: BLE001 - the run reports it
            continue


ARCHITECTURE_OPTIONS = ("dynamics", "activation", "depth", "horizon", "loss", "mean_loss",
                        "tikhonov", "smoothness", "gamma", "controls")


def _file_stem(name: str) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(name).name)
    return stem or "data"


def _flow(run: dict, payload: dict, store: RunStore):
    """(label, the training points after each layer, labels, W, μ) of a finished run."""
    from ..nets.datasets import load_data
    from ..nets.model import load_network
    from ..tableau import load_tableau
    # the model file names its tableau "model": put back the run's own, whose generated
    # module prepare_report derived already
    network = replace(load_network(store.path(run["key"], "model.json")),
                      tableau=load_tableau(payload["tableau"]))
    c = run["config"]
    training, _ = load_data(payload["dataset"], c["train_size"], c["validation_size"],
                            noise=c["noise"], seed=c["seed"])
    return run["label"], network.flow(training.points), training.labels, network.W, network.mu


def _percent(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _number(x, spec: str = ".4g") -> str:
    return "–" if x is None else format(x, spec)


def _seconds(x) -> str:
    if x is None:
        return "–"
    return f"{x:.1f} s" if x < 600 else f"{x / 60:.1f} min"


def markdown(results: dict) -> str:
    """REPORT.md."""
    spec, counts = results["spec"], results["counts"]
    executor = results["executor"]
    where = (f"a Dask cluster at {executor.get('scheduler')} ({executor.get('workers')} workers)"
             if executor.get("executor") == "dask" else
             f"a local pool of {_count(executor.get('workers'), 'worker process', 'es')}")
    lines = [f"# Experiment `{spec['name']}`", ""]
    if spec["description"]:
        lines += [spec["description"], ""]
    settings = [f"spec `{spec['source']}`"]
    if spec["quick"]:
        settings.append("**--quick** (shrunk runs: not the spec's full setting)")
    if spec["overrides"]:
        settings.append("options replaced in every run: " + ", ".join(
            f"`{k} = {v}`" for k, v in spec["overrides"].items()))
    lines += ["- " + "; ".join(settings),
              f"- {_count(counts['tasks'], 'task')}: {counts['ran']} run now on {where}, "
              f"{counts['skipped']} finished earlier, {counts['failed']} failed",
              f"- wall time of this invocation's runs {_seconds(results['wall_time'])}; compute "
              f"time of all runs {_seconds(results['compute_time'])}", ""]
    by_key = {r["key"]: r for r in results["runs"]}
    for name, group in results["datasets"].items():
        lines += _dataset_section(name, group, [by_key[k] for k in group["runs"]])
    failed = [r for r in results["runs"] + results["consistency"] if r["status"] != "ok"]
    if failed:
        lines += ["## Failed runs", "", "| run | error |", "|---|---|"]
        for r in failed:
            what = (f"{r['dataset']}: {r['label']}" if "dataset" in r else
                    f"consistency: {r['tableau']}")
            lines.append(f"| {_cell(what)} (`{r['key']}`) | {_cell(r['error'])} |")
        lines.append("")
    if results["consistency"]:
        lines += _consistency_section(results)
    lines += ["## Files", "",
              "- `results.json`: everything above, machine-readable (schema in the README, "
              "\"Experiments\").",
              "- `runs/<hash>/`: per run its `record.json` (configuration, status, error), "
              "`result.json` (the JSON of `ocgen train --json`) and `model.json` (the trained "
              "network, for `ocgen predict`).", ""]
    return "\n".join(lines)


def _count(n, noun: str, plural: str = "s") -> str:
    return f"{n} {noun}{'' if n == 1 else plural}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _dataset_section(name: str, group: dict, runs: list[dict]) -> list[str]:
    lines = [f"## {name}", ""]
    done = [r for r in runs if r["status"] == "ok"]
    about = []
    if done:
        about.append(f"{done[0]['train_points']} training and {done[0]['validation_points']} "
                     "validation points")
    if group.get("varying"):
        about.append("the runs differ in " + ", ".join(group["varying"]))
    lines += ["; ".join(about) + "." if about else "", "",
              "| network | training loss | validation loss | training accuracy | "
              "validation accuracy | gap | iterations | ‖x − P(x − ∇J)‖ | wall time |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        if r["status"] != "ok":
            lines.append(f"| {_cell(r['label'])} | failed: see below | | | | | | | |")
            continue
        gap = "–" if r["gap"] is None else f"{100 * r['gap']:+.1f} pp"
        lines.append(
            f"| {_cell(r['label'])} | {_number(r['train_loss'])} | "
            f"{_number(r['validation_loss'])} | {_percent(r['train_accuracy'])} | "
            f"{_percent(r['validation_accuracy'])} | {gap} | {r['iterations']} | "
            f"{_number(r['gradient_norm'], '.2e')} | {_seconds(r['wall_time'])} |")
    lines += ["", "Gap: training minus validation accuracy, in percentage points. Losses are "
              "sums over the points unless the runs use the mean loss.", ""]
    learned = [r for r in runs if r["status"] == "ok" and r["learned_steps"]]
    if learned:
        lines += ["**Learned time steps.**", ""]
        for r in learned:
            h = r["time_steps"]
            lines.append(f"- {r['label']}: {r['active_layers']} of {len(h)} layers have "
                         f"h_n > 0, {r['layers_carrying']} carry {CARRY:.0%} of Σh = "
                         f"{sum(h):.4g}; h = " + " ".join(f"{x:.3g}" for x in h))
        lines.append("")
    figures = group.get("figures", {})
    if "loss" in figures:
        lines += [f"![loss curves of the runs on {name}]({figures['loss']})", ""]
    if "time_steps" in figures:
        lines += [f"![learned time steps on {name}]({figures['time_steps']})", ""]
    if "flow" in figures:
        lines += [f"Induced flow: the training points after the layers, over each network's "
                  f"final classifier. ![flows on {name}]({figures['flow']})", ""]
    return lines


CONSISTENCY_TEXT = (
    "How far the exact discrete gradient (what discretise-then-optimise computes, and what "
    "training uses) sits from the continuous gradient H_u(t) (what optimise-then-discretise "
    "approximates): with the fixed, non-optimal control θ(t) = sin 3t + 1/2 sampled at the "
    "stages of y' = tanh(0.8 y + θ), y(0) = 1, J = y(1)²/2 + ∫ (θ² + y²)/2 dt, L equal steps "
    "are compared with a fine solve_ivp reference (forward for y, backward for p).")
CONSISTENCY_EXPLANATION = (
    "With a fixed control the state equation does not see the costate, so y_n and p_n converge "
    "at the classical order of the method. The per-stage gradient ∂J_h/∂θ_ni/(h b_i) evaluates "
    "H_u at the stage values Y_ni and stage costates P_ni, which are only as accurate as the "
    "stage orders q of A and q̃ of the partner Ã allow: order min(p, q + 1, q̃ + 1), which is 2 "
    "for explicit methods and 1 when the stage costates sit at times c̃ ≠ c (SSPRK3). So an "
    "SSPRK3 network's gradient is only first-order accurate pointwise, though its forward pass "
    "is third order. This is a statement about gradients along an arbitrary control. At an "
    "*optimal* solution (`ocgen verify`), H_u = 0 couples state and costate through u = φ(y, "
    "p), and the optimal-control order of the pair (A, Ã) governs instead: SSPRK3 has "
    "classical order 3 but control order 2, Kutta-3 keeps 3.")


def _consistency_section(results: dict) -> list[str]:
    studies = results["consistency"]
    lines = ["## Gradient consistency", "", CONSISTENCY_TEXT, "",
             "| tableau | classical order p | control order | stage orders q, q̃ | state | "
             "costate | per-stage gradient |", "|---|---:|---:|---:|---|---|---|"]
    for s in studies:
        if s["status"] != "ok":
            lines.append(f"| {s['tableau']} | failed: see above | | | | | |")
            continue
        p = s["predicted"]

        def cell(key):
            observed, predicted = s["orders"][key], p[key]
            if observed is None and predicted is None:
                return "–"
            text = f"{_number(observed, '.2f')} (predicted {_number(predicted, 'd')})"
            return text if s["verdict"][key] == "as predicted" else \
                f"{text}, {s['verdict'][key]}"
        stage = f"{p['stage_order']}, {_number(p['partner_stage_order'], 'd')}"
        lines.append(f"| {s['tableau']} | {p['classical_order']} | "
                     f"{_number(p['control_order'], 'd')} | {stage} | {cell('state')} | "
                     f"{cell('costate')} | {cell('gradient')} |")
    lines += ["", "Observed orders: least-squares slopes of log(error) over log(h) on the last "
              "three step counts; \"as predicted\" within ±0.3.", ""]
    ok = [s for s in studies if s["status"] == "ok"]
    if ok:
        lines += ["Maximum errors:", "", "| tableau | quantity | " + " | ".join(
            f"L = {n}" for n in ok[0]["layers"]) + " |",
            "|---|---|" + "---:|" * len(ok[0]["layers"])]
        for s in ok:
            for key in ("state", "costate", "gradient"):
                lines.append(f"| {s['tableau']} | {key} | " + " | ".join(
                    _number(e, ".2e") for e in s["errors"][key]) + " |")
        lines.append("")
    if "consistency" in results["figures"]:
        lines += [f"![errors against h]({results['figures']['consistency']})", ""]
    lines += [CONSISTENCY_EXPLANATION, ""]
    return lines
