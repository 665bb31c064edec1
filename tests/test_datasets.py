"""Data sets for ODE networks (MATH.md 6): each generator against its defining geometry and
its noise, the seeds, the CSV and NPZ formats both ways, and every bad file refused with its
place named."""

import json
import math

import numpy as np
import pytest

from ocgen import limits
from ocgen.errors import InputError
from ocgen.nets.datasets import (GENERATORS, Dataset, generate, read_dataset, save_csv, split,
                                 training_and_validation)

NAMES = ["donut1d", "donut2d", "spiral", "squares", "moons"]
HALF_NORMAL_MEAN = 0.1 * math.sqrt(2 / math.pi)  # E|N(0, 0.1²)|


def radius(points):
    return np.hypot(points[:, 0], points[:, 1])


# -- generators -------------------------------------------------------------------------------
def test_built_in_names():
    assert sorted(GENERATORS) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_and_description(name):
    data = generate(name, 11, seed=5)
    assert (data.size, data.dimension) == (11, 2)
    assert data.points.shape == (11, 2) and data.points.dtype == np.float64
    assert data.labels.shape == (11,) and data.labels.dtype == np.int64
    assert not data.points.flags.writeable and not data.labels.flags.writeable
    default = {"donut1d": 0.1, "donut2d": 0.1, "spiral": 0.05, "squares": 0.1, "moons": 0.1}
    assert data.description == {"generator": name, "size": 11, "noise": default[name],
                                "seed": 5}
    json.dumps(data.description)
    assert data.name == name


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_set_other_seed_other_set(name):
    first, again, other = generate(name, 50, seed=1), generate(name, 50, seed=1), \
        generate(name, 50, seed=2)
    assert np.array_equal(first.points, again.points)
    assert np.array_equal(first.labels, again.labels)
    assert not np.any(np.all(first.points[:, None] == other.points[None], axis=2))


@pytest.mark.parametrize("name, size, ones", [
    ("donut1d", 999, 333), ("donut1d", 7, 2), ("donut1d", 1, 0), ("donut2d", 7, 3),
    ("spiral", 1000, 500), ("squares", 9, 4), ("moons", 2, 1)])
def test_class_counts(name, size, ones):
    assert generate(name, size).labels.sum() == ones


@pytest.mark.parametrize("name", NAMES)
def test_classes_are_shuffled(name):
    # any prefix is a fair sample: the first half holds about half of each class
    labels = generate(name, 1000).labels
    assert labels[:500].sum() == pytest.approx(labels.sum() / 2, rel=0.2)


@pytest.mark.parametrize("name", NAMES)
def test_noise_is_gaussian_with_the_default_sigma(name):
    # Same seed: the same noise-free points, then σ·N(0, 1) added to each coordinate
    clean, noisy = generate(name, 4000, noise=0), generate(name, 4000)
    sigma = noisy.description["noise"]
    assert np.array_equal(clean.labels, noisy.labels)
    difference = noisy.points - clean.points
    assert np.std(difference, axis=0) == pytest.approx([sigma, sigma], rel=0.05)
    assert np.abs(np.mean(difference, axis=0)).max() < 4 * sigma / math.sqrt(4000)
    bigger = generate(name, 4000, noise=0.3).points - clean.points
    assert np.std(bigger) == pytest.approx(0.3, rel=0.05)


def test_donut1d_geometry():
    data = generate("donut1d", 6000, noise=0)
    x1, x2 = data.points.T
    assert np.all(x2 == 0)
    inner, outer = np.abs(x1[data.labels == 1]), np.abs(x1[data.labels == 0])
    assert inner.mean() == pytest.approx(HALF_NORMAL_MEAN, abs=0.006)
    assert outer.mean() == pytest.approx(0.5, abs=0.006)
    assert outer.std() == pytest.approx(0.1, rel=0.05)
    assert np.mean(x1[data.labels == 0] > 0) == pytest.approx(0.5, abs=0.05)  # both sides


def test_donut2d_geometry():
    data = generate("donut2d", 6000, noise=0)
    r = radius(data.points)
    inner, ring = r[data.labels == 1], r[data.labels == 0]
    assert inner.mean() == pytest.approx(HALF_NORMAL_MEAN, abs=0.005)
    assert ring.mean() == pytest.approx(0.5, abs=0.005)
    assert ring.std() == pytest.approx(0.1, rel=0.05)
    assert np.quantile(inner, 0.95) < 0.25 < np.quantile(ring, 0.05)
    angle = np.arctan2(data.points[:, 1], data.points[:, 0])
    assert np.histogram(angle, bins=4, range=(-np.pi, np.pi))[0] == pytest.approx(
        [1500] * 4, rel=0.1)


def test_spiral_geometry():
    data = generate("spiral", 4000, noise=0)
    r = radius(data.points)
    assert r.min() >= 0.1 and r.max() <= 1
    assert r.min() < 0.11 and r.max() > 0.99
    # each point lies on its class's arm: angle 0.1 + (2π − 0.1)t + cπ at radius 0.1 + 0.9t
    t = (r - 0.1) / 0.9
    for phase, wrong in ((0, 1), (1, 0)):
        rows = data.labels == phase
        for c, expect_on in ((phase, True), (wrong, False)):
            phi = 0.1 + (2 * np.pi - 0.1) * t[rows] + c * np.pi
            on_arm = r[rows, None] * np.column_stack([np.cos(phi), np.sin(phi)])
            distance = np.linalg.norm(on_arm - data.points[rows], axis=1)
            if expect_on:
                assert distance.max() < 1e-12
            else:
                assert distance.min() > 0.19  # the other arm is 2r ≥ 0.2 away


def test_squares_geometry():
    data = generate("squares", 4000, noise=0)
    x1, x2 = data.points.T
    assert np.array_equal(data.labels, (x1 * x2 > 0).astype(int))
    assert np.abs(data.points).max() <= 0.7
    quadrants = np.histogram2d(x1, x2, bins=2, range=[[-0.7, 0.7], [-0.7, 0.7]])[0]
    assert quadrants.ravel() == pytest.approx([1000] * 4, rel=0.1)
    assert np.abs(data.points).mean() == pytest.approx(0.35, abs=0.01)  # uniform on [0, 0.7]


def test_squares_noise_comes_after_labelling():
    data = generate("squares", 2000, noise=0.1)
    wrong = data.labels != (data.points[:, 0] * data.points[:, 1] > 0)
    assert 0.01 < wrong.mean() < 0.2


def test_moons_geometry():
    data = generate("moons", 2000, noise=0)
    unscaled = data.points * 1.5 + [0.5, 0.25]  # back to make_moons coordinates
    upper, lower = unscaled[data.labels == 0], unscaled[data.labels == 1]
    assert np.abs(np.hypot(*upper.T) - 1).max() < 1e-12 and upper[:, 1].min() >= 0
    centred = lower - [1, 0.5]
    assert np.abs(np.hypot(*centred.T) - 1).max() < 1e-12 and centred[:, 1].max() <= 0
    assert np.abs(data.points).max(axis=0) == pytest.approx([1, 0.5], abs=0.01)


def test_unknown_name_lists_built_ins_and_suggests():
    with pytest.raises(InputError) as caught:
        generate("sprial", 10)
    message = str(caught.value)
    assert "did you mean spiral" in message
    assert all(name in message for name in NAMES)
    with pytest.raises(InputError, match="built-in: donut1d"):
        generate("zzz", 10)


@pytest.mark.parametrize("kwargs", [
    {"size": 0}, {"size": -3}, {"size": 2.5}, {"size": True}, {"size": "10"},
    {"size": limits.MAX_DATA_POINTS + 1}, {"size": 5, "noise": -0.1},
    {"size": 5, "noise": float("nan")}, {"size": 5, "noise": float("inf")},
    {"size": 5, "seed": -1}, {"size": 5, "seed": 1.5}])
def test_bad_arguments(kwargs):
    with pytest.raises(InputError):
        generate("spiral", **kwargs)


def test_numpy_integers_are_sizes_and_descriptions_stay_json():
    data = generate("squares", np.int64(4), noise=np.float32(0.5), seed=np.uint8(3))
    assert json.loads(json.dumps(data.description)) == {
        "generator": "squares", "size": 4, "noise": 0.5, "seed": 3}


def test_training_and_validation_are_independent_samples():
    training, validation = training_and_validation("donut2d", 300, 200, seed=4)
    assert (training.size, validation.size) == (300, 200)
    assert training.description["sample"] == "training"
    assert validation.description["sample"] == "validation"
    assert not np.any(np.all(training.points[:, None] == validation.points[None], axis=2))
    again = training_and_validation("donut2d", 300, 200, seed=4)
    assert np.array_equal(again[0].points, training.points)
    assert np.array_equal(again[1].points, validation.points)
    other = training_and_validation("donut2d", 300, 200, seed=5)[0]
    assert not np.array_equal(other.points, training.points)
    only, none = training_and_validation("donut2d", 30, 0, seed=4)
    assert none is None and only.size == 30
    with pytest.raises(InputError):
        training_and_validation("donut2d", 30, -1)


# -- Dataset ----------------------------------------------------------------------------------
def test_dataset_copies_and_checks():
    points = np.zeros((3, 2))
    data = Dataset("d", points, [0, 1, 1], {})
    points[0, 0] = 5
    assert data.points[0, 0] == 0 and data.labels.dtype == np.int64
    with pytest.raises(ValueError):
        data.points[0, 0] = 1
    for bad in [dict(points=np.zeros(3)), dict(points=np.zeros((0, 2))),
                dict(points=[[np.nan, 0]], labels=None), dict(labels=[0, 1]),
                dict(labels=[0, 1, 2])]:
        args = {"name": "d", "points": np.zeros((3, 2)), "labels": [0, 0, 1],
                "description": {}, **bad}
        with pytest.raises(ValueError):
            Dataset(**args)


# -- split ------------------------------------------------------------------------------------
def test_split_partitions_in_order():
    data = Dataset("d", np.arange(20.0).reshape(10, 2), [0, 1] * 5, {"file": "d.csv",
                                                                      "rows": 10})
    training, validation = split(data, 3, seed=7)
    assert (training.size, validation.size) == (7, 3)
    rows = np.concatenate([training.points[:, 0], validation.points[:, 0]]) / 2
    assert sorted(rows) == list(range(10))
    for part in (training, validation):
        assert np.all(np.diff(part.points[:, 0]) > 0)  # original order kept
        assert np.array_equal(part.labels, (part.points[:, 0] / 2 % 2).astype(int))
    assert validation.description == {"file": "d.csv", "rows": 10, "split": {
        "part": "validation", "validation_size": 3, "seed": 7}}
    again = split(data, 3, seed=7)[1]
    assert np.array_equal(again.points, validation.points)
    others = {tuple(split(data, 3, seed=s)[1].points[:, 0]) for s in range(6)}
    assert len(others) > 1
    assert split(data, 0) == (data, None)
    for bad in (10, 11, -1):
        with pytest.raises(InputError):
            split(data, bad)


# -- files: round trips and accepted forms ----------------------------------------------------
def awkward_dataset(labels=True):
    points = np.array([[0.1 + 0.2, -1e-300], [1e300, -0.0], [np.pi, -7.0], [5e-324, 1 / 3]])
    return Dataset("a", points, [1, 0, 0, 1] if labels else None, {})


def test_csv_round_trip_is_exact(tmp_path):
    path = tmp_path / "a.csv"
    save_csv(awkward_dataset(), path)
    text = path.read_text()
    assert text.splitlines()[:2] == ["x1,x2,label", "0.30000000000000004,-1e-300,1"]
    back = read_dataset(path)
    assert np.array_equal(back.points, awkward_dataset().points)
    assert np.array_equal(back.labels, [1, 0, 0, 1])
    assert back.name == "a" and back.description == {"file": str(path), "rows": 4}


def test_csv_round_trip_without_labels(tmp_path):
    path = tmp_path / "u.csv"
    save_csv(awkward_dataset(labels=False), path)
    assert path.read_text().splitlines()[0] == "x1,x2"
    back = read_dataset(path, labels="optional")
    assert back.labels is None
    assert np.array_equal(back.points, awkward_dataset().points)


def test_generated_set_round_trips_through_csv(tmp_path):
    data = generate("spiral", 500, seed=9)
    save_csv(data, tmp_path / "s.csv")
    back = read_dataset(tmp_path / "s.csv")
    assert np.array_equal(back.points, data.points) and np.array_equal(back.labels, data.labels)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_round_trip(tmp_path, save):
    data = awkward_dataset()
    save(tmp_path / "a.npz", x=data.points, labels=data.labels)
    back = read_dataset(tmp_path / "a.npz")
    assert np.array_equal(back.points, data.points) and np.array_equal(back.labels, data.labels)
    assert back.points.dtype == np.float64 and back.labels.dtype == np.int64


def test_npz_accepts_integer_points_and_boolean_or_float_labels(tmp_path):
    np.savez(tmp_path / "b.npz", x=np.array([[1, 2], [3, 4]], dtype=np.int32),
             labels=np.array([True, False]))
    back = read_dataset(tmp_path / "b.npz")
    assert np.array_equal(back.points, [[1, 2], [3, 4]]) and list(back.labels) == [1, 0]
    np.savez(tmp_path / "f.npz", x=np.asfortranarray(np.eye(2)), labels=np.array([0.0, 1.0]))
    assert list(read_dataset(tmp_path / "f.npz").labels) == [0, 1]


def test_npz_without_labels(tmp_path):
    np.savez(tmp_path / "u.npz", x=np.eye(3))
    assert read_dataset(tmp_path / "u.npz", labels="optional").labels is None
    with pytest.raises(InputError, match="no array 'labels'"):
        read_dataset(tmp_path / "u.npz")


def write(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_csv_forms_accepted(tmp_path):
    text = "\ufeff\n  x , y , Class \r\n\n 0.5 , -1 , 1.0 \r\n1e-3,2,0\n\n   \n"
    data = read_dataset(write(tmp_path, text))
    assert np.array_equal(data.points, [[0.5, -1], [1e-3, 2]])
    assert list(data.labels) == [1, 0]
    no_header = read_dataset(write(tmp_path, "1,2,0\n3,4,1"))
    assert np.array_equal(no_header.points, [[1, 2], [3, 4]]) and list(no_header.labels) == [0, 1]


def test_csv_labels_optional(tmp_path):
    labelled = read_dataset(write(tmp_path, "a,b,LABEL\n1,2,1\n"), labels="optional")
    assert np.array_equal(labelled.points, [[1, 2]]) and list(labelled.labels) == [1]
    named = read_dataset(write(tmp_path, "a,b,c\n1,2,1\n"), labels="optional")
    assert np.array_equal(named.points, [[1, 2, 1]]) and named.labels is None
    bare = read_dataset(write(tmp_path, "1,2,1\n"), labels="optional")
    assert np.array_equal(bare.points, [[1, 2, 1]]) and bare.labels is None
    with pytest.raises(ValueError):
        read_dataset(write(tmp_path, "1,2,1\n"), labels="maybe")


# -- files: refused ---------------------------------------------------------------------------
def refused(path, **kwargs) -> InputError:
    with pytest.raises(InputError) as caught:
        read_dataset(path, **kwargs)
    err = caught.value
    assert err.source == str(path) and str(err).startswith(f"{path}: ")
    return err


@pytest.mark.parametrize("text, key, words", [
    ("x1,x2,label\n1,2,0\n3,4\n", "line 3", "2 fields, expected 3 as on line 1"),
    ("\n1,2,0\n\n3,4,0,1\n", "line 4", "4 fields, expected 3 as on line 2"),
    ("1,2,0\n1,abc,0\n", "line 2, column 2", "value 'abc' is not a number"),
    ("1,2,0\n1,nan,0\n", "line 2, column 2", "'nan' is not a finite number"),
    ("1,2,0\n-inf,1,0\n", "line 2, column 1", "'-inf' is not a finite number"),
    ("1,2,0\n1,1e999,0\n", "line 2, column 2", "not a finite number"),
    ("1,2,0\n1,,0\n", "line 2, column 2", "missing value"),
    ("1,2,0\n1,2,\n", "line 2, column 3", "missing label"),
    ("1,2,0\n1,2,2\n", "line 2, column 3", "label '2' is not 0 or 1"),
    ("1,2,0.5\n", "line 1, column 3", "label '0.5' is not 0 or 1"),
    ("1,2,yes\n", "line 1, column 3", "label 'yes' is not a number"),
    ("x1,label\n0,1\n1,nan\n", "line 3, column 2", "label 'nan' is not a finite number"),
    ("x1,x2,label\n0.5,x,1\n", "line 2, column 2", "not a number"),
    ("0.5\n", "line 1", "at least one coordinate column"),
    ("a,,label\n1,2,0\n", "line 1", "empty column name in the header (column 2)"),
    (",".join(["1"] * 66) + "\n", "line 1", "65 coordinate columns, more than the limit of 64"),
])
def test_bad_csv_rows_are_located(tmp_path, text, key, words):
    err = refused(write(tmp_path, text))
    assert err.key == key
    assert words in err.detail


@pytest.mark.parametrize("text, words", [
    ("", "the file is empty"), ("\n  \n\r\n", "the file is empty"),
    ("x1,x2,label\n\n", "no data rows")])
def test_empty_csv(tmp_path, text, words):
    assert words in refused(write(tmp_path, text)).detail


def test_csv_not_utf8_names_the_line(tmp_path):
    err = refused(write(tmp_path, b"1,2,0\n1,\xff,0\n"))
    assert err.key == "line 2" and "not UTF-8" in err.detail


def test_missing_file_directory_and_suffix(tmp_path):
    assert "no such file" in refused(tmp_path / "none.csv").detail
    (tmp_path / "dir.csv").mkdir()
    assert "not a regular file" in refused(tmp_path / "dir.csv").detail
    assert ".csv or .npz" in refused(write(tmp_path, "1,2,0\n", name="d.txt")).detail


def test_file_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_DATA_FILE_BYTES", 10)
    assert "larger than the limit of 10 bytes" in refused(write(tmp_path, "1,2,0\n3,4,1\n")).detail


def test_points_limit_names_the_line(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_DATA_POINTS", 2)
    path = write(tmp_path, "x,label\n1,0\n2,1\n\n3,0\n")
    err = refused(path)
    assert err.key == "line 5" and "more than the limit of 2 points" in err.detail
    np.savez(tmp_path / "p.npz", x=np.zeros((3, 1)), labels=np.zeros(3))
    assert "3 points, more than the limit of 2" in str(refused(tmp_path / "p.npz"))


def npz(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("arrays, key, words", [
    ({"labels": np.zeros(2)}, None, "no array 'x'"),
    ({"x": np.zeros((2, 2)), "labels": np.zeros(2), "w": np.zeros(1)}, None,
     "unexpected member 'w.npy'"),
    ({"x": np.zeros(2), "labels": np.zeros(2)}, None, "shape (K, d)"),
    ({"x": np.zeros((0, 2)), "labels": np.zeros(0)}, None, "shape (K, d)"),
    ({"x": np.zeros((2, 65)), "labels": np.zeros(2)}, "x", "65 coordinates"),
    ({"x": np.array([["a", "b"]]), "labels": np.zeros(1)}, None, "dtype <U1"),
    ({"x": np.zeros((1, 2), complex), "labels": np.zeros(1)}, None, "dtype complex128"),
    ({"x": np.zeros((1, 2), bool), "labels": np.zeros(1)}, None, "dtype bool"),
    ({"x": np.zeros((2, 2)), "labels": np.zeros(3)}, None, "shape (2,) like the points"),
    ({"x": np.zeros((2, 2)), "labels": np.zeros((2, 1))}, None, "shape (2,)"),
    ({"x": np.zeros((2, 2)), "labels": np.array([0, 2])}, "labels[1]", "label 2 is not 0 or 1"),
    ({"x": np.zeros((2, 2)), "labels": np.array([np.nan, 0])}, "labels[0]", "label nan"),
    ({"x": np.zeros((2, 2)), "labels": np.array(["0", "1"])}, None, "dtype <U1"),
    ({"x": np.array([[0, 1], [2, np.inf]]), "labels": np.zeros(2)}, "x[1, 1]",
     "inf is not a finite number"),
])
def test_bad_npz(tmp_path, arrays, key, words):
    err = refused(npz(tmp_path, **arrays))
    assert err.key == key
    assert words in err.detail


UNPICKLED = []


def record_unpickling():
    UNPICKLED.append(True)


class Trap:
    """Unpickling this would record that it happened."""
    def __reduce__(self):
        return (record_unpickling, ())


def test_npz_object_arrays_are_never_unpickled(tmp_path):
    x = np.empty((1, 2), dtype=object)
    x[0, 0], x[0, 1] = Trap(), 1.0
    err = refused(npz(tmp_path, x=x, labels=np.zeros(1)))
    assert "dtype object" in err.detail
    assert not UNPICKLED


def test_npz_not_a_zip_or_damaged(tmp_path):
    assert "not a zip archive" in refused(write(tmp_path, "1,2,0\n", name="d.npz")).detail
    path = npz(tmp_path, x=np.arange(1000.0).reshape(500, 2), labels=np.zeros(500))
    raw = bytearray(path.read_bytes())
    raw[200:210] = b"\0" * 10  # inside the data of x: the CRC check fails
    path.write_bytes(bytes(raw))
    assert "cannot be read" in refused(path).detail


def test_npz_unpacked_size_limit(tmp_path, monkeypatch):
    path = tmp_path / "z.npz"
    np.savez_compressed(path, x=np.zeros((5000, 2)), labels=np.zeros(5000))
    monkeypatch.setattr(limits, "MAX_DATA_FILE_BYTES", path.stat().st_size + 1000)
    assert "unpacked, more than the limit" in refused(path).detail


def test_save_csv_replaces_whole_file(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")
    save_csv(generate("moons", 3), path)
    assert path.read_text().startswith("x1,x2,label\n") and len(path.read_text().splitlines()) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
