"""The process pool: trials in worker processes, failures and deaths contained, Ctrl-C, live view.

The objectives live at module level so that the worker processes (started with ``spawn``) can
import them. They are tiny: these tests check who does what, not speed.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tunery import ConfigError, Diverged, Pruned, TuneryError
from tunery.pruners import ASHAPruner, MedianPruner
from tunery.records import FrozenTrial, TrialState
from tunery.run import Run, caviar
from tunery.run._live import LiveView, live_enabled
from tunery.run.caviar import THREAD_VARIABLES, run_pool
from tunery.space import Float, Space
from tunery.storage import SqliteStorage
from tunery.study import Study, Trial

SPACE: Space = {"x": Float(0.0, 1.0)}


def mixed(trial: Trial) -> Any:
    """A different ending for each trial number; the others report, checkpoint and return x."""
    trial.set_user_attr("pid", os.getpid())
    number = trial.number
    if number == 3:
        raise ValueError("trial 3 is broken")
    if number == 4:
        raise Diverged(2, math.nan)
    if number == 5:
        trial.report(1, val_accuracy=0.25)
        raise Pruned()
    if number == 6:
        return "not a number"
    if number == 7:
        sys.exit(3)
    for epoch in (1, 2, 3):
        trial.report(epoch, val_accuracy=trial.params["x"] * epoch / 3, loss=1.0 / epoch)
    trial.checkpoint(f"state of {number}".encode())
    restored = trial.restore()
    trial.set_user_attr("restored", None if restored is None else restored.decode())
    trial.set_user_attr("env", {name: os.environ.get(name) for name in THREAD_VARIABLES})
    trial.set_user_attr("blas_threads", _blas_threads())
    return trial.params["x"]


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [int(pool["num_threads"]) for pool in threadpool_info()]


def quick(trial: Trial) -> float:
    return float(trial.params["x"])


def dies(trial: Trial) -> float:
    """Trial 1 SIGKILLs its own worker, trial 3 leaves with os._exit(7)."""
    trial.set_user_attr("pid", os.getpid())
    if trial.number == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    if trial.number == 3:
        os._exit(7)
    return float(trial.params["x"])


EPOCHS = 8


def learner(trial: Trial) -> float:
    """Even-numbered trials learn well (accuracy to ~0.9), odd ones poorly (~0.5)."""
    quality = 0.9 if trial.number % 2 == 0 else 0.5
    accuracy = 0.0
    for epoch in range(1, EPOCHS + 1):
        accuracy = quality * (1 - 0.5**epoch)
        trial.report(epoch, val_accuracy=accuracy)
        if trial.should_prune():
            raise Pruned()
        time.sleep(0.005)  # paces the epochs, so that trials meet at the rungs
    return accuracy


# -- a pool run --------------------------------------------------------------------------------


def test_the_pool_runs_trials_in_workers_and_records_every_ending(tmp_path: Path) -> None:
    study = Study("s", tmp_path / "t.db")
    # Trial 0 runs in this process; the pool resumes from it.
    study.caviar(mixed, SPACE, n_trials=1, workers=1)
    seen: list[tuple[int, TrialState]] = []
    screen = Console(file=StringIO(), width=100, color_system=None)
    environment = {name: os.environ.get(name) for name in THREAD_VARIABLES}

    run_pool(
        study,
        mixed,
        target=8,
        workers=2,
        on_finished=lambda t: seen.append((t.number, t.state)),
        live=True,
        console=screen,
    )

    trials = {t.number: t for t in study.trials}
    assert sorted(trials) == list(range(8))
    states = {number: t.state for number, t in trials.items()}
    assert states == {
        0: TrialState.COMPLETE,
        1: TrialState.COMPLETE,
        2: TrialState.COMPLETE,
        3: TrialState.FAILED,
        4: TrialState.DIVERGED,
        5: TrialState.PRUNED,
        6: TrialState.FAILED,
        7: TrialState.FAILED,
    }
    assert sorted(seen) == [(n, states[n]) for n in range(1, 8)]  # called here, once per trial
    assert "ValueError: trial 3 is broken" in (trials[3].error or "")
    assert "diverged at epoch 2" in (trials[4].error or "")
    assert trials[5].value == 0.25  # the last reported metric
    assert "must return a number" in (trials[6].error or "")
    assert "SystemExit: 3" in (trials[7].error or "")
    # Every pool trial ran in a worker, and no more than two processes ever ran them (on a busy
    # machine one worker may take every trial, so two is not guaranteed).
    pids = {t.user_attrs["pid"] for t in trials.values() if t.number > 0}
    assert 1 <= len(pids) <= 2
    assert os.getpid() not in pids
    for number in (1, 2):
        done = trials[number]
        assert done.value == done.params["x"]
        assert done.curve[3] == {"val_accuracy": done.params["x"] * 3 / 3, "loss": 1 / 3}
        assert done.user_attrs["restored"] == f"state of {number}"
        assert set(done.user_attrs["env"].values()) == {"1"}
        assert done.user_attrs["blas_threads"]
        assert set(done.user_attrs["blas_threads"]) == {1}
    assert {name: os.environ.get(name) for name in THREAD_VARIABLES} == environment  # restored
    shown = screen.file.getvalue()  # type: ignore[attr-defined]
    assert "8/8 trials" in shown
    assert f"best val_accuracy {study.best_value:.4g} (trial {study.best_trial.number})" in shown


def test_a_dead_worker_fails_its_trial_and_is_replaced() -> None:
    study = Study("s", ":memory:").caviar(dies, SPACE, n_trials=6, workers=2)
    trials = {t.number: t for t in study.trials}
    assert sorted(trials) == list(range(6))  # each draw once: a death is not re-run
    assert study.count_done() == 6
    assert trials[1].state is trials[3].state is TrialState.FAILED
    assert "worker process died (exit code -9, killed by SIGKILL)" in (trials[1].error or "")
    assert "worker process died (exit code 7)" in (trials[3].error or "")
    others = [t for n, t in trials.items() if n not in (1, 3)]
    assert all(t.state is TrialState.COMPLETE for t in others)
    # Two workers died, yet trials went on: at least one fresh worker ran them.
    assert len({t.user_attrs["pid"] for t in trials.values()}) >= 3


@pytest.mark.parametrize(
    "pruner",
    [MedianPruner(min_trials=2, warmup_epochs=1), ASHAPruner(min_epochs=1, reduction_factor=2)],
    ids=["median", "asha"],
)
def test_pool_prunes_bad_trials_early(pruner: MedianPruner | ASHAPruner) -> None:
    study = Study("s", ":memory:", pruner=pruner).caviar(learner, SPACE, n_trials=10, workers=2)
    pruned = study.get_trials([TrialState.PRUNED])
    assert pruned, "no trial was pruned"
    for trial in pruned:
        assert trial.number % 2 == 1
        assert max(trial.curve) < EPOCHS
        assert trial.value == trial.last("val_accuracy")
    complete = study.get_trials([TrialState.COMPLETE])
    assert all(max(t.curve) == EPOCHS for t in complete)
    assert {t.number for t in study.trials if t.number % 2 == 0} <= {t.number for t in complete}


class BrokenPruner:
    def should_prune(self, study_trials: Any, trial: FrozenTrial, epoch: int) -> bool:
        raise RuntimeError("this pruner is broken")


def test_a_failing_answer_from_the_coordinator_fails_the_trial_not_the_study() -> None:
    study = Study("s", ":memory:", pruner=BrokenPruner()).caviar(
        learner, SPACE, n_trials=3, workers=2
    )
    assert [t.state for t in study.trials] == [TrialState.FAILED] * 3
    for trial in study.trials:
        assert "the coordinator failed to answer 'prune'" in (trial.error or "")
        assert "RuntimeError: this pruner is broken" in (trial.error or "")
        assert sorted(trial.curve) == [1]  # the report before the question was kept


def test_an_objective_the_workers_cannot_import_stops_the_run() -> None:
    ghost = types.ModuleType("tunery_ghost_module")  # importable here only
    exec("def objective(trial):\n    return 1.0\n", ghost.__dict__)
    sys.modules[ghost.__name__] = ghost
    try:
        study = Study("s", ":memory:")
        with pytest.raises(ConfigError, match="worker processes can import") as info:
            study.caviar(ghost.objective, SPACE, n_trials=4, workers=2)
    finally:
        del sys.modules[ghost.__name__]
    assert info.value.field == "objective"
    assert "ModuleNotFoundError" in str(info.value)
    assert study.trials == []  # trials go only to workers that loaded the objective


class ExitsWhenLoaded:
    """An objective whose unpickling ends the process: every worker dies before it is ready."""

    def __call__(self, trial: Trial) -> float:
        return 1.0

    def __reduce__(self) -> tuple[Any, ...]:
        return (os._exit, (3,))


def test_workers_that_keep_dying_unready_stop_the_run() -> None:
    study = Study("s", ":memory:")
    with pytest.raises(
        TuneryError, match=r"keep dying without running a trial \(last exit code 3\)"
    ):
        study.caviar(ExitsWhenLoaded(), SPACE, n_trials=4, workers=2)
    assert study.trials == []


# -- arguments ---------------------------------------------------------------------------------


def test_an_unpicklable_objective_is_refused_before_anything_runs() -> None:
    study = Study("s", ":memory:")
    with pytest.raises(ConfigError) as info:
        study.caviar(lambda trial: 1.0, SPACE, n_trials=3, workers=2)
    assert info.value.field == "objective"
    assert "picklable" in str(info.value)
    assert study.trials == []


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_bad_worker_counts_are_refused(workers: Any) -> None:
    study = Study("s", ":memory:").caviar(mixed, SPACE, n_trials=1, workers=1)
    with pytest.raises(ConfigError) as info:
        run_pool(study, mixed, target=3, workers=workers)
    assert info.value.field == "workers"


def test_a_study_already_at_its_target_starts_no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    study = Study("s", ":memory:").caviar(mixed, SPACE, n_trials=2, workers=1)
    monkeypatch.setattr(caviar._Coordinator, "run", _fail_if_called)
    run_pool(study, mixed, target=2, workers=2)
    assert len(study.trials) == 2


def _fail_if_called(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the pool was started")


def test_the_fork_server_preloads_what_workers_need_and_no_main_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    main = types.ModuleType("__main__")
    main.__dict__.update(math=math, dumps=json.dumps)  # `import math`, `from json import dumps`
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setitem(sys.modules, "tunery.__main__", types.ModuleType("tunery.__main__"))
    names = caviar._preload_modules(ExitsWhenLoaded())
    assert {"tests.run.test_caviar", "math", "json", "tunery.study", "tunery.pruners"} <= set(names)
    assert not [name for name in names if name.endswith("__main__")]  # that would run the CLI


def test_death_notes_name_the_signal() -> None:
    assert "exit code -9, killed by SIGKILL" in caviar._death_note(-9, 4)
    assert "exit code 1)" in caviar._death_note(1, 4)
    assert "trial 4" in caviar._death_note(None, 4)


# -- Ctrl-C --------------------------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from tunery.space import Float
    from tunery.study import Study

    class Sleepy:
        def __init__(self, pause):
            self.pause = pause

        def __call__(self, trial):
            trial.set_user_attr("pid", os.getpid())
            time.sleep(self.pause)
            return trial.params["x"]

    if __name__ == "__main__":
        # A shell may start background jobs with Ctrl-C ignored; this stands for a terminal.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        study = Study("ctrl-c", sys.argv[1])
        study.caviar(Sleepy(float(sys.argv[2])), {"x": Float(0.0, 1.0)}, n_trials=6, workers=2)
    """
)


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_a_rerun_finishes_the_study(tmp_path: Path) -> None:
    script = tmp_path / "run_study.py"
    script.write_text(SCRIPT)
    db = tmp_path / "t.db"
    url = f"sqlite:///{db}"
    process = subprocess.Popen([sys.executable, str(script), url, "60"], stderr=subprocess.PIPE)
    try:
        running = _wait_for_running_trials(db, process, count=2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0
    assert b"KeyboardInterrupt" in stderr

    with SqliteStorage(db) as store:
        trials = Study("ctrl-c", store).trials
    assert all(t.state is not TrialState.RUNNING for t in trials)
    interrupted = [t for t in trials if t.interrupted]
    assert {t.number for t in interrupted} >= {t.number for t in running}
    assert all(t.state is TrialState.FAILED for t in interrupted)
    for pid in {t.user_attrs["pid"] for t in running}:
        assert _gone(pid), f"worker {pid} outlived the interrupted study"

    rerun = subprocess.run([sys.executable, str(script), url, "0"], timeout=120, check=False)
    assert rerun.returncode == 0
    with SqliteStorage(db) as store:
        study = Study("ctrl-c", store)
        counted = [t for t in study.trials if not t.interrupted]
        assert study.count_done() == 6
    assert sorted(t.sample_id or 0 for t in counted) == list(range(6))  # every draw once
    rerun_of = {t.sample_id: t for t in counted}
    assert all(rerun_of[t.sample_id].params == t.params for t in interrupted)  # same draws


def _wait_for_running_trials(
    db: Path, process: subprocess.Popen[bytes], count: int
) -> list[FrozenTrial]:
    """The study's RUNNING trials once ``count`` of them are inside the objective."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, "the study process ended early"
        if db.exists():
            with SqliteStorage(db) as store:
                info = store.get_study("ctrl-c")
                if info is not None:
                    running = store.get_all_trials(info.study_id, states=[TrialState.RUNNING])
                    if sum("pid" in t.user_attrs for t in running) >= count:
                        return running
        time.sleep(0.05)
    raise AssertionError("the workers never started their trials")


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.05)
    return False


def test_the_interrupt_guard_holds_ctrl_c_until_the_block_ends() -> None:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    reached: list[str] = []

    def held_block(guard: caviar._InterruptGuard) -> None:
        with guard.held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # the handler runs here, and must not raise
            reached.append("end of block")

    def unguarded_wait() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
        reached.append("never")

    try:
        with caviar._InterruptGuard() as guard:
            with pytest.raises(KeyboardInterrupt):
                held_block(guard)
            with pytest.raises(KeyboardInterrupt):
                unguarded_wait()
        assert reached == ["end of block"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


# -- the live view ---------------------------------------------------------------------------------


def frozen(number: int, state: TrialState, value: float | None, **extra: Any) -> FrozenTrial:
    return FrozenTrial(
        number=number,
        trial_id=number,
        sample_id=number,
        round=1,
        params={},
        state=state,
        value=value,
        **extra,
    )


def rendered(view: LiveView) -> str:
    console = Console(file=StringIO(), width=120, record=True, color_system=None)
    console.print(view.render())
    return console.export_text()


def test_the_live_view_shows_progress_best_and_running_trials() -> None:
    view = LiveView(target=10, done=3, metric="val_accuracy", enabled=False)
    view.started(4, {"lr": 0.00123, "units": 48})
    view.started(5, {"lr": 0.5, "units": 16})
    view.reported(4, 2, {"val_accuracy": 0.91, "loss": 0.33})
    view.reported(4, 1, {"val_accuracy": 0.5})  # late and older: ignored
    view.started(6, {"lr": 0.1, "units": 8})
    view.finished(frozen(6, TrialState.COMPLETE, 0.95))
    view.finished(frozen(7, TrialState.PRUNED, 0.2))
    text = rendered(view)

    assert "5/10 trials" in text
    assert "2 running" in text
    assert "1 pruned" in text
    assert "best val_accuracy 0.95 (trial 6)" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    assert rows["trial"][:4] == ["trial", "epoch", "val_accuracy", "loss"]
    assert rows["4"][:4] == ["4", "2", "0.91", "0.33"]
    assert "lr=0.00123" in rows["4"]
    assert rows["5"][:4] == ["5", "-", "-", "-"]
    assert "units=16" in rows["5"]
    assert "6" not in rows  # finished trials leave the table


def test_the_live_view_keeps_the_best_by_direction_and_skips_interrupted() -> None:
    view = LiveView(target=5, metric="loss", direction="minimize", enabled=False)
    for number, value in enumerate([0.5, 0.2, 0.7]):
        view.started(number, {})
        view.finished(frozen(number, TrialState.COMPLETE, value))
    view.started(3, {})
    view.finished(frozen(3, TrialState.FAILED, None, interrupted=True))
    assert view.best is not None
    assert view.best.number == 1
    assert view.done == 3
    assert not view.running
    assert "3/5 trials" in rendered(view)
    assert "failed" not in rendered(view)


def test_the_live_view_is_on_in_terminals_only_unless_told() -> None:
    pipe = Console(file=StringIO())
    terminal = Console(file=StringIO(), force_terminal=True)
    assert not live_enabled(None, pipe)
    assert live_enabled(None, terminal)
    assert live_enabled(True, pipe)
    assert not live_enabled(False, terminal)


def test_the_live_view_redraws_at_most_at_its_rate() -> None:
    screen = Console(file=StringIO(), force_terminal=True, width=80)
    view = LiveView(target=3, console=screen, refresh_per_second=1e-3)
    redraws = 0

    def count(*args: Any, **kwargs: Any) -> None:
        nonlocal redraws
        redraws += 1

    with view:
        assert view._live is not None
        view._live.refresh = count  # type: ignore[method-assign]
        for number in range(50):
            view.started(number, {"x": number})
            view.tick()
        assert redraws == 0  # one redraw per 1000 s at most, and the first came at the start
    assert "0/3 trials" in screen.file.getvalue()  # type: ignore[attr-defined]


def test_a_callback_error_propagates_and_no_healthy_worker_is_killed(tmp_path: Path) -> None:
    study = Study("s", tmp_path / "t.db").caviar(quick, SPACE, n_trials=1, workers=1)
    finished: list[int] = []

    def exporting(study: Study, trial: FrozenTrial) -> None:
        finished.append(trial.number)
        raise PermissionError("cannot write the export")

    with pytest.raises(PermissionError, match="cannot write the export"):
        run_pool(
            study, quick, target=4, workers=2, on_finished=lambda t: exporting(study, t), live=False
        )
    # The first callback error stops the run, as with one worker; it is not taken for a dead
    # worker (which would wait, kill it and go on, swallowing the error).
    assert len(finished) == 1
    assert study.trials[finished[0]].state is TrialState.COMPLETE


def test_ctrl_c_tells_the_trials_whose_results_already_wait_in_the_pipes() -> None:
    """A worker that finished just before Ctrl-C: its trial is told, not thrown away and re-run."""
    import multiprocessing

    from tunery.run._sequential import Outcome

    study = Study("salvage", ":memory:")
    space: Space = {"x": Float(0.0, 1.0)}
    view = LiveView(
        target=2,
        done=0,
        metric="value",
        direction="maximize",
        best=None,
        console=Console(file=StringIO()),
        enabled=False,
    )
    job = Run(study, lambda trial: 0.0, target=2)  # the objective: never called here
    pool = caviar._Coordinator(job, b"", 0, view, caviar._InterruptGuard())
    ends = []
    for value in (0.25, None):  # the first has finished, the second is still running
        mine, theirs = multiprocessing.Pipe()
        worker = caviar._Worker(multiprocessing.current_process(), mine, ready=True)
        worker.trial = study.ask(space)
        if value is not None:
            theirs.send(("report", 1, {"value": value}))
            theirs.send(("done", Outcome(TrialState.COMPLETE, value, None)))
        pool.workers.append(worker)
        ends.append(theirs)
    pool._salvage_finished()
    pool._interrupt_running(KeyboardInterrupt())
    first, second = study.trials
    assert (first.state, first.value, first.curve) == (
        TrialState.COMPLETE,
        0.25,
        {1: {"value": 0.25}},
    )
    assert second.state is TrialState.FAILED
    assert study.count_done() == 1  # the interrupted one is re-run by the next run
