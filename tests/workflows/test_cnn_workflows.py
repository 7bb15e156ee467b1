"""A CNN through every way of training: the config (``[model] kind = "cnn"``, searched blocks),
the built-in objective under caviar, panda's nudges and rollbacks, and ``tunery train`` /
``tunery predict``, on the bundled 8×8 digits (rows reach the CNN as 1×8×8 images) and tiny photos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.cli.test_train import COLOURS, _write_photo, run_cli
from tests.workflows.test_panda import assert_same_state, checkpoint
from tests.workflows.test_pbt import checkpoint as member_checkpoint
from tests.workflows.test_pbt import restored, same_weights, segments
from tunery import ConfigError, Study, TrialState
from tunery.config import TuneConfig, config_from_dict, trial_model
from tunery.config._whole import conv_blocks
from tunery.data import CACHE_ENV, load_images
from tunery.nn import InstanceNorm2d
from tunery.nn.cnn import CNN
from tunery.report import segment_info
from tunery.trained import load_run
from tunery.workflows.objective import TEST_ACCURACY, build_trainer, load_config_dataset, run_study
from tunery.workflows.panda import babysit
from tunery.workflows.pbt import pbt

EPOCHS = 3


def cnn_tables(**model: Any) -> dict[str, Any]:
    return {
        "study": {"name": "cnn"},
        "data": {"source": "digits"},
        "model": {"kind": "cnn", "conv": [[4, 3], [8, 3]], "layers": [], "epochs": EPOCHS, **model},
        "space": {"lr": {"low": 3e-3, "high": 3e-2, "scale": "log"}},
    }


def cnn_config(space: dict[str, Any] | None = None, **model: Any) -> TuneConfig:
    tables = cnn_tables(**model)
    if space is not None:
        tables["space"] = space
    return config_from_dict(tables)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


# ------------------------------------------------------------------------------------------ config


def test_the_config_builds_a_cnn_of_the_digit_images() -> None:
    config = cnn_config(layers=[16], pool=2, batchnorm=False)
    trainer = build_trainer(config, {"lr": 0.01})
    model = trainer.model
    assert isinstance(model, CNN)
    assert model.image_shape == (8, 8)
    assert model.conv == ((4, 3), (8, 3))
    assert model.dense == (16,)
    assert model.layers[0].b is not None  # no batch norm: the convolutions have biases
    assert config_from_dict(config.to_dict()) == config  # the config round-trips through TOML


def test_searched_blocks_filters_and_kernels_reach_the_model() -> None:
    space = {
        "filters": {"low": 2, "high": 12},
        "kernel": {"choices": [1, 3]},
        "conv_blocks": {"low": 1, "high": 3},
    }
    config = cnn_config(space)
    settings = trial_model(config.model, {"filters": 6, "kernel": 1, "conv_blocks": 3})
    assert settings.conv == ((6, 1), (12, 1), (12, 1))
    trainer = build_trainer(config, {"filters": 6, "kernel": 1, "conv_blocks": 3})
    assert trainer.model.conv == ((6, 1), (12, 1), (12, 1))
    assert conv_blocks(((16, 3), (32, 3)), filters=24) == ((24, 3), (48, 3))
    assert conv_blocks(((16, 3), (32, 3)), count=1) == ((16, 3),)


def test_instance_norm_is_set_or_searched_and_reaches_the_model() -> None:
    fixed = build_trainer(cnn_config(instance_norm=True), {"lr": 0.01}).model
    assert isinstance(fixed, CNN)
    assert isinstance(fixed.layers[0], InstanceNorm2d)
    space = {"instance_norm": {"choices": [True, False]}}
    for value in (True, False):
        model = build_trainer(cnn_config(space), {"instance_norm": value}).model
        assert isinstance(model, CNN)
        assert model.instance_norm is value
        assert isinstance(model.layers[0], InstanceNorm2d) is value


@pytest.mark.parametrize(
    ("model", "space", "field"),
    [
        ({"conv": []}, None, "model.conv"),
        ({"conv": [[0, 3]]}, None, r"model.conv\[0\].filters"),
        ({"conv": [[4, 3.5]]}, None, r"model.conv\[0\].kernel"),
        ({"conv": [16, 3]}, None, r"model.conv\[0\]"),
        ({"kind": "rnn"}, None, "model.kind"),
        ({"pool": 0}, None, "model.pool"),
        ({"keep_prob": 0.5}, None, "model.keep_prob"),
        ({"activation": "tanh"}, None, "model.activation"),
        ({"kind": "mlp", "instance_norm": True}, None, "model.instance_norm"),
        ({"instance_norm": "yes"}, None, "model.instance_norm"),
        ({"conv": [[4, 3]] * 4}, None, "model.conv"),  # 8×8 pooled four times is no pixel
        ({}, {"conv_blocks": {"low": 1, "high": 5}}, "space.conv_blocks"),
        ({}, {"filters": {"low": 0, "high": 5}}, "space.filters"),
        ({"kind": "mlp"}, {"kernel": {"low": 1, "high": 3}}, "space.kernel"),
        ({"kind": "mlp"}, {"instance_norm": {"choices": [True, False]}}, "space.instance_norm"),
    ],
)
def test_bad_cnn_settings_name_the_field_value_and_expectation(
    model: dict[str, Any], space: dict[str, Any] | None, field: str
) -> None:
    with pytest.raises(ConfigError, match=field) as caught:
        cnn_config(space, **model)
    assert caught.value.expected


# ---------------------------------------------------------------------------------------- caviar


def test_caviar_tunes_a_cnn_with_searched_blocks(tmp_path: Path) -> None:
    space = {
        "lr": {"low": 3e-3, "high": 3e-2, "scale": "log"},
        "filters": {"low": 2, "high": 8},
        "conv_blocks": {"low": 1, "high": 2},
    }
    tables = cnn_tables()
    tables["space"] = space
    tables["study"]["storage"] = f"sqlite:///{tmp_path / 'cnn.db'}"
    tables["run"] = {"trials": 4, "workers": 2}
    config = config_from_dict(tables)
    study = run_study(config)
    trials = study.trials
    assert len(trials) == 4
    errors = [trial.error for trial in trials if trial.state != TrialState.COMPLETE]
    assert errors == []
    assert len({(t.params["filters"], t.params["conv_blocks"]) for t in trials}) > 1
    for trial in trials:
        assert sorted(trial.curve) == list(range(1, EPOCHS + 1))
    # Three epochs of a small CNN already beat chance (0.1) by far on the digits.
    assert max(float(t.user_attrs[TEST_ACCURACY]) for t in trials) > 0.5


# ----------------------------------------------------------------------------------------- panda


def test_panda_nudges_and_rolls_back_a_cnn(tmp_path: Path) -> None:
    config = cnn_config(epochs=4)
    dataset = load_config_dataset(config)
    with Study("cnn", tmp_path / "panda.db") as study:
        panda = babysit(study, config, {"lr": 0.01}, dataset=dataset)
        first = panda.run_epoch()
        second = panda.run_epoch()
        assert first is not None
        assert second is not None
        panda.nudge(lr=2e-3)
        third = panda.run_epoch()
        assert third is not None
        assert third.lr == pytest.approx(2e-3)
        panda.rollback(2)
        replayed = panda.run_epoch()  # from the epoch-2 checkpoint, at the branch's rate
        assert replayed is not None
        assert (panda.branch, panda.parent, replayed.epoch) == (1, (0, 2), 3)
        panda.run()
        assert panda.done
        branches = {trial.number: trial for trial in study.trials}
        assert sorted(branches[0].curve) == [1, 2, 3]
        assert sorted(branches[1].curve) == [3, 4]
        assert sorted(panda.curve) == [1, 2, 3, 4]
        # The branch went on from the trunk's epoch-2 checkpoint, bit for bit: replaying that
        # epoch from the checkpoint gives the branch's own epoch-3 checkpoint.
        assert_same_state(checkpoint(study, 1, 2), checkpoint(study, 0, 2))
        replay = build_trainer(config, branches[1].params, dataset)
        replay.restore(checkpoint(study, 0, 2))
        replay.run_epoch()
        assert_same_state(replay.to_bytes(), checkpoint(study, 1, 3))


# ------------------------------------------------------------------------------------------- CLI


def test_tunery_train_model_cnn_saves_a_run_that_predicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for index, (name, colour) in enumerate(COLOURS.items()):
        for i in range(10):
            _write_photo(tmp_path / "photos" / name / f"{i}.png", colour, 100 * index + i)
    args = ["train", "--model", "cnn", "--conv", "4:3", "--layers", "none", "--pool", "2"]
    args += ["--data", str(tmp_path / "photos"), "--image-size", "6", "--epochs", "15"]
    args += ["--batch-size", "8", "--lr", "0.01", "--out", str(tmp_path / "runs"), "--name", "c"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    run = load_run(tmp_path / "runs" / "c")
    assert isinstance(run.model, CNN)
    assert run.model.image_shape == (6, 6, 3)  # photos reach the CNN as 3×6×6 images
    assert run.options["conv"] == [[4, 3]]
    monkeypatch.chdir(tmp_path)
    files = {
        name: _write_photo(Path(f"{name}.png"), colour, 999) for name, colour in COLOURS.items()
    }
    code, _, err = run_cli(
        ["predict", str(tmp_path / "runs" / "c"), *map(str, files.values())], capsys
    )
    assert code == 0, err
    probabilities = run.predict_proba(load_images(list(files.values()), size=6))
    assert [run.class_names[k] for k in probabilities.argmax(axis=1)] == list(files)


def test_tunery_train_instance_norm_is_kept_in_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Not on the coloured photos above: their classes differ only in colour, which is exactly
    # what the instance norm removes.
    args = ["train", "--model", "cnn", "--conv", "4:3", "--layers", "none", "--instance-norm"]
    args += ["--epochs", "2", "--out", str(tmp_path / "runs"), "--name", "i"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    run = load_run(tmp_path / "runs" / "i")
    assert run.options["instance_norm"] is True
    assert isinstance(run.model, CNN)
    assert isinstance(run.model.layers[0], InstanceNorm2d)


def test_instance_norm_without_a_cnn_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--instance-norm", "--epochs", "1", "--out", str(tmp_path / "runs")]
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert "--instance-norm" in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (["--conv", "8:x"], "--conv"),
        (["--conv", "0:3"], "--conv"),
        (["--conv", "4:3,4:3,4:3,4:3"], "--conv"),  # too deep for 8×8 digits
        (["--keep-prob", "0.5"], "--keep-prob"),
        (["--pool", "0"], "--pool"),
    ],
)
def test_bad_cnn_options_exit_2_naming_the_option(
    extra: list[str], option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--model", "cnn", "--epochs", "1", "--out", str(tmp_path / "runs"), *extra]
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert option in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing is written for a bad option


def test_chunked_evaluation_equals_one_pass() -> None:
    model = CNN((8, 8), 10, conv=[[3, 3]], seed=1)
    rows = np.random.default_rng(0).standard_normal((600, 64))
    whole = np.concatenate([model.eval().forward(rows[i : i + 100]) for i in range(0, 600, 100)])
    np.testing.assert_allclose(model.predict_proba(rows).argmax(1), whole.argmax(1))
    assert model.predict(rows).shape == (600,)


def test_the_torch_backend_trains_the_same_cnn() -> None:
    """``backend = "torch"`` in the config: the twin takes the steps, from the same weights and
    batches (float32, so the costs agree to rounding, not bit for bit)."""
    pytest.importorskip("torch")
    numpy_trainer = build_trainer(cnn_config(), {"lr": 0.01})
    torch_trainer = build_trainer(cnn_config(backend="torch"), {"lr": 0.01})
    assert type(torch_trainer.engine).__name__ == "TorchEngine"
    expected = numpy_trainer.run(2)
    history = torch_trainer.run(2)
    np.testing.assert_allclose(history.cost, expected.cost, rtol=1e-3)
    assert isinstance(torch_trainer.model, CNN)  # the trained weights are back in the NumPy CNN


# ------------------------------------------------------------------------------------------- PBT


def test_pbt_exploits_a_cnn_from_its_top_members_checkpoint() -> None:
    """A population of CNNs (instance norm, augmented digits): every member trains every step, and
    an exploited segment's weights are the source's checkpoint trained on, not its own."""
    tables = cnn_tables(instance_norm=True, epochs=4)
    tables["data"]["augment"] = {"rotation": 10.0}
    tables["pbt"] = {"population": 4, "perturbation_interval": 2}
    config = config_from_dict(tables)
    study = Study("cnn-pbt", ":memory:", seed=3)
    pbt(study, config)
    found = segments(study)
    assert sorted(found) == [(m, s) for m in range(4) for s in range(2)]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    exploited = [
        t
        for (m, s), t in found.items()
        if s > 0 and t.parent is not None and t.parent[0] != found[(m, s - 1)].number
    ]
    assert exploited
    trial = exploited[0]
    start, end = segment_info(trial)["start"], segment_info(trial)["end"]
    source = next(t for t in study.trials if t.number == trial.parent[0])  # type: ignore[index]
    ended = restored(config, trial.params, member_checkpoint(study, trial, end))
    assert isinstance(ended.model, CNN)
    assert isinstance(ended.model.layers[0], InstanceNorm2d)
    replay = restored(config, trial.params, member_checkpoint(study, source, start))
    replay.set_hyperparameters(**ended.hyperparameters())
    replay.run(end - start)
    assert same_weights(ended, replay)
