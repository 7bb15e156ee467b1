"""tune.toml: every section validated, every bad field named by its path, round trips exact."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SIGNS
from tunery import ConfigError
from tunery.config import (
    DATA_SEARCHABLE,
    SEARCHABLE,
    DataSection,
    ModelSection,
    StudySection,
    TuneConfig,
    config_from_dict,
    default_config,
    hidden_layers,
    load_config,
    trial_data,
    trial_model,
)
from tunery.space import Choice, Float, Int

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

BASE: dict[str, Any] = {
    "study": {"name": "tiny", "storage": "sqlite:///tiny.db"},
    "data": {"source": "digits"},
    "model": {"layers": [16], "epochs": 2},
    "space": {"lr": {"low": 1e-3, "high": 1e-1, "scale": "log"}},
    "run": {"trials": 4, "workers": 1},
}


def with_change(section: str, key: str, value: Any) -> dict[str, Any]:
    """BASE with ``[section] key = value`` (a new section if needed)."""
    tables = copy.deepcopy(BASE)
    tables.setdefault(section, {})[key] = value
    return tables


def error_of(tables: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(tables)
    return caught.value


# -------------------------------------------------------------------------------- reading


def test_base_config_reads_with_defaults_filled_in() -> None:
    config = config_from_dict(BASE)
    assert config.study == StudySection(name="tiny", storage="sqlite:///tiny.db")
    assert config.model.layers == (16,)
    assert config.model.optimizer == "adam"
    assert config.space == {"lr": Float(1e-3, 1e-1, scale="log")}
    assert config.run.trials == 4
    assert config.epochs == 2  # model.epochs, as run.epochs is not set


def test_the_course_examples_of_the_issue_read_as_their_distributions() -> None:
    space = {
        "lr": {"low": 1e-4, "high": 1, "scale": "log"},
        "beta": {"low": 0.9, "high": 0.999, "scale": "one_minus_log"},
        "units": {"low": 10, "high": 100, "type": "int"},
        "batch_size": {"choices": [32, 64, 128, 256]},
    }
    config = config_from_dict({**BASE, "space": space})
    assert config.space == {
        "lr": Float(1e-4, 1.0, scale="log"),
        "beta": Float(0.9, 0.999, scale="one_minus_log"),
        "units": Int(10, 100),
        "batch_size": Choice([32, 64, 128, 256]),
    }


def test_round_trip_through_dict_and_toml_text(tmp_path: Path) -> None:
    tables = copy.deepcopy(BASE)
    tables["model"].update(decay="step", decay_rate=0.5, decay_every=3, keep_prob=0.8)
    tables["run"].update(pruner="median", pruner_options={"warmup_epochs": 1}, rounds=2, trials=6)
    tables["space"]["units"] = {"low": 4, "high": 32}
    config = config_from_dict(tables)
    assert config_from_dict(config.to_dict()) == config
    path = tmp_path / "again.toml"
    path.write_text(config.to_toml(), encoding="utf-8")
    assert load_config(path) == config
    assert tomllib.loads(config.to_toml()) == config.to_dict()


def test_default_config_is_the_coarse_to_fine_digits_study() -> None:
    config = default_config()
    assert config.data.source == "digits"
    assert config.model.batchnorm
    assert config.run.rounds == 2
    assert config.run.workers == 2
    assert set(config.space) == {"lr", "beta", "units", "batch_size"}
    assert config.space["lr"].scale == "log"  # type: ignore[attr-defined]
    assert config.space["beta"].scale == "one_minus_log"  # type: ignore[attr-defined]
    assert isinstance(config.space["units"], Int)
    assert isinstance(config.space["batch_size"], Choice)
    assert config_from_dict(tomllib.loads(config.to_toml())) == config


def test_name_defaults_to_the_file_stem_and_source_resolves_against_its_folder(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "my-study.toml"
    path.write_text(
        '[data]\nsource = "../photos"\n[space]\nlr = { low = 0.001, high = 0.1 }\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.study.name == "my-study"
    assert Path(config.data.source) == (tmp_path / "photos").resolve()
    assert config.path == path


def test_the_digits_keyword_and_absolute_paths_are_kept(tmp_path: Path) -> None:
    absolute = str(tmp_path / "elsewhere")
    for source in ("digits", absolute):
        tables = with_change("data", "source", source)
        assert config_from_dict(tables, path=tmp_path / "x.toml").data.source == source


def test_direction_follows_the_metric() -> None:
    config = config_from_dict(with_change("study", "metric", "loss"))
    assert config.study.direction == "minimize"
    tables = with_change("study", "metric", "loss")
    tables["study"]["direction"] = "maximize"
    assert error_of(tables).field == "study.direction"


def test_classes_as_a_toml_list_is_kept_as_text() -> None:
    config = config_from_dict(with_change("data", "classes", [0, 2, 4]))
    assert config.data.classes == "0,2,4"


def test_both_examples_load_and_validate() -> None:
    digits = load_config(EXAMPLES / "digits.toml")
    signs = load_config(EXAMPLES / "signs.toml")
    assert digits.data.source == "digits"
    assert Path(signs.data.source) == SIGNS.resolve()
    assert signs.data.classes == "0-5"
    assert signs.model.layers == (25, 12)
    assert signs.model.batchnorm
    assert set(signs.space) == {"lr", "beta", "batch_size", "l2", "keep_prob", "image_size"}
    for config in (digits, signs):
        assert config_from_dict(config.to_dict()) == config


def test_the_cnn_example_loads_and_validates() -> None:
    config = load_config(EXAMPLES / "signs-cnn.toml")
    assert Path(config.data.source) == SIGNS.resolve()
    assert config.data.image_size == 32
    assert config.model.kind == "cnn"
    assert config.model.conv == ((16, 3), (32, 3))
    assert {"filters", "kernel", "conv_blocks"} <= set(config.space)
    assert config_from_dict(config.to_dict()) == config


def test_the_robust_cnn_example_fixes_instance_norm_and_the_largest_augmentation() -> None:
    config = load_config(EXAMPLES / "signs-cnn-robust.toml")
    assert config.model.kind == "cnn"
    assert config.model.instance_norm is True
    assert config.data.augment.rotation == 30.0
    assert config.data.augment.flip is True
    assert not any(name.startswith("augment.") for name in config.space)
    assert config_from_dict(config.to_dict()) == config


# ------------------------------------------------------------------------------- bad configs

BAD_CASES = [
    # unknown keys, at every level
    pytest.param(("extra", "x", 1), "extra", id="unknown-section"),
    pytest.param(("study", "nmae", "x"), "study.nmae", id="unknown-study-key"),
    pytest.param(("data", "sorce", "digits"), "data.sorce", id="unknown-data-key"),
    pytest.param(("model", "layer", [4]), "model.layer", id="unknown-model-key"),
    pytest.param(("run", "trails", 3), "run.trails", id="unknown-run-key"),
    pytest.param(
        ("space", "lr", {"low": 1e-3, "high": 1.0, "scal": "log"}),
        "space.lr",
        id="unknown-space-key",
    ),
    # wrong types
    pytest.param(("run", "trials", "ten"), "run.trials", id="trials-str"),
    pytest.param(("run", "trials", 2.5), "run.trials", id="trials-float"),
    pytest.param(("run", "workers", True), "run.workers", id="workers-bool"),
    pytest.param(("model", "batchnorm", 1), "model.batchnorm", id="batchnorm-int"),
    pytest.param(("model", "layers", 16), "model.layers", id="layers-int"),
    pytest.param(("model", "layers", [16, "x"]), "model.layers[1]", id="layers-item"),
    pytest.param(("study", "seed", -1), "study.seed", id="seed-negative"),
    pytest.param(("study", "storage", "postgres://x"), "study.storage", id="storage-url"),
    pytest.param(("study", "metric", "accuracy"), "study.metric", id="metric-unknown"),
    pytest.param(("data", "val_fraction", 1.5), "data.val_fraction", id="fraction"),
    pytest.param(("data", "normalize", "zscore"), "data.normalize", id="normalize"),
    pytest.param(("model", "optimizer", "adamw"), "model.optimizer", id="optimizer"),
    pytest.param(("model", "lr", 0), "model.lr", id="lr-zero"),
    pytest.param(("model", "keep_prob", 0.0), "model.keep_prob", id="keep-prob"),
    pytest.param(("model", "decay_rate", 0.5), "model.decay_rate", id="rate-without-decay"),
    pytest.param(("model", "backend", "jax"), "model.backend", id="backend"),
    pytest.param(("run", "sampler", "tpe"), "run.sampler", id="sampler"),
    pytest.param(("run", "pruner", "hyperband"), "run.pruner", id="pruner"),
    pytest.param(("run", "rounds", 3), "run.trials", id="too-few-trials-per-round"),
    pytest.param(("run", "top", 0), "run.top", id="top"),
    # bad bounds
    pytest.param(
        ("space", "lr", {"low": 0.0, "high": 1.0, "scale": "log"}),
        "space.lr.low",
        id="log-low-zero",
    ),
    pytest.param(("space", "lr", {"low": 0.1, "high": 0.01}), "space.lr.high", id="low>high"),
    pytest.param(
        ("space", "keep_prob", {"low": 0.5, "high": 1.5}),
        "space.keep_prob.high",
        id="keep-prob-high",
    ),
    pytest.param(
        ("space", "beta", {"low": 0.9, "high": 1.0, "scale": "one_minus_log"}),
        "space.beta.high",
        id="beta-one",
    ),
    pytest.param(
        ("space", "batch_size", {"choices": [32, 0]}),
        "space.batch_size.choices[1]",
        id="batch-size-choice",
    ),
    pytest.param(
        ("space", "batch_size", {"low": 16.0, "high": 64.0}),
        "space.batch_size.low",
        id="batch-size-float",
    ),
    pytest.param(("space", "l2", {"low": 0, "high": 1}), "space.l2", id="int-range-for-a-real"),
    # unknown or unused searched names
    pytest.param(
        ("space", "momentum", {"low": 0.8, "high": 0.99}), "space.momentum", id="unknown-space-name"
    ),
    pytest.param(("space", "epochs", {"low": 1, "high": 9}), "space.epochs", id="epochs-searched"),
    pytest.param(
        ("space", "decay_rate", {"low": 0.5, "high": 0.9}),
        "space.decay_rate",
        id="decay-rate-without-decay",
    ),
]


@pytest.mark.parametrize(("change", "field"), BAD_CASES)
def test_every_bad_field_is_named_by_its_path(change: tuple[str, str, Any], field: str) -> None:
    section, key, value = change
    if section == "extra":
        tables = {**copy.deepcopy(BASE), key: value}
        field = key
    else:
        tables = with_change(section, key, value)
    error = error_of(tables)
    assert error.field == field
    assert str(error).startswith(f"{field}: expected ")


def test_pruner_options_are_checked_by_the_pruner() -> None:
    tables = with_change("run", "pruner", "median")
    tables["run"]["pruner_options"] = {"patience": 1}
    error = error_of(tables)
    assert error.field == "run.pruner_options"
    assert "warmup_epochs" in error.expected  # the options it does take


def test_asha_rungs_must_fit_in_the_epoch_budget() -> None:
    tables = with_change("run", "pruner", "asha")
    tables["run"]["pruner_options"] = {"min_epochs": 5}
    assert error_of(tables).field == "run.pruner_options"  # model.epochs is 2
    tables["run"]["epochs"] = 10
    assert config_from_dict(tables).run.pruner == "asha"


def test_an_unknown_key_message_lists_the_known_ones() -> None:
    error = error_of(with_change("run", "trails", 3))
    assert "trials" in error.expected
    assert error.value == 3


def test_a_searched_setting_the_optimizer_ignores_is_refused() -> None:
    tables = with_change("model", "optimizer", "momentum")
    tables["space"]["beta2"] = {"low": 0.99, "high": 0.9999, "scale": "one_minus_log"}
    error = error_of(tables)
    assert error.field == "space.beta2"
    assert "momentum" in error.expected
    tables["space"]["optimizer"] = {"choices": ["momentum", "adam"]}  # then it may matter
    assert "beta2" in config_from_dict(tables).space


def test_an_empty_space_and_a_missing_name_are_errors() -> None:
    tables = copy.deepcopy(BASE)
    tables["space"] = {}
    assert error_of(tables).field == "space"
    del tables["study"]["name"]
    tables["space"] = BASE["space"]
    assert error_of(tables).field == "study.name"


def test_load_config_names_unreadable_files_and_toml_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        load_config(tmp_path / "absent.toml")
    assert missing.value.field == "config"
    broken = tmp_path / "broken.toml"
    broken.write_text("[run\ntrials = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="valid TOML"):
        load_config(broken)


def test_reading_a_config_creates_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tune.toml"
    path.write_text(default_config().to_toml(), encoding="utf-8")
    load_config(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tune.toml"]


# ------------------------------------------------------------------------------- overrides


def test_overrides_replace_run_and_study_keys_and_skip_none() -> None:
    config = config_from_dict(BASE)
    changed = config.with_overrides(
        trials=9, epochs=3, pruner="median", seed=7, name="other", workers=None
    )
    assert changed.run.trials == 9
    assert changed.epochs == 3
    assert changed.run.pruner == "median"
    assert changed.study.seed == 7
    assert changed.study.name == "other"
    assert changed.run.workers == config.run.workers
    assert changed.with_overrides(pruner="none").run.pruner is None
    pruned = config_from_dict(with_change("run", "pruner", "median")).with_overrides(
        pruner_options={"warmup_epochs": 2}
    )
    assert pruned.with_overrides(pruner="none").run.pruner is None  # options no longer apply


def test_bad_overrides_are_named_like_the_config_keys() -> None:
    config = config_from_dict(BASE)
    with pytest.raises(ConfigError) as caught:
        config.with_overrides(trials=0)
    assert caught.value.field == "run.trials"
    with pytest.raises(ConfigError) as unknown:
        config.with_overrides(trails=3)
    assert unknown.value.field == "trails"


# -------------------------------------------------------------------- searched model settings


@given(
    layers=st.lists(st.integers(1, 64), max_size=4).map(tuple),
    units=st.none() | st.integers(1, 128),
    num_layers=st.none() | st.integers(1, 6),
)
def test_units_and_num_layers_map_onto_hidden_layers(
    layers: tuple[int, ...], units: int | None, num_layers: int | None
) -> None:
    if num_layers is not None and not layers and units is None:
        with pytest.raises(ConfigError):  # no width to repeat
            hidden_layers(layers, units, num_layers)
        return
    sizes = hidden_layers(layers, units, num_layers)
    assert len(sizes) == (len(layers) if num_layers is None else num_layers)
    if units is not None:
        assert set(sizes) <= {units}
    elif num_layers is not None:
        # num_layers alone keeps the given sizes and repeats the last one
        assert sizes == tuple((list(layers) + [layers[-1]] * num_layers)[:num_layers])
    else:
        assert sizes == layers


def test_trial_model_puts_params_in_and_validates_them() -> None:
    model = ModelSection(layers=(64, 32), optimizer="adam")
    settings = trial_model(model, {"units": 20, "lr": 0.05, "beta": 0.95, "batch_size": 32})
    assert settings.layers == (20, 20)
    assert settings.lr == 0.05
    assert settings.train_spec().hyperparameters() == {
        "lr": 0.05,
        "beta1": 0.95,
        "beta2": 0.999,
        "eps": 1e-8,
    }
    assert trial_model(model, {"num_layers": 1}).layers == (64,)
    with pytest.raises(ConfigError) as bad:
        trial_model(model, {"keep_prob": 1.5})
    assert bad.value.field == "model.keep_prob"
    with pytest.raises(ConfigError):
        trial_model(model, {"dropout": 0.5})


@pytest.mark.parametrize("name", SEARCHABLE)
def test_every_searchable_name_is_accepted_in_a_space(name: str) -> None:
    model = {"optimizer": "adam", "decay": "step", "layers": [16]}
    values: dict[str, dict[str, Any]] = {
        "optimizer": {"choices": ["adam", "momentum"]},
        "activation": {"choices": ["relu", "tanh"]},
        "batchnorm": {"choices": [True, False]},
        "decay": {"choices": ["none", "step"]},
        "units": {"low": 4, "high": 32},
        "num_layers": {"low": 1, "high": 3},
        "batch_size": {"choices": [16, 32]},
        "decay_every": {"low": 2, "high": 5},
        "beta": {"low": 0.9, "high": 0.99},
        "beta2": {"low": 0.99, "high": 0.999},
        "keep_prob": {"low": 0.5, "high": 1.0},
        "decay_rate": {"low": 0.5, "high": 0.9},
        "image_size": {"choices": [16, 32]},
        "augment.flip": {"choices": [True, False]},
        "filters": {"low": 4, "high": 16},
        "kernel": {"choices": [1, 3]},
        "conv_blocks": {"low": 1, "high": 2},
        "instance_norm": {"choices": [True, False]},
    }
    if name in ("filters", "kernel", "conv_blocks", "instance_norm"):
        model["kind"] = "cnn"  # convolutional settings need a CNN
    table = values.get(name, {"low": 1e-4, "high": 1e-1, "scale": "log"})
    tables = {**copy.deepcopy(BASE), "model": model, "space": {name: table}}
    if name in DATA_SEARCHABLE:
        tables["data"] = {"source": "photos"}  # not read until a dataset is loaded
    assert isinstance(config_from_dict(tables), TuneConfig)


# ---------------------------------------------------------------------------- a searched image_size


def photo_tables(space: dict[str, Any]) -> dict[str, Any]:
    tables = copy.deepcopy(BASE)
    tables["data"] = {"source": "photos", "image_size": 64}
    tables["space"] = space
    return tables


def test_image_size_is_searched_as_a_data_setting() -> None:
    config = config_from_dict(photo_tables({"image_size": {"low": 16, "high": 64}}))
    assert config.space["image_size"] == Int(16, 64)
    assert trial_data(config.data, {"image_size": 24, "lr": 0.1}).image_size == 24
    assert trial_data(config.data, {"lr": 0.1}) is config.data
    settings = trial_model(config.model, {"image_size": 24, "lr": 0.1})
    assert settings == trial_model(config.model, {"lr": 0.1})  # not a model setting


@pytest.mark.parametrize(
    ("space", "field", "value"),
    [
        ({"image_size": {"choices": [16, 0]}}, "space.image_size.choices[1]", 0),
        ({"image_size": {"choices": [16, "big"]}}, "space.image_size.choices[1]", "big"),
        ({"image_size": {"low": 0, "high": 8}}, "space.image_size.low", 0),
        ({"image_size": {"low": 8.0, "high": 32.0}}, "space.image_size", None),
    ],
)
def test_a_bad_image_size_range_names_its_field(
    space: dict[str, Any], field: str, value: Any
) -> None:
    with pytest.raises(ConfigError) as bad:
        config_from_dict(photo_tables(space))
    assert bad.value.field == field
    if value is not None:
        assert bad.value.value == value


def test_image_size_is_refused_for_the_bundled_digits() -> None:
    tables = photo_tables({"image_size": {"choices": [16, 32]}})
    tables["data"] = {"source": "digits"}
    with pytest.raises(ConfigError, match="folder of photos") as bad:
        config_from_dict(tables)
    assert bad.value.field == "space.image_size"


def test_trial_data_names_a_bad_value() -> None:
    with pytest.raises(ConfigError) as bad:
        trial_data(DataSection(source="photos"), {"image_size": -3})
    assert (bad.value.field, bad.value.value) == ("data.image_size", -3)
    assert DATA_SEARCHABLE == ("image_size",)
