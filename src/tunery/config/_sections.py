"""A config's sections (``[study]``, ``[data]``, ``[model]``, ``[run]``) and their field checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from tunery._exceptions import ConfigError
from tunery._files import check_checkpoint_dir
from tunery._validation import (
    FRACTION,
    KEEP_PROB,
    POSITIVE,
    Interval,
    check_int,
    check_scalar,
    under,
)
from tunery.data import (
    DEFAULT_TEST_FRACTION,
    DEFAULT_VAL_FRACTION,
    DIGITS,
    AugmentSettings,
    parse_classes,
)
from tunery.data._normalize import NormalizeKind, check_normalize
from tunery.data._splits import check_fractions
from tunery.nn.model import Activation
from tunery.nn.optimizers import OPTIMIZERS
from tunery.nn.schedules import SCHEDULES, Schedule, make_schedule
from tunery.nn.spec import BACKENDS, TrainSpec, renamed
from tunery.pruners import make_pruner
from tunery.run import EXECUTORS, Resources, default_workers
from tunery.samplers import MODELS
from tunery.storage import parse_storage_url

DEFAULT_STORAGE = "sqlite:///tunery.db"
SECTIONS = ("study", "data", "model", "space", "run", "pbt")
METRICS = ("val_accuracy", "train_accuracy", "loss")
"""What the built-in objective can return: the last epoch's value of one of its reported metrics."""
SAMPLERS = ("random", "grid", "sobol")
GUIDED = MODELS
"""The models a zoomed round may draw from (``run.guided``); ``"none"``: its box uniformly."""

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
_LAYER_KEYS = ("units", "num_layers")
_CONV_KEYS = ("filters", "kernel", "conv_blocks")
MODEL_KINDS = ("mlp", "cnn")

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
    "instance_norm",
    "decay",
    "filters",
    "kernel",
    "conv_blocks",
    "image_size",
    *(f"augment.{name}" for name in AugmentSettings.__dataclass_fields__),
)
"""The names ``[space]`` may search: the model's settings, ``units`` and ``num_layers``, a CNN's
``filters``, ``kernel`` and ``conv_blocks``, the data's ``image_size`` (see ``DATA_SEARCHABLE``)
and the augmentation's amounts (``augment.rotation``..., see ``AUGMENT_SEARCHABLE``)."""
DATA_SEARCHABLE = ("image_size",)
"""The searchable names that belong to ``[data]``: each value loads (and caches) its own dataset."""
AUGMENT_SEARCHABLE = tuple(name for name in SEARCHABLE if name.startswith("augment."))
"""The searchable ``[data.augment]`` amounts: ``augment.<name>`` sets ``data.augment.<name>``
(the dataset stays the same: the augmentation is drawn per epoch while training)."""
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


def _one_of(options: tuple[str, ...], also: str = "") -> Check:
    """``also`` names a value converted before the check (``"'none'"`` for a TOML null)."""

    def check(value: Any, where: str) -> str:
        if value not in options:
            names = [*map(repr, options), *([also] if also else [])]
            raise ConfigError(where, value, "one of " + ", ".join(names))
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


def _blocks(value: Any, where: str) -> tuple[tuple[int, int], ...]:
    expected = "a non-empty list of [filters, kernel] pairs, e.g. [[16, 3], [32, 3]]"
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple) or not value:
        raise ConfigError(where, value, expected)
    blocks = []
    for i, block in enumerate(value):
        if isinstance(block, str | bytes) or not isinstance(block, list | tuple) or len(block) != 2:
            raise ConfigError(f"{where}[{i}]", block, "a [filters, kernel] pair, e.g. [16, 3]")
        filters = _integer(1)(block[0], f"{where}[{i}].filters")
        kernel = _integer(1)(block[1], f"{where}[{i}].kernel")
        blocks.append((filters, kernel))
    return tuple(blocks)


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
    with under(where):
        parse_storage_url(url)
    return url


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
    the file's folder when the config is read (``~`` is expanded). ``augment`` (the table
    ``[data.augment]``, ``tunery.data.AugmentSettings``) is how training images are augmented;
    left out, they are not. It changes training only, not what is loaded (``for_loading()``).
    ``validation_augment`` (``[data.validation_augment]``, the same amounts) changes the validation
    split instead: it becomes the clean photos and ``validation_copies`` copies changed once, with a
    seed of ``seed`` alone (``Dataset.with_changed_validation``), so the study selects on photos
    unlike the collection's while every trial sees the same ones.
    """

    source: str = DIGITS
    classes: str | None = None
    normalize: NormalizeKind = "standardize"
    seed: int = 0
    val_fraction: float = DEFAULT_VAL_FRACTION
    test_fraction: float = DEFAULT_TEST_FRACTION
    image_size: int = 64
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    validation_augment: AugmentSettings = field(default_factory=AugmentSettings)
    validation_copies: int = 3

    def __post_init__(self) -> None:
        for name in ("augment", "validation_augment"):
            settings = AugmentSettings.from_mapping(getattr(self, name), f"data.{name}")
            object.__setattr__(self, name, settings)
        classes: Any = self.classes
        if isinstance(classes, list | tuple):  # a TOML list: keep the text form
            object.__setattr__(self, "classes", ",".join(str(c) for c in classes))
        _check_fields(self, "data", _DATA_CHECKS)
        with under("data.classes"):
            parse_classes(self.classes)
        with under("data.normalize"):
            check_normalize(self.normalize)
        with under("data.val_fraction + data.test_fraction"):
            check_fractions(self.val_fraction, self.test_fraction)

    def for_loading(self) -> DataSection:
        """This section without its augmentation: what ``load_dataset`` reads (a cache key)."""
        none = AugmentSettings()
        return self if self.augment == none else replace(self, augment=none)


_DATA_CHECKS: dict[str, Check] = {
    "source": _text,
    "classes": _optional(_text),
    "normalize": _text,
    "seed": _integer(0),
    "val_fraction": _real(FRACTION),
    "test_fraction": _real(FRACTION),
    "image_size": _integer(1),
    "validation_copies": _integer(1),
}


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: the fixed parts of the trainer; any of ``SEARCHABLE`` may be searched instead.

    ``layers`` are the hidden sizes (the input and output sizes come from the data). With
    ``kind = "cnn"`` the model is a ``tunery.nn.CNN``: the ``conv`` blocks ``[filters, kernel]``
    (each Conv2D → BatchNorm2d, or a bias → ReLU → ``pool × pool`` max-pooling; ``pool = 1``:
    none), then ``layers`` as the hidden sizes of its dense head (``instance_norm = true`` first
    standardizes each photo per colour channel, ``tunery.nn.InstanceNorm2d``); it has no dropout
    (``keep_prob`` 1) and uses ReLU. ``lr``
    left out is the optimizer's default (``tunery.nn.spec.DEFAULT_LR``: 0.01 for gd and momentum,
    0.001 for rmsprop and adam, as for ``tunery train``). ``beta`` is β of momentum and RMSprop and
    β1 of Adam; ``decay_rate`` and ``decay_every`` set the chosen schedule's option (``None``: the
    schedule's default). ``train_spec()`` is the training recipe these settings make.
    """

    layers: tuple[int, ...] = (64, 32)
    kind: str = "mlp"
    conv: tuple[tuple[int, int], ...] = ((16, 3), (32, 3))
    pool: int = 2
    instance_norm: bool = False
    batchnorm: bool = True
    activation: Activation = "relu"
    optimizer: str = "adam"
    lr: float | None = None
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
        if self.kind == "cnn":
            if self.keep_prob != 1.0:
                raise ConfigError("model.keep_prob", self.keep_prob, "1.0 with kind = 'cnn'")
            if self.activation != "relu":
                raise ConfigError("model.activation", self.activation, "'relu' with kind = 'cnn'")
        elif self.instance_norm:
            expected = "false with kind = 'mlp' (it normalizes the channels of a CNN's photos)"
            raise ConfigError("model.instance_norm", self.instance_norm, expected)
        self.train_spec()  # the optimizer's and the schedule's own rules, named by our fields

    def train_spec(self) -> TrainSpec:
        """The training recipe of these settings (errors name ``model.<field>``)."""
        schedule = self.schedule()
        try:
            return TrainSpec.of(self, schedule=schedule)
        except ConfigError as error:
            raise renamed(error, "model.") from None

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
    "kind": _one_of(MODEL_KINDS),
    "conv": _blocks,
    "pool": _integer(1),
    "instance_norm": _boolean,
    "batchnorm": _boolean,
    "activation": _one_of(get_args(Activation)),
    "optimizer": _one_of(tuple(OPTIMIZERS)),
    "lr": _optional(_real(POSITIVE)),
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
    guided: str | None = None
    guided_batch: int = 8
    pruner: str | None = None
    pruner_options: Mapping[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    top: float | int = 0.1
    margin: float = 0.1
    checkpoint_every: int = 0
    executor: str = "local"
    address: str | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        for key in ("pruner", "guided"):
            if getattr(self, key) == "none":  # TOML has no null
                object.__setattr__(self, key, None)
        _check_fields(self, "run", _RUN_CHECKS)
        _check_pruner(self.pruner, self.pruner_options)
        if self.rounds > 1 and self.trials // self.rounds < _MIN_TOP:
            expected = f"at least {_MIN_TOP * self.rounds} ({_MIN_TOP} per round to zoom around)"
            raise ConfigError("run.trials", self.trials, expected)
        if self.guided is not None and self.rounds < 2:
            expected = "'none' with run.rounds = 1 (only zoomed rounds, 2 and later, are guided)"
            raise ConfigError("run.guided", self.guided, expected)


def _resources(value: Any, where: str) -> dict[str, float]:
    """``{ cpu = 1, gpu = 0.25 }``: what one trial holds on a cluster (``{}``: one CPU)."""
    if value == {}:
        return {}
    return Resources.from_mapping(value, where).to_dict()


def _checkpoint_dir(value: Any, where: str) -> str:
    """A folder or an fsspec URL (checked, kept as written: the study makes a path absolute)."""
    check_checkpoint_dir(value, where)
    return str(value)


_MIN_TOP = 3  # Study.zoom needs this many COMPLETE trials
_RUN_CHECKS: dict[str, Check] = {
    "trials": _integer(1),
    "workers": _integer(1),
    "rounds": _integer(1),
    "sampler": _one_of(SAMPLERS),
    "guided": _optional(_one_of(GUIDED, also="'none'")),
    "guided_batch": _integer(1),
    "pruner": _optional(_text),
    "pruner_options": _options,
    "epochs": _optional(_integer(1)),
    "top": _top,
    "margin": _real(_NON_NEGATIVE),
    "checkpoint_every": _integer(0),
    "executor": _one_of(EXECUTORS),
    "address": _optional(_text),
    "resources": _resources,
    "checkpoint_dir": _optional(_checkpoint_dir),
}


def _check_pruner(name: str | None, options: Mapping[str, Any]) -> None:
    """The pruner's own rules (``tunery.pruners.make_pruner``), named by our fields."""
    with under("run.pruner"):
        make_pruner(name)
    with under("run.pruner_options"):
        make_pruner(name, **options)


# --------------------------------------------------------------------------------------------------
# [pbt]: population-based training (``tunery.workflows.pbt``)

_QUANTILE = Interval(float, 0, 0.5)  # Ray Tune's rule: at most half the population is replaced
_PROBABILITY = Interval(float, 0, 1)


@dataclass(frozen=True)
class PBTSection:
    """``[pbt]``: population-based training, with Ray Tune's names where they mean the same.

    ``population`` members train side by side; every ``perturbation_interval`` epochs the bottom
    ``quantile_fraction`` of them load a top member's checkpoint (exploit) and perturb its
    hyperparameters by one of ``perturbation_factors`` on each one's scale, or redraw one from the
    space with ``resample_probability`` (explore). See ``tunery.workflows.pbt``.
    """

    population: int = 8
    perturbation_interval: int = 4
    quantile_fraction: float = 0.25
    resample_probability: float = 0.25
    perturbation_factors: tuple[float, float] = (0.8, 1.25)

    def __post_init__(self) -> None:
        _check_fields(self, "pbt", _PBT_CHECKS)


def _factors(value: Any, where: str) -> tuple[float, float]:
    expected = "two factors > 0, one below 1 and one above, e.g. [0.8, 1.25]"
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple) or len(value) != 2:
        raise ConfigError(where, value, expected)
    low, high = sorted(check_scalar(f"{where}[{i}]", v, POSITIVE) for i, v in enumerate(value))
    if not low < 1 < high:
        raise ConfigError(where, value, expected)
    return (float(value[0]), float(value[1]))


_PBT_CHECKS: dict[str, Check] = {
    "population": _integer(2),
    "perturbation_interval": _integer(1),
    "quantile_fraction": _real(_QUANTILE),
    "resample_probability": _real(_PROBABILITY),
    "perturbation_factors": _factors,
}


SECTION_TYPES: dict[str, type[Any]] = {
    "study": StudySection,
    "data": DataSection,
    "model": ModelSection,
    "run": RunSection,
    "pbt": PBTSection,
}
"""The dataclass that parses each table (``[space]`` has none: it becomes distributions)."""
