"""Resuming: a crashed or interrupted study goes on where it stopped, sampling as it would have."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import StorageError
from tunery.records import FrozenTrial
from tunery.space import Choice, Float, Int, Space
from tunery.storage import MemoryStorage, SqliteStorage
from tunery.study import INTERRUPTED, Study, Trial, TrialState

SPACE: Space = {
    "lr": Float(1e-4, 1.0, scale="log"),
    "units": Int(10, 100),
    "act": Choice(["relu", "tanh"]),
}


def score(trial: Trial) -> float:
    return -abs(trial.params["lr"] - 0.01) - abs(trial.params["units"] - 50) / 1000


def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that count toward n_trials: finished and not interrupted."""
    return [t for t in trials if t.state.is_finished() and not t.interrupted]


def draws(trials: list[FrozenTrial]) -> dict[tuple[int, int | None], dict[str, Any]]:
    """(round, sample_id) -> params of the counted trials; fails on a duplicate draw."""
    found = {(t.round, t.sample_id): t.params for t in counted(trials)}
    assert len(found) == len(counted(trials)), "a draw was run twice"
    return found


class InterruptAt:
    """An objective that raises KeyboardInterrupt the first time it meets a given trial number."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.fired = False

    def __call__(self, trial: Trial) -> float:
        if trial.number == self.number and not self.fired:
            self.fired = True
            raise KeyboardInterrupt
        return score(trial)


def test_a_running_trial_left_by_a_crash_is_failed_and_its_draw_rerun(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    crashed = Study("s", url, seed=9)
    asked = [crashed.ask(SPACE) for _ in range(3)]
    crashed.tell(asked[0], 0.1)
    crashed.tell(asked[2], 0.2)  # asked[1] stays RUNNING: its process "dies" here
    crashed.close()  # as the end of a process does, this drops its claim on the study

    reader = Study("s", url)
    assert reader.trials[1].state is TrialState.RUNNING  # only running a study recovers it

    resumed = Study("s", url).caviar(score, SPACE, n_trials=5, workers=1)
    trials = resumed.trials
    lost = trials[1]
    assert (lost.state, lost.interrupted, lost.error) == (TrialState.FAILED, True, INTERRUPTED)
    assert (trials[3].sample_id, trials[3].params) == (1, asked[1].params)
    assert sorted(t.sample_id or 0 for t in counted(trials)) == [0, 1, 2, 3, 4]
    assert len(trials) == 6


def test_the_writers_own_running_trials_are_not_interrupted() -> None:
    study = Study("s", ":memory:")
    first, second = study.ask(SPACE), study.ask()
    assert [t.state for t in study.trials] == [TrialState.RUNNING, TrialState.RUNNING]
    assert study.tell(first, 1.0).state is TrialState.COMPLETE
    assert study.tell(second, 2.0).state is TrialState.COMPLETE


def test_keyboard_interrupt_marks_the_trial_and_propagates() -> None:
    store = MemoryStorage()
    study = Study("s", store, seed=1)
    with pytest.raises(KeyboardInterrupt):
        study.caviar(InterruptAt(2), SPACE, n_trials=5, workers=1)
    stopped = study.trials[2]
    assert (stopped.state, stopped.interrupted) == (TrialState.FAILED, True)
    assert stopped.error == "interrupted by KeyboardInterrupt"
    assert len(study.trials) == 3
    study.caviar(
        score, SPACE, n_trials=5, workers=1
    )  # the same object goes on: the draw comes first
    assert (study.trials[3].sample_id, study.trials[3].params) == (2, stopped.params)
    assert len(counted(study.trials)) == 5


def test_an_interrupted_trial_can_be_told_by_hand() -> None:
    study = Study("s", ":memory:")
    trial = study.ask(SPACE)
    frozen = study.tell(trial, state=TrialState.FAILED, interrupted=True)
    assert frozen.interrupted
    assert study.ask().params == trial.params
    with pytest.raises(ValueError, match="state"):
        study.tell(study.ask(), 1.0, TrialState.COMPLETE, interrupted=True)


@settings(max_examples=15, deadline=None)
@given(
    crash_at=st.integers(0, 11),
    seed=st.integers(0, 2**20),
    sampler=st.sampled_from(["random", "sobol", "grid"]),
)
def test_a_resumed_study_samples_what_the_uninterrupted_one_did(
    crash_at: int, seed: int, sampler: str
) -> None:
    plain = Study("s", ":memory:", seed=seed, sampler=sampler)
    plain.caviar(score, SPACE, n_trials=12, rounds=2, workers=1)

    store = MemoryStorage()
    with pytest.raises(KeyboardInterrupt):
        Study("s", store, seed=seed, sampler=sampler).caviar(
            InterruptAt(crash_at), SPACE, n_trials=12, rounds=2, workers=1
        )
    resumed = Study("s", store, sampler=sampler).caviar(
        score, SPACE, n_trials=12, rounds=2, workers=1
    )

    assert draws(resumed.trials) == draws(plain.trials)
    assert [r.space for r in resumed.rounds] == [r.space for r in plain.rounds]
    assert sum(t.interrupted for t in resumed.trials) == 1


def test_a_rerun_restores_the_checkpoint_of_its_interrupted_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    restored: list[bytes | None] = []

    def save_two_epochs_then_stop(trial: Trial) -> float:
        trial.report(1, loss=1.0)
        trial.checkpoint(b"epoch 1")
        trial.report(2, loss=0.5)
        trial.checkpoint(b"epoch 2")
        raise KeyboardInterrupt

    def stop_before_saving(trial: Trial) -> float:
        restored.append(trial.restore())
        raise KeyboardInterrupt

    def finish(trial: Trial) -> float:
        restored.append(trial.restore())
        restored.append(trial.restore(1))
        return 1.0

    interrupted: list[str] = []
    for objective in (save_two_epochs_then_stop, stop_before_saving, finish):
        with Study("s", url) as study:  # a fresh process each time, as far as the store knows
            try:
                study.caviar(objective, SPACE, n_trials=1, workers=1)
            except KeyboardInterrupt:
                interrupted.append(objective.__name__)
    assert interrupted == ["save_two_epochs_then_stop", "stop_before_saving"]
    assert restored == [b"epoch 2", b"epoch 2", b"epoch 1"]
    trials = Study("s", url).trials
    assert [t.interrupted for t in trials] == [True, True, False]
    assert len({str(t.params) for t in trials}) == 1


def test_a_second_live_writer_is_refused_without_harming_the_first(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    first = Study("s", url)
    running = first.ask(SPACE)
    second = Study("s", url)  # another process, as far as the lock is concerned
    with pytest.raises(StorageError, match="another process is running"):
        second.ask()
    assert second.trials[0].state is TrialState.RUNNING  # the first one's trial is untouched
    other = Study("t", url).caviar(
        score, SPACE, n_trials=2, workers=1
    )  # another study of the file is free
    assert len(other.trials) == 2
    assert first.tell(running, 1.0).state is TrialState.COMPLETE
    first.close()
    assert second.ask().sample_id == 1  # the study is free once its writer is gone


def test_an_interrupted_draw_of_an_older_round_is_not_rerun() -> None:
    study = Study("s", ":memory:", seed=4).caviar(score, SPACE, n_trials=6, workers=1)
    study.tell(study.ask(), state=TrialState.FAILED, interrupted=True)
    study.zoom()
    trial = study.ask()
    assert (trial.round, trial.sample_id) == (2, 0)


# -- a real crash: SIGKILL ---------------------------------------------------------------------

RUNNER = textwrap.dedent(
    """
    import os, sys, time
    from tunery.space import Choice, Float, Int
    from tunery.study import Study

    SPACE = {
        "lr": Float(1e-4, 1.0, scale="log"),
        "units": Int(10, 100),
        "act": Choice(["relu", "tanh"]),
    }
    HANG_AT = int(os.environ.get("HANG_AT", "-1"))

    def objective(trial):
        time.sleep(0.02)
        if trial.number == HANG_AT:
            time.sleep(60)  # killed in here
        return -abs(trial.params["lr"] - 0.01)

    study = Study("crash", "sqlite:///" + sys.argv[1], seed=4)
    study.caviar(objective, SPACE, n_trials=30, workers=1)
    """
)


def _start(tmp_path: Path, db: Path, hang_at: int | None = None) -> subprocess.Popen[bytes]:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    env = dict(os.environ)
    if hang_at is not None:
        env["HANG_AT"] = str(hang_at)
    return subprocess.Popen([sys.executable, str(script), str(db)], env=env, stderr=subprocess.PIPE)


def _wait_for(db: Path, ready: Any, process: subprocess.Popen[bytes]) -> list[FrozenTrial]:
    """Poll the store (as a second process would) until ``ready(trials)``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()
        if db.exists():
            store = SqliteStorage(db)
            info = store.get_study("crash")
            trials = [] if info is None else store.get_all_trials(info.study_id)
            store.close()
            if ready(trials):
                return trials
        time.sleep(0.02)
    raise AssertionError("the study did not get there in 60 s")


def _finish(tmp_path: Path, db: Path) -> list[FrozenTrial]:
    rerun = _start(tmp_path, db)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    store = SqliteStorage(db)
    info = store.get_study("crash")
    assert info is not None
    return store.get_all_trials(info.study_id)


def _check_complete_run(trials: list[FrozenTrial]) -> None:
    done = counted(trials)
    assert len(done) == 30
    assert sorted(t.sample_id or 0 for t in done) == list(range(30))  # no draw twice, none lost
    plain = Study("crash", ":memory:", seed=4)
    plain.caviar(lambda t: -abs(t.params["lr"] - 0.01), SPACE, n_trials=30, workers=1)
    assert draws(trials) == draws(plain.trials)


def test_sigkill_mid_trial_then_rerun_finishes_the_study(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    first = _start(tmp_path, db, hang_at=8)
    _wait_for(db, lambda ts: len(ts) == 9 and ts[8].state is TrialState.RUNNING, first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)

    trials = _finish(tmp_path, db)
    killed = trials[8]
    assert (killed.state, killed.interrupted) == (TrialState.FAILED, True)
    rerun = trials[9]
    assert (rerun.sample_id, rerun.params, rerun.state) == (8, killed.params, TrialState.COMPLETE)
    assert [t.number for t in trials if t.interrupted] == [8]
    _check_complete_run(trials)


def test_sigkill_at_any_moment_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    first = _start(tmp_path, db)
    _wait_for(db, lambda ts: len(counted(ts)) >= 6, first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    _check_complete_run(_finish(tmp_path, db))
