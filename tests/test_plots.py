"""Plots of trained networks: valid images, the flow's projection plane, errors naming paths."""

import os
import stat
import threading

import numpy as np
import pytest
from matplotlib.contour import ContourSet
from PIL import Image

from ocgen.errors import OcgenError
from ocgen.nets.plots import (
    flow_plane,
    plot_accuracies,
    plot_flow,
    plot_losses,
    plot_prediction,
    plot_time_steps,
)

pytestmark = pytest.mark.filterwarnings("error")  # e.g. a contour level outside the data

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HISTORY = [{"iteration": i, "train_loss": 1.0 / (i + 1), "train_accuracy": 0.5 + i / 100,
            **({"validation_loss": 2.0 / (i + 1), "validation_accuracy": 0.4 + i / 100}
               if i % 10 == 0 else {"validation_loss": None})}
           for i in range(0, 41, 2)]


def assert_png(path, fig=None):
    """A PNG file that PIL reads, with the figure's size if given."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG" and image.mode == "RGBA"
        assert image.width > 0 and image.height > 0
        assert "Software" not in image.info
        if fig is not None:
            assert image.size == tuple(int(x) for x in fig.canvas.get_width_height())
    if fig is not None:
        assert fig.canvas.manager is None  # not registered with pyplot


def line(ax, gid):
    (found,) = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    return found


def contour_sets(ax):
    """How many contour sets (the filled map, the 0.5 line) the axes hold."""
    return sum(isinstance(c, ContourSet) for c in ax.collections)


def two_class_points(k=40, d=2, seed=0):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(k, d))
    return points, (points[:, 0] > 0).astype(float)


def test_losses_log_log_against_iteration_plus_one(tmp_path):
    fig = plot_losses(HISTORY, tmp_path / "loss.png")
    assert_png(tmp_path / "loss.png", fig)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    train, validation = line(ax, "train_loss"), line(ax, "validation_loss")
    assert train.get_linestyle() == "-" and validation.get_linestyle() == "--"
    np.testing.assert_array_equal(train.get_xdata(), [r["iteration"] + 1 for r in HISTORY])
    np.testing.assert_array_equal(validation.get_xdata(), [1, 11, 21, 31, 41])
    np.testing.assert_allclose(validation.get_ydata(), [2 / 1, 2 / 11, 2 / 21, 2 / 31, 2 / 41])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training", "validation"]
    assert ax.get_xlabel() and ax.get_ylabel() == "loss"


def test_losses_without_validation(tmp_path):
    history = [{"iteration": i, "train_loss": 0.5 ** i} for i in range(5)]
    fig = plot_losses(history, tmp_path / "loss.png")
    assert_png(tmp_path / "loss.png", fig)
    assert [ln.get_gid() for ln in fig.axes[0].get_lines()] == ["train_loss"]


def test_accuracies_log_x_and_unit_y(tmp_path):
    fig = plot_accuracies(HISTORY, tmp_path / "accuracy.png")
    assert_png(tmp_path / "accuracy.png", fig)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert ax.get_ylim() == (0.0, 1.0)
    assert line(ax, "train_accuracy").get_linestyle() == "-"
    assert line(ax, "validation_accuracy").get_linestyle() == "--"
    np.testing.assert_allclose(line(ax, "validation_accuracy").get_ydata(),
                               [0.4, 0.5, 0.6, 0.7, 0.8])


def test_time_steps_bars_and_title(tmp_path):
    h = [0.5, 0.0, 0.25, 0.125]
    fig = plot_time_steps(h, tmp_path / "h.png", horizon=1.0)
    assert_png(tmp_path / "h.png", fig)
    (ax,) = fig.axes
    assert [p.get_height() for p in ax.patches] == h
    assert [p.get_x() + p.get_width() / 2 for p in ax.patches] == [1, 2, 3, 4]
    assert "0.875" in ax.get_title() and "T = 1" in ax.get_title()
    fig = plot_time_steps(h, tmp_path / "h.png")
    assert "0.875" in fig.axes[0].get_title() and "horizon" not in fig.axes[0].get_title()


def test_prediction_two_dimensional(tmp_path):
    points, labels = two_class_points()
    seen = []

    def probability(x):
        seen.append(x.copy())
        return 1 / (1 + np.exp(-4 * x[:, 0]))

    fig = plot_prediction(probability, points, labels, tmp_path / "p.png")
    assert_png(tmp_path / "p.png", fig)
    ax = fig.axes[0]
    (grid,) = seen
    assert grid.shape[1] == 2
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = 0.1 * (hi - lo)
    np.testing.assert_allclose(ax.get_xlim(), (lo[0] - pad[0], hi[0] + pad[0]))
    np.testing.assert_allclose(ax.get_ylim(), (lo[1] - pad[1], hi[1] + pad[1]))
    np.testing.assert_allclose([grid.min(axis=0), grid.max(axis=0)], [lo - pad, hi + pad])
    assert contour_sets(ax) == 2  # the map and its 0.5 line
    (dots,) = ax.collections[-1:]
    np.testing.assert_array_equal(dots.get_offsets(), points)
    colours = dots.get_facecolors()
    assert len({tuple(c) for c in colours[labels == 1]}) == 1
    assert {tuple(c) for c in colours[labels == 1]}.isdisjoint(map(tuple, colours[labels == 0]))


def test_prediction_given_box(tmp_path):
    points, labels = two_class_points()
    fig = plot_prediction(lambda x: np.full(len(x), 0.3), points, labels, tmp_path / "p.png",
                          box=(-5, 5, -2, 3))
    assert fig.axes[0].get_xlim() == (-5, 5) and fig.axes[0].get_ylim() == (-2, 3)


def test_prediction_higher_dimension_on_first_plane(tmp_path):
    points, labels = two_class_points(d=4)
    seen = []

    def probability(x):
        seen.append(x.copy())
        return (x[:, 1] > 0).astype(float)

    fig = plot_prediction(probability, points, labels, tmp_path / "p.png")
    assert_png(tmp_path / "p.png", fig)
    (grid,) = seen
    assert grid.shape[1] == 4 and not grid[:, 2:].any() and grid[:, :2].any()
    assert "coordinates 3 to 4 set to 0" in fig.axes[0].get_title()


def test_prediction_one_dimensional_strip_without_labels(tmp_path):
    points = np.linspace(-1, 2, 15)[:, None]
    seen = []

    def probability(x):
        seen.append(x.copy())
        return 1 / (1 + np.exp(-x[:, 0]))

    fig = plot_prediction(probability, points, None, tmp_path / "p.png")
    assert_png(tmp_path / "p.png", fig)
    (grid,) = seen
    assert grid.shape[1] == 1
    np.testing.assert_allclose([grid.min(), grid.max()], [-1.3, 2.3])
    dots = fig.axes[0].collections[-1]
    np.testing.assert_array_equal(dots.get_offsets()[:, 1], 0)
    assert fig.axes[0].get_legend() is None


def test_prediction_rejects_wrong_count(tmp_path):
    points, labels = two_class_points()
    with pytest.raises(ValueError, match="values for"):
        plot_prediction(lambda x: np.zeros(3), points, labels, tmp_path / "p.png")


# --- the projection plane of the flow ---------------------------------------------------------

def test_plane_keeps_classifier_input_exactly():
    rng = np.random.default_rng(1)
    states = rng.normal(size=(4, 30, 5))
    W = rng.normal(size=5)
    coords, w = flow_plane(states, W)
    assert coords.shape == (4, 30, 2)
    np.testing.assert_allclose(coords[..., 0], states @ W / np.linalg.norm(W), rtol=0, atol=1e-12)
    np.testing.assert_allclose(coords @ w, states @ W, rtol=0, atol=1e-12)
    np.testing.assert_allclose(w, [np.linalg.norm(W), 0])


def test_plane_second_direction_is_principal_orthogonal_to_W():
    # the final points spread most along W (e1), then along e3: e2 must be e3, not e1
    rng = np.random.default_rng(2)
    final = rng.normal(size=(200, 3)) * [10.0, 0.01, 1.0]
    states = np.stack([rng.normal(size=(200, 3)), final])
    coords, _ = flow_plane(states, [2.0, 0.0, 0.0])
    np.testing.assert_allclose(coords[..., 0], states[..., 0], atol=1e-12)
    np.testing.assert_allclose(coords[..., 1], states[..., 2], atol=1e-3)
    # any W: the second direction is a unit vector orthogonal to W
    W = np.array([1.0, -2.0, 0.5])
    coords, _ = flow_plane(states, W)
    e2 = np.linalg.lstsq(states[-1], coords[-1, :, 1], rcond=None)[0]
    assert abs(np.linalg.norm(e2) - 1) < 1e-9 and abs(e2 @ W) < 1e-9


def test_plane_without_W_uses_principal_directions():
    a = np.linspace(-1, 1, 101)
    b = a**2 - np.mean(a**2)  # orthogonal to a, mean 0
    diagonal = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    final = 5 * np.outer(a, diagonal) + np.outer(b, [0.0, 0.0, 1.0])
    states = np.stack([final / 2, final])
    coords, w = flow_plane(states, np.zeros(3))
    np.testing.assert_array_equal(w, [0, 0])
    np.testing.assert_allclose(coords[..., 0], states @ diagonal, atol=1e-9)
    np.testing.assert_allclose(coords[..., 1], states[..., 2], atol=1e-9)


def test_plane_with_points_all_alike_falls_back_to_axes():
    states = np.ones((2, 5, 3))
    coords, w = flow_plane(states, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(coords[..., 0], 1)
    np.testing.assert_allclose(coords[..., 1], 1, atol=1e-15)  # e2 = (0, 1, 0)


def test_plane_in_one_and_two_dimensions():
    y = np.arange(6.0).reshape(3, 2, 1)
    coords, w = flow_plane(y, [3.0])
    np.testing.assert_array_equal(coords[..., 0], y[..., 0])
    np.testing.assert_array_equal(coords[..., 1], 0)
    np.testing.assert_array_equal(w, [3, 0])
    y2 = np.arange(12.0).reshape(3, 2, 2)
    coords, w = flow_plane(y2, [1.0, -1.0])
    np.testing.assert_array_equal(coords, y2)
    np.testing.assert_array_equal(w, [1, -1])
    with pytest.raises(ValueError, match="W has 3 entries"):
        flow_plane(y2, [1.0, 2.0, 3.0])


# --- flow plots -------------------------------------------------------------------------------

def spiral_flow(layers, k, d, seed=0):
    """Points that turn a little each layer, so every frame differs."""
    points, labels = two_class_points(k, d, seed)
    states = [points]
    for _ in range(layers):
        y = states[-1].copy()
        y[:, :2] = y[:, :2] @ np.array([[0.9, 0.3], [-0.3, 0.9]])
        states.append(y)
    return np.array(states), labels


def gif_frames(path):
    assert path.read_bytes()[:6] == b"GIF89a"
    with Image.open(path) as image:
        assert image.width > 0 and image.height > 0
        return image.n_frames


def test_flow_png_panels_and_gif_frames(tmp_path):
    states, labels = spiral_flow(7, 30, 3)
    fig = plot_flow(states, labels, [1.0, 0.5, -0.2], 0.1, tmp_path / "f.png", tmp_path / "f.gif")
    assert_png(tmp_path / "f.png", fig)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["input", "layer 1", "layer 3", "layer 4", "layer 6", "layer 7"]
    assert gif_frames(tmp_path / "f.gif") == 8
    assert sorted(os.listdir(tmp_path)) == ["f.gif", "f.png"]  # no temporary files left


def test_flow_few_layers_one_dimension_no_labels(tmp_path):
    states, _ = spiral_flow(2, 20, 2)
    states = states[..., :1]
    fig = plot_flow(states, None, [2.0], -0.5, tmp_path / "f.png", tmp_path / "f.gif")
    assert_png(tmp_path / "f.png", fig)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["input", "layer 1", "layer 2"]
    np.testing.assert_array_equal(visible[0].collections[-1].get_offsets()[:, 1], 0)
    assert gif_frames(tmp_path / "f.gif") == 3


def test_flow_without_W_same_input_same_bytes(tmp_path):
    states, labels = spiral_flow(2, 10, 4)
    for name in ("a", "b"):
        fig = plot_flow(states, labels, np.zeros(4), 0.2, tmp_path / f"{name}.png",
                        tmp_path / f"{name}.gif")
    assert_png(tmp_path / "a.png", fig)
    assert "principal" in fig.axes[0].get_xlabel()
    assert contour_sets(fig.axes[0]) == 1  # η(μ) everywhere: no 0.5 line
    assert gif_frames(tmp_path / "a.gif") == 3
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.gif").read_bytes() == (tmp_path / "b.gif").read_bytes()


# --- writing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("plot", ["losses", "time_steps", "prediction", "flow_png", "flow_gif"])
def test_unwritable_path_names_it(tmp_path, plot):
    bad = tmp_path / "no such folder" / "x.png"
    good = tmp_path / "ok.png"
    states, labels = spiral_flow(1, 5, 2)
    calls = {
        "losses": lambda: plot_losses(HISTORY, bad),
        "time_steps": lambda: plot_time_steps([0.5, 0.5], bad),
        "prediction": lambda: plot_prediction(lambda x: x[:, 0] > 0, states[0], labels, bad),
        "flow_png": lambda: plot_flow(states, labels, [1.0, 0.0], 0.0, bad, good),
        "flow_gif": lambda: plot_flow(states, labels, [1.0, 0.0], 0.0, good, bad),
    }
    with pytest.raises(OcgenError, match="cannot write") as err:
        calls[plot]()
    assert str(err.value).startswith(f"{bad}: cannot write: ")
    assert not bad.parent.exists()


def test_existing_file_replaced(tmp_path):
    target = tmp_path / "h.png"
    target.write_bytes(b"old")
    plot_time_steps([1.0], target)
    assert_png(target)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_written_in_place(tmp_path):
    fifo = tmp_path / "plot.png"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    plot_time_steps([1.0], fifo)
    reader.join(timeout=10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert received and received[0][:8] == PNG_SIGNATURE
