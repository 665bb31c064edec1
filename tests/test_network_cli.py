"""``ocgen train`` and ``ocgen predict``, run in-process with captured output."""

import json

import numpy as np
import pytest

from ocgen.cli import main
from ocgen.nets import load_network
from ocgen.nets.datasets import generate, save_csv, training_and_validation

SMALL = ["--dataset", "spiral", "--tableau", "euler", "--layers", "3", "--iterations", "4",
         "--train-size", "20", "--validation-size", "10"]


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as stop:  # a usage error found while parsing
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_model_and_plots(capsys, tmp_path):
    model, plots = tmp_path / "model.json", tmp_path / "figures"
    code, out, err = run(capsys, "train", *SMALL, "--json", "-o", str(model), "--plot",
                         str(plots))
    assert code == 0, err
    data = json.loads(out)
    for key in ("config", "train_loss", "validation_loss", "train_accuracy",
                "validation_accuracy", "gradient_norm", "time_steps", "history", "iterations",
                "converged", "timings"):
        assert key in data, key
    assert data["config"]["tableau"] == "Forward Euler" and data["config"]["layers"] == 3
    assert data["time_steps"] == pytest.approx([1 / 3] * 3, rel=1e-15)
    assert [entry["iteration"] for entry in data["history"]] == [0, 1, 2, 3, 4]
    assert {"train_loss", "validation_loss", "train_accuracy", "validation_accuracy",
            "gradient_norm", "step"} <= set(data["history"][-1])
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["accuracy.png", "flow.gif", "flow.png", "loss.png", "prediction.png",
                     "time_steps.png"]
    # the saved model reproduces the reported training accuracy on the training points
    training, _ = training_and_validation("spiral", 20, 10, seed=0)
    predicted = load_network(model).predict(training.points) >= 0.5
    assert data["train_accuracy"] == np.mean(predicted == (training.labels == 1))


def test_predict_reads_points_with_and_without_labels(capsys, tmp_path):
    model = tmp_path / "model.json"
    assert run(capsys, "train", *SMALL, "-o", str(model))[0] == 0
    network = load_network(model)
    data = generate("moons", 15, seed=4)
    labelled = tmp_path / "points.csv"
    save_csv(data, labelled)
    code, out, _ = run(capsys, "predict", "--model", str(model), "--data", str(labelled),
                       "--json")
    result = json.loads(out)
    expected = network.predict(data.points)
    assert code == 0 and result["probabilities"] == expected.tolist()
    assert result["labels"] == (expected >= 0.5).astype(int).tolist()
    assert result["accuracy"] == np.mean((expected >= 0.5) == (data.labels == 1))
    unlabelled = tmp_path / "points.npz"
    np.savez(unlabelled, x=data.points)
    code, out, _ = run(capsys, "predict", "--model", str(model), "--data", str(unlabelled))
    assert code == 0 and "15 points" in out and "accuracy" not in out
    assert len(out.splitlines()) == 2 + 15


def test_train_text_output(capsys):
    code, out, _ = run(capsys, "train", *SMALL)
    assert code == 0
    assert out.startswith("Forward Euler network on spiral: tanh dynamics (tanh), squares "
                          "loss, width 2, 3 layers, resnet, step controls")
    assert "projected gradient norm" in out and "time steps h_n 0.333 0.333 0.333" in out


def test_train_in_float32_follows_float64(capsys):
    """Adam's path in float32 sweeps stays within single precision's reach of float64's:
    gradients differ by about 1e-7 relative, 20 steps of 0.05 do not amplify that."""
    results = {}
    for precision in ("float64", "float32"):
        code, out, err = run(capsys, "train", *SMALL[:4], "--layers", "4", "--iterations",
                             "20", "--optimizer", "adam", "--learning-rate", "0.05",
                             "--batch-size", "200",
                             "--train-size", "200", "--validation-size", "0", "--precision",
                             precision, "--json")
        assert code == 0, err
        results[precision] = json.loads(out)
    assert results["float32"]["config"]["precision"] == "float32"
    first, last = (results["float64"]["history"][k]["objective"] for k in (0, -1))
    assert last < 0.85 * first
    assert results["float32"]["objective"] == pytest.approx(last, rel=1e-5)


@pytest.mark.parametrize("change, message", [
    (["--layers", "0"], "--layers: expected a positive integer"),
    (["--horizon", "-1"], "horizon: must be a positive number"),
    (["--width", "1"], "width: the width 1 is below the data's dimension 2"),
    (["--dynamics", "relu"], "argument --dynamics: invalid choice"),
    (["--dataset", "spirals"], "unknown data set 'spirals'; did you mean spiral"),
    (["--optimizer", "lbfgs", "--depth", "odenet-simplex"], "simplex"),
    (["--tableau", "nosuch"], "nosuch"),
    (["--problem", "examples/network_problem.toml", "--loss", "cross-entropy"],
     "loss: does not apply to a problem file's network"),
    (["--problem", "examples/lq.toml"], "examples/lq.toml: no such file"),
    (["--problem", "ocgen/data/problems/lq.toml"], "leave this out"),
    (["--tableau", "gauss2", "--precision", "float32"], "precision: float32 needs the matrix"),
])
def test_bad_train_input_exits_2_and_writes_nothing(capsys, tmp_path, change, message):
    model, plots = tmp_path / "model.json", tmp_path / "figures"
    argv = list(SMALL)
    for option, value in zip(change[::2], change[1::2]):
        if option in argv:
            argv[argv.index(option) + 1] = value
        else:
            argv += [option, value]
    code, out, err = run(capsys, "train", *argv, "-o", str(model), "--plot", str(plots))
    assert code == 2
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_bad_model_file_exits_2(capsys, tmp_path):
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"format": "ocgen-network", "width": 2}))
    points = tmp_path / "points.csv"
    save_csv(generate("moons", 5), points)
    code, _, err = run(capsys, "predict", "--model", str(model), "--data", str(points))
    assert code == 2 and str(model) in err and "missing key" in err


def test_predict_refuses_points_wider_than_the_network(capsys, tmp_path):
    model = tmp_path / "model.json"
    assert run(capsys, "train", *SMALL, "-o", str(model))[0] == 0
    points = tmp_path / "wide.npz"
    np.savez(points, x=np.zeros((3, 5)))
    code, _, err = run(capsys, "predict", "--model", str(model), "--data", str(points))
    assert code == 2 and "5 coordinates, more than the network's width 2" in err
