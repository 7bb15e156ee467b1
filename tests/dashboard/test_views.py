"""The views' downsampling, picking, sorting and filtering, over any trials (hypothesis): what a
chart of 50,000 trials receives keeps what matters (every change of the best, the running trials,
the best ones) and the table's order is the order asked for."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tunery.dashboard import _views as views
from tunery.dashboard._state import StudyState
from tunery.records import StudyInfo, TrialState, TrialSummary

STATES = list(TrialState)
QUICK = settings(max_examples=50, deadline=None)  # a loaded 2-core machine: no deadline


@st.composite
def studies(draw: st.DrawFn) -> StudyState:
    direction = draw(st.sampled_from(["maximize", "minimize"]))
    n = draw(st.integers(0, 60))
    trials = []
    for number in range(n):
        state = draw(st.sampled_from(STATES))
        value = draw(st.none() | st.floats(-5, 5) | st.just(math.nan))
        started = draw(st.floats(0, 100))
        finished = None if state is TrialState.RUNNING else started + draw(st.floats(0, 10))
        trials.append(
            TrialSummary(
                number=number,
                trial_id=number + 1,
                round=draw(st.integers(1, 3)),
                params={"x": number},
                state=state,
                value=value,
                started=started,
                finished=finished,
                parent=None,
                epochs=draw(st.integers(0, 3)),
            )
        )
    study = StudyState(StudyInfo(1, "s", direction, 0, "m", 0.0))
    study.take(trials)
    return study


def valued(state: StudyState) -> list[TrialSummary]:
    return [
        t
        for t in state.trials
        if t.state is TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]


@QUICK
@given(studies(), st.integers(2, 20))
def test_best_so_far_keeps_every_change_and_the_ends(state: StudyState, most: int) -> None:
    done = valued(state)
    found = views.best_series(state, most)
    assert found["total"] == len(done)
    pick = max if state.info.direction == "maximize" else min
    best = [pick(t.value or 0.0 for t in done[: i + 1]) for i in range(len(done))]
    changes = [done[i].number for i in range(len(done)) if i == 0 or best[i] != best[i - 1]]
    numbers = found["numbers"]
    assert numbers == sorted(set(numbers))
    assert set(changes) <= set(numbers)
    assert len(numbers) <= most + len(changes)
    if done:
        assert (numbers[0], numbers[-1]) == (done[0].number, done[-1].number)
    index = {t.number: i for i, t in enumerate(done)}
    assert found["values"] == [done[index[n]].value for n in numbers]
    assert found["best"] == [best[index[n]] for n in numbers]


@QUICK
@given(studies(), st.integers(1, 30))
def test_curves_show_running_trials_first_then_the_best(state: StudyState, most: int) -> None:
    picked = views.pick_curves(state, most)
    numbers = [t.number for t in picked]
    assert numbers == sorted(set(numbers))
    assert len(picked) <= most
    running = [t.number for t in state.trials if t.state is TrialState.RUNNING]
    assert set(running[:most]) <= set(numbers)
    others = [t for t in picked if t.state is not TrialState.RUNNING]
    assert all(t.epochs for t in others)  # a trial without a curve draws nothing
    candidates = [
        t
        for t in state.trials
        if t.state is not TrialState.RUNNING
        and t.epochs
        and t.value is not None
        and math.isfinite(t.value)
    ]
    room = most - min(len(running), most)
    if candidates and room:
        best = (max if state.info.direction == "maximize" else min)(
            candidates, key=lambda t: t.value or 0.0
        )
        assert best.value in {t.value for t in others}


@QUICK
@given(
    studies(),
    st.sampled_from(["number", "value", "duration"]),
    st.sampled_from(["asc", "desc"]),
    st.none() | st.sets(st.sampled_from(STATES), min_size=1),
    st.none() | st.integers(1, 3),
    st.none() | st.floats(-5, 5),
    st.integers(0, 70),
    st.integers(1, 70),
)
def test_the_table_filters_sorts_and_pages(
    state: StudyState,
    sort: str,
    order: str,
    states: set[TrialState] | None,
    round_: int | None,
    low: float | None,
    offset: int,
    limit: int,
) -> None:
    page = views.trials_page(
        state,
        states=states,
        round_=round_,
        value_min=low,
        value_max=None,
        sort=sort,
        order=order,
        offset=offset,
        limit=limit,
    )
    kept = [
        t
        for t in state.trials
        if (states is None or t.state in states)
        and (round_ is None or t.round == round_)
        and (low is None or (t.value is not None and math.isfinite(t.value) and t.value >= low))
    ]
    assert page["total"] == len(kept)
    assert len(page["trials"]) == max(0, min(limit, len(kept) - offset))
    whole = views.trials_page(
        state,
        states=states,
        round_=round_,
        value_min=low,
        value_max=None,
        sort=sort,
        order=order,
        offset=0,
        limit=1000,
    )["trials"]
    assert page["trials"] == whole[offset : offset + limit]
    assert sorted(line["number"] for line in whole) == [t.number for t in kept]
    keys: list[Any] = [line[sort] for line in whole]
    known = [k for k in keys if k is not None]
    assert keys == known + [None] * (len(keys) - len(known))  # no value / duration: last
    assert known == sorted(known, reverse=order == "desc")
