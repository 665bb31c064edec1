"""Plots of a network trained as an optimal control problem (MATH.md 6).

Training curves, learned step sizes, the prediction map and the flow of the data through the
layers. Every function takes plain arrays, draws on its own Agg figure (no pyplot state, works
headless), writes its file whole or not at all, and raises OcgenError naming the path when it
cannot. Colours: class 0 blue, class 1 red; maps show the probability of class 1 from blue (0)
to red (1), with a black line where it is 0.5.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..errors import OcgenError
from ..files import write_bytes_atomic, written_in_place
from .model import output

CLASS_COLOURS = ("tab:blue", "tab:red")
"""Point colours of labels 0 and 1 (unlabelled points are dark grey)."""
MAP_CMAP = "RdBu_r"
MAP_LEVELS = np.linspace(0.0, 1.0, 11)
PAD = 0.1
"""Padding of a data box, as a fraction of its width on each side."""
PANELS = 6
"""Most panels in the PNG of :func:`plot_flow`."""
GIF_FPS = 4
GIF_SIZE = (4.0, 4.0)  # inches, at GIF_DPI
GIF_DPI = 72
PNG_METADATA = {"Software": None}  # no version string: the same plot gives the same bytes


# --- training curves and step sizes -----------------------------------------------------------

def plot_losses(history, path):
    """Training (solid) and validation (dashed) loss against iteration + 1, log–log, as PNG.

    ``history``: dicts with ``iteration``, ``train_loss`` and optionally ``validation_loss``
    (entries without a value are skipped). Returns the Figure.
    """
    fig, (ax,) = _figure((6.4, 4.4))
    drawn = _curves(ax, history, "loss")
    ax.set_xscale("log")
    ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("iteration + 1")
    ax.set_ylabel("loss")
    ax.set_title("loss")
    _finish(ax, drawn)
    _write_figure(fig, path)
    return fig


def plot_accuracies(history, path):
    """Training (solid) and validation (dashed) accuracy against iteration + 1 (log x, y in
    [0, 1]), as PNG. ``history`` as for :func:`plot_losses`, keys ``train_accuracy`` and
    optionally ``validation_accuracy``. Returns the Figure."""
    fig, (ax,) = _figure((6.4, 4.4))
    drawn = _curves(ax, history, "accuracy")
    ax.set_xscale("log")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("iteration + 1")
    ax.set_ylabel("accuracy")
    ax.set_title("accuracy")
    _finish(ax, drawn)
    _write_figure(fig, path)
    return fig


def plot_time_steps(h, path, horizon=None):
    """The step sizes h_n against layer n = 1..N as bars, titled with Σh (and the horizon T
    if given), as PNG. Returns the Figure."""
    h = np.asarray(h, dtype=float).reshape(-1)
    fig, (ax,) = _figure((6.4, 4.0))
    ax.bar(np.arange(1, h.size + 1), h, width=0.8, color="tab:blue")
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.4, h.size + 0.6)
    ax.set_xlabel("layer $n$")
    ax.set_ylabel("step size $h_n$")
    title = rf"$\Sigma h$ = {np.sum(h):.6g}"
    if horizon is not None:
        title += f" (horizon T = {float(horizon):.6g})"
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    _write_figure(fig, path)
    return fig


def _curves(ax, history, quantity: str) -> bool:
    """Draw ``train_<quantity>`` solid and ``validation_<quantity>`` dashed; whether any."""
    drawn = False
    for prefix, label, style, colour in (("train", "training", "-", "tab:blue"),
                                         ("validation", "validation", "--", "tab:orange")):
        key = f"{prefix}_{quantity}"
        rows = [r for r in history if r.get(key) is not None]
        if rows:
            x = np.array([int(r["iteration"]) + 1 for r in rows], dtype=float)
            y = np.array([float(r[key]) for r in rows])
            ax.plot(x, y, linestyle=style, color=colour, label=label, gid=key)
            drawn = True
    return drawn


def _finish(ax, drawn: bool) -> None:
    ax.grid(True, which="both", alpha=0.3)
    if drawn:
        ax.legend()
    ax.figure.tight_layout()


# --- prediction map ---------------------------------------------------------------------------

def plot_prediction(probability, points, labels, path, box=None):
    """The prediction map of ``probability`` (a callable mapping an (n, d0) array to n
    probabilities of class 1) with the points coloured by label, as PNG.

    ``box`` = (x_min, x_max, y_min, y_max) of the plotted plane; by default the points' box
    padded by 10%. For d0 == 1 the map is a strip and the points sit at height 0; for d0 > 2
    it is the plane of the first two coordinates with the others 0. Returns the Figure.
    """
    points = _points(points)
    n, d0 = points.shape
    labels = _labels(labels, n)
    plane = points[:, :2] if d0 >= 2 else np.column_stack([points[:, 0], np.zeros(n)])
    x0, x1, y0, y1 = _box(plane) if box is None else (float(b) for b in box)
    if d0 == 1:
        xs = np.linspace(x0, x1, 400)
        p = _evaluate(probability, xs[:, None])
        X, Y = np.meshgrid(xs, [y0, y1])
        P = np.vstack([p, p])
        fig, (ax,) = _figure((7.0, 2.8))
        title = "prediction (one input coordinate; points drawn at height 0)"
    else:
        X, Y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
        grid = np.zeros((X.size, d0))
        grid[:, 0], grid[:, 1] = X.ravel(), Y.ravel()
        P = _evaluate(probability, grid).reshape(X.shape)
        fig, (ax,) = _figure((6.0, 5.0))
        title = "prediction"
        if d0 > 2:
            others = "coordinate 3" if d0 == 3 else f"coordinates 3 to {d0}"
            title += f" on the plane of coordinates 1, 2 ({others} set to 0)"
    filled = _draw_map(ax, X, Y, P)
    _scatter(ax, plane, labels, n)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("$x_1$")
    if d0 == 1:
        ax.set_yticks([])
    else:
        ax.set_ylabel("$x_2$")
    ax.set_title(title, fontsize=9 if d0 > 2 else None)
    fig.colorbar(filled, ax=ax, label="probability of class 1")
    _legend(ax, labels)
    fig.tight_layout()
    _write_figure(fig, path)
    return fig


def _evaluate(probability, grid: np.ndarray) -> np.ndarray:
    """``probability(grid)`` as n floats clipped to [0, 1]; ValueError for a wrong count."""
    p = np.asarray(probability(grid), dtype=float).reshape(-1)
    if p.size != grid.shape[0]:
        raise ValueError(f"probability returned {p.size} values for {grid.shape[0]} points")
    return np.clip(p, 0.0, 1.0)


# --- flow through the layers ------------------------------------------------------------------

def flow_plane(layer_states, W):
    """The points of every layer in a plane that shows the final classifier exactly.

    ``layer_states`` has shape (L+1, K, d), ``W`` d entries. Returns ``(coords, w)``: coords of
    shape (L+1, K, 2) and the 2-vector w with ``coords @ w`` = Wᵀy for every point y, so
    η(coords @ w + μ) is the classifier. d == 2: the coordinates themselves (w = W). d == 1:
    (y, 0). d ≥ 3: the orthonormal basis (W/|W|, e2), e2 the leading principal direction of the
    final points orthogonal to W, so the first coordinate is Wᵀy/|W| and w = (|W|, 0); for
    W = 0 the first two principal directions of the final points, w = (0, 0).
    """
    states = np.asarray(layer_states, dtype=float)
    if states.ndim != 3 or states.shape[0] < 1 or states.shape[2] < 1:
        raise ValueError(f"layer_states must have shape (L+1, K, d), not {states.shape}")
    d = states.shape[2]
    W = np.asarray(W, dtype=float).reshape(-1)
    if W.size != d:
        raise ValueError(f"W has {W.size} entries but the points have {d} coordinates")
    if d == 1:
        return np.concatenate([states, np.zeros_like(states)], axis=2), np.array([W[0], 0.0])
    if d == 2:
        return states.copy(), W.copy()
    final = states[-1]
    norm = float(np.linalg.norm(W))
    if norm > 0:
        first = W / norm
        w = np.array([norm, 0.0])
    else:
        first = _next_direction(final, [])
        w = np.zeros(2)
    basis = np.column_stack([first, _next_direction(final, [first])])
    return states @ basis, w


def _next_direction(points: np.ndarray, fixed: list) -> np.ndarray:
    """A unit vector orthogonal to the orthonormal vectors ``fixed``: the leading principal
    direction of ``points`` in that complement, else the standard basis vector nearest to it.
    Its largest entry is positive, so the choice is deterministic."""
    d = points.shape[1]

    def orthogonal(v):  # v: one vector or rows of vectors
        for _ in range(2):  # twice: orthogonal to rounding
            for u in fixed:
                v = v - np.multiply.outer(v @ u, u)
        return v

    z = points[np.all(np.isfinite(points), axis=1)]
    v = None
    if len(z) > 1:
        z = z - z.mean(axis=0)
        scale = float(np.abs(z).max())
        z = orthogonal(z)
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        if s[0] > 1e-9 * scale * math.sqrt(len(z)):
            v = orthogonal(vt[0])
    if v is None:
        residuals = [orthogonal(e) for e in np.eye(d)]
        v = max(residuals, key=lambda r: float(np.linalg.norm(r)))
    v = v / np.linalg.norm(v)
    return -v if v[np.argmax(np.abs(v))] < 0 else v


def plot_flow(layer_states, labels, W, mu, png_path, gif_path):
    """The points after each layer over the decision map of the final classifier η(Wᵀy + μ),
    in the plane of :func:`flow_plane`: a PNG grid of up to 6 layers (evenly spaced, first and
    last included) and a GIF with one frame per layer. Returns the PNG's Figure."""
    coords, w = flow_plane(layer_states, W)
    mu = float(np.asarray(mu, dtype=float).reshape(()))
    depth, k = coords.shape[0] - 1, coords.shape[1]
    labels = _labels(labels, k)
    d = np.asarray(layer_states).shape[2]
    xlabel, ylabel = _plane_labels(d, bool(np.any(w)))

    count = min(PANELS, depth + 1)
    shown = np.unique(np.round(np.linspace(0, depth, count)).astype(int))
    cols = min(3, len(shown))
    rows = -(-len(shown) // cols)
    fig, axes = _figure((3.3 * cols, 3.1 * rows + 0.4), rows=rows, cols=cols)
    for ax, n in zip(axes, shown):
        _flow_panel(ax, coords[n], labels, w, mu, _box(coords[n]), 100, k)
        ax.set_title("input" if n == 0 else f"layer {n}")
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        if d == 1:
            ax.set_yticks([])
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    _legend(axes[0], labels)
    fig.suptitle(r"points after each layer over the final classifier $\eta(W^\top y + \mu)$",
                 fontsize=10)
    fig.tight_layout()
    _write_figure(fig, png_path)
    _write_flow_gif(coords, labels, w, mu, xlabel, ylabel, d, gif_path)
    return fig


def _write_flow_gif(coords, labels, w, mu, xlabel, ylabel, d, path) -> None:
    """One frame per layer, a common box, the decision map drawn once."""
    depth, k = coords.shape[0] - 1, coords.shape[1]
    fig, (ax,) = _figure(GIF_SIZE, dpi=GIF_DPI)
    dots = _flow_panel(ax, coords[0], labels, w, mu, _box(coords.reshape(-1, 2)), 80, k)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    for axis in (ax.xaxis, ax.yaxis):  # few tick labels: they cost most of a frame's drawing
        axis.set_major_locator(MaxNLocator(4))
    if d == 1:
        ax.set_yticks([])
    title = ax.set_title(f"layer {depth} of {depth}", fontsize=10)  # room for every title
    fig.tight_layout()

    def frame(n):
        dots.set_offsets(coords[n])
        title.set_text("input" if n == 0 else f"layer {n} of {depth}")
        return dots, title

    animation = FuncAnimation(fig, frame, frames=depth + 1, blit=False, repeat=False)
    try:  # the writer wants a file name: render in a temporary folder, then write whole
        with tempfile.TemporaryDirectory() as folder:
            gif = Path(folder) / "flow.gif"
            animation.save(str(gif), writer=PillowWriter(fps=GIF_FPS), dpi=GIF_DPI)
            data = gif.read_bytes()
    except OSError as err:
        raise OcgenError(f"{path}: cannot write: rendering in a temporary folder failed: "
                         f"{err.strerror or err}") from None
    _write(path, data)


def _flow_panel(ax, xy, labels, w, mu, box, resolution, k):
    """The classifier's map over ``box`` and the points ``xy``; returns their scatter."""
    x0, x1, y0, y1 = box
    X, Y = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    _draw_map(ax, X, Y, output(w[0] * X + w[1] * Y + mu))
    dots = _scatter(ax, xy, labels, k)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    return dots


def _plane_labels(d: int, has_w: bool) -> tuple[str, str]:
    if d == 1:
        return "$y$", ""
    if d == 2:
        return "$y_1$", "$y_2$"
    if has_w:
        return r"$W^\top y / |W|$", r"principal direction $\perp W$"
    return "principal direction 1 (W = 0)", "principal direction 2"


# --- shared drawing and writing ---------------------------------------------------------------

class _OffScreenCanvas(FigureCanvasAgg):
    """An Agg canvas that is never shown: saving draws, so idle redraws are skipped (an
    animation asks for one per frame besides the frame's own, doubling a GIF's cost)."""

    def draw_idle(self, *args, **kwargs):
        pass


def _figure(size, rows=1, cols=1, dpi=100):
    """A Figure on an off-screen canvas (no pyplot state) and its axes as a flat list."""
    fig = Figure(figsize=size, dpi=dpi)
    _OffScreenCanvas(fig)
    return fig, fig.subplots(rows, cols, squeeze=False).ravel().tolist()



def _draw_map(ax, X, Y, P):
    """Filled contours of the probability P in [0, 1] and its 0.5 line (when it crosses)."""
    filled = ax.contourf(X, Y, P, levels=MAP_LEVELS, cmap=MAP_CMAP, vmin=0.0, vmax=1.0,
                         alpha=0.6)
    finite = P[np.isfinite(P)]
    if finite.size and finite.min() < 0.5 < finite.max():
        ax.contour(X, Y, P, levels=[0.5], colors="k", linewidths=1.0)
    return filled


def _scatter(ax, xy, labels, k):
    """The points coloured by label (dark grey without labels)."""
    size = float(np.clip(3000.0 / max(k, 1), 3.0, 25.0))
    if labels is None:
        colours = np.tile(to_rgba("0.15"), (k, 1))
    else:
        colours = np.array([to_rgba(c) for c in CLASS_COLOURS])[labels.astype(int)]
    return ax.scatter(xy[:, 0], xy[:, 1], s=size, c=colours, edgecolors="white",
                      linewidths=0.3 if k <= 300 else 0.0, zorder=3)


def _legend(ax, labels) -> None:
    if labels is None:
        return
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=f"class {i}")
               for i, c in enumerate(CLASS_COLOURS)]
    ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.8)


def _points(points) -> np.ndarray:
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] < 1:
        raise ValueError(f"points must have shape (n, d), not {points.shape}")
    return points


def _labels(labels, n: int):
    """Labels as booleans (class 1 iff ≥ 0.5), or None."""
    if labels is None:
        return None
    labels = np.asarray(labels, dtype=float).reshape(-1)
    if labels.size != n:
        raise ValueError(f"{labels.size} labels for {n} points")
    return labels >= 0.5


def _box(xy: np.ndarray) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) of the finite points, padded by PAD on each side; a flat
    side gets half the other side's width (or 1), so the box never collapses."""
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    if len(xy) == 0:
        return (-1.0, 1.0, -1.0, 1.0)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = hi - lo
    widest = float(span.max())
    span = np.where(span > 0, span, widest / 2 if widest > 0 else 1.0)
    centre = (lo + hi) / 2
    half = span * (0.5 + PAD)
    return (float(centre[0] - half[0]), float(centre[0] + half[0]),
            float(centre[1] - half[1]), float(centre[1] + half[1]))


def _write_figure(fig, path) -> None:
    """The figure as PNG at ``path``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata=PNG_METADATA)
    _write(path, buffer.getvalue())


def _write(path, data: bytes) -> None:
    """``data`` to ``path`` whole or not at all (a symlink is followed, a device such as
    /dev/stdout written in place); OcgenError naming the path on failure."""
    path = Path(path)
    try:
        if written_in_place(path):
            with open(path, "wb") as file:
                file.write(data)
        else:
            write_bytes_atomic(Path(os.path.realpath(path)), data)
    except OSError as err:
        raise OcgenError(f"{path}: cannot write: {err.strerror or err}") from None


# --- everything of a training run ------------------------------------------------------------

def plot_training(result, folder) -> list[Path]:
    """All figures of a :class:`~ocgen.nets.training.TrainingResult` in ``folder`` (created
    if missing): losses, accuracies, time steps, the prediction map and the flow (PNG, GIF)."""
    folder = Path(folder)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as err:
        raise OcgenError(f"{folder}: cannot create the folder: {err.strerror or err}") from None
    network, data = result.network, result.training
    paths = [folder / name for name in ("loss.png", "accuracy.png", "time_steps.png",
                                        "prediction.png", "flow.png", "flow.gif")]
    plot_losses(result.history, paths[0])
    plot_accuracies(result.history, paths[1])
    plot_time_steps(network.time_steps, paths[2], network.architecture.total_time)
    plot_prediction(network.predict, data.points, data.labels, paths[3])
    plot_flow(network.flow(data.points), data.labels, network.W, network.mu, paths[4], paths[5])
    return paths
