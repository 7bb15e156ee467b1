"""Caviar mode: many trials at once, in a pool of worker processes.

The coordinating process (the one that called ``study.caviar``) asks and tells every trial and is
the only one that writes the store; that is why parallel workers never meet "database is locked".
Each worker is a process started once (forked by a ``forkserver`` that has tunery imported
already, ``spawn`` where there is none), with BLAS pinned to one thread; it loads the pickled
objective once and then runs trial after trial::

    coordinator                                   worker
                                 ◀────────────── ("ready", path)  once, objective loaded
    ask() → trial record, metric  ──────────────▶ Trial(record, PipeBackend) ; objective(trial)
    trial.report(...)            ◀────────────── ("report", epoch, metrics)     (no answer)
    pruner decides               ◀────────────▶ ("prune", epoch) / ("ok", bool) (a round trip)
    tell(outcome) ; callbacks    ◀────────────── ("done", Outcome)  with the output's tail

A trial that raises is FAILED with its traceback and the study goes on. A worker that dies
(SIGKILL, out of memory, ``os._exit``) leaves its trial FAILED with "worker process died (exit
code …)" and a fresh worker takes its place. Ctrl-C in the coordinator stops the workers and marks
the running trials FAILED and interrupted, so that running the study again re-runs their draws.

What trials print in the workers is captured (``_capture.py``) and stored with each trial, the last
8 KiB of it, also for a trial whose worker died: the live view stays clean.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from types import FunctionType, ModuleType
from typing import Any

from rich.console import Console

from tunery._exceptions import ConfigError, TuneryError
from tunery._validation import check_int
from tunery.records import FrozenTrial, TrialState
from tunery.run._capture import OutputCapture, read_tail, remove_quietly
from tunery.run._guard import InterruptGuard as _InterruptGuard
from tunery.run._live import LiveView
from tunery.run._protocol import AskTell, OnFinished, Run
from tunery.run._sequential import Outcome, call_objective
from tunery.trial import Trial

__all__ = ["THREAD_VARIABLES", "run_pool"]

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
"""Set to ``"1"`` in every worker: one BLAS thread per worker, or workers fight over cores."""

_JOIN_SECONDS = 5.0  # how long a worker may take to leave before it is terminated
_MAX_IDLE_DEATHS = 3  # deaths with no trial running: something is wrong with every worker
_Context = ForkServerContext | SpawnContext
_PRELOAD = ["tunery.trial", "tunery.run.caviar"]  # what every forked worker has at hand
_MESSAGES_PER_TURN = 64  # drain at most this many messages of one worker before looking at others


def run_pool(
    study: AskTell,
    objective: Callable[[Trial], Any],
    *,
    target: int,
    workers: int,
    on_finished: OnFinished | None = None,
    live: bool | None = None,
    console: Console | None = None,
) -> None:
    """Run trials of ``study`` in ``workers`` processes until it holds ``target`` finished ones.

    ``objective`` must be picklable (a module-level function, or an object of a module-level class
    such as ``TrainerObjective``). ``live`` shows the live view (default: when ``console``, stdout
    by default, is a terminal). ``on_finished(frozen_trial)`` runs in this process.
    """
    check_int("workers", workers, 1)
    payload = _pickled(objective)
    done = study.count_done()
    if done >= target:
        return
    view = LiveView.of_study(study, target=target, live=live, console=console)
    with _InterruptGuard() as guard, view:
        job = Run(study, objective, target, on_finished, live)
        pool = _Coordinator(job, payload, done, view, guard)
        try:
            pool.run(_process_context(objective), size=min(workers, target - done))
        except _ObjectiveLoadError as exc:
            raise ConfigError(
                "objective",
                objective,
                "an objective that worker processes can import: define it at module level in an "
                'importable module (or in a script guarded by `if __name__ == "__main__":`). '
                f"Loading it in a worker failed with:\n{exc}",
            ) from None


class _ObjectiveLoadError(Exception):
    """A worker could not unpickle the objective (the text is its traceback)."""


@dataclass(eq=False)
class _Worker:
    """One worker process, the coordinator's end of its pipe, and the trial it runs (if any)."""

    process: BaseProcess
    conn: Connection
    ready: bool = False  # it has loaded the objective: trials may go to it
    trial: Trial | None = None
    problem: str | None = None  # a failure to record what the running trial sent
    output_path: str | None = None  # the file the worker's trials print to


_NOTHING = object()  # no message waiting
_BROKEN = object()  # the pipe is closed: the worker is gone


def _receive(conn: Connection) -> Any:
    """The next message from a worker; ``_NOTHING`` if none waits, ``_BROKEN`` if it is gone."""
    try:
        return conn.recv() if conn.poll() else _NOTHING
    except (EOFError, OSError):
        return _BROKEN


class _Coordinator:
    """The coordinator's loop: hand out trials, serve the workers' calls, tell finished trials."""

    def __init__(
        self,
        job: Run,
        payload: bytes,
        done: int,
        view: LiveView,
        guard: _InterruptGuard,
    ) -> None:
        self.job = job
        self.study = job.study
        self.payload = payload
        self.target = job.target
        self.done = done
        self.view = view
        self.guard = guard
        self.workers: list[_Worker] = []
        self.idle_deaths = 0
        self.context: _Context = multiprocessing.get_context("spawn")
        # A finite wait lets the live view tick; without it the loop only wakes for messages.
        self.wait_seconds = 0.25 if view.enabled else 1.0

    def run(self, context: _Context, size: int) -> None:
        self.context = context
        try:
            for _ in range(size):
                self._start_worker()
            while self.done < self.target:
                self._hand_out()
                self._serve()
                self.view.tick()
        except BaseException as exc:
            with self.guard.held():
                if isinstance(exc, KeyboardInterrupt):
                    self._salvage_finished()
                self._stop_workers(at_once=True)
                self._interrupt_running(exc)
            raise
        self._stop_workers(at_once=False)

    # -- workers ---------------------------------------------------------------------------------

    def _start_worker(self) -> None:
        parent_end, child_end = self.context.Pipe(duplex=True)
        process = self.context.Process(
            target=_worker_main, args=(child_end, self.payload), name="tunery-worker"
        )
        try:
            with _one_blas_thread():  # the child inherits the environment as it is at start()
                process.start()
        except OSError as exc:  # it died while being handed its start-up data
            parent_end.close()
            raise TuneryError(
                f"a worker process could not start ({exc}). Workers re-import the main module: "
                "run the study from a script or a module file, not from stdin"
            ) from exc
        finally:
            child_end.close()  # so that the worker's death reads as EOF here
        self.workers.append(_Worker(process, parent_end))

    def _busy(self) -> int:
        return sum(1 for worker in self.workers if worker.trial is not None)

    def _hand_out(self) -> None:
        """Give idle workers the next trials, as long as more are needed to reach the target."""
        for worker in list(self.workers):
            idle = worker.ready and worker.trial is None
            if not idle or self.done + self._busy() >= self.target:
                continue
            with self.guard.held():
                worker.trial = self.study.ask()
            trial = worker.trial
            self.view.started(trial.number, trial.params)
            try:
                worker.conn.send((trial.freeze(), trial.metric, trial.resumes))
            except OSError:  # it died idle: the trial never started, so its draw runs again
                self._give_back(worker, "interrupted: its worker process died before starting it")

    def _serve(self) -> None:
        """Wait for messages or deaths, and act on them."""
        handles: dict[Any, _Worker] = {}
        for worker in self.workers:
            handles[worker.conn] = worker
            handles[worker.process.sentinel] = worker
        for handle in wait(list(handles), timeout=self.wait_seconds):
            worker = handles[handle]
            if worker not in self.workers:
                continue  # already buried in this turn
            if handle is worker.conn:
                self._drain(worker)
            else:
                self._bury(worker)

    def _drain(self, worker: _Worker) -> None:
        for _ in range(_MESSAGES_PER_TURN):
            message = _receive(worker.conn)
            if message is _BROKEN:
                self._bury(worker)
                return
            if message is _NOTHING:
                return
            # Outside the pipe guard: an error of the study or a callback is not a dead worker.
            self._handle(worker, message)

    def _bury(self, worker: _Worker) -> None:
        """A worker died: read what it sent before dying, fail its trial, start a new one."""
        while (message := _receive(worker.conn)) is not _NOTHING and message is not _BROKEN:
            self._handle(worker, message)
        worker.process.join(_JOIN_SECONDS)
        if worker.process.is_alive():  # its pipe broke but it lives on: make sure it is gone
            worker.process.kill()
            worker.process.join()
        code = worker.process.exitcode
        self.workers.remove(worker)
        worker.conn.close()
        if worker.trial is not None:
            note = _death_note(code, worker.trial.number)
            output = None if worker.output_path is None else read_tail(worker.output_path)
            self._finish(worker, Outcome(TrialState.FAILED, None, note, output))
        if worker.output_path is not None:  # a dead worker cannot remove its file
            remove_quietly(worker.output_path)
        else:
            self.idle_deaths += 1
            if self.idle_deaths > _MAX_IDLE_DEATHS:
                raise TuneryError(
                    f"worker processes keep dying without running a trial (last exit code {code})"
                )
        if self.done + self._busy() < self.target:
            self._start_worker()

    def _stop_workers(self, *, at_once: bool) -> None:
        """Ask the workers to leave (or terminate them ``at_once``); kill those that linger."""
        for worker in self.workers:
            if at_once:
                worker.process.terminate()
            else:
                _send_quietly(worker.conn, None)
        for worker in self.workers:
            worker.process.join(_JOIN_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
            if worker.output_path is not None:
                remove_quietly(worker.output_path)

    # -- messages --------------------------------------------------------------------------------

    def _handle(self, worker: _Worker, message: Any) -> None:
        trial = worker.trial
        match message:
            case ("fatal", str(text)):
                raise _ObjectiveLoadError(text)
            case ("ready", str(path)):
                worker.ready, worker.output_path = True, path
            case ("done", Outcome() as outcome) if trial is not None:
                self._finish(worker, outcome)
            case ("report", int(epoch), dict(metrics)) if trial is not None:
                self._record(worker, lambda: trial.report(epoch, **metrics))
                self.view.reported(trial.number, epoch, metrics)
            case ("attr", str(key), value) if trial is not None:
                self._record(worker, lambda: trial.set_user_attr(key, value))
            case ("checkpoint", int(epoch), bytes(state)) if trial is not None:
                self._record(worker, lambda: trial.checkpoint(state, epoch))
            case ("prune", int()) if trial is not None:
                self._answer(worker, trial.should_prune)
            case ("restore", epoch) if trial is not None:
                self._answer(worker, lambda: trial.restore(epoch))
            case _:
                raise TuneryError(f"a worker sent an unexpected message: {message!r:.200}")

    def _record(self, worker: _Worker, action: Callable[[], None]) -> None:
        """Do a one-way call; a failure is kept and fails the trial when it finishes."""
        try:
            action()
        except Exception:
            if worker.problem is None:
                worker.problem = "the coordinator could not record what the trial sent:\n"
                worker.problem += traceback.format_exc()

    def _answer(self, worker: _Worker, question: Callable[[], Any]) -> None:
        """Answer a round trip; the worker raises the error text if answering failed."""
        try:
            reply: tuple[str, Any] = ("ok", question())
        except Exception:
            reply = ("error", traceback.format_exc())
        _send_quietly(worker.conn, reply)  # if it died waiting, its sentinel says so next turn

    # -- trials ----------------------------------------------------------------------------------

    def _finish(self, worker: _Worker, outcome: Outcome) -> None:
        """Tell the worker's trial (committed before anything else is handed out)."""
        trial = worker.trial
        if trial is None:
            return
        if worker.problem is not None:
            failed = Outcome(TrialState.FAILED, None, worker.problem, outcome.output)
            outcome, worker.problem = failed, None
        with self.guard.held():
            frozen = self.study.tell(
                trial, outcome.value, outcome.state, outcome.error, output=outcome.output
            )
            worker.trial = None
            self.done += not frozen.interrupted  # a trial taken back as stale does not count
            self.idle_deaths = 0  # only deaths in a row, no trial finished, mean a broken setup
        self.view.finished(frozen)
        self.job.finished(frozen)

    def _give_back(self, worker: _Worker, error: str) -> None:
        """Finish the worker's trial as interrupted: it does not count and its draw is re-run."""
        trial = worker.trial
        if trial is None:
            return
        with self.guard.held():
            frozen = self.study.tell(trial, state=TrialState.FAILED, error=error, interrupted=True)
            worker.trial = None
        self.view.finished(frozen)

    def _salvage_finished(self) -> None:
        """On Ctrl-C, before the workers are stopped: tell the trials whose results already wait
        in the pipes (they finished; re-running them would throw their work away)."""
        for worker in self.workers:
            while worker.trial is not None:
                message = _receive(worker.conn)
                if message is _NOTHING or message is _BROKEN:
                    break
                if message[0] not in ("done", "report", "attr", "checkpoint"):
                    continue  # a question (prune, restore) nobody will wait for an answer to
                try:
                    self._handle(worker, message)
                except Exception:  # the store may be what failed; the rest is interrupted
                    break

    def _interrupt_running(self, exc: BaseException) -> None:
        """After Ctrl-C (or any error here): the running trials become FAILED and interrupted."""
        reason = f"interrupted by {type(exc).__name__}: {exc}".rstrip(": ")
        for worker in self.workers:
            try:
                self._give_back(worker, reason)
            except Exception:  # the store itself may be what failed; the next run cleans up
                worker.trial = None


# -- the worker process ----------------------------------------------------------------------------


class _PipeBackend:
    """The worker's ``TrialBackend``: calls go to the coordinator; two of them wait for answers."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def report(self, trial: Trial, epoch: int, metrics: dict[str, float]) -> None:
        self._conn.send(("report", epoch, metrics))

    def should_prune(self, trial: Trial, epoch: int) -> bool:
        return bool(self._ask(("prune", epoch)))

    def checkpoint(self, trial: Trial, epoch: int, state: bytes) -> None:
        self._conn.send(("checkpoint", epoch, state))

    def restore(self, trial: Trial, epoch: int | None) -> bytes | None:
        state = self._ask(("restore", epoch))
        return state if isinstance(state, bytes) else None

    def set_user_attr(self, trial: Trial, key: str, value: Any) -> None:
        self._conn.send(("attr", key, value))

    def _ask(self, message: tuple[Any, ...]) -> Any:
        self._conn.send(message)
        status, answer = self._conn.recv()
        if status != "ok":
            raise TuneryError(f"the coordinator failed to answer {message[0]!r}:\n{answer}")
        return answer


def _worker_main(conn: Connection, payload: bytes) -> None:
    """A worker's life: load the objective once, then run the trials it is sent until told to."""
    # Ctrl-C in a terminal reaches the whole process group; the coordinator alone acts on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _pin_threads()
    try:
        objective = pickle.loads(payload)
    except BaseException:
        _send_quietly(conn, ("fatal", traceback.format_exc()))
        return
    if "torch" in sys.modules:  # loading the objective imported torch: one thread, like BLAS
        sys.modules["torch"].set_num_threads(1)
    capture = OutputCapture()
    try:
        if _send_quietly(conn, ("ready", capture.path)):
            _serve_trials(conn, objective, capture)
    finally:
        capture.close()


def _serve_trials(
    conn: Connection, objective: Callable[[Trial], Any], capture: OutputCapture
) -> None:
    backend = _PipeBackend(conn)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the coordinator is gone
        if task is None:
            return
        with capture.trial():
            outcome = _run_trial(objective, backend, task)
        outcome = dataclasses.replace(outcome, output=capture.tail())
        if not _send_quietly(conn, ("done", outcome)):
            return


def _run_trial(
    objective: Callable[[Trial], Any],
    backend: _PipeBackend,
    task: tuple[FrozenTrial, str, tuple[int, ...]],
) -> Outcome:
    record, metric, resumes = task
    trial = Trial(record, backend, metric=metric, resumes=resumes)
    try:
        return call_objective(objective, trial)
    except BaseException:  # SystemExit or KeyboardInterrupt raised by the objective itself
        return Outcome(TrialState.FAILED, None, traceback.format_exc())


def _send_quietly(conn: Connection, message: Any) -> bool:
    try:
        conn.send(message)
    except OSError:
        return False
    return True


# -- helpers ---------------------------------------------------------------------------------------


def _pickled(objective: Callable[[Trial], Any]) -> bytes:
    """The objective, pickled once for every worker; ``ConfigError`` if it cannot be."""
    try:
        return pickle.dumps(objective)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ConfigError(
            "objective",
            objective,
            "a picklable objective for workers > 1: a module-level function or an object of a "
            f"module-level class, not a lambda or a nested function ({exc})",
        ) from None


def _death_note(code: int | None, number: int) -> str:
    how = f"exit code {code}"
    if code is not None and code < 0:
        with suppress(ValueError):  # a number that names no signal
            how += f", killed by {signal.Signals(-code).name}"
    return (
        f"worker process died ({how}) while running trial {number}; a new worker took its place "
        "(SIGKILL often means the machine ran out of memory)"
    )


def _process_context(objective: object) -> _Context:
    """``forkserver`` (a new worker is a fork of a process that imported tunery), else ``spawn``.

    The server imports tunery, the objective's module and whatever the main module imported,
    once; so a worker, first or replacement, starts in milliseconds with all of it at hand. Never
    plain ``fork``: the coordinator has threads and an initialized BLAS, which a fork would copy
    mid-state.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Only takes effect when the server starts: the first pool of this process.
    context.set_forkserver_preload(_preload_modules(objective))
    return context


def _preload_modules(objective: object) -> list[str]:
    """The objective's module, tunery's loaded modules, and those the main module took names from.

    Each worker re-runs the main script (as ``__mp_main__``), and the fork server of Python 3.11
    does not preload it although asked to (it looks for a "main_path" that the preparation data
    calls "init_main_from_path"): without its imports in the server, every worker would import
    them again, a second or more each for scikit-learn or torch.
    """
    names = [*_PRELOAD, getattr(objective, "__module__", None)]  # an instance finds its class's
    names += [name for name in list(sys.modules) if name.startswith("tunery.")]
    main = sys.modules.get("__main__")
    for value in vars(main).values() if main is not None else ():
        if isinstance(value, ModuleType):
            names.append(value.__name__)
        elif isinstance(value, type | FunctionType):
            names.append(value.__module__)
    return [name for name in dict.fromkeys(names) if isinstance(name, str) and _preloadable(name)]


def _preloadable(name: str) -> bool:
    """Not a main module: importing ``tunery.__main__`` in the server would run the CLI there."""
    last = name.rpartition(".")[2]
    return last not in ("__main__", "__mp_main__") and name != "builtins"


def _pin_threads() -> None:
    """One thread for BLAS and OpenMP in this worker, whatever was imported before us."""
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))  # for libraries loaded later
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it the variables above must do
        return
    threadpool_limits(1)  # for libraries already loaded (the forkserver imported NumPy)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """``THREAD_VARIABLES`` set to 1 for as long as the block runs (processes started in it)."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
