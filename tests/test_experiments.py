"""``ocgen experiment``: specs, the run store, both executors, resuming, failures, the report
and the gradient-consistency study. Every experiment here runs a ``--quick`` spec."""

import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest

from ocgen.cli import main
from ocgen.experiments import load_spec, run_experiment
from ocgen.experiments.report import TIMING_KEYS
from ocgen.experiments.spec import option_checks
from ocgen.experiments.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def untimed(value):
    """``value`` without the keys that depend on the machine or the invocation."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def stored_files(folder: Path) -> dict:
    """{run/file: content} of every result and model file, results without their timings."""
    out = {}
    for path in sorted((folder / "runs").glob("*/*.json")):
        if path.name == "record.json":
            continue
        data = json.loads(path.read_text())
        out[f"{path.parent.name}/{path.name}"] = untimed(data)
    return out


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:
        yield local


# -- specs ------------------------------------------------------------------------------------

def test_options_are_those_of_train():
    from ocgen.nets import train
    from ocgen.nets.model import Architecture
    names = {n for n, p in inspect.signature(train).parameters.items()
             if p.kind is not p.VAR_KEYWORD and n != "progress"}
    names |= {f.name for f in fields(Architecture)}
    assert set(option_checks()) == names


def test_problem_networks_and_pairs_in_a_spec(tmp_path):
    """A problem file's network and a Hamiltonian pair are grid options like any other; the
    problem file's contents are part of each run's hash."""
    problem = tmp_path / "net.toml"
    problem.write_text(Path("examples/network_problem.toml").read_text())
    spec = tmp_path / "spec.toml"
    spec.write_text('[[grid]]\ndataset = "moons"\ntableau = "rk4"\nlayers = 2\n'
                    'problem = "net.toml"\n\n[[grid]]\ndataset = "moons"\n'
                    'tableau = "stormer_verlet"\nlayers = 2\nwidth = 2\n'
                    'dynamics = "hamiltonian"\nreversible = true\n')
    first = load_spec(str(spec))
    assert len(first.runs) == 2
    problem.write_text(problem.read_text().replace("y1/4", "y1/5"))
    second = load_spec(str(spec))
    assert first.runs[0].key != second.runs[0].key and first.runs[1].key == second.runs[1].key


def test_builtin_specs_expand_and_shrink():
    rk, rk_quick = load_spec("paper-rk"), load_spec("paper-rk", quick=True)
    assert len(rk.runs) == len(rk_quick.runs) == 16
    assert {t.config["iterations"] for t in rk.runs} == {10000}
    assert all(t.config["horizon"] / t.config["layers"] == pytest.approx(0.1) for t in rk.runs)
    assert {(t.config["train_size"], t.config["validation_size"]) for t in rk.runs} \
        == {(1000, 1000)}
    assert {t.config["tableau"] for t in rk.runs} == {"Forward Euler", "Heun-2", "Kutta-3",
                                                      "RK4"}
    assert {t.config["iterations"] for t in rk_quick.runs} == {20}
    steps = load_spec("paper-timesteps")
    counts = {t.config["dataset"]: t.config["iterations"] for t in steps.runs}
    assert counts == {"donut1d": 5000, "donut2d": 8000, "spiral": 20000, "squares": 8000}
    assert {t.config["depth"] for t in steps.runs} == {"net", "resnet", "odenet",
                                                       "odenet-simplex"}
    beyond = load_spec("beyond-paper")
    assert [t.config["tableau"] for t in beyond.consistency] == [
        "RK4", "Kutta-3", "SSPRK3", "Heun-2", "Gauss 2"]
    keys = [t.key for s in (rk, rk_quick, steps, beyond) for t in s.tasks]
    assert len(keys) == len(set(keys))  # every configuration has its own hash
    assert [t.key for t in load_spec("paper-rk").tasks] == [t.key for t in rk.tasks]


def test_overrides_and_hyphenated_names(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[options]\nlayers = 2\ntrain-size = 30\n[grid]\ndataset = "spiral"\n'
                    'tableau = ["euler", "RK4"]\n')
    loaded = load_spec(spec, overrides={"iterations": 7})
    assert [t.config["iterations"] for t in loaded.runs] == [7, 7]
    assert [t.config["train_size"] for t in loaded.runs] == [30, 30]
    assert loaded.overrides == {"iterations": 7}
    # a spelling of the same tableau is the same run
    again = tmp_path / "t.toml"
    again.write_text('[options]\nlayers = 2\ntrain_size = 30\n[grid]\ndataset = "spiral"\n'
                     'tableau = ["forward euler", "rk4"]\n')
    assert [t.key for t in load_spec(again, overrides={"iterations": 7}).runs] \
        == [t.key for t in loaded.runs]


@pytest.mark.parametrize("text, where", [
    ('[options]\nlayers = 2\n[grid]\ndataset = "spiral"\ntableau = "rk4"\niteratons = 3\n',
     "grid.iteratons: unknown option 'iteratons'; did you mean iterations?"),
    ('[options]\nlayers = 2\n[grid]\ndataset = "spiral"\ntableau = []\n',
     "grid.tableau: an empty list of values"),
    ('[options]\nlayers = 2\n[grid]\n', "grid: an empty grid"),
    ('[options]\nlayers = 2\ndataset = "spiral"\ntableau = "rk4"\n',
     "grid: the spec declares no runs"),
    ('[[grid]]\ndataset = "spiral"\ntableau = "rk4"\nlayers = 2\n[[grid]]\n'
     'dataset = ["spiral", "spirals"]\ntableau = "rk4"\nlayers = 2\n',
     "grid[1].dataset[1]: unknown data set 'spirals'"),
    ('[grid]\ndataset = "spiral"\ntableau = ["rk4", "rk5"]\nlayers = 2\n',
     "grid.tableau[1]: unknown tableau or pair 'rk5'"),
    ('[grid]\ndataset = "spiral"\ntableau = "rk4"\n', "grid: no value for 'layers'"),
    ('[grid]\ndataset = "spiral"\ntableau = "rk4"\nlayers = 2\ndepth = ["resnet", "odenet+"]\n',
     "grid.depth[1]: expected one of net, resnet, odenet, odenet-simplex"),
    ('[options]\nmean_loss = 1\n[grid]\ndataset = "spiral"\ntableau = "rk4"\nlayers = 2\n',
     "options.mean_loss: expected true or false"),
    ('grids = 1\n', "grids: unknown key"),
    ('[grid]\ndataset = "spiral"\ntableau = "rk4"\nlayers = [2, 100001]\n',
     "grid.layers[1]: at most 100000, found 100001"),
    ('[grid]\ndataset = "spiral"\ntableau = "rk4"\nlayers = 2\n[consistency]\n'
     'tableaux = ["rk4"]\nlayers = [10, 20]\n', "consistency.layers: expected a list of at "
                                                "least three"),
])
def test_bad_specs_are_refused_before_any_run(capsys, tmp_path, text, where):
    spec, out = tmp_path / "bad.toml", tmp_path / "out"
    spec.write_text(text)
    code, stdout, err = run(capsys, "experiment", str(spec), "--out", str(out))
    assert code == 2 and stdout == ""
    assert err == f"ocgen: error: {spec}: {where}" + err.split(where, 1)[1]
    assert err.count("\n") == 1 and where in err
    assert not out.exists()


def test_unreachable_scheduler_is_refused_before_any_run(capsys, tmp_path, monkeypatch):
    from ocgen.experiments import executors
    monkeypatch.setattr(executors, "DEFAULT_CONNECT_TIMEOUT", 1.0)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "experiment", "paper-rk", "--quick", "--out", str(out),
                            "--scheduler", f"tcp://127.0.0.1:{port}", "--json")
    assert code == 2
    assert err.startswith(f"ocgen: error: --scheduler: cannot reach the Dask scheduler at "
                          f"tcp://127.0.0.1:{port}")
    assert json.loads(stdout)["error"]["key"] == "--scheduler"
    assert not out.exists()


# -- both executors ---------------------------------------------------------------------------

def test_quick_spec_gives_the_same_results_on_both_executors(tmp_path, cluster):
    pool = run_experiment("paper-timesteps", tmp_path / "pool", quick=True, workers=2)
    dask = run_experiment("paper-timesteps", tmp_path / "dask", quick=True,
                          scheduler=cluster.scheduler_address)
    assert dask.results["executor"]["executor"] == "dask"
    assert pool.results["executor"] == {"executor": "process pool", "workers": 2}
    for result in (pool, dask):
        assert result.results["counts"] == {"tasks": 16, "ran": 16, "skipped": 0, "failed": 0}
    assert untimed(pool.results["runs"]) == untimed(dask.results["runs"])
    assert stored_files(pool.folder) == stored_files(dask.folder)
    for key in {r["key"] for r in pool.results["runs"]}:  # the trained networks, bit for bit
        assert (pool.folder / "runs" / key / "model.json").read_bytes() \
            == (dask.folder / "runs" / key / "model.json").read_bytes()
    # the report: a table per data set, learned steps, loss curves and flows as relative links
    report = (pool.folder / "REPORT.md").read_text()
    for name in ("donut1d", "donut2d", "spiral", "squares"):
        assert f"## {name}" in report
        for figure in ("loss", "time_steps", "flow"):
            link = f"figures/{name}_{figure}.png"
            assert f"]({link})" in report and (pool.folder / link).is_file()
    assert "| odenet-simplex |" in report and "layers have h_n > 0" in report
    results = json.loads((pool.folder / "results.json").read_text())
    simplex = [r for r in results["runs"] if r["config"]["depth"] == "odenet-simplex"]
    assert all(sum(r["time_steps"]) == pytest.approx(1.0, abs=1e-12) for r in simplex)
    assert {"train_loss", "validation_loss", "train_accuracy", "validation_accuracy", "gap",
            "iterations", "gradient_norm", "wall_time", "history", "active_layers",
            "layers_carrying"} <= set(results["runs"][0])


def test_consistency_orders_on_the_dask_cluster(tmp_path, cluster):
    result = run_experiment("beyond-paper", tmp_path / "beyond", quick=True,
                            scheduler=cluster.scheduler_address)
    assert result.failed == 0
    studies = {s["tableau"]: s for s in result.results["consistency"]}
    expected = {"RK4": (4, 4, 2), "Kutta-3": (3, 3, 2), "SSPRK3": (3, 3, 1), "Heun-2": (2, 2, 2),
                "Gauss 2": (4, 4, 3)}
    for name, orders in expected.items():
        observed = studies[name]["orders"]
        for quantity, order in zip(("state", "costate", "gradient"), orders):
            assert observed[quantity] == pytest.approx(order, abs=0.3), (name, quantity)
            assert studies[name]["predicted"][quantity] == order
    report = (result.folder / "REPORT.md").read_text()
    assert "## Gradient consistency" in report and "](figures/consistency.png)" in report
    assert "optimal-control order" in report
    runs = result.results["runs"]
    assert {(r["config"]["tableau"], r["config"]["controls"]) for r in runs} == {
        ("Kutta-3", "step"), ("Kutta-3", "stage"), ("SSPRK3", "step"), ("SSPRK3", "stage"),
        ("Gauss 2", "step"), ("Explicit midpoint", "step")}


# -- resuming and failures --------------------------------------------------------------------

def test_a_killed_experiment_resumes_without_repeating_finished_runs(tmp_path):
    spec, out = tmp_path / "seeds.toml", tmp_path / "out"
    spec.write_text('name = "seeds"\n[options]\ndataset = "spiral"\ntableau = "heun2"\n'
                    'layers = 3\niterations = 400\ntrain_size = 40\nvalidation_size = 20\n'
                    '[grid]\nseed = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n')  # 0.1 s a run
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    command = [sys.executable, "-c", "import sys; from ocgen.cli import main; sys.exit(main())",
               "experiment", str(spec), "--workers", "1", "--out", str(out)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
    store = RunStore(out)
    try:
        deadline = time.monotonic() + 120
        while len(store.log_entries()) < 3 and process.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read().decode()
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the command and its workers, mid-run
        process.wait()
        process.stderr.close()
    before = [e["key"] for e in store.log_entries()]
    assert 3 <= len(before) < 12
    assert not (out / "REPORT.md").exists()
    result = run_experiment(spec, out, workers=2)
    counts = result.results["counts"]
    assert counts["skipped"] >= len(before) and counts["ran"] == 12 - counts["skipped"]
    log = [e["key"] for e in store.log_entries()]
    assert sorted(log) == sorted({t.key for t in result.spec.tasks})  # each run exactly once
    assert all(r["status"] == "ok" for r in result.results["runs"])
    assert (out / "REPORT.md").is_file()


def test_a_failing_configuration_is_reported_while_the_others_finish(capsys, tmp_path):
    spec, out = tmp_path / "widths.toml", tmp_path / "out"
    spec.write_text('name = "widths"\n[options]\ndataset = "spiral"\ntableau = "euler"\n'
                    'layers = 2\niterations = 5\ntrain_size = 20\nvalidation_size = 10\n'
                    '[grid]\nwidth = [1, 2, 3]\n')
    code, stdout, err = run(capsys, "experiment", str(spec), "--out", str(out), "--workers",
                            "1", "--json")
    assert code == 1
    results = json.loads(stdout)
    assert results["counts"] == {"tasks": 3, "ran": 3, "skipped": 0, "failed": 1}
    failed = [r for r in results["runs"] if r["status"] == "failed"]
    assert [r["config"]["width"] for r in failed] == [1]
    assert "width" in failed[0]["error"] and "below the data's dimension" in failed[0]["error"]
    assert [r["status"] for r in results["runs"]] == ["failed", "ok", "ok"]
    record = json.loads((out / "runs" / failed[0]["key"] / "record.json").read_text())
    assert record["status"] == "failed" and record["error_type"] == "InputError"
    report = (out / "REPORT.md").read_text()
    assert "## Failed runs" in report and failed[0]["key"] in report
    # rerun: the failure is kept; with --retry-failed only the failed run runs again
    assert run(capsys, "experiment", str(spec), "--out", str(out))[0] == 1
    assert len(RunStore(out).log_entries()) == 3
    code, stdout, _ = run(capsys, "experiment", str(spec), "--out", str(out), "--retry-failed")
    assert code == 1 and "FAILED" in stdout and "1 run now, 2 finished earlier" in stdout
    assert [e["key"] for e in RunStore(out).log_entries()][3:] == [failed[0]["key"]]
