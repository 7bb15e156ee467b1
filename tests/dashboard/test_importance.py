"""The dashboard's importance: a smaller forest on a spread of the trials ranks as the report's
full one does, it is fitted once per state of the trials, and no other request waits for it."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.dashboard.conftest import SPACE, client
from tunery.dashboard import _importance
from tunery.dashboard import _views as views
from tunery.dashboard._importance import FOREST_TRIALS, Importances
from tunery.dashboard._state import StudyState
from tunery.dashboard._views import importance_snapshot
from tunery.records import FrozenTrial, StudyInfo, TrialState, TrialSummary
from tunery.report import StudySnapshot, importance
from tunery.study import Round

NAMES = list(SPACE)
WAIT = 60.0  # seconds any condition may take on a loaded machine


def synthetic(seed: int, n: int, dominant: str, second: str) -> StudyState:
    """``n`` trials whose value is mostly ``dominant``'s (its unit coordinate's distance from a
    peak), a tenth of that ``second``'s, plus noise; every 9th trial PRUNED (never ranked)."""
    rng = np.random.default_rng(seed)
    trials = []
    for number in range(n):
        params = {name: SPACE[name].from_unit(float(rng.random())) for name in NAMES}
        unit = {name: SPACE[name].to_unit(params[name]) for name in NAMES}  # a choice's: its slot
        value = -abs(unit[dominant] - 0.3) - 0.1 * abs(unit[second] - 0.6)
        value += float(rng.normal(0, 0.005))
        state = TrialState.PRUNED if number % 9 == 8 else TrialState.COMPLETE
        trials.append(TrialSummary(number, number + 1, 1, params, state, value, 0.0, 1.0, None, 3))
    study = StudyState(StudyInfo(1, "synthetic", "maximize", 0, "score", 0.0))
    study.rounds = [Round(1, dict(SPACE), None, "random", 0.0)]
    study.take(trials)
    return study


def full_report(state: StudyState) -> list[str]:
    """The report's ranking: its own 64 trees on every trial."""
    records = [
        FrozenTrial(t.number, t.trial_id, None, t.round, t.params, t.state, t.value)
        for t in state.trials
    ]
    snapshot = StudySnapshot("s", "maximize", "score", records, state.rounds)
    return importance(snapshot).names


@settings(max_examples=4, deadline=None)
@given(
    st.integers(0, 2**16),
    st.permutations(NAMES).map(lambda names: names[:2]),
)
def test_the_smaller_forest_finds_the_dominant_parameter(seed: int, pair: list[str]) -> None:
    dominant, second = pair
    study = synthetic(seed, 3 * FOREST_TRIALS // 2, dominant, second)
    found = Importances().of(study).result(WAIT)
    ranked = sorted(found["importance"], key=lambda name: -found["importance"][name])
    assert ranked[:2] == [dominant, second]
    assert ranked[:2] == full_report(study)[:2]
    assert found["n_trials"] == FOREST_TRIALS  # a spread of the 2,666 COMPLETE ones
    assert sum(found["importance"].values()) == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 400), st.integers(2, 60))
def test_the_snapshot_is_an_even_reproducible_spread_of_complete_trials(n: int, most: int) -> None:
    study = synthetic(n, n, "lr", "units")
    picked = [t.number for t in importance_snapshot(study, most).trials]
    complete = [t.number for t in study.trials if t.state is TrialState.COMPLETE]
    assert picked == [t.number for t in importance_snapshot(study, most).trials]
    assert set(picked) <= set(complete)
    assert len(picked) == min(most, len(complete))
    assert picked == sorted(picked)
    if complete:
        assert (picked[0], picked[-1]) == (complete[0], complete[-1])
    if len(complete) > most:  # evenly spread: no gap much wider than the average one
        gaps = np.diff([complete.index(number) for number in picked])
        assert gaps.max() <= math.ceil(len(complete) / (most - 1)) + 1


def test_one_fit_per_state_of_the_trials() -> None:
    study = synthetic(0, 60, "lr", "units")
    ranks = Importances()
    first = ranks.of(study)
    assert ranks.of(study) is first
    ranks.prime(study)
    assert ranks.of(study) is first  # priming a primed study starts nothing
    newer = TrialSummary(60, 61, 1, study.trials[0].params, TrialState.COMPLETE, 0.0, 0, 1, None, 3)
    study.take([*study.trials[study.settled :], newer])
    second = ranks.of(study)
    assert second is not first
    assert second.result(WAIT)["n_trials"] == first.result(WAIT)["n_trials"] + 1


@pytest.fixture
def held_fit(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Fits wait until the event is set (then fit as usual)."""
    release = threading.Event()
    real = views.importance_json

    def held(snapshot: StudySnapshot, trees: int) -> dict[str, Any]:
        release.wait(WAIT)
        return real(snapshot, trees)

    monkeypatch.setattr(_importance, "importance_json", held)
    yield release
    release.set()


@pytest.mark.anyio
async def test_other_requests_go_on_while_the_ranking_is_fitted(
    caviar_db: Path, held_fit: threading.Event
) -> None:
    from tunery.dashboard import create_app

    app = create_app(f"sqlite:///{caviar_db}")
    ranked: dict[str, Any] = {}

    async def rank() -> None:
        async with client(app) as c:
            ranked.update((await c.get("/api/studies/digits/importance")).json())

    try:
        async with client(app) as c, anyio.create_task_group() as tasks:
            tasks.start_soon(rank)
            with anyio.fail_after(WAIT):  # before the fix these waited on the fit's lock
                for path in ("/api/studies/digits", "/api/studies/digits/trials"):
                    assert (await c.get(path)).status_code == 200
                for param in NAMES:
                    answer = await c.get("/api/studies/digits/scatter", params={"param": param})
                    assert answer.status_code == 200
            assert not ranked  # still held
            held_fit.set()
        assert set(ranked["importance"]) == set(NAMES)
    finally:
        app.state.store.close()
