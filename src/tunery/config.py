"""The tuning config: ``tune.toml`` read into validated, frozen objects before anything runs.

::

    [study]                      # which study, and what "better" means
    name = "digits"              # default: the config file's name without .toml
    direction = "maximize"       # default: "minimize" for the metric "loss", else "maximize"
    metric = "val_accuracy"      # val_accuracy, train_accuracy or loss (the last epoch's)
    seed = 0                     # seeds every draw of the samplers
    storage = "sqlite:///tunery.db"   # relative to the working directory, as SQLite URLs are

    [data]                       # what tunery.data.load_dataset gets
    source = "digits"            # "digits", or a path: relative to the folder of the config file
    classes = "0-5"              # optional: a range, a list "0,2,4", or a TOML list
    normalize = "standardize"    # or "scale"
    seed = 0                     # seeds the split
    val_fraction = 0.15
    test_fraction = 0.15
    image_size = 64              # photos are resized to image_size² RGB

    [model]                      # the FIXED parts of the trainer (every key optional)
    layers = [64, 32]            # hidden layer sizes
    batchnorm = true
    activation = "relu"          # relu, tanh, sigmoid
    optimizer = "adam"           # gd, momentum, rmsprop, adam
    lr = 1e-3
    beta = 0.9                   # β of momentum and RMSprop, β1 of Adam
    beta2 = 0.999                # β2 of Adam
    epsilon = 1e-8               # ε of RMSprop and Adam
    batch_size = 64
    l2 = 0.0                     # λ: the cost adds λ/(2m)·Σ‖W‖²
    keep_prob = 1.0              # dropout keep probability (1: no dropout)
    decay = "none"               # none, inverse_time, exponential, inverse_sqrt, step
    decay_rate = 0.95            # optional: rate / rate / k / factor of that schedule
    decay_every = 10             # optional: the step schedule's period in epochs
    epochs = 20
    backend = "numpy"            # or "torch" (the PyTorch twin, extra tunery[torch])
    seed = 0                     # initial weights, mini-batch order and dropout masks

    [space]                      # the SEARCHED settings: any of SEARCHABLE
    lr = { low = 1e-4, high = 1, scale = "log" }
    beta = { low = 0.9, high = 0.999, scale = "one_minus_log" }
    units = { low = 10, high = 100, type = "int" }
    batch_size = { choices = [32, 64, 128, 256] }
    image_size = { choices = [16, 32, 64] }   # photos only: [data].image_size, searched

    [run]                        # how the search runs (tunery tune's flags override these)
    trials = 20                  # finished trials to reach, over all rounds
    workers = 2                  # processes (default: the CPU cores this process may use)
    rounds = 1                   # coarse to fine: zoom between rounds
    sampler = "random"           # random, grid, sobol
    pruner = "none"              # none, median or asha (tunery.pruners)
    pruner_options = { warmup_epochs = 3 }   # optional: the pruner's keywords
    epochs = 15                  # optional: overrides model.epochs
    top = 0.1                    # zoom around the best 10% (an int: that many trials)
    margin = 0.1                 # widen each box by 10% of its width on either side
    checkpoint_every = 0         # save the trainer every N epochs (0: never)
    executor = "local"           # or "ray": Ray tasks (extra tunery[ray], docs/cluster.md)
    address = "auto"             # optional, Ray's: auto, HOST:PORT or ray://HOST:PORT
    resources = { cpu = 1, gpu = 0.25 }   # optional, Ray's: what each trial holds

How the searched ``units`` and ``num_layers`` map onto ``[model].layers``: ``num_layers = n``
keeps the first ``n`` sizes of ``layers`` (repeating its last size when ``n`` is larger), then
``units = u`` makes every hidden layer ``u`` wide. So ``units`` alone resizes all hidden layers and
keeps their count, ``num_layers`` alone changes the count and keeps the sizes, and both give
``num_layers`` hidden layers of ``units`` each.

Every rule broken raises :class:`tunery.ConfigError` naming the field's path (``run.trials``,
``space.lr.low``), the value and the rule: an unknown section or key, a wrong type, a bad bound, a
searched name that is no model setting, a setting the chosen optimizer ignores. Nothing is
written or opened while a config is read.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from tunery._exceptions import ConfigError
from tunery._validation import FRACTION, KEEP_PROB, POSITIVE, Interval, check_int, check_scalar
from tunery.data import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION, DIGITS, parse_classes
from tunery.data._normalize import NormalizeKind, check_normalize
from tunery.data._splits import check_fractions
from tunery.nn.model import Activation
from tunery.nn.optimizers import OPTIMIZERS, Optimizer, make_optimizer
from tunery.nn.schedules import SCHEDULES, Schedule, make_schedule
from tunery.pruners import make_pruner
from tunery.run import EXECUTORS, Resources, default_workers
from tunery.space import Choice, Distribution, Float, Int, Space, space_from_config, space_to_dict
from tunery.storage import parse_storage_url

__all__ = [
    "DATA_SEARCHABLE",
    "DEFAULT_STORAGE",
    "DEFAULT_TOML",
    "METRICS",
    "SEARCHABLE",
    "DataSection",
    "ModelSection",
    "RunSection",
    "StudySection",
    "TuneConfig",
    "config_from_dict",
    "default_config",
    "hidden_layers",
    "load_config",
    "trial_data",
    "trial_model",
]

DEFAULT_STORAGE = "sqlite:///tunery.db"
SECTIONS = ("study", "data", "model", "space", "run")
METRICS = ("val_accuracy", "train_accuracy", "loss")
"""What the built-in objective can return: the last epoch's value of one of its reported metrics."""
BACKENDS = ("numpy", "torch")
SAMPLERS = ("random", "grid", "sobol")

_MINIMIZED = frozenset({"loss"})
# The schedule option that ``decay_rate`` / ``decay_every`` set, per schedule.
_DECAY_RATE = {"inverse_time": "rate", "exponential": "rate", "inverse_sqrt": "k", "step": "factor"}
_DECAY_EVERY = {"step": "every"}
_SCHEDULE_FIELDS = {
    "rate": "decay_rate",
    "k": "decay_rate",
    "factor": "decay_rate",
    "every": "decay_every",
}
# Our names → the optimizer's keywords (β is β1 for Adam, as `tunery train --beta` has it).
_OPTIMIZER_KEYS = {
    "gd": {"lr": "lr"},
    "momentum": {"lr": "lr", "beta": "beta"},
    "rmsprop": {"lr": "lr", "beta": "beta", "epsilon": "eps"},
    "adam": {"lr": "lr", "beta": "beta1", "beta2": "beta2", "epsilon": "eps"},
}
_LAYER_KEYS = ("units", "num_layers")

SEARCHABLE = (
    "lr",
    "beta",
    "beta2",
    "epsilon",
    "units",
    "num_layers",
    "batch_size",
    "l2",
    "keep_prob",
    "decay_rate",
    "decay_every",
    "optimizer",
    "activation",
    "batchnorm",
    "decay",
    "image_size",
)
"""The names ``[space]`` may search: the model's settings, ``units`` and ``num_layers``, and the
data's ``image_size`` (see ``DATA_SEARCHABLE``)."""
DATA_SEARCHABLE = ("image_size",)
"""The searchable names that belong to ``[data]``: each value loads (and caches) its own dataset."""
_REAL_SETTINGS = frozenset({"lr", "beta", "beta2", "epsilon", "l2", "keep_prob", "decay_rate"})


# --------------------------------------------------------------------------------------------------
# Field checks: (value, field path) -> the clean value, or ConfigError naming the path.

Check = Callable[[Any, str], Any]
_DECAY = Interval(float, 0, 1, closed="left")  # β of momentum, RMSprop and Adam
_NON_NEGATIVE = Interval(float, 0)


def _integer(minimum: int) -> Check:
    def check(value: Any, where: str) -> int:
        return check_int(where, value, minimum)

    return check


def _real(rule: Interval) -> Check:
    def check(value: Any, where: str) -> float:
        return check_scalar(where, value, rule)

    return check


def _one_of(options: tuple[str, ...]) -> Check:
    def check(value: Any, where: str) -> str:
        if value not in options:
            raise ConfigError(where, value, "one of " + ", ".join(map(repr, options)))
        return str(value)

    return check


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(where, value, "true or false")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(where, value, "a non-empty string")
    return value


def _optional(check: Check) -> Check:
    def optional(value: Any, where: str) -> Any:
        return None if value is None else check(value, where)

    return optional


def _widths(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise ConfigError(where, value, "a list of hidden layer sizes, e.g. [64, 32] ([] for none)")
    return tuple(_integer(1)(size, f"{where}[{i}]") for i, size in enumerate(value))


def _top(value: Any, where: str) -> float | int:
    if isinstance(value, bool):
        raise ConfigError(where, value, "a count of trials >= 1 (an int) or a fraction in (0, 1]")
    if isinstance(value, int) and value >= 1:
        return value
    if isinstance(value, float) and 0.0 < value <= 1.0:
        return value
    raise ConfigError(where, value, "a count of trials >= 1 (an int) or a fraction in (0, 1]")


def _options(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ConfigError(where, value, "a table of options, e.g. { warmup_epochs = 3 }")
    return dict(value)


def _storage(value: Any, where: str) -> str:
    """A store URL, checked without opening it (reading a config must create no file)."""
    url = _text(value, where)
    with _under(where):
        parse_storage_url(url)
    return url


@contextmanager
def _under(where: str) -> Iterator[None]:
    """Re-raise a ConfigError of a lower-level check under the config's field path ``where``."""
    try:
        yield
    except ConfigError as error:
        raise ConfigError(where, error.value, error.expected) from None


def _check_fields(section: object, name: str, checks: Mapping[str, Check]) -> None:
    """Validate and normalize a frozen section's fields in place, naming ``{name}.{field}``."""
    for key, check in checks.items():
        object.__setattr__(section, key, check(getattr(section, key), f"{name}.{key}"))


# --------------------------------------------------------------------------------------------------
# Sections


@dataclass(frozen=True)
class StudySection:
    """``[study]``: the study's name and store, its metric and direction, the sampler's seed."""

    name: str
    direction: Literal["maximize", "minimize"] = None  # type: ignore[assignment]  # see below
    metric: str = "val_accuracy"
    seed: int = 0
    storage: str = DEFAULT_STORAGE

    def __post_init__(self) -> None:
        # Left out, the direction follows the metric: a loss is minimized, an accuracy maximized.
        wanted = "minimize" if self.metric in _MINIMIZED else "maximize"
        given: Any = self.direction  # None until filled in here
        if given is None:
            object.__setattr__(self, "direction", wanted)
        _check_fields(self, "study", _STUDY_CHECKS)
        if self.direction != wanted:
            raise ConfigError("study.direction", self.direction, f"{wanted!r} for {self.metric}")


_STUDY_CHECKS: dict[str, Check] = {
    "name": _text,
    "direction": _one_of(("maximize", "minimize")),
    "metric": _one_of(METRICS),
    "seed": _integer(0),
    "storage": _storage,
}


@dataclass(frozen=True)
class DataSection:
    """``[data]``: the arguments of ``tunery.data.load_dataset``.

    ``source`` is ``"digits"`` or a path; a relative path in a config file is resolved against
    the file's folder when the config is read (``~`` is expanded).
    """

    source: str = DIGITS
    classes: str | None = None
    normalize: NormalizeKind = "standardize"
    seed: int = 0
    val_fraction: float = DEFAULT_VAL_FRACTION
    test_fraction: float = DEFAULT_TEST_FRACTION
    image_size: int = 64

    def __post_init__(self) -> None:
        classes: Any = self.classes
        if isinstance(classes, list | tuple):  # a TOML list: keep the text form
            object.__setattr__(self, "classes", ",".join(str(c) for c in classes))
        _check_fields(self, "data", _DATA_CHECKS)
        with _under("data.classes"):
            parse_classes(self.classes)
        with _under("data.normalize"):
            check_normalize(self.normalize)
        with _under("data.val_fraction + data.test_fraction"):
            check_fractions(self.val_fraction, self.test_fraction)


_DATA_CHECKS: dict[str, Check] = {
    "source": _text,
    "classes": _optional(_text),
    "normalize": _text,
    "seed": _integer(0),
    "val_fraction": _real(FRACTION),
    "test_fraction": _real(FRACTION),
    "image_size": _integer(1),
}


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: the fixed parts of the trainer; any of ``SEARCHABLE`` may be searched instead.

    ``layers`` are the hidden sizes (the input and output sizes come from the data). ``beta`` is
    β of momentum and RMSprop and β1 of Adam; ``decay_rate`` and ``decay_every`` set the chosen
    schedule's option (``None``: the schedule's default).
    """

    layers: tuple[int, ...] = (64, 32)
    batchnorm: bool = True
    activation: Activation = "relu"
    optimizer: str = "adam"
    lr: float = 1e-3
    beta: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    batch_size: int = 64
    l2: float = 0.0
    keep_prob: float = 1.0
    decay: str = "none"
    decay_rate: float | None = None
    decay_every: int | None = None
    epochs: int = 20
    backend: Literal["numpy", "torch"] = "numpy"
    seed: int = 0

    def __post_init__(self) -> None:
        _check_fields(self, "model", _MODEL_CHECKS)
        self.make_optimizer()  # the optimizer's own rules, named by our fields
        self.schedule()

    def optimizer_hyperparameters(self) -> dict[str, float]:
        """``make_optimizer``'s keywords for this optimizer: ``{"lr": ..., "beta1": ...}``."""
        keys = _OPTIMIZER_KEYS[self.optimizer]
        return {keyword: float(getattr(self, ours)) for ours, keyword in keys.items()}

    def make_optimizer(self) -> Optimizer:
        """A fresh ``tunery.nn.optimizers.Optimizer`` with these settings."""
        ours = {keyword: name for name, keyword in _OPTIMIZER_KEYS[self.optimizer].items()}
        try:
            return make_optimizer(self.optimizer, **self.optimizer_hyperparameters())
        except ConfigError as error:
            where = f"model.{ours.get(error.field, error.field)}"
            raise ConfigError(where, error.value, error.expected) from None

    def schedule(self) -> Schedule:
        """The learning-rate schedule ``(lr0, epoch) -> lr``."""
        options: dict[str, float] = {}
        for ours, table in (("decay_rate", _DECAY_RATE), ("decay_every", _DECAY_EVERY)):
            value = getattr(self, ours)
            if value is not None:
                if self.decay not in table:
                    users = ", ".join(table)
                    raise ConfigError(f"model.{ours}", value, f"decay = one of {users} to use it")
                options[table[self.decay]] = value
        try:
            return make_schedule(self.decay, **options)
        except ConfigError as error:
            where = f"model.{_SCHEDULE_FIELDS.get(error.field, 'decay')}"
            raise ConfigError(where, error.value, error.expected) from None


_MODEL_CHECKS: dict[str, Check] = {
    "layers": _widths,
    "batchnorm": _boolean,
    "activation": _one_of(get_args(Activation)),
    "optimizer": _one_of(tuple(OPTIMIZERS)),
    "lr": _real(POSITIVE),
    "beta": _real(_DECAY),
    "beta2": _real(_DECAY),
    "epsilon": _real(POSITIVE),
    "batch_size": _integer(1),
    "l2": _real(_NON_NEGATIVE),
    "keep_prob": _real(KEEP_PROB),
    "decay": _one_of(tuple(SCHEDULES)),
    "decay_rate": _optional(_real(POSITIVE)),
    "decay_every": _optional(_integer(1)),
    "epochs": _integer(1),
    "backend": _one_of(BACKENDS),
    "seed": _integer(0),
}


@dataclass(frozen=True)
class RunSection:
    """``[run]``: how the search runs. ``epochs``, when set, overrides ``model.epochs``."""

    trials: int = 20
    workers: int = field(default_factory=default_workers)
    rounds: int = 1
    sampler: str = "random"
    pruner: str | None = None
    pruner_options: Mapping[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    top: float | int = 0.1
    margin: float = 0.1
    checkpoint_every: int = 0
    executor: str = "local"
    address: str | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pruner == "none":  # TOML has no null
            object.__setattr__(self, "pruner", None)
        _check_fields(self, "run", _RUN_CHECKS)
        _check_pruner(self.pruner, self.pruner_options)
        if self.rounds > 1 and self.trials // self.rounds < _MIN_TOP:
            expected = f"at least {_MIN_TOP * self.rounds} ({_MIN_TOP} per round to zoom around)"
            raise ConfigError("run.trials", self.trials, expected)


def _resources(value: Any, where: str) -> dict[str, float]:
    """``{ cpu = 1, gpu = 0.25 }``: what one trial holds on a cluster (``{}``: one CPU)."""
    if value == {}:
        return {}
    return Resources.from_mapping(value, where).to_dict()


_MIN_TOP = 3  # Study.zoom needs this many COMPLETE trials
_RUN_CHECKS: dict[str, Check] = {
    "trials": _integer(1),
    "workers": _integer(1),
    "rounds": _integer(1),
    "sampler": _one_of(SAMPLERS),
    "pruner": _optional(_text),
    "pruner_options": _options,
    "epochs": _optional(_integer(1)),
    "top": _top,
    "margin": _real(_NON_NEGATIVE),
    "checkpoint_every": _integer(0),
    "executor": _one_of(EXECUTORS),
    "address": _optional(_text),
    "resources": _resources,
}


def _check_pruner(name: str | None, options: Mapping[str, Any]) -> None:
    """The pruner's own rules (``tunery.pruners.make_pruner``), named by our fields."""
    with _under("run.pruner"):
        make_pruner(name)
    with _under("run.pruner_options"):
        make_pruner(name, **options)


# --------------------------------------------------------------------------------------------------
# The whole config


@dataclass(frozen=True)
class TuneConfig:
    """A validated ``tune.toml``: five sections, and the file it came from (``None`` if none)."""

    study: StudySection
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    space: Space = field(default_factory=dict)
    run: RunSection = field(default_factory=RunSection)
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.space:
            raise ConfigError("space", {}, "at least one searched setting")
        _check_used(self.model, self.space)
        _check_data_searched(self.data, self.space)
        for name, distribution in self.space.items():
            _check_searched(self.model, name, distribution)
        if (
            self.run.pruner == "asha"
        ):  # its last rung must fit in the epochs (see make_config_pruner)
            with _under("run.pruner_options"):
                make_pruner("asha", **{"max_epochs": self.epochs, **self.run.pruner_options})

    @property
    def epochs(self) -> int:
        """Epochs per trial: ``run.epochs`` if set, else ``model.epochs``."""
        return self.run.epochs if self.run.epochs is not None else self.model.epochs

    def with_overrides(self, **overrides: Any) -> TuneConfig:
        """A copy with ``[run]`` keys (and ``name``, ``seed``, ``storage`` of ``[study]``) replaced.

        ``None`` values are skipped, so unset CLI flags can be passed as they are.
        """
        given = {key: value for key, value in overrides.items() if value is not None}
        study_keys = {"name", "seed", "storage"}
        run_keys = {f.name for f in dataclasses.fields(RunSection)}
        for key, value in given.items():
            if key not in study_keys | run_keys:
                known = ", ".join(sorted(study_keys | run_keys))
                raise ConfigError(key, value, f"a [run] key or a study key ({known})")
        study = {k: v for k, v in given.items() if k in study_keys}
        run = {k: v for k, v in given.items() if k in run_keys}
        return dataclasses.replace(
            self,
            study=dataclasses.replace(self.study, **study),
            run=dataclasses.replace(self.run, **run),
        )

    def to_dict(self) -> dict[str, Any]:
        """The config as TOML-shaped tables; ``config_from_dict`` reads it back equal."""
        tables: dict[str, Any] = {}
        for section in SECTIONS:
            if section == "space":
                tables[section] = space_to_dict(self.space)
                continue
            values = dataclasses.asdict(getattr(self, section))
            tables[section] = {k: _plain(v) for k, v in values.items() if v not in (None, {})}
        tables["run"].setdefault("pruner", "none")
        return tables

    def to_toml(self) -> str:
        """The config as TOML text (``load_config`` reads it back equal)."""
        return _dump_toml(self.to_dict())


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _endpoints(distribution: Distribution) -> list[tuple[str, Any]]:
    if isinstance(distribution, Choice):
        return [(f"choices[{i}]", option) for i, option in enumerate(distribution.options)]
    assert isinstance(distribution, Float | Int)  # the only other kinds a space holds
    return [("low", distribution.low), ("high", distribution.high)]


def _check_searched(model: ModelSection, name: str, distribution: Distribution) -> None:
    """A searched name must be a model setting, and every value it can take must be valid."""
    if name not in SEARCHABLE:
        raise ConfigError(f"space.{name}", name, "a searchable setting: " + ", ".join(SEARCHABLE))
    if name in _REAL_SETTINGS and isinstance(distribution, Int):
        expected = 'float bounds for a real setting (write 0.0, not 0, or add type = "float")'
        raise ConfigError(f"space.{name}", distribution.to_dict(), expected)
    if name in DATA_SEARCHABLE:
        return  # checked with the data section (_check_data_searched)
    for end, value in _endpoints(distribution):
        with _under(f"space.{name}.{end}"):
            trial_model(model, {name: value})


def _check_data_searched(data: DataSection, space: Space) -> None:
    """Searched data settings: valid values, and a source they change (the digits are 8 × 8)."""
    for name in sorted(set(space) & set(DATA_SEARCHABLE)):
        distribution = space[name]
        if name == "image_size" and data.source == DIGITS:
            expected = "a folder of photos in data.source (the 8 × 8 digits are not resized)"
            raise ConfigError(f"space.{name}", name, expected)
        if isinstance(distribution, Float):
            raise ConfigError(f"space.{name}", distribution.to_dict(), "integer bounds or choices")
        for end, value in _endpoints(distribution):
            with _under(f"space.{name}.{end}"):
                trial_data(data, {name: value})


def _check_used(model: ModelSection, space: Space) -> None:
    """A searched setting that the fixed optimizer or schedule ignores is surely a mistake."""
    searched = set(space)
    if "optimizer" not in searched:
        used = set(_OPTIMIZER_KEYS[model.optimizer])
        for name in sorted(searched & {"beta", "beta2", "epsilon"} - used):
            expected = (
                f"a setting the {model.optimizer!r} optimizer uses ({', '.join(sorted(used))})"
            )
            raise ConfigError(f"space.{name}", name, expected)
    if "decay" not in searched:
        for name, table in (("decay_rate", _DECAY_RATE), ("decay_every", _DECAY_EVERY)):
            if name in searched and model.decay not in table:
                raise ConfigError(f"space.{name}", name, f"model.decay = one of {', '.join(table)}")
    if "units" in searched and "num_layers" not in searched and not model.layers:
        raise ConfigError("space.units", "units", "hidden layers to resize: non-empty model.layers")
    if "num_layers" in searched and "units" not in searched and not model.layers:
        expected = "a hidden size to repeat: non-empty model.layers, or units searched too"
        raise ConfigError("space.num_layers", "num_layers", expected)


def hidden_layers(
    layers: tuple[int, ...], units: int | None = None, num_layers: int | None = None
) -> tuple[int, ...]:
    """The hidden sizes for searched ``units`` / ``num_layers`` (see the module docstring).

    ``hidden_layers((64, 32), units=50) == (50, 50)``;
    ``hidden_layers((64, 32), num_layers=3) == (64, 32, 32)``;
    ``hidden_layers((64, 32), units=20, num_layers=1) == (20,)``.
    """
    sizes = list(layers)
    if num_layers is not None:
        if not sizes and units is None:
            raise ConfigError("num_layers", num_layers, "a hidden size to repeat (layers or units)")
        filler = sizes[-1] if sizes else int(units or 0)
        sizes = (sizes + [filler] * num_layers)[:num_layers]
    if units is not None:
        sizes = [units] * len(sizes)
    return tuple(sizes)


def trial_model(model: ModelSection, params: Mapping[str, Any]) -> ModelSection:
    """The fixed ``model`` with a trial's searched ``params`` put in, validated.

    ``params`` use ``SEARCHABLE`` names; ``units`` and ``num_layers`` become ``layers``. A bad
    value raises ConfigError naming ``model.<setting>`` (``model.units`` for a bad width).
    """
    unknown = sorted(set(params) - set(SEARCHABLE))
    if unknown:
        raise ConfigError("params", unknown, "searchable settings: " + ", ".join(SEARCHABLE))
    units = _optional(_integer(1))(params.get("units"), "model.units")
    num_layers = _optional(_integer(1))(params.get("num_layers"), "model.num_layers")
    skipped = {*_LAYER_KEYS, *DATA_SEARCHABLE}
    settings = {k: v for k, v in params.items() if k not in skipped}
    layers = hidden_layers(model.layers, units, num_layers)
    return dataclasses.replace(model, layers=layers, **settings)


def trial_data(data: DataSection, params: Mapping[str, Any]) -> DataSection:
    """The fixed ``data`` with a trial's searched data settings (``image_size``) put in.

    Model settings in ``params`` are ignored; a bad value raises ConfigError naming ``data.<key>``.
    """
    changes = {name: params[name] for name in DATA_SEARCHABLE if name in params}
    return dataclasses.replace(data, **changes) if changes else data


# --------------------------------------------------------------------------------------------------
# Reading


_SECTION_TYPES: dict[str, type[Any]] = {
    "study": StudySection,
    "data": DataSection,
    "model": ModelSection,
    "run": RunSection,
}


def _keys_of(section: str) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(_SECTION_TYPES[section]))


def _table(tables: Mapping[str, Any], section: str) -> dict[str, Any]:
    table = tables.get(section, {})
    if not isinstance(table, Mapping):
        raise ConfigError(section, table, f"a table [{section}]")
    if section != "space":
        known = _keys_of(section)
        for key, value in table.items():
            if key not in known:
                raise ConfigError(
                    f"{section}.{key}", value, f"a key of [{section}]: {', '.join(known)}"
                )
    return dict(table)


def _build(section: str, values: Mapping[str, Any]) -> Any:
    return _SECTION_TYPES[section](**values)


def config_from_dict(
    tables: Mapping[str, Any], *, path: str | Path | None = None, name: str | None = None
) -> TuneConfig:
    """A config from TOML-shaped tables (what ``tomllib`` returns, or ``TuneConfig.to_dict()``).

    ``path`` is the file the tables came from: a relative ``data.source`` is resolved against its
    folder, and the study's name defaults to its stem (or to ``name``).
    """
    if not isinstance(tables, Mapping):
        raise ConfigError("config", tables, "a table of sections")
    for key, value in tables.items():
        if key not in SECTIONS:
            raise ConfigError(
                key, value, "one of the sections " + ", ".join(f"[{s}]" for s in SECTIONS)
            )
    origin = None if path is None else Path(path)
    study = _table(tables, "study")
    default_name = name or (origin.stem if origin is not None else None)
    if "name" not in study and default_name:
        study["name"] = default_name
    if "name" not in study:
        raise ConfigError("study.name", None, "a study name")
    data = _table(tables, "data")
    if origin is not None and isinstance(data.get("source"), str):
        data["source"] = _resolve_source(data["source"], origin.parent)
    space_table = _table(tables, "space")
    return TuneConfig(
        study=_build("study", study),
        data=_build("data", data),
        model=_build("model", _table(tables, "model")),
        space=space_from_config(space_table),
        run=_build("run", _table(tables, "run")),
        path=origin,
    )


def _resolve_source(source: str, folder: Path) -> str:
    if source == DIGITS or not source.strip():
        return source
    candidate = Path(source).expanduser()
    return str(candidate if candidate.is_absolute() else (folder / candidate).resolve())


def load_config(path: str | Path) -> TuneConfig:
    """Read and validate a ``tune.toml`` (see the module docstring); nothing is written."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError("config", str(file), f"a readable TOML file ({error})") from None
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("config", str(file), f"valid TOML ({error})") from None
    return config_from_dict(tables, path=file)


DEFAULT_TOML = """\
# tunery's built-in study: coarse to fine on the bundled 8x8 digits, 2 rounds of 20 trials.
[study]
name = "digits-default"
metric = "val_accuracy"
seed = 0

[data]
source = "digits"

[model]
layers = [64, 32]        # the searched units resize both hidden layers
batchnorm = true
optimizer = "adam"
epochs = 20

[space]
lr = { low = 1e-4, high = 1.0, scale = "log" }
beta = { low = 0.9, high = 0.999, scale = "one_minus_log" }
units = { low = 10, high = 100, type = "int" }
batch_size = { choices = [32, 64, 128, 256] }

[run]
trials = 40
rounds = 2
workers = 2
sampler = "random"
# No pruner: pruning is opt-in; every trial's full curve feeds the zoom and the ranking.
"""


def default_config() -> TuneConfig:
    """The embedded defaults (``DEFAULT_TOML``): bundled digits, a BN MLP, 2 rounds × 20 trials."""
    return config_from_dict(tomllib.loads(DEFAULT_TOML))


# --------------------------------------------------------------------------------------------------
# Writing: the few TOML forms a config holds (tomllib only reads).


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError("config", value, "TOML scalars, lists and tables")


def _dump_toml(tables: Mapping[str, Mapping[str, Any]]) -> str:
    blocks = []
    for section, table in tables.items():
        lines = [f"[{section}]"] + [f"{key} = {_toml_value(v)}" for key, v in table.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
