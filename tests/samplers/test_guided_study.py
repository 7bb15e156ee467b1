"""Guided rounds in a study: the same seed gives the same params whatever the workers, after a
re-open and after a SIGKILL mid-round; a draw waits for its batch's history; rounds keep their
sampler in the store."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tunery import TuneryError
from tunery.records import FrozenTrial, TrialState
from tunery.samplers import GuidedSampler
from tunery.space import Choice, Float, Int, Space
from tunery.storage import SqliteStorage
from tunery.study import Study

SPACE: Space = {
    "lr": Float(1e-5, 1.0, scale="log"),
    "beta": Float(0.8, 0.999, scale="one_minus_log"),
    "units": Int(10, 100),
    "act": Choice(["relu", "tanh"]),
}
Draws = dict[tuple[int, int | None], dict[str, Any]]


def bowl(trial: Any) -> float:
    """Module level, so that a process pool can pickle it; peaks at lr 10^-3.2, beta 0.975."""
    params = trial.params
    lr = math.log10(params["lr"]) + 3.2
    gap = math.log10(1.0 - params["beta"]) + 1.6
    small = 1e-4 * int(params["units"]) - (0.01 if params["act"] == "relu" else 0.0)
    return -(lr**2) - gap**2 - small


def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state.is_finished() and not t.interrupted]


def draws(trials: list[FrozenTrial]) -> Draws:
    """(round, sample_id) -> params of the trials that count; fails on a draw run twice."""
    found = {(t.round, t.sample_id): dict(t.params) for t in counted(trials)}
    assert len(found) == len(counted(trials)), "a draw was run twice"
    return found


def guided_run(model: str, *, workers: int = 1, storage: str = ":memory:") -> Study:
    study = Study("g", storage, seed=3)
    study.caviar(
        bowl, SPACE, n_trials=24, rounds=2, workers=workers, guided=GuidedSampler(model, batch=4)
    )
    return study


@pytest.mark.parametrize("model", ["gp", "tpe"])
def test_the_same_seed_gives_the_same_guided_params_and_the_round_says_it_is_guided(
    model: str,
) -> None:
    first, second = guided_run(model), guided_run(model)
    assert draws(first.trials) == draws(second.trials)
    assert len(counted(first.trials)) == 24
    rounds = first.rounds
    assert [r.index for r in rounds] == [1, 2]
    assert rounds[1].sampler_text == f"guided by {model}, batches of 4"
    assert rounds[0].sampler_text.startswith("random")
    plain = Study("g", ":memory:", seed=3)
    plain.caviar(bowl, SPACE, n_trials=24, rounds=2, workers=1)
    ours, theirs = draws(first.trials), draws(plain.trials)
    assert [ours[(1, s)] for s in range(12)] == [theirs[(1, s)] for s in range(12)]  # round 1
    assert [ours[(2, s)] for s in range(12)] != [theirs[(2, s)] for s in range(12)]


def test_two_workers_draw_exactly_what_one_worker_draws(tmp_path: Path) -> None:
    # With two processes the order in which trials finish varies, yet every batch's model is
    # fitted on the same finished trials (caviar stops at each batch's end), so the params match.
    one = guided_run("gp", workers=1)
    two = guided_run("gp", workers=2, storage=f"sqlite:///{tmp_path / 'two.db'}")
    assert draws(two.trials) == draws(one.trials)


def test_a_draw_past_its_batch_waits_for_the_batch_before_it() -> None:
    study = Study("g", ":memory:", seed=1)
    for _ in range(8):
        trial = study.ask(SPACE)
        study.tell(trial, bowl(trial))
    study.zoom(top=3, guided=GuidedSampler("gp", batch=2))
    first, second = study.ask(), study.ask()  # one batch: both fitted on round 1 alone
    assert (first.sample_id, second.sample_id) == (0, 1)
    study.tell(first, bowl(first))
    with pytest.raises(TuneryError, match=r"sample 2 and later need the trials before them"):
        study.ask()
    assert len(study.trials) == 10  # the refused draw stored nothing
    study.tell(second, bowl(second))
    third = study.ask()
    assert (third.round, third.sample_id) == (2, 2)


@pytest.mark.parametrize("model", ["gp", "tpe"])
def test_a_study_reopened_mid_batch_draws_what_the_uninterrupted_one_draws(
    model: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    study = Study("g", url, seed=3)
    study.caviar(bowl, SPACE, n_trials=12, workers=1)
    study.zoom(guided=GuidedSampler(model, batch=4))
    for trial in [study.ask() for _ in range(4)]:  # samples 0..3: the first batch
        study.tell(trial, bowl(trial))
    told, left = study.ask(), study.ask()  # samples 4 and 5 of the batch 4..7
    study.tell(told, bowl(told))
    study.close()  # the process dies here, dropping its claim: sample 5 is left RUNNING
    reopened = Study("g", url, seed=3)
    reopened.caviar(bowl, n_trials=24, rounds=2, workers=1, guided=model)
    uninterrupted = guided_run(model)
    assert draws(reopened.trials) == draws(uninterrupted.trials)
    (lost,) = [t for t in reopened.trials if t.interrupted]
    assert (lost.round, lost.sample_id, lost.params) == (2, 5, left.params)


# -- a real crash: SIGKILL mid-round ------------------------------------------------------------

RUNNER = textwrap.dedent(
    """
    import os, sys, time
    from tests.samplers.test_guided_study import SPACE, bowl
    from tunery.samplers import GuidedSampler
    from tunery.study import Study

    HANG_AT = int(os.environ.get("HANG_AT", "-1"))

    def objective(trial):
        if trial.number == HANG_AT:
            time.sleep(120)  # killed in here
        return bowl(trial)

    study = Study("g", "sqlite:///" + sys.argv[1], seed=3)
    guided = GuidedSampler(sys.argv[2], batch=4)
    study.caviar(objective, SPACE, n_trials=24, rounds=2, workers=1, guided=guided)
    """
)
REPO = Path(__file__).resolve().parents[2]


def _start(tmp_path: Path, db: Path, model: str, hang_at: int | None) -> subprocess.Popen[bytes]:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    if hang_at is not None:
        env["HANG_AT"] = str(hang_at)
    command = [sys.executable, str(script), str(db), model]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE)


def _stored(db: Path) -> list[FrozenTrial]:
    store = SqliteStorage(db)
    try:
        info = store.get_study("g")
        return [] if info is None else store.get_all_trials(info.study_id)
    finally:
        store.close()


def _wait_for_hang(db: Path, number: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180  # generous: a loaded machine, imports of scikit-learn
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()
        trials = _stored(db) if db.exists() else []
        if len(trials) > number and trials[number].state is TrialState.RUNNING:
            return
        time.sleep(0.05)
    raise AssertionError(f"trial {number} did not start in 180 s")


@pytest.mark.parametrize(("model", "hang_at"), [("gp", 17), ("tpe", 16)])
def test_sigkill_mid_guided_round_then_rerun_draws_the_same_params(
    tmp_path: Path, model: str, hang_at: int
) -> None:
    # Trial 16 is round 2's sample 4, the first of its second batch; trial 17 is in its middle.
    db = tmp_path / "g.db"
    first = _start(tmp_path, db, model, hang_at)
    _wait_for_hang(db, hang_at, first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    rerun = _start(tmp_path, db, model, None)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    trials = _stored(db)
    killed = trials[hang_at]
    assert (killed.state, killed.interrupted, killed.round) == (TrialState.FAILED, True, 2)
    assert len(counted(trials)) == 24
    assert draws(trials) == draws(guided_run(model).trials)
