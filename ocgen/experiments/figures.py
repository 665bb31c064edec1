"""The figures of an experiment report: several runs of one data set compared on one figure,
and the convergence of the consistency study. Drawn like :mod:`ocgen.nets.plots` (Agg, no
pyplot state, files written whole or not at all)."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import MaxNLocator

from ..nets.plots import (_box, _figure, _flow_panel, _labels, _legend, _write_figure,
                          flow_plane)

MAX_COLUMNS = 8
"""Most networks drawn side by side in a flow comparison."""
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


def plot_losses(curves, path) -> None:
    """Training (solid) and validation (dashed) loss of every run against iteration + 1,
    log–log, one colour per run. ``curves``: [(label, history)]."""
    fig, (ax,) = _figure((7.0, 4.6))
    for k, (label, history) in enumerate(curves):
        colour = COLOURS[k % len(COLOURS)]
        for key, style, name in (("train_loss", "-", label), ("validation_loss", "--", None)):
            rows = [r for r in history if r.get(key) is not None]
            if rows:
                ax.plot([r["iteration"] + 1 for r in rows], [r[key] for r in rows],
                        linestyle=style, color=colour, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("iteration + 1")
    ax.set_ylabel("loss")
    ax.set_title("loss: training (solid), validation (dashed)")
    ax.grid(True, which="major", alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.11, top=0.93)
    _write_figure(fig, path)


def plot_time_steps(steps, path) -> None:
    """The learned step sizes h_n of several runs as grouped bars. ``steps``: [(label, h)]."""
    fig, (ax,) = _figure((7.0, 4.0))
    width = 0.8 / max(len(steps), 1)
    for k, (label, h) in enumerate(steps):
        h = np.asarray(h, dtype=float)
        x = np.arange(1, h.size + 1) - 0.4 + (k + 0.5) * width
        ax.bar(x, h, width=width, color=COLOURS[k % len(COLOURS)], label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer $n$")
    ax.set_ylabel("step size $h_n$")
    ax.set_title("learned time steps")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _write_figure(fig, path)


def plot_flows(flows, path, rows: int = 3) -> None:
    """The induced flow of several networks side by side: one column per network, rows the
    input, intermediate layers and the last layer, over each network's final classifier.
    ``flows``: [(label, layer_states (L+1, K, d), labels, W, mu)], at most MAX_COLUMNS."""
    flows = list(flows)[:MAX_COLUMNS]
    cols = max(len(flows), 1)
    fig, axes = _figure((2.6 * cols, 2.5 * rows + 0.5), rows=rows, cols=cols)
    grid = np.array(axes, dtype=object).reshape(rows, cols)
    for j, (label, states, labels, W, mu) in enumerate(flows):
        coords, w = flow_plane(states, W)
        depth, k = coords.shape[0] - 1, coords.shape[1]
        marks = _labels(labels, k)
        shown = np.unique(np.round(np.linspace(0, depth, rows)).astype(int))
        for i in range(rows):
            ax = grid[i, j]
            if i >= len(shown):
                ax.set_visible(False)
                continue
            n = shown[i]
            _flow_panel(ax, coords[n], marks, w, float(mu), _box(coords[n]), 60, k)
            ax.set_title(f"{label}\n{'input' if n == 0 else f'layer {n}'}" if i == 0 else
                         ("input" if n == 0 else f"layer {n}"), fontsize=8)
            ax.set_xticks([])  # each panel has its own box: coordinates are not compared
            ax.set_yticks([])
        if flows:
            _legend(grid[0, 0], marks)
    fig.suptitle(r"points after the layers over each network's classifier "
                 r"$\eta(W^\top y + \mu)$", fontsize=9)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.9 / (2.5 * rows + 0.5),
                        wspace=0.08, hspace=0.25)
    _write_figure(fig, path)


def plot_consistency(studies, path) -> None:
    """Errors of state, costate and per-stage gradient against h, log–log, one line per
    tableau, each labelled with its observed order. ``studies``: consistency study dicts."""
    quantities = (("state", "state $y_n$"), ("costate", "costate $p_n$"),
                  ("gradient", r"gradient $\partial J_h/\partial\theta_{ni}/(h b_i)$ vs $H_u$"))
    fig, axes = _figure((13.0, 4.2), cols=3)
    for ax, (key, title) in zip(axes, quantities):
        for k, study in enumerate(studies):
            pairs = [(h, e) for h, e in zip(study["h"], study["errors"][key]) if e]
            if not pairs:
                continue
            order = study["orders"][key]
            label = study["tableau"] + ("" if order is None else f" ({order:.2f})")
            h, e = zip(*pairs)
            ax.loglog(h, e, "o-", color=COLOURS[k % len(COLOURS)], label=label, markersize=4)
        ax.set_xlabel("step $h = 1/L$")
        ax.set_ylabel("maximum error")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, title="observed order", title_fontsize=8)
    fig.tight_layout()
    _write_figure(fig, path)
