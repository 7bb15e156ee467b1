"""Panda mode from Python: babysit one model, nudge it, roll it back, pause, resume, continue."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunery import ConfigError, StorageError
from tunery.config import TuneConfig, config_from_dict
from tunery.data import Dataset
from tunery.nn import MLP
from tunery.nn.optimizers import make_optimizer
from tunery.nn.train import Trainer
from tunery.study import FrozenTrial, Study, TrialState
from tunery.workflows.objective import build_trainer, load_config_dataset
from tunery.workflows.panda import (
    BRANCH_ATTR,
    AppliedEvent,
    LineageNode,
    Panda,
    PandaControl,
    babysit,
    branch_curve,
    branch_events,
    lineage,
)

EPOCHS = 6
BASE_LR = 3e-3


def make_config(**model: Any) -> TuneConfig:
    tables = {
        "study": {"name": "cub"},
        "data": {"source": "digits"},
        "model": {"layers": [12], "epochs": EPOCHS, **model},
        "space": {"lr": {"low": 1e-3, "high": 1e-2, "scale": "log"}},
    }
    return config_from_dict(tables)


@pytest.fixture(scope="module")
def config() -> TuneConfig:
    return make_config()


@pytest.fixture(scope="module")
def dataset(config: TuneConfig) -> Dataset:
    return load_config_dataset(config)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "panda.db"


@pytest.fixture
def study(db: Path) -> Iterator[Study]:
    with Study("cub", db) as opened:
        yield opened


def by_number(study: Study) -> dict[int, FrozenTrial]:
    return {trial.number: trial for trial in study.trials}


def checkpoint(study: Study, number: int, epoch: int) -> bytes:
    found = study.storage.load_checkpoint(study.storage.get_trial_id(study.study_id, number), epoch)
    assert found is not None, f"no checkpoint of trial {number} at epoch {epoch}"
    return found[1]


def assert_same_state(a: bytes, b: bytes) -> None:
    """Every array of two checkpoints equal bit for bit, and the same metadata (JSON)."""
    with np.load(io.BytesIO(a)) as first, np.load(io.BytesIO(b)) as second:
        assert sorted(first.files) == sorted(second.files)
        for name in first.files:
            assert first[name].dtype == second[name].dtype, name
            assert np.array_equal(first[name], second[name]), name


def lrs(trial: FrozenTrial) -> dict[int, float]:
    return trial.metric("lr")


# ------------------------------------------------------------------------------- the whole session


def test_a_babysitting_session_end_to_end(
    study: Study, config: TuneConfig, dataset: Dataset
) -> None:
    panda = babysit(study, config, {"lr": BASE_LR}, dataset=dataset)
    assert (panda.branch, panda.epoch, panda.origin) == (0, 0, "start")
    for _ in range(3):
        assert panda.run_epoch() is not None
    panda.nudge(lr=1e-3)
    nudged = panda.run_epoch()  # the boundary after epoch 3 applies it; epoch 4 uses it
    assert nudged is not None
    assert nudged.lr == pytest.approx(1e-3)
    panda.pause()
    assert panda.run_epoch() is None
    assert panda.paused
    assert panda.epoch == 4
    panda.rollback(2)
    assert panda.run_epoch() is None, "a rollback keeps the pause"
    assert (panda.branch, panda.parent, panda.epoch) == (1, (0, 2), 2)
    panda.resume()
    panda.run()
    assert panda.done

    trials = by_number(study)
    old, new = trials[0], trials[1]
    # The curve: the new branch goes on from the fork epoch; the old one stopped at the rollback.
    assert sorted(old.curve) == [1, 2, 3, 4]
    assert sorted(new.curve) == [3, 4, 5, 6]
    assert lrs(old) == {1: BASE_LR, 2: BASE_LR, 3: BASE_LR, 4: pytest.approx(1e-3)}
    assert set(lrs(new).values()) == {BASE_LR}, "the nudge came after epoch 2: rolled back too"
    path = panda.curve
    assert sorted(path) == [1, 2, 3, 4, 5, 6]
    assert path[2] == old.curve[2]
    assert path[4] == new.curve[4]
    # Same state and same hyperparameters at the fork, so epoch 3 is replayed exactly.
    assert new.curve[3] == old.curve[3]
    assert_same_state(checkpoint(study, 1, 2), checkpoint(study, 0, 2))
    replay = build_trainer(config, new.params, dataset)
    replay.restore(checkpoint(study, 0, 2))
    replay.run_epoch()
    assert_same_state(replay.to_bytes(), checkpoint(study, 1, 3))

    # The events: kinds, payloads, the epoch and branch each applied at.
    expected = [
        ("nudge", {"lr": 1e-3}, 3, 0, None),
        ("pause", {}, 4, 0, None),
        ("rollback", {"trial": 0, "epoch": 2}, 4, 0, 1),
        ("resume", {}, 2, 1, None),
    ]
    seen = [(e.kind, e.payload, e.epoch, e.branch, e.new_branch) for e in panda.events]
    assert seen == expected
    assert [*branch_events(old), *branch_events(new)] == panda.events
    stored = study.storage.get_events(study.study_id, pending=False)
    assert [e.kind for e in stored] == ["nudge", "pause", "rollback", "resume"]
    assert all(e.applied is not None for e in stored)

    # The lineage: who came from where, and how each branch ended.
    assert (old.state, old.parent, old.user_attrs[BRANCH_ATTR]["origin"]) == (
        TrialState.PRUNED,
        None,
        "start",
    )
    assert (new.state, new.parent, new.user_attrs[BRANCH_ATTR]["origin"]) == (
        TrialState.COMPLETE,
        (0, 2),
        "rollback",
    )
    assert new.value == new.curve[EPOCHS]["val_accuracy"]
    assert old.value == old.curve[4]["val_accuracy"]
    # As plain data (`tunery show` draws it): the fork at epoch 2, then the nudge and rollback.
    (root,) = lineage(study.trials)
    assert (root.trial.number, root.origin, root.changed) == (0, "start", {"lr": BASE_LR})
    fork, nudge, rollback = root.items
    assert isinstance(fork, LineageNode)
    assert (fork.trial.number, fork.origin, fork.changed, fork.items) == (1, "rollback", {}, ())
    assert isinstance(nudge, AppliedEvent)
    assert nudge.describe() == "epoch 3: nudge lr=0.001"
    assert isinstance(rollback, AppliedEvent)
    assert rollback.describe() == "epoch 4: rollback to trial 0 @ epoch 2 → trial 1"


def test_a_rollback_reaches_back_past_a_fork_to_the_branch_that_owns_the_epoch(
    study: Study, config: TuneConfig, dataset: Dataset
) -> None:
    panda = babysit(study, config, dataset=dataset)
    for _ in range(4):
        panda.run_epoch()
    panda.rollback(3)
    panda.run_epoch()  # branch 1: epoch 4
    panda.rollback(1)  # epoch 1 is trial 0's, two forks up the path
    panda.run_epoch()
    assert (panda.branch, panda.parent) == (2, (0, 1))
    trials = by_number(study)
    assert sorted(trials[2].curve) == [2]
    assert branch_curve(study.trials, 2) == {1: trials[0].curve[1], 2: trials[2].curve[2]}


# --------------------------------------------------------------------------- stopping and going on


def test_ctrl_c_records_the_branch_interrupted_and_a_rerun_continues_with_its_nudges(
    db: Path, config: TuneConfig, dataset: Dataset
) -> None:
    with Study("cub", db) as study:
        panda = babysit(study, config, {"lr": BASE_LR}, dataset=dataset)
        with pytest.raises(KeyboardInterrupt):
            two_epochs_a_nudge_and_ctrl_c(panda)
        stopped = by_number(study)[0]
        assert stopped.state is TrialState.FAILED
        assert stopped.interrupted
        assert "interrupted" in (stopped.error or "")

    with Study("cub", db) as study:
        with pytest.raises(ConfigError, match="params"):
            babysit(study, config, {"lr": 1e-2}, dataset=dataset)
        assert len(study.trials) == 1, "a refused continuation writes nothing"
        panda = babysit(study, config, {"lr": BASE_LR}, dataset=dataset)  # the same params: fine
        assert (panda.branch, panda.parent, panda.origin) == (1, (0, 2), "resume")
        assert panda.trainer.batch_size == 32
        assert panda.hyperparameters["batch_size"] == 32
        panda.run()
        resumed = by_number(study)[1]
        assert resumed.state is TrialState.COMPLETE
        assert sorted(resumed.curve) == [3, 4, 5, 6]

    with Study("cub", db) as study:
        finished = babysit(study, config, dataset=dataset)
        assert finished.done, "its epochs are done: nothing to do"
        assert len(study.trials) == 2


def two_epochs_a_nudge_and_ctrl_c(panda: Panda) -> None:
    with panda:
        panda.run_epoch()
        panda.run_epoch()
        panda.nudge(batch_size=32)
        panda.apply_events()  # after epoch 2's checkpoint: the checkpoint has 64
        raise KeyboardInterrupt


def test_events_queued_while_no_panda_runs_apply_when_it_starts(
    db: Path, config: TuneConfig, dataset: Dataset
) -> None:
    with Study("cub", db) as study:
        babysit(study, config, dataset=dataset, control=lambda panda: None)
        control = PandaControl(study)
        assert not control.running()
        control.nudge(lr=5e-3)  # superseded: the rollback below picks the start
        control.rollback(3)
        control.nudge(l2=0.01)
        control.pause()
        control.resume()

    with Study("cub", db) as study:
        panda = babysit(study, config, dataset=dataset)
        assert (panda.branch, panda.parent, panda.origin) == (1, (0, 3), "rollback")
        assert panda.trainer.l2 == 0.01
        assert panda.trainer.base_lr == 1e-3, "the config's, as at epoch 3"
        assert not panda.paused
        panda.run()
        branch = by_number(study)[1]
        logged = branch_events(branch)
        assert [e.kind for e in logged] == ["nudge", "rollback", "nudge", "pause", "resume"]
        assert [e.epoch for e in logged] == [6, 6, 3, 3, 3], "the lineage was at 6, then 3"
        assert {e.branch for e in logged} == {1}
        assert [e.new_branch for e in logged] == [None, 1, None, None, None]
        assert [e.error is not None for e in logged] == [True, False, False, False, False]
        assert "lr" not in branch.params


def test_a_diverging_branch_ends_diverged_without_a_checkpoint_of_the_nan_state(
    study: Study, dataset: Dataset
) -> None:
    config = make_config(optimizer="gd", lr=0.1, batchnorm=False)
    panda = babysit(study, config, dataset=dataset)
    panda.run_epoch()
    panda.nudge(lr=1e30)
    panda.run()
    trial = by_number(study)[0]
    assert trial.state is TrialState.DIVERGED
    assert panda.done
    assert math.isnan(trial.curve[2]["loss"])
    assert "val_accuracy" not in trial.curve[2]
    assert study.storage.checkpoint_epochs(trial.trial_id) == [0, 1]


def test_one_panda_per_study(db: Path, config: TuneConfig, dataset: Dataset) -> None:
    with Study("cub", db) as first, Study("cub", db) as second:
        babysit(first, config, dataset=dataset)
        with pytest.raises(StorageError, match="another process"):
            babysit(second, config, dataset=dataset)


# --------------------------------------------------------------------------- validation up front


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lrr": 1e-3}, "lrr"),
        ({"beta2": 0.99}, "nudge"),  # momentum has no beta2
        ({"lr": -1.0}, "lr"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"beta": 1.0}, "beta"),
        ({}, "NAME=VALUE"),
    ],
)
def test_a_bad_nudge_is_refused_before_anything_is_written(
    study: Study, dataset: Dataset, changes: dict[str, Any], message: str
) -> None:
    panda = babysit(study, make_config(optimizer="momentum"), dataset=dataset)
    control = PandaControl(study)
    for send in (panda.nudge, control.nudge):
        with pytest.raises(ConfigError, match=message):
            send(**changes)
    assert study.storage.get_events(study.study_id, pending=False) == []


def test_a_rollback_without_a_checkpoint_is_refused(study: Study, dataset: Dataset) -> None:
    panda = babysit(study, make_config(), dataset=dataset)
    panda.run_epoch()
    for epoch, trial in ((2, None), (-1, None), (0, 7)):
        with pytest.raises(ConfigError):
            panda.rollback(epoch, trial)
    assert study.storage.get_events(study.study_id, pending=False) == []


def test_control_needs_a_panda_branch(study: Study) -> None:
    with pytest.raises(ConfigError, match="tunery panda"):
        PandaControl(study).pause()


def test_unknown_params_are_refused(study: Study, config: TuneConfig, dataset: Dataset) -> None:
    with pytest.raises(ConfigError, match="lrr"):
        babysit(study, config, {"lrr": 1.0}, dataset=dataset)
    assert study.trials == []


# ------------------------------------------------------------------------------ a trainer factory


def test_a_trainer_factory_is_babysat_with_the_trainers_own_names(
    study: Study, dataset: Dataset
) -> None:
    def factory(params: dict[str, Any]) -> Trainer:
        model = MLP([dataset.num_features, 10, dataset.num_classes], seed=1)
        optimizer = make_optimizer("adam", lr=params.get("lr", 1e-2))
        return Trainer(
            model, optimizer, dataset.X_train, dataset.y_train,
            X_val=dataset.X_val, y_val=dataset.y_val, seed=2,
        )  # fmt: skip

    panda = babysit(study, factory, {"lr": 1e-2}, epochs=3)
    panda.run_epoch()
    with pytest.raises(ConfigError, match="beta"):
        panda.nudge(beta=0.5)  # Adam's is beta1
    with pytest.raises(ConfigError, match="beta1"):
        panda.nudge(beta1=1.5)
    panda.nudge(beta1=0.5, lr=5e-3)
    panda.run()
    trial = by_number(study)[0]
    assert trial.state is TrialState.COMPLETE
    assert sorted(trial.curve) == [1, 2, 3]
    assert panda.trainer.optimizer.hyperparameters()["beta1"] == 0.5
    assert lrs(trial) == {1: 1e-2, 2: 5e-3, 3: 5e-3}
    assert [e.payload for e in panda.events] == [{"beta1": 0.5, "lr": 5e-3}]


def test_a_factory_needs_epochs(study: Study) -> None:
    with pytest.raises(ConfigError, match="epochs"):
        babysit(study, lambda params: None)  # type: ignore[arg-type, return-value]


# ------------------------------------------------------------------------------------- lineage


def test_the_lineage_leaves_out_trials_that_never_branched(study: Study) -> None:
    space = {"lr": {"low": 1e-3, "high": 1e-2, "scale": "log"}}
    for _ in range(3):
        study.tell(study.ask(space), 0.5)
    study.tell(study.ask(params={"lr": 2e-3}, parent=(1, 4)), 0.7)
    (root,) = lineage(study.trials)
    assert (root.trial.number, root.origin) == (1, "branch")
    (child,) = root.items
    assert isinstance(child, LineageNode)
    assert (child.trial.number, child.origin, child.changed) == (3, "branch", {"lr": 2e-3})


def test_applied_events_read_back_as_they_were_written() -> None:
    entry = AppliedEvent(7, "rollback", {"trial": 0, "epoch": 3}, 5, 2, new_branch=4)
    assert AppliedEvent.from_dict(entry.to_dict(), 2) == entry
    assert entry.describe() == "epoch 5: rollback to trial 0 @ epoch 3 → trial 4"


def test_the_pytorch_twin_is_babysat_and_rolled_back_exactly(db: Path, dataset: Dataset) -> None:
    pytest.importorskip("torch")
    config = make_config(backend="torch")
    with Study("cub", db) as study:
        panda = babysit(study, config, {"lr": BASE_LR}, dataset=dataset)
        for _ in range(3):
            panda.run_epoch()
        panda.nudge(lr=1e-3)
        assert panda.run_epoch() is not None
        panda.rollback(2)
        panda.run()
        assert panda.done
        old, new = by_number(study)[0], by_number(study)[1]
        assert new.parent == (0, 2)
        assert lrs(old)[4] == pytest.approx(1e-3)
        assert set(lrs(new).values()) == {BASE_LR}
        # The replayed epoch 3 starts from the same checkpoint with the same settings.
        assert new.curve[3] == old.curve[3]
        assert_same_state(checkpoint(study, 1, 2), checkpoint(study, 0, 2))
