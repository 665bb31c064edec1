"""``ocgen train`` and ``ocgen predict``: parse, call :mod:`ocgen.nets`, print or write JSON.

:data:`COMMANDS` are added to the parser by :func:`ocgen.cli.build_parser`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli import _print_json, _writable, positive_int
from .errors import OcgenError
from .text import terminal_text


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 0, found {text!r}")
    return value


def add_train(sub) -> None:
    from .nets.names import (ACTIVATION_NAMES, CONTROL_MODES, DEPTHS, DYNAMICS, KERNELS,
                             LOSSES, OPTIMIZERS, PRECISIONS)
    p = sub.add_parser(
        "train", help="train an ODE network (a network is an optimal control problem)",
        description="Train a network y' = f(y, K, beta), output eta(W'y(T) + mu), discretised "
                    "by a Runge-Kutta tableau, on the derived costate (MATH.md 6).")
    p.add_argument("--dataset", required=True, metavar="NAME|FILE",
                   help="donut1d, donut2d, spiral, squares, moons, or a .csv/.npz file")
    p.add_argument("--tableau", required=True, metavar="T",
                   help="built-in name (case-insensitive, aliases) or a .toml/.json file; a "
                        "partitioned pair (e.g. stormer_verlet) for hamiltonian dynamics")
    p.add_argument("--layers", type=positive_int, required=True, metavar="L")
    p.add_argument("--width", type=positive_int, metavar="d",
                   help="state width (default: the data's dimension; points are padded with "
                        "zeros)")
    p.add_argument("--dynamics", choices=DYNAMICS, default="tanh",
                   help="tanh: sigma(K y + beta); symmetric: -K' sigma(K y + beta); "
                        "antisymmetric: sigma((K - K' - gamma I) y + beta); hamiltonian: "
                        "y' = sigma(K z + beta1), z' = -sigma(K' y + beta2) with the width "
                        "split into y and z (even width; use a pair such as stormer_verlet)")
    p.add_argument("--activation", choices=ACTIVATION_NAMES, default="tanh")
    p.add_argument("--depth", choices=DEPTHS, default="resnet",
                   help="net (h = 1), resnet (h = T/L), odenet (h >= 0 learned), "
                        "odenet-simplex (h learned with sum h = T)")
    p.add_argument("--horizon", type=float, metavar="T", help="final time (default 1)")
    p.add_argument("--problem", metavar="FILE",
                   help="a problem file as the network: states, controls, dynamics and costs "
                        "from the file, labels in its member parameter c, output W1..Wd, mu "
                        "(replaces --dynamics, --activation, --loss and the regularisation)")
    p.add_argument("--controls", choices=CONTROL_MODES, default="step",
                   help="one (K, beta) per layer (step) or per stage")
    p.add_argument("--loss", choices=LOSSES, default="squares")
    p.add_argument("--mean-loss", action="store_true",
                   help="divide the loss by the number of points")
    p.add_argument("--tikhonov", type=float, default=0.0, metavar="ALPHA",
                   help="alpha/2 sum_n h_n |theta_n|^2")
    p.add_argument("--smoothness", type=float, default=0.0, metavar="ALPHA2",
                   help="alpha2/2 sum_n |theta_{n+1} - theta_n|^2 / h_n")
    p.add_argument("--gamma", type=float, default=0.01,
                   help="damping of the antisymmetric dynamics")
    p.add_argument("--reversible", action="store_true",
                   help="rebuild the states backwards in the costate sweep instead of storing "
                        "them (a pair with an explicit inverse step, e.g. stormer_verlet with "
                        "hamiltonian dynamics): memory flat in the number of layers")
    p.add_argument("--precision", choices=PRECISIONS, default="float64",
                   help="precision of the sweeps: float32 halves memory and is faster at "
                        "large width (the matrix-level module only; the optimiser stays "
                        "float64)")
    p.add_argument("--kernels", choices=KERNELS, default="numpy",
                   help="numba: run the matrix-level module's affine and polynomial steps as "
                        "compiled loops (pip install 'ocgen[numba]'; compiled on first use and "
                        "cached): about twice as fast at widths up to 8, slower from 16 up; "
                        "implicit tableaux then solve their stages by fixed-point iteration")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="lipschitz")
    p.add_argument("--iterations", type=positive_int, default=1000, metavar="N")
    p.add_argument("--seed", type=_non_negative_int, default=0, metavar="S")
    p.add_argument("--train-size", type=positive_int, metavar="n",
                   help="training points of a built-in data set (default 500)")
    p.add_argument("--validation-size", type=_non_negative_int, metavar="m",
                   help="validation points (default 500 for a built-in data set, 0 for a file)")
    p.add_argument("--noise", type=float, help="noise of a built-in data set")
    p.add_argument("--batch-size", type=positive_int, default=64, help="Adam's mini-batch")
    p.add_argument("--learning-rate", type=float, default=1e-2, help="Adam's step")
    p.add_argument("--tolerance", type=float, default=1e-8,
                   help="stop when the projected gradient norm is below this")
    p.add_argument("-o", "--output", metavar="MODEL.json", help="write the trained model")
    p.add_argument("--plot", metavar="DIR", help="write the figures (PNG, GIF) to this folder")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from .nets import train
    if args.output is not None:
        _writable(args.output)
    if args.plot is not None:
        _plot_folder(args.plot)
    bar = None
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm
        bar = tqdm(total=args.iterations, desc="training", file=sys.stderr, leave=False)

    def progress(k):
        bar.update(k - bar.n)

    try:
        result = train(args.dataset, args.tableau, args.layers, width=args.width,
                       problem=args.problem,
                       train_size=args.train_size, validation_size=args.validation_size,
                       noise=args.noise, seed=args.seed, optimizer=args.optimizer,
                       iterations=args.iterations, batch_size=args.batch_size,
                       learning_rate=args.learning_rate, tolerance=args.tolerance,
                       progress=progress if bar is not None else None,
                       dynamics=args.dynamics, activation=args.activation, depth=args.depth,
                       horizon=args.horizon, controls=args.controls, loss=args.loss,
                       mean_loss=args.mean_loss, tikhonov=args.tikhonov,
                       smoothness=args.smoothness, gamma=args.gamma,
                       reversible=args.reversible, precision=args.precision,
                       kernels=args.kernels)
    finally:
        if bar is not None:
            bar.close()
    written = []
    if args.output is not None:
        written.append(result.network.save(args.output))
    if args.plot is not None:
        from .nets.plots import plot_training
        written += plot_training(result, args.plot)
    if args.json:
        data = result.to_json()
        data["written"] = [str(p) for p in written]
        _print_json(data)
    else:
        print(format_training(result))
        for path in written:
            print(f"wrote {path}")
    return 0


def _plot_folder(folder: str) -> None:
    """The plot folder: created later if missing, so its parent must exist and be writable."""
    import os
    path = Path(folder)
    if not folder:
        raise OcgenError("the plot folder is empty; give a folder name")
    if path.exists() and not path.is_dir():
        raise OcgenError(f"{path}: is not a folder")
    parent = path if path.is_dir() else path.parent
    if not parent.is_dir():
        raise OcgenError(f"{path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OcgenError(f"{path}: permission denied")


def format_training(result) -> str:
    """A short summary of a training run."""
    c, f = result.config, result.final
    h = result.network.time_steps
    percent = lambda x: "-" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    number = lambda x: "-" if x is None else f"{x:.6g}"  # noqa: E731
    if c["dynamics"] == "problem":
        model = f"the problem {terminal_text(str(c['problem'].get('name', 'file')))}"
    else:
        model = f"{c['dynamics']} dynamics ({c['activation']}), {c['loss']} loss"
    lines = [
        f"{c['tableau']} network on {c['data'].get('generator') or c['data'].get('file')}: "
        f"{model}, width {c['width']}, {c['layers']} layers, {c['depth']}, {c['controls']} "
        "controls",
        f"  {c['train_size']} training and {c['validation_size']} validation points; "
        f"{c['optimizer']}, {result.iterations} iterations "
        f"({'converged' if result.converged else 'not converged'}: {result.message})",
        f"  loss      training {number(f['train_loss'])}   validation "
        f"{number(f['validation_loss'])}",
        f"  accuracy  training {percent(f['train_accuracy'])}   validation "
        f"{percent(f['validation_accuracy'])}",
        f"  projected gradient norm {f['gradient_norm']:.3e} (the discrete optimality "
        "residual)",
        "  time steps h_n " + " ".join(f"{x:.3g}" for x in h),
        "  time: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()),
    ]
    if "ipopt" in result.extra:
        ip = result.extra["ipopt"]
        lines.append(f"  IPOPT costates vs derived costates: max difference "
                     f"{ip['costate_difference']:.2e}")
    return "\n".join(lines)


def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="classify points with a trained network",
                       description="Run a trained network (ocgen train -o MODEL.json) on the "
                                   "points of a .csv/.npz file.")
    p.add_argument("--model", required=True, metavar="MODEL.json")
    p.add_argument("--data", required=True, metavar="FILE", help=".csv or .npz points "
                   "(labels optional; with them the accuracy is reported)")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from .nets.datasets import read_dataset
    from .nets.model import load_network
    from .nets.training import accuracy
    network = load_network(args.model)
    data = read_dataset(args.data, labels="optional")
    if data.dimension > network.architecture.width:
        raise OcgenError(f"{args.data}: the points have {data.dimension} coordinates, more "
                         f"than the network's width {network.architecture.width}")
    probabilities = network.predict(data.points)
    labels = (probabilities >= 0.5).astype(int)
    result = {"probabilities": probabilities.tolist(), "labels": labels.tolist(),
              "accuracy": (accuracy(probabilities, data.labels)
                           if data.labels is not None else None)}
    if args.json:
        _print_json(result)
        return 0
    print(f"{data.size} points, {int(labels.sum())} classified as 1"
          + (f"; accuracy {100 * result['accuracy']:.1f}%" if data.labels is not None else ""))
    print("probability,label")
    for p, c in zip(probabilities, labels):
        print(f"{p:.6f},{c}")
    return 0


COMMANDS = (add_train, add_predict)
