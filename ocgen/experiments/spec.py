"""Experiment specs: a TOML file declaring a grid of training runs, expanded into tasks.

A spec (schema in the README, "Experiments") has the top-level keys

- ``name``, ``description``: text;
- ``options``: values of ``ocgen train`` options shared by every run;
- ``grid``: a table, or an array of tables, of options; a list is an axis of the grid, a single
  value is fixed. Each table is a product of its axes; an array of tables is their union;
- ``quick``: option values that replace the others under ``--quick``, and a ``consistency``
  table replacing that of the study;
- ``consistency``: the gradient-consistency study (``tableaux``, ``layers``).

Option names are the keyword arguments of :func:`ocgen.nets.train`, which are the flags of
``ocgen train`` (``train_size`` or ``train-size``). Every value is checked here, before any run
starts, and an error names the file and the key (``grid[1].tableau[2]``). Each run's
configuration is completed with the defaults and hashed; the hash keys its results in the
store, so a run is recognised as done whatever the spec that asked for it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import limits
from ..errors import InputError
from ..files import read_bytes, read_data_file, tomllib
from ..library import data_texts
from ..numbers import finite_real
from ..pair import load_method
from ..tableau import ButcherTableau
from ..text import check_text

SPEC_KEYS = ("name", "description", "options", "grid", "quick", "consistency")
CONSISTENCY_KEYS = ("tableaux", "layers")
REQUIRED = ("dataset", "tableau", "layers")
"""Options every run must have (as ``ocgen train`` requires them)."""
MAX_RUNS = 10_000
"""Runs one spec may declare (checked before the grid is expanded)."""
MAX_CONSISTENCY_LAYERS = 5_000
HASH_LENGTH = 16


@dataclass(frozen=True)
class Task:
    """One unit of work: a training run or the consistency study of one tableau.

    ``key`` is the hash of ``identity`` (the configuration with the digests of any files it
    reads); ``config`` is what the store and the report show; ``payload`` is what the worker
    needs (it may hold a loaded data set or tableau, so workers never read the user's files).
    """

    kind: str
    key: str
    config: dict
    payload: dict = field(compare=False, repr=False)


@dataclass(frozen=True)
class Spec:
    """A parsed spec: its runs, and the consistency study when it has one."""

    name: str
    description: str
    source: str
    quick: bool
    tasks: tuple[Task, ...]
    overrides: dict = field(default_factory=dict)

    @property
    def runs(self) -> tuple[Task, ...]:
        return tuple(t for t in self.tasks if t.kind == "train")

    @property
    def consistency(self) -> tuple[Task, ...]:
        return tuple(t for t in self.tasks if t.kind == "consistency")


# -- the options ------------------------------------------------------------------------------

def _integer(minimum: int, maximum: int | None = None) -> Callable[[Any], Any]:
    def check(value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"expected a whole number ≥ {minimum}, found {value!r}")
        if maximum is not None and value > maximum:
            raise ValueError(f"at most {maximum}, found {value!r}")
        return int(value)
    return check


def _real(minimum: float, strict: bool) -> Callable[[Any], Any]:
    def check(value):
        ok = finite_real(value) and (value > minimum if strict else value >= minimum)
        if not ok:
            bound = f"> {minimum:g}" if strict else f"≥ {minimum:g}"
            raise ValueError(f"expected a number {bound}, found {value!r}")
        return float(value)
    return check


def _boolean(value):
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, found {value!r}")
    return value


def _choice(names) -> Callable[[Any], Any]:
    names = tuple(names)

    def check(value):
        if value not in names:
            raise ValueError(f"expected one of {', '.join(names)}, found {value!r}")
        return value
    return check


def _text(value):
    if not (isinstance(value, str) and value.strip()):
        raise ValueError(f"expected a name, found {value!r}")
    return value


def option_checks() -> dict[str, Callable[[Any], Any]]:
    """The options of a run and the check of each value (which returns it normalised)."""
    from ..nets.names import (ACTIVATION_NAMES, CONTROL_MODES, DEPTHS, DYNAMICS, KERNELS,
                              LOSSES, OPTIMIZERS, PRECISIONS)
    positive, count = _integer(1), _integer(0)
    return {
        "dataset": _text, "tableau": _text, "layers": _integer(1, limits.MAX_LAYERS),
        "width": positive,
        "train_size": positive, "validation_size": count, "noise": _real(0, False),
        "seed": count, "optimizer": _choice(OPTIMIZERS), "iterations": positive,
        "batch_size": positive, "learning_rate": _real(0, True), "tolerance": _real(0, True),
        "dynamics": _choice(DYNAMICS), "activation": _choice(ACTIVATION_NAMES),
        "depth": _choice(DEPTHS), "horizon": _real(0, True), "controls": _choice(CONTROL_MODES),
        "loss": _choice(LOSSES), "mean_loss": _boolean, "tikhonov": _real(0, False),
        "smoothness": _real(0, False), "gamma": _real(0, False), "problem": _text,
        "reversible": _boolean, "precision": _choice(PRECISIONS), "kernels": _choice(KERNELS),
    }


def option_defaults() -> dict[str, Any]:
    """The default of every option, read from :func:`ocgen.nets.train` and
    :class:`~ocgen.nets.model.Architecture` (one source of truth)."""
    from ..nets import train
    from ..nets.model import Architecture
    defaults = {name: p.default for name, p in inspect.signature(train).parameters.items()
                if p.kind is not inspect.Parameter.VAR_KEYWORD and name != "progress"}
    for f in dataclasses.fields(Architecture):
        if f.name not in ("width", "layers"):
            defaults[f.name] = f.default
    return defaults


def _option_name(name: str, checks: dict, source: str, key: str) -> str:
    """``name`` as an option (``train-size`` is ``train_size``); else InputError."""
    option = name.replace("-", "_")
    if option in checks:
        return option
    import difflib
    close = difflib.get_close_matches(option, list(checks), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise InputError(f"unknown option {name!r}{hint} (options are those of `ocgen train`: "
                     f"{', '.join(checks)})", source=source, key=key)


def _options(table, checks: dict, source: str, where: str, axes: bool) -> dict[str, Any]:
    """{option: (value, place)} (or {option: [(value, place), …]} with ``axes``), each value
    checked; ``place`` = (source, key) says where the value was given."""
    if not isinstance(table, dict):
        raise InputError(f"expected a table of options, found {type(table).__name__}",
                         source=source, key=where)
    out: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{where}.{name}"
        option = _option_name(name, checks, source, key)
        if option in out:
            raise InputError(f"{option!r} is given twice (as {option} and with hyphens)",
                             source=source, key=key)
        if axes and isinstance(value, list):
            if not value:
                raise InputError("an empty list of values: this grid has no runs",
                                 source=source, key=key)
            out[option] = [(_checked(checks[option], v, source, f"{key}[{i}]"),
                            (source, f"{key}[{i}]")) for i, v in enumerate(value)]
        else:
            checked = (_checked(checks[option], value, source, key), (source, key))
            out[option] = [checked] if axes else checked
    return out


def _checked(check, value, source: str, key: str):
    try:
        return check(value)
    except ValueError as err:
        raise InputError(str(err), source=source, key=key) from None


# -- reading a spec ---------------------------------------------------------------------------

def builtin_specs() -> dict[str, str]:
    """The built-in specs by name (file stem): their TOML text."""
    return data_texts("experiments")


def read_spec(spec: str | Path) -> tuple[dict, str, Path | None]:
    """(table, source, folder for relative paths) of a built-in name or a spec file."""
    text = str(spec)
    builtin = builtin_specs()
    if text in builtin:
        return tomllib.loads(builtin[text]), text, None
    path = Path(text)
    if path.suffix.lower() not in (".toml", ".json"):
        raise InputError(f"unknown experiment {text!r} (built-in: {', '.join(builtin)}; or give "
                         "a .toml file)")
    return read_data_file(path), str(path), path.resolve().parent


def load_spec(spec: str | Path, *, quick: bool = False,
              overrides: dict | None = None) -> Spec:
    """The spec ``spec`` (a built-in name or a .toml file) expanded into its tasks.

    ``quick`` applies the spec's ``[quick]`` table; ``overrides`` ({option: value}, from
    ``--set``) then replace those options in every run. Every error is an InputError naming the
    file and the key, raised before any run starts.
    """
    data, source, folder = read_spec(spec)
    for key in data:
        if key not in SPEC_KEYS:
            raise InputError(f"unknown key (expected one of: {', '.join(SPEC_KEYS)})",
                             source=source, key=key)
    for key in ("name", "description"):
        if key in data:
            if not isinstance(data[key], str):
                raise InputError("expected text", source=source, key=key)
            check_text(data[key], source=source, key=key, multiline=key == "description")
    checks = option_checks()
    shared = _options(data.get("options", {}), checks, source, "options", axes=False)
    quick_table = data.get("quick", {})
    if not isinstance(quick_table, dict):
        raise InputError("expected a table", source=source, key="quick")
    quick_options = {k: v for k, v in quick_table.items() if k != "consistency"}
    quick_values = _options(quick_options, checks, source, "quick", axes=False)
    late = dict(quick_values if quick else {})
    for name, value in (overrides or {}).items():
        option = _option_name(name, checks, None, f"--set {name}")
        late[option] = (_checked(checks[option], value, None, f"--set {name}"),
                        (None, f"--set {option}"))
    grids = _grids(data, checks, source)
    tasks: list[Task] = []
    resolver = _Resolver(source, folder)
    defaults = {name: (value, (source, "options")) for name, value in option_defaults().items()
                if name not in REQUIRED}
    for where, axes in grids:
        for values in _product(axes):
            given = {**defaults, **shared, **values, **late}
            missing = [name for name in REQUIRED if name not in given]
            if missing:
                raise InputError(f"no value for {missing[0]!r} (required: give it in [options] "
                                 "or in the grid)", source=source, key=where)
            config = {name: given[name][0] for name in checks if name in given}
            places = {name: given[name][1] for name in given}
            tasks.append(resolver.train_task(config, places))
    study = data.get("consistency")
    if study is not None:
        replaced = quick_table.get("consistency", {}) if quick else {}
        tasks += _consistency_tasks(study, replaced, source, resolver)
    elif "consistency" in quick_table:
        raise InputError("a quick consistency study without a [consistency] table",
                         source=source, key="quick.consistency")
    if not tasks:
        raise InputError("the spec declares no runs: give a [grid] (or a [consistency] study)",
                         source=source, key="grid")
    seen: set[str] = set()
    unique = [t for t in tasks if not (t.key in seen or seen.add(t.key))]  # first of equals
    return Spec(name=data.get("name") or Path(source).stem,
                description=data.get("description", ""), source=source, quick=quick,
                tasks=tuple(unique), overrides={k: v for k, (v, _) in late.items()})


def _grids(data: dict, checks: dict, source: str) -> list[tuple[str, dict]]:
    """[(key, {option: [values]})] of the grid tables, their sizes checked."""
    if "grid" not in data:
        return []
    grid = data["grid"]
    if isinstance(grid, dict):
        tables = [("grid", grid)]
    elif isinstance(grid, list) and all(isinstance(g, dict) for g in grid):
        tables = [(f"grid[{i}]", g) for i, g in enumerate(grid)]
    else:
        raise InputError("expected a table of options or an array of tables", source=source,
                         key="grid")
    if not tables:
        raise InputError("an empty array of grids: no runs", source=source, key="grid")
    out, total = [], 0
    for where, table in tables:
        if not table:
            raise InputError("an empty grid: give at least one option", source=source,
                             key=where)
        axes = _options(table, checks, source, where, axes=True)
        total += math.prod(len(v) for v in axes.values())
        limits.check_count(total, MAX_RUNS, "runs", source=source, key=where)
        out.append((where, axes))
    return out


def _product(axes: dict[str, list]) -> list[dict]:
    """Every combination of the axes, the first axis varying slowest."""
    combos: list[dict] = [{}]
    for name, values in axes.items():
        combos = [{**c, name: v} for c in combos for v in values]
    return combos


def _consistency_tasks(table, replaced, source: str, resolver: "_Resolver") -> list[Task]:
    for key, value in (("consistency", table), ("quick.consistency", replaced)):
        if not isinstance(value, dict):
            raise InputError("expected a table", source=source, key=key)
        for name in value:
            if name not in CONSISTENCY_KEYS:
                raise InputError(f"unknown key (expected one of: {', '.join(CONSISTENCY_KEYS)})",
                                 source=source, key=f"{key}.{name}")
    merged = {**table, **replaced}
    where = {k: ("quick.consistency" if k in replaced else "consistency") for k in merged}
    for name in CONSISTENCY_KEYS:
        if name not in merged:
            raise InputError(f"missing key {name!r}", source=source, key="consistency")
    tableaux, layers = merged["tableaux"], merged["layers"]
    if not (isinstance(tableaux, list) and tableaux):
        raise InputError("expected a non-empty list of tableaux", source=source,
                         key=f"{where['tableaux']}.tableaux")
    key = f"{where['layers']}.layers"
    if not (isinstance(layers, list) and len(layers) >= 3):
        raise InputError("expected a list of at least three layer counts (the orders are "
                         "fitted to the last three)", source=source, key=key)
    counts = [_checked(_integer(1), n, source, f"{key}[{i}]") for i, n in enumerate(layers)]
    if counts != sorted(set(counts)):
        raise InputError("layer counts must increase", source=source, key=key)
    limits.check_count(counts[-1], MAX_CONSISTENCY_LAYERS, "layers", source=source,
                       key=f"{key}[{len(counts) - 1}]")
    return [resolver.consistency_task(name, counts, f"{where['tableaux']}.tableaux[{i}]")
            for i, name in enumerate(tableaux)]


class _Resolver:
    """Turns checked option values into tasks: loads tableaux and data files once (errors
    name the key), resolves relative paths against the spec's folder, and hashes."""

    def __init__(self, source: str, folder: Path | None):
        self.source, self.folder = source, folder
        self._tableaux: dict[str, tuple] = {}
        self._datasets: dict[str, tuple] = {}

    def tableau(self, name: str, place: tuple):
        """(display name, payload value, identity) of a tableau name or file."""
        source, key = place
        if name not in self._tableaux:
            path = self._path(name, (".toml", ".json"))
            try:
                tableau = load_method(path if path is not None else name)
            except InputError as err:  # the message names the tableau file and its key
                raise InputError(str(err), source=source, key=key) from None
            if path is None:
                self._tableaux[name] = (tableau.name, tableau.name, tableau.name)
            else:
                self._tableaux[name] = (name, tableau, tableau.to_dict())
        return self._tableaux[name]

    def dataset(self, name: str, place: tuple):
        """(display name, payload value, identity, is_file) of a data set name or file."""
        source, key = place
        if name not in self._datasets:
            from ..nets.datasets import GENERATORS, read_dataset
            if name in GENERATORS:
                self._datasets[name] = (name, name, name, False)
            else:
                path = self._path(name, (".csv", ".npz"))
                if path is None:
                    raise InputError(f"unknown data set {name!r} (built-in: "
                                     f"{', '.join(GENERATORS)}; or a .csv/.npz file)",
                                     source=source, key=key)
                try:
                    data = read_dataset(path)
                    digest = hashlib.sha256(read_bytes(path, limits.MAX_DATA_FILE_BYTES))
                except InputError as err:  # the message names the data file and the line
                    raise InputError(str(err), source=source, key=key) from None
                except OSError as err:
                    raise InputError(f"{path}: cannot read: {err.strerror or err}",
                                     source=source, key=key) from None
                identity = {"file": name, "sha256": digest.hexdigest()}
                self._datasets[name] = (name, data, identity, True)
        return self._datasets[name]

    def problem(self, name: str, place: tuple) -> dict:
        """The table of the problem file ``name`` (a network's problem; its contents are
        part of the run's identity)."""
        source, key = place
        path = self._path(name, (".toml", ".json"))
        if path is None:
            raise InputError(f"expected a .toml or .json problem file, found {name!r}",
                             source=source, key=key)
        try:
            return read_data_file(path)
        except InputError as err:  # the message names the problem file
            raise InputError(str(err), source=source, key=key) from None

    def _path(self, name: str, suffixes) -> Path | None:
        """The file ``name`` names, or None for a built-in name. A relative path is relative
        to the spec file's folder (to the current folder for a built-in spec)."""
        if Path(name).suffix.lower() not in suffixes:
            return None
        path = Path(name)
        return path if path.is_absolute() or self.folder is None else self.folder / path

    def train_task(self, config: dict, places: dict) -> Task:
        """The task of one run; ``places[option]`` = (source, key) where its value was given."""
        from ..nets.datasets import DEFAULT_TRAIN_SIZE, DEFAULT_VALIDATION_SIZE
        shown, data, data_identity, is_file = self.dataset(config["dataset"],
                                                            places["dataset"])
        name, tableau, tableau_identity = self.tableau(config["tableau"], places["tableau"])
        config = dict(config, dataset=shown, tableau=name)
        if is_file:
            for option in ("train_size", "noise"):
                if config[option] is not None:
                    source, key = places[option]
                    raise InputError(f"{option} applies to built-in data sets; the file "
                                     f"{shown} gives all its points", source=source, key=key)
            config["validation_size"] = config["validation_size"] or 0
        else:
            from ..nets.datasets import DEFAULT_NOISE
            if config["noise"] is None:
                config["noise"] = DEFAULT_NOISE[config["dataset"]]
            if config["train_size"] is None:
                config["train_size"] = DEFAULT_TRAIN_SIZE
            if config["validation_size"] is None:
                config["validation_size"] = DEFAULT_VALIDATION_SIZE
        problem = None
        if config.get("problem") is not None:
            problem = self.problem(config["problem"], places["problem"])
        identity = {"kind": "train", **config, "dataset": data_identity,
                    "tableau": tableau_identity, "problem": problem}
        payload = dict(config, dataset=data, tableau=tableau, problem=problem)
        return Task("train", config_hash(identity), config, payload)

    def consistency_task(self, name: str, layers: list[int], key: str) -> Task:
        shown, tableau, identity = self.tableau(_checked(_text, name, self.source, key),
                                                (self.source, key))
        if not isinstance(tableau, (str, ButcherTableau)) or (
                isinstance(tableau, str) and not isinstance(load_method(tableau),
                                                            ButcherTableau)):
            raise InputError("the consistency study takes a tableau, not a partitioned pair",
                             source=self.source, key=key)
        from .consistency import PROBLEM_VERSION
        config = {"tableau": shown, "layers": layers}
        full = {"kind": "consistency", "problem": PROBLEM_VERSION, "tableau": identity,
                "layers": layers}
        return Task("consistency", config_hash(full), config, dict(config, tableau=tableau))


def config_hash(identity: dict) -> str:
    """The first HASH_LENGTH hex digits of the SHA-256 of the canonical JSON of ``identity``."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:HASH_LENGTH]


def parse_override(text: str) -> tuple[str, Any]:
    """``OPTION=VALUE`` of ``--set``: the value read as a TOML value (``2000``, ``true``,
    ``0.5``), or as text when it is not one (``rk4``)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise InputError(f"expected OPTION=VALUE, found {text!r}", key="--set")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except (tomllib.TOMLDecodeError, ValueError):
        parsed = value.strip()
    return name.strip(), parsed
