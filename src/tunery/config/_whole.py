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
    _DECAY_EVERY,
    _DECAY_RATE,
    _LAYER_KEYS,
    _REAL_SETTINGS,
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
from tunery.data import DIGITS
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
        with under(f"space.{name}.{end}"):
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
