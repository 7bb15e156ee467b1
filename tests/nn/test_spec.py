"""TrainSpec: one optimizer mapping, one default lr per optimizer, the same from every entry."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.cli import main
from tunery.cli._train import TrainSettings
from tunery.config import ModelSection
from tunery.nn.engine import NumpyEngine
from tunery.nn.optimizers import OPTIMIZERS
from tunery.nn.schedules import make_schedule
from tunery.nn.spec import DEFAULT_LR, OPTIMIZER_FIELDS, TrainSpec, default_lr
from tunery.trained import RUN_FILE


def _cli_settings(
    optimizer: str, lr: float | None = None, beta: float | None = None
) -> TrainSettings:
    return TrainSettings(
        data="digits",
        classes=None,
        layers=(8,),
        batchnorm=True,
        optimizer=optimizer,
        lr=lr,  # type: ignore[arg-type]
        beta=beta,
        decay=make_schedule("none"),
        epochs=1,
        batch_size=32,
        l2=0.0,
        keep_prob=1.0,
        normalize="standardize",
        image_size=64,
        backend="numpy",
        threads=1,
        seed=0,
    )


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_the_config_and_the_cli_default_to_the_same_lr(optimizer: str) -> None:
    from_config = ModelSection(optimizer=optimizer).train_spec().make_optimizer()
    from_cli = _cli_settings(optimizer).train_spec().make_optimizer()
    assert from_config.lr == from_cli.lr == DEFAULT_LR[optimizer] == default_lr(optimizer)


def test_the_defaults_are_a_larger_rate_for_plain_steps() -> None:
    assert DEFAULT_LR == {"gd": 0.01, "momentum": 0.01, "rmsprop": 0.001, "adam": 0.001}


def test_tunery_train_without_lr_records_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--optimizer", "gd", "--layers", "8", "--epochs", "1", "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exited:
        main([*args, "--name", "gd"])
    capsys.readouterr()
    assert exited.value.code == 0
    options = json.loads((tmp_path / "gd" / RUN_FILE).read_text())["options"]
    assert options["lr"] == ModelSection(optimizer="gd").train_spec().learning_rate == 0.01


@pytest.mark.parametrize(
    ("optimizer", "keywords"),
    [
        ("gd", {"lr": 0.5}),
        ("momentum", {"lr": 0.5, "beta": 0.8}),
        ("rmsprop", {"lr": 0.5, "beta": 0.8, "eps": 1e-6}),
        ("adam", {"lr": 0.5, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}),
    ],
)
def test_each_optimizer_gets_our_fields_under_its_own_keywords(
    optimizer: str, keywords: dict[str, float]
) -> None:
    spec = TrainSpec(optimizer=optimizer, lr=0.5, beta=0.8, beta2=0.99, epsilon=1e-6)
    assert spec.hyperparameters() == keywords
    made = spec.make_optimizer().hyperparameters()
    assert {key: made[key] for key in keywords} == keywords


def test_fields_an_optimizer_ignores_are_reported() -> None:
    assert TrainSpec(optimizer="gd", beta=0.9).ignored_fields() == ("beta",)
    assert TrainSpec(optimizer="adam", beta=0.9).ignored_fields() == ()


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("beta", {"optimizer": "adam", "beta": 1.0}),
        ("epsilon", {"optimizer": "rmsprop", "epsilon": -1.0}),
        ("lr", {"optimizer": "adam", "lr": 0.0}),
        ("optimizer", {"optimizer": "lion"}),
        ("backend", {"backend": "jax"}),
        ("batch_size", {"batch_size": 0}),
    ],
)
def test_errors_name_our_field(field: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as info:
        TrainSpec(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_the_config_names_model_fields_and_the_cli_names_options() -> None:
    with pytest.raises(ConfigError, match=r"^model\.beta: "):
        ModelSection(optimizer="adam", beta=1.5)
    with pytest.raises(ConfigError, match=r"^--beta: "):
        _cli_settings("gd", beta=0.9).train_spec()
    with pytest.raises(ConfigError, match=r"^--lr: "):
        _cli_settings("adam", lr=-1.0).train_spec()


def test_the_numpy_backend_is_the_numpy_engine() -> None:
    assert TrainSpec().engine() is NumpyEngine


def test_the_torch_backend_without_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:

    import importlib.util

    real_find_spec = importlib.util.find_spec
    missing = {"torch"}
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in missing else real_find_spec(name, *a),
    )
    with pytest.raises(ConfigError, match=r"pip install 'tunery\[torch\]'") as info:
        TrainSpec(backend="torch").engine()
    assert info.value.field == "backend"


def test_a_broken_module_of_ours_is_not_called_a_missing_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tunery.nn.torch", None)
    with pytest.raises(ModuleNotFoundError, match=r"tunery\.nn\.torch"):
        TrainSpec(backend="torch").engine()


RATES = st.floats(1e-6, 10.0, allow_nan=False)
DECAYS = st.floats(0.0, 0.999)


@given(
    optimizer=st.sampled_from(sorted(OPTIMIZERS)),
    lr=st.one_of(st.none(), RATES),
    beta=st.one_of(st.none(), DECAYS),
    beta2=st.one_of(st.none(), DECAYS),
    epsilon=st.one_of(st.none(), st.floats(1e-12, 1e-2)),
)
def test_any_valid_spec_builds_the_optimizer_it_describes(
    optimizer: str,
    lr: float | None,
    beta: float | None,
    beta2: float | None,
    epsilon: float | None,
) -> None:
    spec = TrainSpec(optimizer=optimizer, lr=lr, beta=beta, beta2=beta2, epsilon=epsilon)
    made = spec.make_optimizer()
    assert made.name == optimizer
    assert math.isclose(made.lr, DEFAULT_LR[optimizer] if lr is None else lr)
    given_values = {"beta": beta, "beta2": beta2, "epsilon": epsilon}
    for ours, keyword in OPTIMIZER_FIELDS[optimizer].items():
        value = given_values.get(ours)
        if value is not None:
            assert made.hyperparameters()[keyword] == value
    assert spec.to_dict()["lr"] == spec.learning_rate


def test_of_takes_the_fields_a_settings_object_shares_and_lets_overrides_win() -> None:
    settings = SimpleNamespace(optimizer="momentum", lr=0.05, beta=0.8, units=7, seed=3)
    spec = TrainSpec.of(settings, schedule=make_schedule("exponential", rate=0.9), seed=4)
    assert (spec.optimizer, spec.lr, spec.beta, spec.seed) == ("momentum", 0.05, 0.8, 4)
    assert spec.batch_size == TrainSpec().batch_size  # not on settings: the field's default
    assert spec.schedule(1.0, 1) == pytest.approx(0.9)
