"""Binary classification data sets for ODE networks (MATH.md 6): generators and files.

A data set is K points x_k ∈ ℝᵈ with labels c_k ∈ {0, 1}, or without labels when its points
are only to be classified.

**Generators** (:data:`GENERATORS`, :func:`generate`): the four 2-D sets of MATH.md 6 and
``moons``. Each draws its points noise-free, adds N(0, σ²) noise to both coordinates, then
shuffles the points, all from one ``numpy.random.Generator``, so a seed fixes the set.

**Files** (:func:`read_dataset`), ``.csv`` or ``.npz``, at most MAX_DATA_FILE_BYTES, with at most
MAX_DATA_POINTS points of at most MAX_DATA_COLUMNS coordinates (:mod:`ocgen.limits`).

CSV, as written by :func:`save_csv`:

- UTF-8 (a leading byte order mark is ignored); fields separated by commas, without quoting;
  spaces around a field are ignored; lines end in LF or CRLF; blank lines are ignored.
- The first non-blank line is a header when none of its fields is a number; its names must
  not be empty. Every other line is a data row with as many fields as the first line.
- Coordinates x1 … xd come first, then the label, a number equal to 0 or 1 (``1``, ``1.0``).
- Numbers are what Python's ``float`` reads, and must be finite.
- ``labels="required"``: the last column is the label, whatever its header name.
  ``labels="optional"``: the last column is the label only when the file has a header whose last
  name is ``label`` (any case); otherwise every column is a coordinate.

NPZ (``numpy.savez``): an array ``x`` of shape (K, d), real numbers, and optionally
``labels`` of shape (K,), values 0/1 (integer, boolean or float); no other arrays. Read
without pickles; each array's header is checked before its data are read.

Every error is an :class:`~ocgen.errors.InputError` naming the file and the place in it:
``line 7, column 2`` in a CSV file (1-based), ``x[6, 1]`` or ``labels[6]`` in an NPZ file
(0-based, as NumPy indexes).
"""

from __future__ import annotations

import array
import difflib
import io
import math
import numbers
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Callable

import numpy as np

from .. import limits
from ..errors import InputError
from ..files import read_bytes, write_text_atomic, written_in_place
from ..numbers import finite_real


@dataclass(frozen=True, eq=False)
class Dataset:
    """K points in ℝᵈ with labels in {0, 1} (None: points to classify).

    ``points`` (K, d) float64 and ``labels`` (K,) int64 are read-only copies of what was given.
    ``description`` says where the set came from, JSON-serialisable: ``{"generator", "size",
    "noise", "seed"}`` (with ``"sample"``: training/validation from
    :func:`training_and_validation`) or ``{"file", "rows"}``; a part of :func:`split` adds
    ``"split": {"part", "validation_size", "seed"}``.
    """

    name: str
    points: np.ndarray
    labels: np.ndarray | None
    description: dict

    def __post_init__(self):
        points = np.array(self.points, dtype=np.float64)
        if points.ndim != 2 or 0 in points.shape:
            raise ValueError(f"points must be a non-empty (K, d) array, got shape {points.shape}")
        if not np.all(np.isfinite(points)):
            raise ValueError("points must be finite")
        points.flags.writeable = False
        object.__setattr__(self, "points", points)
        if self.labels is not None:
            labels = np.array(self.labels)
            if labels.shape != (points.shape[0],):
                raise ValueError(f"labels must have shape ({points.shape[0]},), "
                                 f"got {labels.shape}")
            if not np.all((labels == 0) | (labels == 1)):
                raise ValueError("labels must be 0 or 1")
            labels = labels.astype(np.int64)
            labels.flags.writeable = False
            object.__setattr__(self, "labels", labels)

    @property
    def dimension(self) -> int:
        """d, the dimension of the points."""
        return self.points.shape[1]

    @property
    def size(self) -> int:
        """K, the number of points."""
        return self.points.shape[0]


Generator = Callable[[int, float, np.random.Generator], "tuple[np.ndarray, np.ndarray]"]


def _finish(points: np.ndarray, labels: np.ndarray, noise: float, rng: np.random.Generator):
    """Add N(0, noise²) to every coordinate and shuffle the points (MATH.md 6)."""
    points = points + noise * rng.standard_normal(points.shape)
    order = rng.permutation(len(labels))
    return points[order], labels[order]


def _labels(ones: int, size: int) -> np.ndarray:
    """``ones`` labels 1, then ``size - ones`` labels 0."""
    return np.repeat(np.array([1, 0], dtype=np.int64), [ones, size - ones])


def _radii(inner: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """|N(0, 0.1²)| for the first ``inner`` points, |0.5 + N(0, 0.1²)| for the rest."""
    centre = np.repeat([0.0, 0.5], [inner, size - inner])
    return np.abs(centre + 0.1 * rng.standard_normal(size))


def donut1d(size: int, noise: float, rng: np.random.Generator):
    """MATH.md 6: on the x₁-axis, x = (±r, 0) with either sign equally likely; class 1 (K//3
    points) has r = |N(0, 0.1²)|, class 0 has r = |0.5 + N(0, 0.1²)|. Default noise 0.1."""
    inner = size // 3
    x1 = rng.choice([-1.0, 1.0], size) * _radii(inner, size, rng)
    return _finish(np.column_stack([x1, np.zeros(size)]), _labels(inner, size), noise, rng)


def donut2d(size: int, noise: float, rng: np.random.Generator):
    """MATH.md 6: x = r(cos φ, sin φ), φ ~ U[0, 2π); class 1 (K//2 points), the inner disk,
    has r = |N(0, 0.1²)|, class 0, the ring, r = |0.5 + N(0, 0.1²)|. Default noise 0.1."""
    inner = size // 2
    r, phi = _radii(inner, size, rng), rng.uniform(0, 2 * np.pi, size)
    points = r[:, None] * np.column_stack([np.cos(phi), np.sin(phi)])
    return _finish(points, _labels(inner, size), noise, rng)


def spiral(size: int, noise: float, rng: np.random.Generator):
    """MATH.md 6: two interleaved one-turn spirals; t ~ U[0, 1), radius r = 0.1 + 0.9t, angle
    φ = 0.1 + (2π − 0.1)t + cπ for class c (K//2 points of class 1), x = r(cos φ, sin φ).
    Default noise 0.05."""
    labels = _labels(size // 2, size)
    t = rng.uniform(0, 1, size)
    r, phi = 0.1 + 0.9 * t, 0.1 + (2 * np.pi - 0.1) * t + np.pi * labels
    points = r[:, None] * np.column_stack([np.cos(phi), np.sin(phi)])
    return _finish(points, labels, noise, rng)


def squares(size: int, noise: float, rng: np.random.Generator):
    """MATH.md 6: uniform on [−0.7, 0.7]², label 1 iff x₁x₂ > 0 (K//2 points), noise added
    after labelling. Drawn per class: |x₁|, |x₂| ~ U(0, 0.7], sign(x₁) = ±1 equally likely,
    sign(x₂) = sign(x₁) for class 1 and −sign(x₁) for class 0. Default noise 0.1."""
    labels = _labels(size // 2, size)
    magnitude = 0.7 * (1 - rng.uniform(0, 1, (size, 2)))  # in (0, 0.7], never on an axis
    sign = rng.choice([-1.0, 1.0], size)
    points = magnitude * np.column_stack([sign, np.where(labels == 1, sign, -sign)])
    return _finish(points, labels, noise, rng)


def moons(size: int, noise: float, rng: np.random.Generator):
    """Two interleaving half circles (as scikit-learn's make_moons, with random angles):
    t ~ U[0, π); class 0 (K − K//2 points) at (cos t, sin t), class 1 at (1 − cos t,
    0.5 − sin t); then scaled into [−1, 1] × [−0.5, 0.5] by x ↦ (x − (0.5, 0.25))/1.5.
    Default noise 0.1."""
    labels = _labels(size // 2, size)
    t = rng.uniform(0, np.pi, size)
    upper = labels == 0
    x1 = np.where(upper, np.cos(t), 1 - np.cos(t))
    x2 = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    points = (np.column_stack([x1, x2]) - [0.5, 0.25]) / 1.5
    return _finish(points, labels, noise, rng)


GENERATORS: MappingProxyType[str, Generator] = MappingProxyType({
    "donut1d": donut1d, "donut2d": donut2d, "spiral": spiral, "squares": squares,
    "moons": moons,
})
"""The built-in data sets by name: ``(size, noise, rng) -> (points, labels)``."""

DEFAULT_TRAIN_SIZE = 500
DEFAULT_VALIDATION_SIZE = 500
"""Sizes of a built-in data set's samples when none are given (the paper's first set-up)."""

DEFAULT_NOISE: MappingProxyType[str, float] = MappingProxyType({
    "donut1d": 0.1, "donut2d": 0.1, "spiral": 0.05, "squares": 0.1, "moons": 0.1,
})
"""The noise σ of each generator when none is given (MATH.md 6)."""


def generate(name: str, size: int, *, noise: float | None = None, seed: int = 0) -> Dataset:
    """``size`` points of the built-in data set ``name``, the same for the same seed."""
    return _generated(name, size, noise, seed, np.random.default_rng(_seed(seed)), None)


def training_and_validation(name: str, train_size: int, validation_size: int, *,
                            noise: float | None = None,
                            seed: int = 0) -> tuple[Dataset, Dataset | None]:
    """Independent training and validation samples of the built-in data set ``name``, drawn
    from the two children of ``numpy.random.SeedSequence(seed)``. A validation size of 0 gives
    no validation set (None)."""
    validation_size = _count(validation_size, "validation size", minimum=0)
    training_seed, validation_seed = np.random.SeedSequence(_seed(seed)).spawn(2)
    training = _generated(name, train_size, noise, seed,
                          np.random.default_rng(training_seed), "training")
    if validation_size == 0:
        return training, None
    return training, _generated(name, validation_size, noise, seed,
                                np.random.default_rng(validation_seed), "validation")


def _generated(name: str, size, noise, seed: int, rng: np.random.Generator,
               sample: str | None) -> Dataset:
    generator = _generator(name)
    size = _count(size, "data set size", minimum=1)
    noise = DEFAULT_NOISE[name] if noise is None else _noise(noise)
    points, labels = generator(size, noise, rng)
    description = {"generator": name, "size": size, "noise": noise, "seed": _seed(seed)}
    if sample is not None:
        description["sample"] = sample
    return Dataset(name, points, labels, description)


def _generator(name: str) -> Generator:
    if isinstance(name, str) and name in GENERATORS:
        return GENERATORS[name]
    close = difflib.get_close_matches(str(name).lower(), GENERATORS, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise InputError(f"unknown data set {name!r}{hint} (built-in: {', '.join(GENERATORS)})")


def _count(value, what: str, *, minimum: int) -> int:
    """``value`` as an int in [minimum, MAX_DATA_POINTS]; else InputError."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        kind = "a positive" if minimum == 1 else "a non-negative"
        raise InputError(f"{what} must be {kind} whole number, got {value!r}")
    limits.check_count(int(value), limits.MAX_DATA_POINTS, "points")
    return int(value)


def _seed(seed) -> int:
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed must be a non-negative whole number, got {seed!r}")
    return int(seed)


def _noise(noise) -> float:
    if not (finite_real(noise) and noise >= 0):
        raise InputError(f"noise must be a finite number ≥ 0, got {noise!r}")
    return float(noise)


# -- files ------------------------------------------------------------------------------------
def read_dataset(path: str | Path, *, labels: str = "required") -> Dataset:
    """The data set in a ``.csv`` or ``.npz`` file (rules in the module docstring).

    ``labels="required"``: the file must carry labels. ``labels="optional"``: a file without
    labels gives a data set whose labels are None.
    """
    if labels not in ("required", "optional"):
        raise ValueError(f"labels must be 'required' or 'optional', got {labels!r}")
    source = str(path)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".npz"):
        raise InputError("expected a .csv or .npz data file", source=source)
    try:
        raw = read_bytes(path, limits.MAX_DATA_FILE_BYTES)
    except FileNotFoundError:
        raise InputError("no such file", source=source) from None
    except OSError as err:
        raise InputError(f"cannot read file ({err.strerror or err})", source=source) from None
    if not raw.strip():
        raise InputError("the file is empty", source=source)
    read = _read_csv if suffix == ".csv" else _read_npz
    points, found_labels = read(raw, source, labels == "required")
    return Dataset(path.stem, points, found_labels, {"file": source, "rows": len(points)})


def _shown(field: str) -> str:
    return repr(field if len(field) <= 40 else field[:40] + "...")


def _number(field: str, source: str, key: str, what: str) -> float:
    """The finite number in ``field``; else InputError at ``key``."""
    if not field:
        raise InputError(f"missing {what}", source=source, key=key)
    try:
        value = float(field)
    except ValueError:
        raise InputError(f"{what} {_shown(field)} is not a number", source=source,
                         key=key) from None
    if not math.isfinite(value):
        raise InputError(f"{what} {_shown(field)} is not a finite number", source=source,
                         key=key)
    return value


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _read_csv(raw: bytes, source: str, require_labels: bool):
    """(points, labels or None) of a CSV file's bytes; line by line, so a 64 MiB file costs its
    numbers (8 bytes each), not a list of lines."""
    values, found = array.array("d"), array.array("d")
    width = first = labelled = None
    for number, line in enumerate(io.BytesIO(raw), start=1):
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        try:
            text = line.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as err:
            raise InputError(f"not UTF-8 text ({err.reason})", source=source,
                             key=f"line {number}") from None
        if not text.strip():
            continue
        fields = [field.strip() for field in text.split(",")]
        if width is None:
            width, first = len(fields), number
            header = not any(_is_number(field) for field in fields)
            if header and not all(fields):
                raise InputError(f"empty column name in the header (column "
                                 f"{fields.index('') + 1})", source=source, key=f"line {number}")
            labelled = require_labels or (header and fields[-1].lower() == "label")
            _check_width(width - labelled, labelled, source, number)
            if header:
                continue
        elif len(fields) != width:
            raise InputError(f"{len(fields)} fields, expected {width} as on line {first}",
                             source=source, key=f"line {number}")
        if len(values) >= limits.MAX_DATA_POINTS * (width - labelled):
            raise InputError(f"more than the limit of {limits.MAX_DATA_POINTS} points",
                             source=source, key=f"line {number}")
        coordinates = width - labelled
        for column, field in enumerate(fields[:coordinates], start=1):
            values.append(_number(field, source, f"line {number}, column {column}", "value"))
        if labelled:
            key = f"line {number}, column {width}"
            label = _number(fields[-1], source, key, "label")
            if label not in (0.0, 1.0):
                raise InputError(f"label {_shown(fields[-1])} is not 0 or 1", source=source,
                                 key=key)
            found.append(label)
    if not values:
        raise InputError("no data rows", source=source)
    points = np.frombuffer(values, dtype=np.float64).reshape(-1, width - labelled)
    return points, np.frombuffer(found, dtype=np.float64) if labelled else None


def _check_width(coordinates: int, labelled: bool, source: str, number: int) -> None:
    key = f"line {number}"
    if coordinates < 1:
        raise InputError("expected at least one coordinate column before the label column",
                         source=source, key=key)
    limits.check_count(coordinates, limits.MAX_DATA_COLUMNS, "coordinate columns",
                       source=source, key=key)


_NPZ_ARRAYS = ("x", "labels")


def _read_npz(raw: bytes, source: str, require_labels: bool):
    """(points, labels or None) of an NPZ file's bytes."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        raise InputError("not a valid .npz file (not a zip archive)", source=source) from None
    with archive:
        members = {info.filename: info for info in archive.infolist()}
        for member in members:
            if member.removesuffix(".npy") not in _NPZ_ARRAYS or not member.endswith(".npy"):
                raise InputError(f"unexpected member {_shown(member)} (expected arrays 'x' "
                                 "and, optionally, 'labels')", source=source)
        if "x.npy" not in members:
            raise InputError("no array 'x' (the points, shape (K, d))", source=source)
        if require_labels and "labels.npy" not in members:
            raise InputError("no array 'labels' (the labels, shape (K,))", source=source)
        unpacked = sum(info.file_size for info in members.values())
        if unpacked > limits.MAX_DATA_FILE_BYTES:
            raise InputError(f"arrays of {unpacked} bytes unpacked, more than the limit of "
                             f"{limits.MAX_DATA_FILE_BYTES}", source=source)
        points = _npz_array(archive, "x", "fiu", source)
        if points.ndim != 2 or 0 in points.shape:
            raise InputError(f"array 'x' must have shape (K, d) with K, d ≥ 1, found shape "
                             f"{points.shape}", source=source)
        limits.check_count(points.shape[0], limits.MAX_DATA_POINTS, "points", source=source,
                           key="x")
        limits.check_count(points.shape[1], limits.MAX_DATA_COLUMNS, "coordinates",
                           source=source, key="x")
        points = points.astype(np.float64)
        bad = np.argwhere(~np.isfinite(points))
        if len(bad):
            row, column = bad[0]
            raise InputError(f"{points[row, column]} is not a finite number", source=source,
                             key=f"x[{row}, {column}]")
        if "labels.npy" not in members:
            return points, None
        labels = _npz_array(archive, "labels", "biuf", source)
        if labels.shape != (len(points),):
            raise InputError(f"array 'labels' must have shape ({len(points)},) like the "
                             f"points, found shape {labels.shape}", source=source)
        bad = np.flatnonzero((labels != 0) & (labels != 1))
        if len(bad):
            raise InputError(f"label {labels[bad[0]].item()!r} is not 0 or 1", source=source,
                             key=f"labels[{bad[0]}]")
        return points, labels


def _npz_array(archive: zipfile.ZipFile, name: str, kinds: str, source: str) -> np.ndarray:
    """Array ``name`` of an NPZ archive, its header checked (dtype kind in ``kinds``, declared
    size within the member's) before its data are read; never unpickled."""
    member = archive.getinfo(f"{name}.npy")
    try:
        with archive.open(member) as file:
            version = np.lib.format.read_magic(file)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(file)
        if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
            allowed = "real numbers" if "b" not in kinds else "0/1 as integers, booleans or floats"
            raise InputError(f"array {name!r} has dtype {dtype}, expected {allowed}",
                             source=source)
        if math.prod(shape) * dtype.itemsize > member.file_size:
            raise InputError(f"array {name!r} is truncated", source=source)
        with archive.open(member) as file:
            return np.lib.format.read_array(file, allow_pickle=False)
    except InputError:
        raise
    except (ValueError, OSError, EOFError, RuntimeError, NotImplementedError,
            zipfile.BadZipFile, zlib.error) as err:  # RuntimeError: an encrypted member
        raise InputError(f"array {name!r} cannot be read ({err})", source=source) from None


# -- splitting and writing --------------------------------------------------------------------
def split(dataset: Dataset, validation_size: int, *,
          seed: int = 0) -> tuple[Dataset, Dataset | None]:
    """(training, validation): ``validation_size`` points drawn at random (seeded) from
    ``dataset`` for validation, the rest for training, each part in the original order.
    A validation size of 0 gives ``(dataset, None)``; at least one point is left to train on."""
    validation_size = _count(validation_size, "validation size", minimum=0)
    seed = _seed(seed)
    if validation_size == 0:
        return dataset, None
    if validation_size >= dataset.size:
        raise InputError(f"validation size {validation_size} leaves no training points of the "
                         f"{dataset.size} in {dataset.name}")
    order = np.random.default_rng(seed).permutation(dataset.size)
    parts = {"training": np.sort(order[validation_size:]),
             "validation": np.sort(order[:validation_size])}
    return tuple(
        Dataset(dataset.name, dataset.points[rows],
                None if dataset.labels is None else dataset.labels[rows],
                {**dataset.description,
                 "split": {"part": part, "validation_size": validation_size, "seed": seed}})
        for part, rows in parts.items())


def csv_text(dataset: Dataset) -> str:
    """The CSV text :func:`read_dataset` reads back exactly: header ``x1,…,xd,label`` (no
    ``label`` without labels), floats as Python's shortest round-tripping ``repr``."""
    names = [f"x{i}" for i in range(1, dataset.dimension + 1)]
    lines = [",".join(names + (["label"] if dataset.labels is not None else []))]
    rows = dataset.points.tolist()
    if dataset.labels is None:
        lines.extend(",".join(map(repr, row)) for row in rows)
    else:
        lines.extend(",".join([*map(repr, row), str(label)])
                     for row, label in zip(rows, dataset.labels.tolist()))
    return "\n".join(lines) + "\n"


def save_csv(dataset: Dataset, path: str | Path) -> None:
    """Write ``dataset`` as CSV (:func:`csv_text`), replacing ``path`` whole or not at all.
    OSError propagates."""
    path = Path(path)
    text = csv_text(dataset)
    if written_in_place(path):
        with path.open("w", encoding="utf-8", newline="") as file:
            file.write(text)
    else:
        write_text_atomic(path, text)


def load_data(spec, train_size: int | None = None, validation_size: int | None = None, *,
              noise: float | None = None, seed: int = 0) -> tuple[Dataset, Dataset | None]:
    """(training, validation) from a built-in name (sizes default to 500 and 500, as in the
    paper's first set-up), a ``.csv``/``.npz`` file (all its points, of which
    ``validation_size``, default 0, are split off) or a :class:`Dataset`."""
    if isinstance(spec, Dataset):
        return split(spec, validation_size or 0, seed=seed)
    if isinstance(spec, str) and spec in GENERATORS:
        return training_and_validation(
            spec, DEFAULT_TRAIN_SIZE if train_size is None else train_size,
            DEFAULT_VALIDATION_SIZE if validation_size is None else validation_size,
            noise=noise, seed=seed)
    if Path(str(spec)).suffix.lower() not in (".csv", ".npz"):
        _generator(spec)  # an unknown name: the error lists the built-in ones
    if train_size is not None or noise is not None:
        raise InputError("--train-size and --noise apply to built-in data sets; a file "
                         "gives all its points (split off a validation set with "
                         "--validation-size)", source=str(spec))
    return split(read_dataset(spec), validation_size or 0, seed=seed)
