"""The study API: reopening, ask and tell, trial handles, caviar, rounds, export."""

from __future__ import annotations

import csv
import math
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import spaces
from tunery import ConfigError, Diverged, Pruned, StorageError
from tunery.records import FrozenTrial
from tunery.report import export_csv, to_dataframe
from tunery.samplers import make_sampler, sample_params
from tunery.space import Choice, Float, Int, Space
from tunery.storage import BaseStorage, MemoryStorage, SqliteStorage
from tunery.study import Study, Trial, TrialState, list_studies, load_study, round_seed

SPACE: Space = {
    "lr": Float(1e-4, 1.0, scale="log"),
    "units": Int(10, 100),
    "act": Choice(["relu", "tanh"]),
}


def quadratic(trial: Trial) -> float:
    """Best at lr = 0.01 (log scale), units = 50; relu adds a bonus."""
    lr, units = trial.params["lr"], trial.params["units"]
    bonus = 0.1 if trial.params["act"] == "relu" else 0.0
    return -((math.log10(lr) + 2) ** 2) - ((units - 50) / 50) ** 2 + bonus


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStorage]:
    storage: BaseStorage = (
        MemoryStorage() if request.param == "memory" else SqliteStorage(tmp_path / "t.db")
    )
    yield storage
    storage.close()


# -- creating and reopening --------------------------------------------------------------------


def test_a_new_study_takes_the_defaults(store: BaseStorage) -> None:
    study = Study("s", store)
    assert (study.direction, study.seed, study.metric) == ("maximize", 0, "val_accuracy")
    assert study.trials == []
    assert study.rounds == []


def test_reopening_keeps_the_stored_settings(store: BaseStorage) -> None:
    Study("s", store, "minimize", 7, metric="loss")
    again = Study("s", store)
    assert (again.direction, again.seed, again.metric) == ("minimize", 7, "loss")
    assert Study("s", store, "minimize", 7, metric="loss").study_id == again.study_id


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("direction", {"direction": "maximize"}),
        ("seed", {"seed": 8}),
        ("metric", {"metric": "acc"}),
    ],
)
def test_reopening_with_other_settings_names_the_field(
    store: BaseStorage, field: str, kwargs: dict[str, Any]
) -> None:
    Study("s", store, "minimize", 7, metric="loss")
    with pytest.raises(ConfigError) as info:
        Study("s", store, **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("direction", {"direction": "down"}),
        ("seed", {"seed": -3}),
        ("name", {"name": ""}),
        ("sampler", {"sampler": "bayes"}),
        ("sampler", {"sampler": 3}),
        ("pruner", {"pruner": "median"}),
    ],
)
def test_bad_arguments_name_the_field(field: str, kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"name": "s", "storage": ":memory:"} | kwargs
    with pytest.raises(ConfigError) as info:
        Study(**args)
    assert info.value.field == field


def test_load_study_and_list_studies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    Study("a", url, "minimize").caviar(lambda t: t.params["lr"], SPACE, n_trials=3, workers=1)
    Study("b", url)
    loaded = load_study("a", url)
    assert loaded.direction == "minimize"
    assert len(loaded.trials) == 3
    summaries = list_studies(url)
    assert [s.study.name for s in summaries] == ["a", "b"]
    assert summaries[0].best_value == min(t.params["lr"] for t in loaded.trials)
    with pytest.raises(ConfigError, match=r"\['a', 'b'\]") as info:
        load_study("c", url)
    assert info.value.field == "study"


# -- ask and tell --------------------------------------------------------------------------------


def test_ask_needs_a_space_first(store: BaseStorage) -> None:
    with pytest.raises(ConfigError) as info:
        Study("s", store).ask()
    assert info.value.field == "space"


def test_draws_are_the_samplers_draws_numbered_by_sample_id(store: BaseStorage) -> None:
    study = Study("s", store, seed=11, sampler="sobol")
    trials = [study.ask(SPACE) for _ in range(4)]
    sampler = make_sampler("sobol")
    assert [t.sample_id for t in trials] == [0, 1, 2, 3]
    assert [t.params for t in trials] == [sample_params(sampler, SPACE, 11, i) for i in range(4)]
    assert [t.params for t in study.trials] == [t.params for t in trials]
    assert study.rounds[0].sampler == "sobol"


@settings(max_examples=20, deadline=None)
@given(space=spaces(), seed=st.integers(0, 2**31))
def test_stored_params_are_the_drawn_params_for_any_space(space: Space, seed: int) -> None:
    study = Study("s", ":memory:", seed=seed)
    trial = study.ask(space)
    assert all(space[name].contains(value) for name, value in trial.params.items())
    assert study.trials[0].params == trial.params == sample_params(make_sampler(), space, seed, 0)


def test_tell_returns_the_record_the_store_keeps(store: BaseStorage) -> None:
    study = Study("s", store)
    trial = study.ask(SPACE)
    trial.report(1, loss=0.9, val_accuracy=0.5)
    trial.set_user_attr("host", "gpu-1")
    frozen = study.tell(trial, 0.5)
    assert frozen == study.trials[0]
    assert (frozen.state, frozen.value, frozen.curve) == (
        TrialState.COMPLETE,
        0.5,
        {1: {"loss": 0.9, "val_accuracy": 0.5}},
    )
    assert frozen.user_attrs == {"host": "gpu-1"}


@pytest.mark.parametrize(
    ("value", "state", "expected_state", "expected_value"),
    [
        (0.25, None, TrialState.COMPLETE, 0.25),
        (math.nan, None, TrialState.DIVERGED, None),
        (math.inf, None, TrialState.DIVERGED, math.inf),
        (None, TrialState.FAILED, TrialState.FAILED, None),
        (None, TrialState.PRUNED, TrialState.PRUNED, 0.75),  # the last reported val_accuracy
        (0.1, TrialState.PRUNED, TrialState.PRUNED, 0.1),
    ],
)
def test_tell_resolves_state_and_value(
    store: BaseStorage,
    value: float | None,
    state: TrialState | None,
    expected_state: TrialState,
    expected_value: float | None,
) -> None:
    study = Study("s", store)
    trial = study.ask(SPACE)
    trial.report(1, val_accuracy=0.5)
    trial.report(2, val_accuracy=0.75, loss=3.0)
    frozen = study.tell(trial, value, state)
    assert (frozen.state, frozen.value) == (expected_state, expected_value)
    assert study.trials[0].state is expected_state


@pytest.mark.parametrize(
    ("field", "value", "state"),
    [
        ("value", None, None),
        ("value", "high", None),
        ("value", None, TrialState.COMPLETE),
        ("value", math.nan, TrialState.COMPLETE),
        ("state", 1.0, TrialState.RUNNING),
        ("state", 1.0, 42),
    ],
)
def test_bad_tells_name_the_field_and_leave_the_trial_running(
    store: BaseStorage, field: str, value: Any, state: Any
) -> None:
    study = Study("s", store)
    trial = study.ask(SPACE)
    with pytest.raises(ConfigError) as info:
        study.tell(trial, value, state)
    assert info.value.field == field
    assert study.trials[0].state is TrialState.RUNNING
    assert study.tell(trial, 1.0).state is TrialState.COMPLETE


def test_a_trial_is_told_once(store: BaseStorage) -> None:
    study = Study("s", store)
    trial = study.ask(SPACE)
    study.tell(trial.number, 1.0)
    with pytest.raises(ConfigError) as info:
        study.tell(trial, 2.0)
    assert info.value.field == "trial"
    with pytest.raises(StorageError, match="finished"):
        trial.report(3, loss=1.0)
    assert study.trials[0].value == 1.0


def test_ask_with_given_params_and_a_parent(store: BaseStorage) -> None:
    study = Study("s", store)
    first = study.ask(SPACE)
    branch = study.ask(params={"lr": 0.5, "units": 20, "act": "tanh"}, parent=(first.number, 3))
    assert (branch.sample_id, branch.parent) == (None, (0, 3))
    assert study.trials[1].params == {"lr": 0.5, "units": 20, "act": "tanh"}
    assert study.ask().sample_id == 1  # a branch takes no draw
    with pytest.raises(ConfigError) as info:
        study.ask(parent=(0, -1))
    assert info.value.field == "parent"


# -- the trial handle --------------------------------------------------------------------------


def test_report_validates_and_tracks_the_latest_epoch(store: BaseStorage) -> None:
    study = Study("s", store)
    trial = study.ask(SPACE)
    trial.report(2, loss=1.0)
    trial.report(1, loss=2.0)
    assert trial.epoch == 2
    assert trial.last("loss") == 1.0
    assert trial.last() is None
    for epoch, metrics, field in [
        (-1, {"loss": 1.0}, "epoch"),
        (1, {}, "metrics"),
        (1, {"loss": "x"}, "metric 'loss'"),
    ]:
        with pytest.raises(ConfigError) as info:
            trial.report(epoch, **metrics)
        assert info.value.field == field
    assert study.trials[0].curve == {1: {"loss": 2.0}, 2: {"loss": 1.0}}


def test_checkpoint_at_the_latest_epoch_and_restore(store: BaseStorage) -> None:
    study = Study("s", store)
    trial = study.ask(SPACE)
    assert trial.restore() is None
    trial.checkpoint(b"start")
    trial.report(1, loss=1.0)
    trial.checkpoint(b"after one")
    trial.checkpoint(b"at five", epoch=5)
    assert trial.restore() == b"at five"
    assert trial.restore(0) == b"start"
    assert trial.restore(1) == b"after one"
    assert trial.restore(2) is None
    assert store.checkpoint_epochs(trial.trial_id) == [0, 1, 5]
    with pytest.raises(ConfigError) as info:
        trial.checkpoint("text")  # type: ignore[arg-type]
    assert info.value.field == "checkpoint"


def test_a_branch_restores_its_parent_at_the_branch_epoch(store: BaseStorage) -> None:
    study = Study("s", store)
    parent = study.ask(SPACE)
    for epoch in (1, 2, 3):
        parent.checkpoint(f"epoch {epoch}".encode(), epoch=epoch)
    study.tell(parent, 0.5)
    branch = study.ask(params=parent.params, parent=(parent.number, 2))
    assert branch.restore() == b"epoch 2"
    assert branch.restore(1) == b"epoch 1"
    assert branch.restore(3) is None  # past the branch point: the parent's future is not ours
    branch.checkpoint(b"own", epoch=3)
    assert branch.restore() == b"own"


class EpochPruner:
    """Prunes from ``epoch`` on; remembers what it was shown."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.seen: list[tuple[int, FrozenTrial, int]] = []

    def should_prune(self, study_trials: list[FrozenTrial], trial: FrozenTrial, epoch: int) -> bool:
        self.seen.append((len(study_trials), trial, epoch))
        return epoch >= self.epoch


def test_should_prune_asks_the_pruner_with_the_trials_and_the_curve(store: BaseStorage) -> None:
    pruner = EpochPruner(2)
    study = Study("s", store, pruner=pruner)
    study.tell(study.ask(SPACE), 0.1)
    trial = study.ask()
    assert not trial.should_prune()  # nothing reported yet: the pruner is not asked
    trial.report(1, val_accuracy=0.3)
    assert not trial.should_prune()
    trial.report(2, val_accuracy=0.4)
    assert trial.should_prune()
    n_trials, record, epoch = pruner.seen[-1]
    assert (n_trials, epoch, record.number) == (2, 2, trial.number)
    assert record.curve == {1: {"val_accuracy": 0.3}, 2: {"val_accuracy": 0.4}}
    assert not Study("t", store).ask(SPACE).should_prune()  # no pruner: never


def test_user_attrs_must_be_json(store: BaseStorage) -> None:
    study = Study("s", store)
    trial = study.ask(SPACE)
    trial.set_user_attr("shape", (3, 4))
    with pytest.raises(ConfigError, match="user attr"):
        trial.set_user_attr("bad", object())
    assert trial.user_attrs == {"shape": [3, 4]}
    assert study.trials[0].user_attrs == {"shape": [3, 4]}


# -- caviar --------------------------------------------------------------------------------------


def outcome_by_lr(trial: Trial) -> Any:
    """A different ending for each trial, chosen by its number."""
    trial.report(1, val_accuracy=0.2)
    trial.report(2, val_accuracy=0.3)
    kind = trial.number % 6
    if kind == 1:
        raise ValueError(f"bad batch in trial {trial.number}")
    if kind == 2:
        raise Pruned()
    if kind == 3:
        raise Diverged(2, math.nan)
    if kind == 4:
        return math.inf
    if kind == 5:
        return "not a number"
    return 0.5


def test_caviar_records_every_kind_of_ending_and_goes_on(store: BaseStorage) -> None:
    study = Study("s", store).caviar(outcome_by_lr, SPACE, n_trials=12, workers=1)
    trials = study.trials
    assert len(trials) == 12
    states = [t.state for t in trials[:6]]
    assert states == [
        TrialState.COMPLETE,
        TrialState.FAILED,
        TrialState.PRUNED,
        TrialState.DIVERGED,
        TrialState.DIVERGED,
        TrialState.FAILED,
    ]
    assert trials[1].error is not None
    assert "ValueError: bad batch in trial 1" in trials[1].error
    assert "Traceback" in trials[1].error
    assert trials[2].value == 0.3
    assert trials[3].error == "training diverged at epoch 2: loss is nan"
    assert trials[5].error is not None
    assert "'not a number'" in trials[5].error
    assert not any(t.interrupted for t in trials)


def test_n_trials_is_the_total_to_reach(store: BaseStorage) -> None:
    calls: list[int] = []

    def objective(trial: Trial) -> float:
        calls.append(trial.number)
        return 1.0

    study = Study("s", store)
    study.caviar(objective, SPACE, n_trials=4, workers=1)
    study.caviar(objective, SPACE, n_trials=4, workers=1)
    assert calls == [0, 1, 2, 3]
    Study("s", store).caviar(objective, n_trials=6, workers=1)  # reopened: the space is the study's
    assert calls == [0, 1, 2, 3, 4, 5]
    assert [t.sample_id for t in study.trials] == [0, 1, 2, 3, 4, 5]


def test_callbacks_see_each_finished_trial(store: BaseStorage) -> None:
    seen: list[tuple[str, int, TrialState]] = []
    Study("s", store).caviar(
        outcome_by_lr,
        SPACE,
        n_trials=3,
        callbacks=[lambda study, trial: seen.append((study.name, trial.number, trial.state))],
        workers=1,
    )
    assert seen == [
        ("s", 0, TrialState.COMPLETE),
        ("s", 1, TrialState.FAILED),
        ("s", 2, TrialState.PRUNED),
    ]


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("n_trials", {"n_trials": 0}),
        ("n_trials", {"n_trials": None}),
        ("n_trials", {"n_trials": 2, "rounds": 3}),
        ("workers", {"workers": 0}),
        ("rounds", {"rounds": 0}),
        ("trials_per_round", {"trials_per_round": 1.5}),
        ("callbacks", {"callbacks": [1]}),
        ("objective", {"objective": "train"}),
    ],
)
def test_bad_caviar_arguments_name_the_field(field: str, kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"objective": quadratic, "space": SPACE, "n_trials": 3} | kwargs
    study = Study("s", ":memory:")
    with pytest.raises(ConfigError) as info:
        study.caviar(**args)
    assert info.value.field == field
    assert study.trials == []


def test_more_than_one_worker_goes_to_the_process_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("tunery.run.caviar")
    fake.run_pool = lambda study, objective, **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tunery.run.caviar", fake)
    Study("s", ":memory:").caviar(quadratic, SPACE, n_trials=7, workers=3)
    assert [_without_hook(call) for call in calls] == [{"target": 7, "workers": 3, "live": None}]


def test_rounds_zoom_between_and_resume_counts_whole_study(store: BaseStorage) -> None:
    study = Study("s", store, seed=3).caviar(quadratic, SPACE, n_trials=60, rounds=3, workers=1)
    rounds = study.rounds
    assert [r.index for r in rounds] == [1, 2, 3]
    assert [r.zoomed for r in rounds] == [False, True, True]
    assert [sum(t.round == r.index for t in study.trials) for r in rounds] == [20, 20, 20]
    first, last = rounds[0].space["lr"], rounds[2].space["lr"]
    assert isinstance(first, Float)
    assert isinstance(last, Float)
    assert first.low <= last.low < last.high <= first.high
    assert last.high / last.low < first.high / first.low
    for trial in study.trials:
        space = rounds[trial.round - 1].space
        assert all(space[name].contains(value) for name, value in trial.params.items())
    Study("s", store).caviar(
        quadratic, SPACE, n_trials=60, rounds=3, workers=1
    )  # done: nothing more
    assert len(study.trials) == 60
    assert len(study.rounds) == 3


def test_zoom_uses_complete_trials_of_all_rounds(store: BaseStorage) -> None:
    study = Study("s", store, seed=5).caviar(quadratic, SPACE, n_trials=20, workers=1)
    round2 = study.zoom(top=5, min_top=3, margin=0.0)
    best = sorted(study.get_trials([TrialState.COMPLETE]), key=lambda t: -(t.value or 0))[:5]
    lr = round2.space["lr"]
    assert isinstance(lr, Float)
    assert lr.low == pytest.approx(min(t.params["lr"] for t in best))
    assert lr.high == pytest.approx(max(t.params["lr"] for t in best))
    assert round2.box is not None
    assert set(round2.box.bounds) == {"lr", "units"}
    study.caviar(quadratic, n_trials=30, workers=1)
    round3 = study.zoom(top=5, margin=0.0)
    best = sorted(study.get_trials([TrialState.COMPLETE]), key=lambda t: -(t.value or 0))[:5]
    units = round3.space["units"]
    assert isinstance(units, Int)
    assert (units.low, units.high) == (
        min(t.params["units"] for t in best),
        max(t.params["units"] for t in best),
    )


def test_zoom_needs_enough_complete_trials(store: BaseStorage) -> None:
    study = Study("s", store).caviar(quadratic, SPACE, n_trials=2, workers=1)
    with pytest.raises(ConfigError, match="min_top"):
        study.zoom(min_top=3)
    assert len(study.rounds) == 1


def test_each_round_draws_afresh(store: BaseStorage) -> None:
    study = Study("s", store, seed=2).caviar(quadratic, SPACE, n_trials=10, workers=1)
    zoomed = study.zoom()
    trial = study.ask()
    assert (trial.round, trial.sample_id) == (2, 0)
    assert trial.params == sample_params(make_sampler(), zoomed.space, round_seed(2, 2), 0)
    assert round_seed(2, 2) != 2


def test_a_different_space_starts_a_round_and_the_base_space_keeps_the_current(
    store: BaseStorage,
) -> None:
    study = Study("s", store).caviar(quadratic, SPACE, n_trials=6, workers=1)
    study.zoom()
    assert study.ask(SPACE).round == 2  # the base space: carry on in the zoomed round
    assert study.ask(dict(study.space)).round == 2
    wider = SPACE | {"lr": Float(1e-6, 1.0, scale="log")}
    trial = study.ask(wider)
    assert (trial.round, trial.sample_id) == (3, 0)
    assert study.rounds[2].box is None
    assert study.space == wider


def test_best_trial_by_direction(store: BaseStorage) -> None:
    values = [0.3, 0.9, 0.1, 0.5]
    for direction, expected in (("maximize", 0.9), ("minimize", 0.1)):
        study = Study(direction, store, direction)
        for value in values:
            study.tell(study.ask(SPACE), value)
        assert study.best_value == expected
        assert study.best_trial.params == study.trials[values.index(expected)].params
        assert study.best_params == study.best_trial.params
    empty = Study("empty", store)
    with pytest.raises(ConfigError, match="none COMPLETE"):
        _ = empty.best_trial


# -- export --------------------------------------------------------------------------------------


def test_export_csv_writes_trials_and_curves(store: BaseStorage, tmp_path: Path) -> None:
    study = Study("s", store).caviar(outcome_by_lr, SPACE, n_trials=4, workers=1)
    export_csv(study.trials, tmp_path / "trials.csv", curves_path=tmp_path / "curves.csv")
    with (tmp_path / "trials.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["state"] for row in rows] == [t.state.name for t in study.trials]
    assert float(rows[0]["value"]) == study.trials[0].value
    assert float(rows[0]["params_lr"]) == study.trials[0].params["lr"]
    assert rows[0]["params_act"] == study.trials[0].params["act"]
    with (tmp_path / "curves.csv").open() as handle:
        curves = list(csv.DictReader(handle))
    assert [(row["number"], row["epoch"]) for row in curves] == [
        (str(n), str(e)) for n in range(4) for e in (1, 2)
    ]
    assert [float(row["val_accuracy"]) for row in curves[:2]] == [0.2, 0.3]


def test_to_dataframe_has_a_row_per_trial(store: BaseStorage) -> None:
    pytest.importorskip("pandas")
    study = Study("s", store).caviar(quadratic, SPACE, n_trials=5, workers=1)
    frame = to_dataframe(study.trials)
    assert list(frame["number"]) == [0, 1, 2, 3, 4]
    assert list(frame["params_units"]) == [t.params["units"] for t in study.trials]
    assert set(frame["state"]) == {"COMPLETE"}


def test_to_dataframe_without_pandas_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        to_dataframe(Study("s", ":memory:").trials)


def test_frozen_trials_pickle(store: BaseStorage) -> None:
    study = Study("s", store).caviar(outcome_by_lr, SPACE, n_trials=3, workers=1)
    assert pickle.loads(pickle.dumps(study.trials)) == study.trials


def test_sampler_options_survive_reopening_the_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'grid.db'}"
    space = {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}
    first = Study("g", storage=url, sampler=make_sampler("grid", points_per_dim=7))
    drawn = []
    for _ in range(3):
        trial = first.ask(space)
        drawn.append(trial.params)
        first.tell(trial, 0.0)
    first.close()
    # Reopened with the default sampler: the round keeps drawing from its 7-point grid.
    again = Study("g", storage=url)
    assert again.rounds[0].sampler == "grid"
    seven = make_sampler("grid", points_per_dim=7)
    expected = [sample_params(seven, space, 0, n) for n in range(4)]
    assert drawn == expected[:3]
    assert again.ask().params == expected[3]


def test_caviar_refuses_rounds_too_small_to_zoom_before_running_any_trial() -> None:
    study = Study("tiny", storage="memory")
    calls: list[int] = []

    def objective(trial: Trial) -> float:
        calls.append(trial.number)
        return 0.0

    with pytest.raises(ConfigError, match="trials_per_round"):
        study.caviar(objective, {"x": Float(0.0, 1.0)}, n_trials=8, rounds=3, workers=1)
    assert calls == []


def test_caviar_defaults_to_one_worker_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("tunery.run.caviar")
    fake.run_pool = lambda study, objective, **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tunery.run.caviar", fake)
    monkeypatch.setattr("tunery.study.default_workers", lambda: 4)
    Study("s", ":memory:").caviar(quadratic, SPACE, n_trials=5, live=False)
    assert [_without_hook(call) for call in calls] == [{"target": 5, "workers": 4, "live": False}]


def test_a_given_pruner_watches_the_studys_metric_and_direction() -> None:
    from tunery.pruners import MedianPruner

    study = Study("s", ":memory:", direction="minimize", metric="loss", pruner=MedianPruner())
    assert isinstance(study.pruner, MedianPruner)
    assert (study.pruner.metric, study.pruner.direction) == ("loss", "minimize")
    told = MedianPruner(metric="val_accuracy", direction="maximize")
    kept = Study("t", ":memory:", direction="minimize", metric="loss", pruner=told).pruner
    assert isinstance(kept, MedianPruner)
    assert (kept.metric, kept.direction) == ("val_accuracy", "maximize")


def test_a_round_without_enough_complete_trials_goes_on_without_zooming() -> None:
    from tunery import TuneryWarning

    def prunes_most(trial: Trial) -> float:
        trial.report(1, val_accuracy=trial.params["x"])
        if trial.params["x"] > 0.3:
            raise Pruned
        return trial.params["x"]

    space = {"x": Float(0.0, 1.0)}
    study = Study("p", ":memory:", seed=1)
    with pytest.warns(TuneryWarning, match="without zooming"):
        study.caviar(prunes_most, space, n_trials=30, rounds=3, workers=1)
    # The study finished all its trials instead of stopping at the first round boundary.
    assert study.count_done() == 30
    complete = study.get_trials([TrialState.COMPLETE])
    assert all(trial.params["x"] <= 0.3 for trial in complete)


def test_a_trial_the_store_refused_keeps_its_draw_next() -> None:
    class Refusing(MemoryStorage):
        refuse = True

        def create_trial(self, *args: Any, **kwargs: Any) -> Any:
            if self.refuse:
                self.refuse = False
                raise StorageError("the write lock was held too long")
            return super().create_trial(*args, **kwargs)

    space = {"x": Float(0.0, 1.0)}
    study = Study("s", Refusing(), seed=5)
    with pytest.raises(StorageError):
        study.ask(space)
    trial = study.ask()
    assert trial.sample_id == 0
    assert trial.params == sample_params(make_sampler("random"), space, 5, 0)


def _without_hook(call: dict[str, Any]) -> dict[str, Any]:
    """An executor call's arguments but ``on_finished``, the study's own closure (checked here)."""
    assert callable(call["on_finished"])
    return {key: value for key, value in call.items() if key != "on_finished"}
