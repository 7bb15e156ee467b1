"""Reading a config: a TOML file or a dict of tables, and the built-in default study."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunery._exceptions import ConfigError
from tunery.config._sections import SECTION_TYPES, SECTIONS
from tunery.config._whole import TuneConfig
from tunery.data import DIGITS
from tunery.space import space_from_config

__all__ = ["DEFAULT_TOML", "config_from_dict", "default_config", "load_config"]

# --------------------------------------------------------------------------------------------------
# Reading


def _keys_of(section: str) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(SECTION_TYPES[section]))


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
    return SECTION_TYPES[section](**values)


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
        pbt=_build("pbt", _table(tables, "pbt")),
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
