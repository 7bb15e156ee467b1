"""The whole config, its cross-section checks, and a trial's settings with its params put in."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunery._exceptions import ConfigError
from tunery._validation import (
    under,
)
from tunery.config._sections import (
    _CONV_KEYS,
    _DECAY_EVERY,
    _DECAY_RATE,
    _LAYER_KEYS,
    _REAL_SETTINGS,
    AUGMENT_SEARCHABLE,
    DATA_SEARCHABLE,
    SEARCHABLE,
    SECTIONS,
    DataSection,
    ModelSection,
    PBTSection,
    RunSection,
    StudySection,
    _integer,
    _optional,
)
from tunery.config._writing import _dump_toml
from tunery.data import DIGITS, AugmentSettings
from tunery.nn.cnn import feature_shape
from tunery.nn.spec import OPTIMIZER_FIELDS
from tunery.pruners import make_pruner
from tunery.space import Choice, Distribution, Float, Int, Space, space_to_dict

__all__ = [
    "TuneConfig",
    "hidden_layers",
    "trial_data",
    "trial_model",
]

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
    pbt: PBTSection = field(default_factory=PBTSection)
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.space:
            raise ConfigError("space", {}, "at least one searched setting")
        _check_used(self.model, self.space)
        _check_data_searched(self.data, self.space)
        _check_cnn_fits(self.model, self.data, self.space)
        for name, distribution in self.space.items():
            _check_searched(self.model, name, distribution)
        if (
            self.run.pruner == "asha"
        ):  # its last rung must fit in the epochs (see make_config_pruner)
            with under("run.pruner_options"):
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
            if section == "data":
                _drop_idle_augmentation(values, self.data)
            tables[section] = {k: _plain(v) for k, v in values.items() if v not in (None, {})}
        tables["run"].setdefault("pruner", "none")
        return tables

    def to_toml(self) -> str:
        """The config as TOML text (``load_config`` reads it back equal)."""
        return _dump_toml(self.to_dict())


def _drop_idle_augmentation(values: dict[str, Any], data: DataSection) -> None:
    """No ``[data.augment]`` table for no augmentation; the same for the validation photos."""
    if not data.augment.active:
        del values["augment"]
    if not data.validation_augment.active:
        del values["validation_augment"], values["validation_copies"]


def _plain(value: Any) -> Any:
    """Tuples as lists, nested ones too (a CNN's blocks), as TOML reads them back."""
    return [_plain(item) for item in value] if isinstance(value, tuple) else value


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
    if name in DATA_SEARCHABLE or name in AUGMENT_SEARCHABLE:
        return  # checked with the data section (_check_data_searched)
    for end, value in _endpoints(distribution):
        with under(f"space.{name}.{end}"):
            trial_model(model, {name: value})


def _check_data_searched(data: DataSection, space: Space) -> None:
    """Searched data settings: valid values, and a source they change (the digits are 8 × 8)."""
    for name in sorted(set(space) & set(AUGMENT_SEARCHABLE)):
        for end, value in _endpoints(space[name]):
            with under(f"space.{name}.{end}"):
                trial_data(data, {name: value})
    for name in sorted(set(space) & set(DATA_SEARCHABLE)):
        distribution = space[name]
        if name == "image_size" and data.source == DIGITS:
            expected = "a folder of photos in data.source (the 8 × 8 digits are not resized)"
            raise ConfigError(f"space.{name}", name, expected)
        if isinstance(distribution, Float):
            raise ConfigError(f"space.{name}", distribution.to_dict(), "integer bounds or choices")
        for end, value in _endpoints(distribution):
            with under(f"space.{name}.{end}"):
                trial_data(data, {name: value})


def _check_used(model: ModelSection, space: Space) -> None:
    """A searched setting that the fixed optimizer or schedule ignores is surely a mistake."""
    searched = set(space)
    if "optimizer" not in searched:
        used = set(OPTIMIZER_FIELDS[model.optimizer])
        for name in sorted(searched & {"beta", "beta2", "epsilon"} - used):
            expected = (
                f"a setting the {model.optimizer!r} optimizer uses ({', '.join(sorted(used))})"
            )
            raise ConfigError(f"space.{name}", name, expected)
    if "decay" not in searched:
        for name, table in (("decay_rate", _DECAY_RATE), ("decay_every", _DECAY_EVERY)):
            if name in searched and model.decay not in table:
                raise ConfigError(f"space.{name}", name, f"model.decay = one of {', '.join(table)}")
    if model.kind != "cnn":
        for name in sorted(searched & set(_CONV_KEYS)):
            raise ConfigError(f"space.{name}", name, "model.kind = 'cnn' (a convolutional setting)")
        if "instance_norm" in searched:
            expected = "model.kind = 'cnn' (it normalizes the channels of a CNN's photos)"
            raise ConfigError("space.instance_norm", "instance_norm", expected)
    if "units" in searched and "num_layers" not in searched and not model.layers:
        raise ConfigError("space.units", "units", "hidden layers to resize: non-empty model.layers")
    if "num_layers" in searched and "units" not in searched and not model.layers:
        expected = "a hidden size to repeat: non-empty model.layers, or units searched too"
        raise ConfigError("space.num_layers", "num_layers", expected)


def _check_cnn_fits(model: ModelSection, data: DataSection, space: Space) -> None:
    """A CNN's blocks must leave at least one pixel of the images it gets, for every searched
    number of blocks, kernel size and image size at the ends of their ranges (the digits are
    8 × 8, photos ``data.image_size``; .h5 images are checked when loaded)."""
    if model.kind != "cnn":
        return
    if "image_size" in space:
        sides = [int(value) for _, value in _endpoints(space["image_size"])]
    else:
        sides = [8] if data.source == DIGITS else [data.image_size]
    if data.source != DIGITS and Path(data.source).suffix == ".h5":
        return
    counts = (
        [int(v) for _, v in _endpoints(space["conv_blocks"])] if "conv_blocks" in space else [None]
    )
    kernels = [int(v) for _, v in _endpoints(space["kernel"])] if "kernel" in space else [None]
    where = "space.conv_blocks" if "conv_blocks" in space else "model.conv"
    for side in sides:
        for count in counts:
            for kernel in kernels:
                blocks = conv_blocks(model.conv, kernel=kernel, count=count)
                with under(where):
                    feature_shape(blocks, model.pool, (side, side))


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


def conv_blocks(
    blocks: tuple[tuple[int, int], ...],
    filters: int | None = None,
    kernel: int | None = None,
    count: int | None = None,
) -> tuple[tuple[int, int], ...]:
    """A CNN's blocks for searched ``conv_blocks`` (``count``), ``filters`` and ``kernel``.

    ``count`` keeps the first blocks or repeats the last one; ``filters`` is the first block's
    filter count, the others keep their ratio to it (rounded); ``kernel`` is every block's size:
    ``conv_blocks(((16, 3), (32, 3)), filters=24) == ((24, 3), (48, 3))``;
    ``conv_blocks(((16, 3), (32, 3)), count=3, kernel=5) == ((16, 5), (32, 5), (32, 5))``.
    """
    sizes = list(blocks)
    if count is not None:
        sizes = (sizes + [sizes[-1]] * count)[:count]
    if filters is not None:
        first = sizes[0][0]
        sizes = [(max(1, round(filters * f / first)), k) for f, k in sizes]
    if kernel is not None:
        sizes = [(f, kernel) for f, _ in sizes]
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
    searched_conv = [
        _optional(_integer(1))(params.get(name), f"model.{name}") for name in _CONV_KEYS
    ]
    skipped = {*_LAYER_KEYS, *_CONV_KEYS, *DATA_SEARCHABLE, *AUGMENT_SEARCHABLE}
    settings = {k: v for k, v in params.items() if k not in skipped}
    layers = hidden_layers(model.layers, units, num_layers)
    conv = conv_blocks(model.conv, *searched_conv)
    return dataclasses.replace(model, layers=layers, conv=conv, **settings)


def trial_data(data: DataSection, params: Mapping[str, Any]) -> DataSection:
    """The fixed ``data`` with a trial's searched data settings (``image_size``, the
    ``augment.<name>`` amounts) put in.

    Model settings in ``params`` are ignored; a bad value raises ConfigError naming ``data.<key>``
    (``data.augment.<name>``).
    """
    changes: dict[str, Any] = {name: params[name] for name in DATA_SEARCHABLE if name in params}
    amounts = {
        name.removeprefix("augment."): params[name] for name in AUGMENT_SEARCHABLE if name in params
    }
    if amounts:
        table = {**data.augment.to_dict(), **amounts}
        changes["augment"] = AugmentSettings.from_mapping(table, "data.augment")
    return dataclasses.replace(data, **changes) if changes else data
