"""The built-in objective: one trained MLP per trial, reported epoch by epoch, pruned, diverged."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from tunery import ConfigError
from tunery.config import TuneConfig, config_from_dict
from tunery.data import Dataset
from tunery.nn.train import Trainer
from tunery.records import FrozenTrial
from tunery.study import Study, TrialState
from tunery.workflows.objective import (
    TEST_ACCURACY,
    TrainerObjective,
    build_trainer,
    make_config_pruner,
    open_study,
    run_study,
    trial_settings,
)

TABLES: dict[str, Any] = {
    "study": {"name": "tiny", "storage": ":memory:"},
    "data": {"source": "digits"},
    "model": {"layers": [16, 8], "epochs": 3, "batchnorm": True},
    "space": {
        "lr": {"low": 3e-3, "high": 3e-2, "scale": "log"},
        "units": {"low": 8, "high": 24},
        "batch_size": {"choices": [64, 128]},
    },
    "run": {"trials": 3, "workers": 1},
}


def make_config(**changes: dict[str, Any]) -> TuneConfig:
    tables = copy.deepcopy(TABLES)
    for section, values in changes.items():
        tables.setdefault(section, {}).update(values)
    return config_from_dict(tables)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return TrainerObjective(make_config()).dataset


def objective_with(config: TuneConfig, dataset: Dataset) -> TrainerObjective:
    objective = TrainerObjective(config)
    objective._datasets.put(config.data, dataset)  # the same data, loaded once for the module
    return objective


class Always:
    """A pruner that always (or, with ``after``, from that epoch on) says stop; records epochs."""

    def __init__(self, after: int = 0, interrupt: bool = False) -> None:
        self.after = after
        self.interrupt = interrupt
        self.asked: list[int] = []

    def should_prune(
        self, study_trials: Sequence[FrozenTrial], trial: FrozenTrial, epoch: int
    ) -> bool:
        self.asked.append(epoch)
        if self.interrupt and epoch == self.after:
            self.interrupt = False
            raise KeyboardInterrupt
        return not self.interrupt and epoch >= self.after > 0


# ----------------------------------------------------------------------------------- building


def test_trial_settings_merge_params_and_the_run_epochs() -> None:
    config = make_config(run={"epochs": 5})
    settings = trial_settings(config, {"lr": 0.01, "units": 12, "batch_size": 64})
    assert settings.layers == (12, 12)
    assert settings.lr == 0.01
    assert settings.batch_size == 64
    assert settings.epochs == 5
    assert config.model.layers == (16, 8)  # the fixed config is untouched


def test_build_trainer_wires_model_optimizer_and_data(digits: Dataset) -> None:
    config = make_config(model={"optimizer": "momentum", "decay": "exponential"})
    trainer = build_trainer(config, {"lr": 0.02, "units": 10, "batch_size": 128}, digits)
    assert isinstance(trainer, Trainer)
    assert trainer.model.sizes == (digits.num_features, 10, 10, digits.num_classes)  # type: ignore[attr-defined]
    assert trainer.optimizer.name == "momentum"
    assert trainer.optimizer.hyperparameters() == {"lr": 0.02, "beta": 0.9}
    assert trainer.batch_size == 128
    assert trainer.schedule(1.0, 2) == pytest.approx(0.95**2)
    assert trainer.raise_on_divergence
    assert len(trainer.X) == len(digits.y_train)


def test_build_trainer_refuses_bad_params(digits: Dataset) -> None:
    with pytest.raises(ConfigError) as caught:
        build_trainer(make_config(), {"lr": -1.0}, digits)
    assert caught.value.field == "model.lr"


# ------------------------------------------------------------------------------------ running


def test_each_epoch_is_reported_and_the_last_metric_returned(digits: Dataset) -> None:
    config = make_config()
    study = Study("tiny", ":memory:")
    study.caviar(objective_with(config, digits), config.space, n_trials=2, workers=1)
    for trial in study.trials:
        assert trial.state is TrialState.COMPLETE
        assert sorted(trial.curve) == [1, 2, 3]
        for row in trial.curve.values():
            assert {"loss", "train_accuracy", "val_accuracy", "lr"} <= set(row)
        assert trial.value == trial.curve[3]["val_accuracy"]
        assert 0.0 <= trial.user_attrs[TEST_ACCURACY] <= 1.0
    assert study.best_value > 0.5  # 10 classes: chance is 0.1


def test_the_loss_metric_is_minimized_and_returned(digits: Dataset) -> None:
    config = make_config(study={"metric": "loss"})
    assert config.study.direction == "minimize"
    study = open_study(config)
    study.caviar(objective_with(config, digits), config.space, n_trials=1, workers=1)
    (trial,) = study.trials
    assert trial.value == trial.curve[3]["loss"]


def test_a_pruner_stops_a_trial_but_never_after_its_last_epoch(digits: Dataset) -> None:
    config = make_config()
    pruner = Always(after=2)
    study = Study("pruned", ":memory:", pruner=pruner)
    study.caviar(objective_with(config, digits), config.space, n_trials=1, workers=1)
    (trial,) = study.trials
    assert trial.state is TrialState.PRUNED
    assert sorted(trial.curve) == [1, 2]
    assert TEST_ACCURACY not in trial.user_attrs

    never = Always(after=3)  # would prune at the last epoch: the trial completes instead
    study = Study("kept", ":memory:", pruner=never)
    study.caviar(objective_with(config, digits), config.space, n_trials=1, workers=1)
    assert study.trials[0].state is TrialState.COMPLETE
    assert never.asked == [1, 2]


def test_a_huge_learning_rate_diverges(digits: Dataset) -> None:
    config = make_config(
        model={"optimizer": "gd", "batchnorm": False},
        space={"lr": {"choices": [1e9]}, "units": {"low": 8, "high": 8}},
    )
    study = Study("boom", ":memory:")
    study.caviar(objective_with(config, digits), config.space, n_trials=1, workers=1)
    (trial,) = study.trials
    assert trial.state is TrialState.DIVERGED
    last = trial.curve[max(trial.curve)]
    assert not np.isfinite(last["loss"])
    assert "val_accuracy" not in last  # a diverged epoch reports its loss only
    assert "diverged" in (trial.error or "")


def test_the_objective_pickles_without_its_dataset(digits: Dataset) -> None:
    objective = objective_with(make_config(), digits)
    blob = pickle.dumps(objective)
    assert len(blob) < 20_000  # the digits alone are ~100 kB
    clone = pickle.loads(blob)
    assert len(clone._datasets) == 0
    assert clone.config == objective.config
    assert np.array_equal(clone.dataset.y_test, digits.y_test)


def test_an_interrupted_trial_resumes_from_its_checkpoint(digits: Dataset) -> None:
    config = make_config(run={"checkpoint_every": 1})
    objective = objective_with(config, digits)
    reference = Study("whole", ":memory:")
    reference.caviar(objective, config.space, n_trials=1, workers=1)

    study = Study("cut", ":memory:", pruner=Always(after=2, interrupt=True))
    with pytest.raises(KeyboardInterrupt):
        study.caviar(objective, config.space, n_trials=1, workers=1)
    interrupted = study.trials[0]
    assert interrupted.interrupted
    assert sorted(interrupted.curve) == [1, 2]
    study.caviar(objective, config.space, n_trials=1, workers=1)
    resumed = study.trials[-1]
    assert resumed.state is TrialState.COMPLETE
    assert resumed.params == reference.trials[0].params
    assert sorted(resumed.curve) == [1, 2, 3]  # the first two re-reported from the checkpoint
    assert resumed.value == reference.trials[0].value  # bit for bit: same draws, same batches


def test_run_study_zooms_between_rounds_and_continues(digits: Dataset) -> None:
    config = make_config(run={"trials": 6, "rounds": 2, "top": 3})
    study = open_study(config)
    objective = objective_with(config, digits)
    run_study(config, study, objective)
    rounds = study.rounds
    assert [r.index for r in rounds] == [1, 2]
    assert rounds[1].box is not None
    assert [t.round for t in study.trials] == [1, 1, 1, 2, 2, 2]
    first = [(t.number, t.params, t.started) for t in study.trials]

    run_study(config, study, objective)  # nothing left to do
    assert [(t.number, t.params, t.started) for t in study.trials] == first
    more = config.with_overrides(trials=8)
    run_study(more, study, objective)
    assert len(study.trials) == 8
    assert len(study.rounds) == 2  # went on in the zoomed round
    assert [(t.number, t.params, t.started) for t in study.trials[:6]] == first


def test_the_config_pruner_watches_the_study_metric() -> None:
    config = make_config(study={"metric": "loss"}, run={"pruner": "asha"})
    pruner = make_config_pruner(config)
    assert pruner is not None
    assert pruner.metric == "loss"
    assert pruner.direction == "minimize"
    assert pruner.max_epochs == config.epochs  # type: ignore[union-attr]
    assert make_config_pruner(make_config()) is None


def test_the_torch_backend_trains_the_twin(digits: Dataset) -> None:
    pytest.importorskip("torch")
    from tunery.nn.torch import TorchEngine

    config = make_config(model={"backend": "torch", "epochs": 2})
    trainer = build_trainer(config, {"lr": 0.01, "units": 8, "batch_size": 128}, digits)
    assert isinstance(trainer.engine, TorchEngine)
    study = Study("torch", ":memory:")
    study.caviar(objective_with(config, digits), config.space, n_trials=1, workers=1)
    (trial,) = study.trials
    assert trial.state is TrialState.COMPLETE
    assert sorted(trial.curve) == [1, 2]
    assert trial.value is not None
    assert trial.value > 0.3
