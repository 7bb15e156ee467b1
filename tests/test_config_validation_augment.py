"""``[data.validation_augment]``: the validation split with changed copies of its photos, fixed per
study, so that a search selects on photos unlike the collection's. Read, checked, written back,
loaded, and what the study's trials are scored on."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.config import config_from_dict, trial_data
from tunery.data import Augmenter, AugmentSettings, load_dataset
from tunery.workflows.objective import DatasetCache, build_trainer, load_data_section

BASE: dict[str, Any] = {
    "study": {"name": "tiny", "storage": ":memory:"},
    "data": {"source": "digits"},
    "model": {"layers": [16], "epochs": 2},
    "space": {"lr": {"low": 1e-3, "high": 1e-1, "scale": "log"}},
    "run": {"trials": 2, "workers": 1},
}
TOML = """
[study]
name = "robust"
[data]
source = "digits"
validation_copies = 2
[data.validation_augment]
rotation = 30
scale = 0.1
contrast = 0.3
[model]
layers = [16]
[space]
lr = { low = 1e-3, high = 1e-1, scale = "log" }
augment.rotation = { low = 0, high = 30 }
"""
TILT = AugmentSettings(rotation=30, scale=0.1, contrast=0.3)


def _tables(**data: Any) -> dict[str, Any]:
    tables = copy.deepcopy(BASE)
    tables["data"].update(data)
    return tables


def test_the_table_reads_from_toml_round_trips_and_is_left_out_when_idle() -> None:
    config = config_from_dict(tomllib.loads(TOML))
    assert config.data.validation_augment == TILT
    assert config.data.validation_copies == 2
    assert not config.data.augment.active
    assert config_from_dict(tomllib.loads(config.to_toml())) == config
    plain = config_from_dict(BASE).to_dict()["data"]
    assert "validation_augment" not in plain
    assert "validation_copies" not in plain


def test_bad_amounts_unknown_keys_and_bad_copies_name_their_field() -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(_tables(validation_augment={"rotation": -5}))
    assert (caught.value.field, caught.value.value) == ("data.validation_augment.rotation", -5)
    with pytest.raises(ConfigError, match=r"data\.validation_augment\.tilt: expected one of"):
        config_from_dict(_tables(validation_augment={"tilt": 5}))
    for copies in (0, -1, 1.5, "2", True):
        with pytest.raises(ConfigError) as caught:
            config_from_dict(_tables(validation_augment={"flip": True}, validation_copies=copies))
        assert caught.value.field == "data.validation_copies"
        assert caught.value.value == copies


def test_its_amounts_are_not_searchable() -> None:
    tables = _tables(validation_augment={"rotation": 10})
    tables["space"]["validation_augment.rotation"] = {"low": 0, "high": 30}
    with pytest.raises(ConfigError, match=r"space\.validation_augment\.rotation"):
        config_from_dict(tables)


def test_the_validation_split_is_the_clean_photos_then_changed_copies() -> None:
    config = config_from_dict(tomllib.loads(TOML))
    clean = load_dataset("digits")
    data = load_data_section(config.data)
    n = len(clean.y_val)
    assert data.X_val.shape == (3 * n, clean.num_features)
    np.testing.assert_array_equal(data.X_val[:n], clean.X_val)
    np.testing.assert_array_equal(data.y_val, np.tile(clean.y_val, 3))
    for copy_ in (data.X_val[n : 2 * n], data.X_val[2 * n :]):
        assert np.abs(copy_ - clean.X_val).mean() > 0.1  # really changed
    assert not np.array_equal(data.X_val[n : 2 * n], data.X_val[2 * n :])  # each copy its own
    np.testing.assert_array_equal(data.X_train, clean.X_train)
    np.testing.assert_array_equal(data.X_test, clean.X_test)


def test_the_copies_are_the_augmenters_with_a_generator_of_the_split_seed() -> None:
    clean = load_dataset("digits", seed=3)
    changed = clean.with_changed_validation(TILT, 1, seed=3)
    assert clean.image_shape is not None
    augmenter = Augmenter(
        TILT, clean.image_shape, mean=clean.normalizer.mean, std=clean.normalizer.std
    )
    expected = augmenter(clean.X_val, np.random.default_rng(3))
    np.testing.assert_array_equal(changed.X_val[len(clean.y_val) :], expected)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31), copies=st.integers(1, 3))
def test_one_seed_gives_the_same_photos_and_another_seed_others(seed: int, copies: int) -> None:
    clean = _DIGITS
    first = clean.with_changed_validation(TILT, copies, seed)
    again = clean.with_changed_validation(TILT, copies, seed)
    other = clean.with_changed_validation(TILT, copies, seed + 1)
    np.testing.assert_array_equal(first.X_val, again.X_val)
    assert len(first.y_val) == (copies + 1) * len(clean.y_val)
    n = len(clean.y_val)
    assert not np.array_equal(first.X_val[n:], other.X_val[n:])


def test_a_trials_augmentation_keeps_the_validation_photos_and_the_cache_one_load() -> None:
    config = config_from_dict(tomllib.loads(TOML))
    cache = DatasetCache()
    first = cache.get(trial_data(config.data, {"augment.rotation": 5}))
    second = cache.get(trial_data(config.data, {"augment.rotation": 25}))
    assert first is second
    assert len(first.y_val) == 3 * len(load_dataset("digits").y_val)


def test_trials_are_scored_on_the_changed_validation_photos() -> None:
    config = config_from_dict(tomllib.loads(TOML))
    data = load_data_section(config.data)
    trainer = build_trainer(config, {"lr": 0.05}, data)
    trainer.run(2)
    n = len(data.y_val) // 3
    predicted = trainer.model.predict(data.X_val)
    whole = float((predicted == data.y_val).mean())
    assert trainer.history.val_accuracy[-1] == pytest.approx(whole)
    clean = float((predicted[:n] == data.y_val[:n]).mean())
    changed = float((predicted[n:] == data.y_val[n:]).mean())
    assert changed < clean  # the tilted photos are harder, and they count


def test_colour_amounts_on_grey_digits_name_the_validation_field() -> None:
    config = config_from_dict(_tables(validation_augment={"hue": 0.05}))
    with pytest.raises(ConfigError, match=r"data\.validation_augment\.hue: expected 0 for images"):
        load_data_section(config.data)


def test_a_data_set_without_images_is_refused() -> None:
    import dataclasses

    flat = dataclasses.replace(_DIGITS, image_shape=None)
    with pytest.raises(ConfigError, match=r"data\.validation_augment: expected a data set of"):
        flat.with_changed_validation(TILT, 1, 0)
    with pytest.raises(ConfigError, match=r"data\.validation_copies: expected an integer >= 1"):
        _DIGITS.with_changed_validation(TILT, 0, 0)


_DIGITS = load_dataset("digits")
