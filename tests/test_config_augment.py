"""``[data.augment]`` and the searched ``augment.<name>`` amounts: read, checked, written back, put
into a trial's data section, and trained on by the built-in objective."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.config import (
    AUGMENT_SEARCHABLE,
    SEARCHABLE,
    config_from_dict,
    trial_data,
    trial_model,
)
from tunery.data import AUGMENT_AMOUNTS, AugmentSettings, load_dataset
from tunery.space import Float, Int
from tunery.workflows.augmenting import AugmentingEngine
from tunery.workflows.objective import DatasetCache, build_trainer

BASE: dict[str, Any] = {
    "study": {"name": "tiny", "storage": "sqlite:///tiny.db"},
    "data": {"source": "digits"},
    "model": {"layers": [16], "epochs": 2},
    "space": {"lr": {"low": 1e-3, "high": 1e-1, "scale": "log"}},
    "run": {"trials": 4, "workers": 1},
}
TOML = """
[study]
name = "signs"
[data]
source = "digits"
[data.augment]
rotation = 15
scale = 0.1
flip = true
brightness = 0.2
contrast = 0.2
[model]
layers = [16]
[space]
lr = { low = 1e-3, high = 1e-1, scale = "log" }
augment.rotation = { low = 0, high = 30 }
augment.brightness = { low = 0.0, high = 0.4 }
augment.flip = { choices = [true, false] }
"""


def _tables(**data: Any) -> dict[str, Any]:
    tables = copy.deepcopy(BASE)
    tables["data"].update(data)
    return tables


def test_the_table_and_the_dotted_space_keys_read_from_toml() -> None:
    config = config_from_dict(tomllib.loads(TOML))
    assert config.data.augment == AugmentSettings(
        rotation=15, scale=0.1, flip=True, brightness=0.2, contrast=0.2
    )
    assert config.space["augment.rotation"] == Int(0, 30)
    assert config.space["augment.brightness"] == Float(0.0, 0.4)
    assert set(AUGMENT_SEARCHABLE) == {f"augment.{n}" for n in (*AUGMENT_AMOUNTS, "flip")}
    assert set(AUGMENT_SEARCHABLE) <= set(SEARCHABLE)


def test_the_config_round_trips_through_toml_and_omits_an_idle_table() -> None:
    config = config_from_dict(tomllib.loads(TOML))
    assert config_from_dict(tomllib.loads(config.to_toml())) == config
    plain = config_from_dict(BASE)
    assert "augment" not in plain.to_dict()["data"]
    assert not plain.data.augment.active


@given(name=st.sampled_from(AUGMENT_AMOUNTS), value=st.floats(-1e3, -1e-3))
def test_a_bad_amount_names_its_field(name: str, value: float) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(_tables(augment={name: value}))
    assert caught.value.field == f"data.augment.{name}"
    assert caught.value.value == value


def test_unknown_keys_and_bad_searched_bounds_are_named() -> None:
    with pytest.raises(ConfigError, match=r"data\.augment\.rotate: expected one of rotation"):
        config_from_dict(_tables(augment={"rotate": 15}))
    with pytest.raises(ConfigError, match=r"data\.augment: expected a table"):
        config_from_dict(_tables(augment=15))
    tables = copy.deepcopy(BASE)
    tables["space"]["augment.rotation"] = {"low": 0, "high": 200}
    with pytest.raises(ConfigError) as caught:
        config_from_dict(tables)
    assert caught.value.field == "space.augment.rotation.high"
    assert caught.value.value == 200
    assert caught.value.expected == "a number in [0, 180]"


def test_a_trials_amounts_go_into_its_data_section_not_its_model() -> None:
    config = config_from_dict(tomllib.loads(TOML))
    params = {"lr": 0.01, "augment.rotation": 25, "augment.flip": False}
    data = trial_data(config.data, params)
    assert data.augment.rotation == 25.0
    assert data.augment.flip is False
    assert data.augment.scale == 0.1  # the table's value, not searched
    assert trial_model(config.model, params).lr == 0.01
    assert data.for_loading() == config.data.for_loading()
    with pytest.raises(ConfigError, match=r"data\.augment\.hue"):
        trial_data(config.data, {"augment.hue": 0.9})


def test_the_objective_trains_on_augmented_images_and_loads_the_data_once() -> None:
    config = config_from_dict(tomllib.loads(TOML))
    cache = DatasetCache()
    first = cache.get(trial_data(config.data, {"augment.rotation": 5}))
    second = cache.get(trial_data(config.data, {"augment.rotation": 25}))
    assert first is second
    assert len(cache) == 1
    trainer = build_trainer(config, {"lr": 0.01, "augment.rotation": 5}, first)
    assert isinstance(trainer.engine, AugmentingEngine)
    assert trainer.engine.augmenter.settings.rotation == 5.0
    trainer.run(1)
    assert np.isfinite(trainer.history.cost[-1])
    plain = build_trainer(config_from_dict(BASE), {"lr": 0.01}, first)
    assert not isinstance(plain.engine, AugmentingEngine)
    # a searched amount at 0: the engine stays, idle, so every trial has the same generators
    searched = copy.deepcopy(BASE)
    searched["space"]["augment.rotation"] = {"low": 0, "high": 30}
    idle = build_trainer(config_from_dict(searched), {"lr": 0.01, "augment.rotation": 0}, first)
    assert isinstance(idle.engine, AugmentingEngine)
    assert not idle.engine.augmenter.settings.active


def test_colour_amounts_on_grey_digits_are_refused_when_the_trainer_is_built() -> None:
    config = config_from_dict(_tables(augment={"hue": 0.05}))
    with pytest.raises(ConfigError, match=r"data\.augment\.hue: expected 0 for images without 3"):
        build_trainer(config, {"lr": 0.01}, load_dataset("digits"))


def test_the_augmentation_example_loads_and_round_trips() -> None:
    from pathlib import Path

    from tunery.config import load_config

    examples = Path(__file__).resolve().parents[1] / "examples"
    config = load_config(examples / "signs-augment.toml")
    assert config.data.augment == AugmentSettings(flip=True)
    # row (c) of the shifted benchmark, measured before the channel mix existed: all but that
    searched = {f"augment.{n}" for n in AUGMENT_AMOUNTS if n != "mix"}
    assert searched <= set(config.space)
    assert config_from_dict(config.to_dict()) == config
