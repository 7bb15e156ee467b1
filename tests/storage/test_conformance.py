"""One behaviour for every store: the same tests run over the memory store and the SQLite store."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunery import ConfigError, StorageError
from tunery.records import TrialState
from tunery.storage import BaseStorage

FINISHED = [state for state in TrialState if state.is_finished()]


def new_study(store: BaseStorage, name: str = "s", direction: str = "maximize") -> int:
    return store.open_study(name, direction=direction, seed=3, metric="val_accuracy").study_id


def new_trial(store: BaseStorage, study_id: int, **params: Any) -> int:
    return store.create_trial(study_id, round=1, sample_id=0, params=params).trial_id


# -- studies ------------------------------------------------------------------------------------


def test_open_study_creates_then_returns_the_stored_settings(store: BaseStorage) -> None:
    first = store.open_study("a", direction="minimize", seed=7, metric="loss")
    again = store.open_study("a", direction="maximize", seed=1, metric="other")
    assert again == first
    assert (first.name, first.direction, first.seed, first.metric) == ("a", "minimize", 7, "loss")
    assert store.get_study("a") == first
    assert store.get_study("missing") is None


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("name", {"name": " "}),
        ("direction", {"direction": "up"}),
        ("seed", {"seed": -1}),
        ("seed", {"seed": 1.5}),
        ("metric", {"metric": ""}),
    ],
)
def test_open_study_rejects_bad_settings(
    store: BaseStorage, field: str, kwargs: dict[str, Any]
) -> None:
    args: dict[str, Any] = {"name": "s", "direction": "maximize", "seed": 0, "metric": "m"} | kwargs
    name = args.pop("name")
    with pytest.raises(ConfigError) as info:
        store.open_study(name, **args)
    assert info.value.field == field


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_list_studies_counts_states_and_finds_the_best(store: BaseStorage, direction: str) -> None:
    study_id = new_study(store, "first", direction)
    new_study(store, "empty")
    values = [0.3, 0.9, 0.1]
    for value in values:
        store.finish_trial(new_trial(store, study_id), state=TrialState.COMPLETE, value=value)
    store.finish_trial(new_trial(store, study_id), state=TrialState.FAILED, value=5.0)
    new_trial(store, study_id)
    first, empty = store.list_studies()
    assert [first.study.name, empty.study.name] == ["first", "empty"]
    assert dict(first.counts) == {
        TrialState.COMPLETE: 3,
        TrialState.FAILED: 1,
        TrialState.RUNNING: 1,
    }
    assert first.n_trials == 5
    assert first.best_value == (max(values) if direction == "maximize" else min(values))
    assert empty.n_trials == 0
    assert empty.best_value is None


# -- rounds -------------------------------------------------------------------------------------


def test_rounds_are_numbered_from_one_and_keep_their_json(store: BaseStorage) -> None:
    study_id = new_study(store)
    space = {"lr": {"type": "float", "low": 1e-5, "high": 0.1, "scale": "log"}}
    box = {"bounds": {"lr": [0.25, 0.5]}, "choices": {}}
    first = store.add_round(study_id, space=space, box=None, sampler="random")
    second = store.add_round(study_id, space=space, box=box, sampler="sobol")
    assert (first.index, second.index) == (1, 2)
    assert store.get_rounds(study_id) == [first, second]
    assert second.space == space
    assert second.box == box
    assert first.box is None
    assert second.sampler == "sobol"
    assert store.get_rounds(new_study(store, "other")) == []


def test_a_round_needs_an_existing_study(store: BaseStorage) -> None:
    with pytest.raises(StorageError):
        store.add_round(999, space={}, box=None, sampler="random")


# -- trials -------------------------------------------------------------------------------------


def test_trials_are_numbered_per_study(store: BaseStorage) -> None:
    a, b = new_study(store, "a"), new_study(store, "b")
    numbers = [store.create_trial(sid, round=1, sample_id=0, params={}).number for sid in (a, b, a)]
    assert numbers == [0, 0, 1]
    assert [t.number for t in store.get_all_trials(a)] == [0, 1]
    assert store.get_trial_id(a, 1) != store.get_trial_id(b, 0)


def test_a_new_trial_is_running_with_its_draw_and_parent(store: BaseStorage) -> None:
    study_id = new_study(store)
    made = store.create_trial(study_id, round=2, sample_id=5, params={"lr": 0.1}, parent=(0, 3))
    stored = store.get_trial(made.trial_id)
    assert stored == made
    assert stored.state is TrialState.RUNNING
    assert (stored.round, stored.sample_id, stored.parent) == (2, 5, (0, 3))
    assert stored.started is not None
    assert stored.finished is None


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.text(min_size=1, max_size=6), JSON_SCALARS, max_size=5))
def test_params_come_back_exactly(store: BaseStorage, params: dict[str, Any]) -> None:
    study_id = new_study(store)
    trial_id = store.create_trial(study_id, round=1, sample_id=None, params=params).trial_id
    assert store.get_trial(trial_id).params == params


def test_numpy_scalars_are_stored_as_python_numbers(store: BaseStorage) -> None:
    study_id = new_study(store)
    params = {"units": np.int64(64), "lr": np.float64(0.01), "bn": np.bool_(True)}
    trial_id = store.create_trial(study_id, round=1, sample_id=0, params=params).trial_id
    assert store.get_trial(trial_id).params == {"units": 64, "lr": 0.01, "bn": True}


def test_params_must_be_json_able(store: BaseStorage) -> None:
    study_id = new_study(store)
    with pytest.raises(ConfigError, match="params"):
        store.create_trial(study_id, round=1, sample_id=0, params={"f": object()})


@pytest.mark.parametrize("state", FINISHED)
def test_finishing_records_state_value_and_error(store: BaseStorage, state: TrialState) -> None:
    study_id = new_study(store)
    trial_id = new_trial(store, study_id)
    finished = store.finish_trial(trial_id, state=state, value=0.5, error="boom", interrupted=True)
    trial = store.get_trial(trial_id)
    assert (trial.state, trial.value, trial.error, trial.interrupted) == (state, 0.5, "boom", True)
    assert trial.finished == finished
    assert trial.started is not None
    assert trial.started <= finished
    assert trial.duration == finished - trial.started


def test_a_nan_value_is_stored_as_none_and_inf_is_kept(store: BaseStorage) -> None:
    study_id = new_study(store)
    nan_id, inf_id = new_trial(store, study_id), new_trial(store, study_id)
    store.finish_trial(nan_id, state=TrialState.DIVERGED, value=math.nan)
    store.finish_trial(inf_id, state=TrialState.DIVERGED, value=math.inf)
    assert store.get_trial(nan_id).value is None
    assert store.get_trial(inf_id).value == math.inf


def test_a_finished_trial_cannot_change(store: BaseStorage) -> None:
    study_id = new_study(store)
    trial_id = new_trial(store, study_id)
    store.finish_trial(trial_id, state=TrialState.COMPLETE, value=1.0)
    with pytest.raises(StorageError, match="COMPLETE"):
        store.finish_trial(trial_id, state=TrialState.FAILED)
    with pytest.raises(StorageError):
        store.report(trial_id, 1, {"loss": 0.1})
    with pytest.raises(StorageError):
        store.set_trial_user_attr(trial_id, "k", 1)
    with pytest.raises(StorageError):
        store.save_checkpoint(trial_id, 1, b"x")
    trial = store.get_trial(trial_id)
    assert (trial.state, trial.value, trial.curve, trial.user_attrs) == (
        TrialState.COMPLETE,
        1.0,
        {},
        {},
    )


def test_writing_to_a_missing_trial_fails(store: BaseStorage) -> None:
    with pytest.raises(StorageError, match="no trial"):
        store.finish_trial(12345, state=TrialState.COMPLETE)
    with pytest.raises(StorageError, match="no trial"):
        store.get_trial(12345)
    with pytest.raises(ConfigError, match="trial number"):
        store.get_trial_id(new_study(store), 0)


def test_finish_needs_a_finished_state(store: BaseStorage) -> None:
    trial_id = new_trial(store, new_study(store))
    with pytest.raises(ConfigError, match="state"):
        store.finish_trial(trial_id, state=TrialState.RUNNING)


def test_fail_running_trials_marks_only_running_ones(store: BaseStorage) -> None:
    study_id = new_study(store)
    done, running = new_trial(store, study_id), new_trial(store, study_id)
    other = new_trial(store, new_study(store, "other"))
    store.finish_trial(done, state=TrialState.COMPLETE, value=1.0)
    failed = store.fail_running_trials(study_id, "process died")
    assert [t.trial_id for t in failed] == [running]
    trial = store.get_trial(running)
    assert (trial.state, trial.interrupted, trial.error) == (
        TrialState.FAILED,
        True,
        "process died",
    )
    assert store.get_trial(done).state is TrialState.COMPLETE
    assert store.get_trial(other).state is TrialState.RUNNING
    assert store.fail_running_trials(study_id, "again") == []


def test_get_all_trials_filters_by_state(store: BaseStorage) -> None:
    study_id = new_study(store)
    states = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE, TrialState.DIVERGED]
    for state in states:
        store.finish_trial(new_trial(store, study_id), state=state, value=1.0)
    new_trial(store, study_id)
    complete = store.get_all_trials(study_id, states=[TrialState.COMPLETE])
    assert [t.number for t in complete] == [0, 2]
    assert len(store.get_all_trials(study_id)) == 5
    assert store.get_all_trials(study_id, states=()) == []


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(st.sampled_from(["create", "finish", "read"]), max_size=25))
def test_trial_list_stays_true_while_trials_come_and_go(store: BaseStorage, ops: list[str]) -> None:
    """Any interleaving of creating, finishing and reading gives the true list (SQLite caches)."""
    study_id = new_study(store, f"s{len(store.list_studies())}")
    expected: dict[int, TrialState] = {}
    for op in ops:
        running = [n for n, s in expected.items() if s is TrialState.RUNNING]
        if op == "create":
            expected[store.create_trial(study_id, round=1, sample_id=0, params={}).number] = (
                TrialState.RUNNING
            )
        elif op == "finish" and running:
            number = running[len(running) // 2]
            store.finish_trial(store.get_trial_id(study_id, number), state=TrialState.PRUNED)
            expected[number] = TrialState.PRUNED
        seen = {t.number: t.state for t in store.get_all_trials(study_id)}
        assert seen == expected


# -- curves and user attributes -----------------------------------------------------------------


def test_reports_build_a_curve_merging_metrics_of_one_epoch(store: BaseStorage) -> None:
    trial_id = new_trial(store, new_study(store))
    store.report(trial_id, 1, {"loss": 0.9, "val_accuracy": 0.5})
    store.report(trial_id, 2, {"loss": 0.4})
    store.report(trial_id, 2, {"val_accuracy": 0.7, "loss": 0.3})
    trial = store.get_trial(trial_id)
    assert trial.curve == {
        1: {"loss": 0.9, "val_accuracy": 0.5},
        2: {"loss": 0.3, "val_accuracy": 0.7},
    }
    assert trial.metric("loss") == {1: 0.9, 2: 0.3}
    assert trial.last("val_accuracy") == 0.7
    assert trial.last("missing") is None


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.floats(), min_size=1, max_size=4))
def test_curve_values_come_back_exactly_even_nan_and_inf(
    store: BaseStorage, values: list[float]
) -> None:
    trial_id = new_trial(store, new_study(store))
    for epoch, value in enumerate(values):
        store.report(trial_id, epoch, {"loss": value, "twice": 0.0})
        store.report(trial_id, epoch, {"twice": value})
    curve = store.get_trial(trial_id).curve
    for epoch, value in enumerate(values):
        for got in (curve[epoch]["loss"], curve[epoch]["twice"]):
            assert got == value or (math.isnan(got) and math.isnan(value))


@pytest.mark.parametrize(
    ("epoch", "metrics", "field"),
    [
        (-1, {"loss": 1.0}, "epoch"),
        (1.5, {"loss": 1.0}, "epoch"),
        (True, {"loss": 1.0}, "epoch"),
        (1, {"loss": "low"}, "metric 'loss'"),
        (1, {"loss": None}, "metric 'loss'"),
        (1, {"": 1.0}, "metric name"),
    ],
)
def test_bad_reports_are_refused(store: BaseStorage, epoch: Any, metrics: Any, field: str) -> None:
    trial_id = new_trial(store, new_study(store))
    with pytest.raises(ConfigError) as info:
        store.report(trial_id, epoch, metrics)
    assert info.value.field == field
    assert store.get_trial(trial_id).curve == {}


def test_user_attrs_round_trip_and_replace(store: BaseStorage) -> None:
    trial_id = new_trial(store, new_study(store))
    store.set_trial_user_attr(trial_id, "note", "first")
    store.set_trial_user_attr(trial_id, "note", {"text": "second", "tags": [1, 2]})
    store.set_trial_user_attr(trial_id, "host", "gpu-1")
    assert store.get_trial(trial_id).user_attrs == {
        "note": {"text": "second", "tags": [1, 2]},
        "host": "gpu-1",
    }
    with pytest.raises(ConfigError, match="user attr"):
        store.set_trial_user_attr(trial_id, "bad", {1, 2})


# -- checkpoints --------------------------------------------------------------------------------


def test_checkpoints_by_epoch_and_latest(store: BaseStorage) -> None:
    trial_id = new_trial(store, new_study(store))
    assert store.load_checkpoint(trial_id) is None
    store.save_checkpoint(trial_id, 3, b"three")
    store.save_checkpoint(trial_id, 1, bytearray(b"one"))
    store.save_checkpoint(trial_id, 3, b"three again")
    assert store.checkpoint_epochs(trial_id) == [1, 3]
    assert store.load_checkpoint(trial_id) == (3, b"three again")
    assert store.load_checkpoint(trial_id, 1) == (1, b"one")
    assert store.load_checkpoint(trial_id, 2) is None
    store.finish_trial(trial_id, state=TrialState.COMPLETE, value=0.0)
    assert store.load_checkpoint(trial_id) == (3, b"three again")  # still readable for branches


def test_a_checkpoint_must_be_bytes(store: BaseStorage) -> None:
    trial_id = new_trial(store, new_study(store))
    with pytest.raises(ConfigError, match="checkpoint"):
        store.save_checkpoint(trial_id, 1, "text")  # type: ignore[arg-type]
    assert store.checkpoint_epochs(trial_id) == []


# -- events -------------------------------------------------------------------------------------


def test_events_queue_until_applied(store: BaseStorage) -> None:
    study_id, other = new_study(store), new_study(store, "other")
    nudge = store.add_event(study_id, "nudge", {"lr": 0.01}, trial_number=0)
    pause = store.add_event(study_id, "pause")
    store.add_event(other, "pause")
    assert store.get_events(study_id) == [nudge, pause]
    assert nudge.payload == {"lr": 0.01}
    assert (nudge.trial_number, pause.trial_number, pause.payload) == (0, None, {})
    store.mark_event_applied(nudge.event_id)
    store.mark_event_applied(nudge.event_id)  # applying twice changes nothing
    assert store.get_events(study_id) == [pause]
    applied, still = store.get_events(study_id, pending=False)
    assert applied.event_id == nudge.event_id
    assert applied.applied is not None
    assert applied.applied >= applied.created
    assert still == pause


def test_bad_events_are_refused(store: BaseStorage) -> None:
    study_id = new_study(store)
    with pytest.raises(ConfigError, match="kind"):
        store.add_event(study_id, "")
    with pytest.raises(ConfigError, match="payload"):
        store.add_event(study_id, "nudge", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(StorageError):
        store.add_event(999, "pause")
    with pytest.raises(StorageError):
        store.mark_event_applied(999)
    assert store.get_events(study_id, pending=False) == []


def test_a_running_trial_has_a_heartbeat_that_beats_refresh(store: BaseStorage) -> None:
    study_id = new_study(store)
    running, done = new_trial(store, study_id), new_trial(store, study_id)
    store.finish_trial(done, state=TrialState.COMPLETE, value=1.0)
    made = store.get_trial(running)
    assert made.heartbeat == made.started  # no beat yet: the start is the last sign of life
    store.heartbeat([running, done, 10_000], 2e9)  # finished and unknown ids are skipped
    assert store.get_trial(running).heartbeat == 2e9
    assert store.get_trial(done).heartbeat is None  # only a RUNNING trial has one


def test_only_stale_trials_are_failed_when_a_cut_is_given(store: BaseStorage) -> None:
    study_id = new_study(store)
    stale, fresh = new_trial(store, study_id), new_trial(store, study_id)
    store.heartbeat([stale], 1000.0)
    store.heartbeat([fresh], 3000.0)
    failed = store.fail_running_trials(study_id, "stale", stale_before=2000.0)
    assert [t.trial_id for t in failed] == [stale]
    assert (failed[0].state, failed[0].interrupted, failed[0].error) == (
        TrialState.FAILED,
        True,
        "stale",
    )
    assert store.get_trial(fresh).state is TrialState.RUNNING


def test_the_output_is_kept_with_the_finish(store: BaseStorage) -> None:
    study_id = new_study(store)
    quiet, chatty = new_trial(store, study_id), new_trial(store, study_id)
    store.finish_trial(quiet, state=TrialState.COMPLETE, value=1.0)
    store.finish_trial(chatty, state=TrialState.FAILED, output="epoch 1\n[red]é\n")
    assert store.get_trial(quiet).output is None
    assert store.get_trial(chatty).output == "epoch 1\n[red]é\n"
    assert store.get_all_trials(study_id)[1].output == "epoch 1\n[red]é\n"
