"""The fast reads (what a dashboard over 50,000 trials asks) agree with the full records, on both
stores: ``trial_summaries``, ``get_curves``, ``curve_points`` / ``curve_cursor``,
``change_marker`` and ``list_studies``' last activity."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunery.records import CurvePoint, FrozenTrial, TrialState, TrialSummary
from tunery.storage import BaseStorage, MemoryStorage, SqliteStorage

FINISHED = [state for state in TrialState if state.is_finished()]
_files = itertools.count()


@pytest.fixture(params=["memory", "sqlite"])
def new_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], BaseStorage]]:
    """A maker of empty stores of one kind: a hypothesis example needs a store of its own."""
    made: list[BaseStorage] = []

    def make() -> BaseStorage:
        store: BaseStorage = (
            MemoryStorage()
            if request.param == "memory"
            else SqliteStorage(tmp_path / f"s{next(_files)}.db")
        )
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def summary_of(trial: FrozenTrial) -> TrialSummary:
    return TrialSummary(
        number=trial.number,
        trial_id=trial.trial_id,
        round=trial.round,
        params=trial.params,
        state=trial.state,
        value=trial.value,
        started=trial.started,
        finished=trial.finished,
        parent=trial.parent,
        epochs=len(trial.curve),
        heartbeat=trial.heartbeat if trial.state is TrialState.RUNNING else None,
    )


metrics = st.dictionaries(
    st.sampled_from(["acc", "loss"]), st.floats(-10, 10, allow_nan=False), min_size=1
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("trial"), st.integers(0, 1), st.integers(0, 3)),
        st.tuples(st.just("report"), st.integers(0, 20), st.integers(0, 4), metrics),
        st.tuples(
            st.just("finish"),
            st.integers(0, 20),
            st.sampled_from(FINISHED),
            st.none() | st.floats(-1, 1),
        ),
        st.tuples(st.just("attr"), st.integers(0, 20), st.integers()),
        st.tuples(st.just("beat"), st.integers(0, 20), st.floats(1e9, 2e9)),
        st.tuples(st.just("fail"), st.integers(0, 1)),
    ),
    max_size=40,
)


@dataclass
class Played:
    """What a run of ``ops`` did: each study's id and every report with the cursor after it."""

    studies: list[int]
    reports: list[tuple[int, int, int, int]] = field(
        default_factory=list
    )  # seq, sid, number, epoch
    cursors: list[int] = field(default_factory=list)  # the cursor after each op


def play(store: BaseStorage, steps: list[tuple[Any, ...]]) -> Played:
    studies = [
        store.open_study(name, direction="maximize", seed=0, metric="acc").study_id
        for name in ("a", "b")
    ]
    played = Played(studies)
    trials: list[tuple[int, int, int]] = []  # (study_id, number, trial_id)
    finished: set[int] = set()
    for step in steps:
        kind = step[0]
        if kind == "trial":
            sid = studies[step[1]]
            parent = (0, step[2]) if step[2] and any(s == sid for s, _, _ in trials) else None
            record = store.create_trial(
                sid, round=1, sample_id=step[2], params={"x": step[2] / 3}, parent=parent
            )
            trials.append((sid, record.number, record.trial_id))
        elif kind == "fail":  # the study's running trials: their process died
            dead = {t.trial_id for t in store.fail_running_trials(studies[step[1]], "gone")}
            finished |= {i for i, (_, _, trial_id) in enumerate(trials) if trial_id in dead}
        elif trials and step[1] % len(trials) not in finished:
            index = step[1] % len(trials)
            sid, number, trial_id = trials[index]
            if kind == "report":
                store.report(trial_id, step[2], step[3])
                played.reports.append((store.curve_cursor(), sid, number, step[2]))
            elif kind == "finish":
                store.finish_trial(trial_id, state=step[2], value=step[3])
                finished.add(index)
            elif kind == "attr":
                store.set_trial_user_attr(trial_id, "k", step[2])
            else:
                store.heartbeat([trial_id], step[2])
        played.cursors.append(store.curve_cursor())
    return played


SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(ops)
def test_summaries_are_the_records_less_their_curves(
    new_store: Callable[[], BaseStorage], steps: list[tuple[Any, ...]]
) -> None:
    store = new_store()
    played = play(store, steps)
    for sid in played.studies:
        records = store.get_all_trials(sid)
        summaries = store.trial_summaries(sid)
        assert summaries == [summary_of(t) for t in records]
        for mark in [0, *(t.trial_id for t in records)]:
            assert store.trial_summaries(sid, after_id=mark) == [
                s for s in summaries if s.trial_id > mark
            ]


@SETTINGS
@given(ops)
def test_get_curves_are_the_records_curves(
    new_store: Callable[[], BaseStorage], steps: list[tuple[Any, ...]]
) -> None:
    store = new_store()
    played = play(store, steps)
    records = [t for sid in played.studies for t in store.get_all_trials(sid)]
    ids = [t.trial_id for t in records]
    curves = store.get_curves([*ids, 10**9])
    assert curves == {t.trial_id: t.curve for t in records if t.curve}
    for curve in curves.values():
        assert list(curve) == sorted(curve)
    assert store.get_curves(ids[::2]) == {t.trial_id: t.curve for t in records[::2] if t.curve}
    assert store.get_curves([]) == {}


@SETTINGS
@given(ops, st.integers(1, 5))
def test_curve_points_are_what_was_reported_after_a_cursor(
    new_store: Callable[[], BaseStorage], steps: list[tuple[Any, ...]], limit: int
) -> None:
    store = new_store()
    played = play(store, steps)
    seqs = [seq for seq, *_ in played.reports]
    assert seqs == sorted(set(seqs))  # every report gets a later place
    assert store.curve_cursor() == (seqs[-1] if seqs else 0)
    curves = {(sid, t.number): t.curve for sid in played.studies for t in store.get_all_trials(sid)}
    for sid in played.studies:
        for after in sorted({0, *played.cursors}):
            last: dict[tuple[int, int], int] = {}  # (number, epoch) -> seq of its last report
            for seq, study, number, epoch in played.reports:
                if study == sid:
                    last[(number, epoch)] = seq
            expected = [
                CurvePoint(seq, number, epoch, curves[(sid, number)][epoch])
                for (number, epoch), seq in sorted(last.items(), key=lambda item: item[1])
                if seq > after
            ]
            assert store.curve_points(sid, after=after) == expected
            assert store.curve_points(sid, after=after, limit=limit) == expected[:limit]


def writes(store: BaseStorage) -> Iterator[str]:
    """Every kind of write, one at a time (the name of each, after it is done)."""
    sid = store.open_study("s", direction="maximize", seed=0, metric="m").study_id
    yield "open_study"
    store.add_round(
        sid, space={"x": {"type": "float", "low": 0, "high": 1}}, box=None, sampler="{}"
    )
    yield "add_round"
    trial_id = store.create_trial(sid, round=1, sample_id=0, params={}).trial_id
    yield "create_trial"
    store.report(trial_id, 1, {"m": 0.5})
    yield "report"
    store.set_trial_user_attr(trial_id, "k", 1)
    yield "set_trial_user_attr"
    store.save_checkpoint(trial_id, 1, b"state")
    yield "save_checkpoint"
    store.heartbeat([trial_id], 2e9)
    yield "heartbeat"
    event = store.add_event(sid, "pause")
    yield "add_event"
    store.mark_event_applied(event.event_id)
    yield "mark_event_applied"
    store.finish_trial(trial_id, state=TrialState.COMPLETE, value=0.5)
    yield "finish_trial"
    store.create_trial(sid, round=1, sample_id=1, params={})
    store.fail_running_trials(sid, "gone")
    yield "fail_running_trials"


def test_the_change_marker_moves_with_every_write_and_only_then(store: BaseStorage) -> None:
    seen = [store.change_marker()]
    for name in writes(store):
        marker = store.change_marker()
        assert marker != seen[-1], name
        seen.append(marker)
        info = store.get_study("s")  # reads leave it alone
        assert info is not None
        store.get_all_trials(info.study_id)
        store.trial_summaries(info.study_id)
        store.list_studies()
        store.curve_points(info.study_id)
        assert store.change_marker() == marker, name
    assert len(set(seen)) == len(seen)


def test_the_change_marker_sees_another_connections_writes(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with SqliteStorage(path) as reader, SqliteStorage(path) as writer:
        marker = reader.change_marker()
        for name in writes(writer):
            now = reader.change_marker()
            assert now != marker, name
            marker = now


def test_last_activity_is_the_latest_start_finish_or_heartbeat(store: BaseStorage) -> None:
    sid = store.open_study("s", direction="maximize", seed=0, metric="m").study_id
    store.open_study("empty", direction="maximize", seed=0, metric="m")
    first = store.create_trial(sid, round=1, sample_id=0, params={})
    second = store.create_trial(sid, round=1, sample_id=1, params={})

    def activity() -> dict[str, float | None]:
        return {s.study.name: s.last_activity for s in store.list_studies()}

    assert activity() == {"s": second.started, "empty": None}
    store.heartbeat([first.trial_id], 3e9)
    assert activity()["s"] == 3e9
    end = store.finish_trial(second.trial_id, state=TrialState.COMPLETE, value=1.0)
    assert activity()["s"] == 3e9  # the heartbeat is later still
    store.finish_trial(first.trial_id, state=TrialState.FAILED)
    records = store.get_all_trials(sid)
    latest = max(t.finished or 0.0 for t in records)
    assert latest >= end
    assert activity()["s"] == max(3e9, latest)
