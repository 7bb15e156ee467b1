"""Heartbeats: a RUNNING trial nothing runs any more is taken back; a live one never is."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tunery import TuneryWarning
from tunery.records import FrozenTrial, TrialState
from tunery.space import Float, Space
from tunery.study import STALE, Study, Trial

SPACE: Space = {"x": Float(0.0, 1.0)}
TIMEOUT = 600.0


class FakeClock:
    """Unix time that moves only when told to (it starts at the real time: the store's clock)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def score(trial: Trial) -> float:
    return trial.params["x"]


def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state.is_finished() and not t.interrupted]


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return ":memory:" if request.param == "memory" else f"sqlite:///{tmp_path / 't.db'}"


def test_a_notebook_trial_never_told_is_taken_back_and_its_draw_rerun(url: str) -> None:
    clock = FakeClock()
    study = Study("s", url, seed=3, heartbeat_timeout=TIMEOUT, clock=clock)
    abandoned = study.ask(SPACE)  # the cell was interrupted here: no tell, no report
    clock.advance(TIMEOUT + 1)
    study.caviar(score, SPACE, n_trials=4, workers=1)

    trials = study.trials
    first = trials[0]
    assert (first.state, first.interrupted, first.error) == (TrialState.FAILED, True, STALE)
    assert len(counted(trials)) == 4
    assert [t.state for t in counted(trials)] == [TrialState.COMPLETE] * 4
    assert sorted(t.sample_id or 0 for t in counted(trials)) == [0, 1, 2, 3]  # no draw twice
    rerun = next(t for t in trials if t.sample_id == 0 and not t.interrupted)
    assert rerun.params == abandoned.params

    with pytest.warns(TuneryWarning, match="taken back as stale"):
        late = study.tell(abandoned, 0.99)  # the objective finished after all: too late
    assert (late.state, late.interrupted) == (TrialState.FAILED, True)
    assert len(study.trials) == len(trials)  # nothing stored, nothing counted twice
    assert len(counted(study.trials)) == 4
    with pytest.raises(Exception, match="finished"):
        abandoned.report(1, val_accuracy=0.5)


def test_a_trial_inside_the_timeout_is_left_alone(url: str) -> None:
    clock = FakeClock()
    study = Study("s", url, heartbeat_timeout=TIMEOUT, clock=clock)
    pending = study.ask(SPACE)
    clock.advance(TIMEOUT / 2)
    pending.report(1, val_accuracy=0.5)  # a report is a beat
    clock.advance(TIMEOUT / 2 + 60)
    study.ask()  # looks for stale trials: this one beat 360 s ago
    assert study.trials[0].state is TrialState.RUNNING
    assert study.tell(pending, 0.5).state is TrialState.COMPLETE


class SlowEpochs:
    """Each epoch outlasts the heartbeat timeout (on the fake clock) without reporting mid-way."""

    def __init__(self, clock: FakeClock, study: Study) -> None:
        self.clock, self.study = clock, study
        self.fresh: list[bool] = []

    def __call__(self, trial: Trial) -> float:
        for epoch in range(3):
            self.clock.advance(3 * TIMEOUT)
            self.fresh.append(self._wait_for_a_beat(trial))
            trial.report(epoch, val_accuracy=0.5)
            self.study.ask().report(0, val_accuracy=0.1)  # a second trial: asking looks for stale
        return 0.5

    def _wait_for_a_beat(self, trial: Trial) -> bool:
        """Until the background beat has caught up with the clock (generous: 30 s real time)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            record = self.study.storage.get_trial(trial.trial_id)
            if record.heartbeat is not None and record.heartbeat >= self.clock.now:
                return True
            time.sleep(0.01)
        return False


def test_a_live_trial_with_epochs_longer_than_the_timeout_is_never_taken_back(url: str) -> None:
    clock = FakeClock()
    study = Study("s", url, heartbeat_timeout=TIMEOUT, clock=clock)
    study._heartbeats.every = 0.01  # real seconds between beats of the thread, and between sweeps
    objective = SlowEpochs(clock, study)
    with study.beating():
        trial = study.ask(SPACE)
        value = objective(trial)
        assert study.tell(trial, value).state is TrialState.COMPLETE
    assert objective.fresh == [True, True, True]  # the store saw it beat, however long the epoch
    first = study.trials[0]
    assert (first.state, first.interrupted) == (TrialState.COMPLETE, False)
    # The side trials were asked inside the block too, so they beat as well: none was taken back.
    assert not [t for t in study.trials if t.interrupted]


def test_caviar_in_a_pool_never_takes_back_its_own_slow_trials(tmp_path: Path) -> None:
    study = Study("s", f"sqlite:///{tmp_path / 't.db'}", heartbeat_timeout=0.2)
    study.caviar(slow_sometimes, SPACE, n_trials=6, workers=2, live=False)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6  # none stale, none re-run


def slow_sometimes(trial: Trial) -> float:
    """Trial 0 sleeps 5 timeouts in one epoch while the others finish and the pool asks again."""
    if trial.number == 0:
        time.sleep(1.0)
    trial.report(0, val_accuracy=trial.params["x"])
    return float(trial.params["x"])


def test_a_bad_timeout_is_refused() -> None:
    with pytest.raises(Exception, match="heartbeat_timeout"):
        Study("s", ":memory:", heartbeat_timeout=0)
