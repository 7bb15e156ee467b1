"""The Ray executor: a study's trials as Ray tasks on a cluster, the store on the driver.

The driver (the process that called ``study.caviar``) asks and tells every trial and is the only
writer of the store, as with the local pool. Each trial is a Ray task holding the trial's
``Resources`` (``num_cpus``, ``num_gpus``); what the objective tells its ``Trial`` travels through a
*hub*, one async Ray actor per run placed on the driver's node::

    driver                                        hub (async actor)         task (a trial)
    ask() → ray.remote(task).remote(record) ──────────────────────────────▶ Trial(HubBackend)
    drain() long-polls ◀────── inbox ◀─────────── post([batch]) ◀────────── trial.report(...)
    pruner decides; answer(key, reply) ─────────▶ future resolved ────────▶ ask(("prune", …))
    ray.wait → (Outcome, messages sent); serve any not seen yet; tell; callbacks

One-way calls (report, checkpoint, attr; the first one also says the task's node) are batched in
the task and sent at most ``_BATCH_SECONDS`` late, at once before a question; the task waits for
the hub to hold them all before it returns, and returns how many it sent, so the driver tells a
trial only after everything it sent, and calls the hub at a trial's end only if some are still
unseen (a trial that sends nothing costs the hub nothing). Questions (prune, restore) wait on
their own future: a slow answer to one trial holds up no other. A study without a pruner answers
``should_prune()`` in the task.

The objective is pickled and put in the object store once per run; an objective with a
``prepare_for_cluster(put, get, cpus=...)`` method (the built-in ``TrainerObjective``) is first
asked for a variant that reads its dataset from the object store rather than from a path.

Before the first trial: ``connect`` looks at the address within a bounded time (Ray alone would
retry for minutes, or for ever on a stale cluster file), ``check_fits`` finds a node with the
trial's resources, and a probe task loads the objective on the cluster; each failure is one
``ConfigError``. With a ``checkpoint_dir`` the tasks write checkpoints there and send the driver
only where (``tunery._files``).

Faults: an exception in a trial makes it FAILED with the traceback. A trial whose node died
(removed, crashed, unreachable) becomes FAILED and *interrupted*: it does not count and the study
re-runs its draw on a node still alive (a trial that never said its node: if Ray says
``NodeDiedError``, or a node alive when it was submitted is dead now). A trial whose worker process
died on a live node is FAILED (it counts, like a dead worker of the local pool: re-running a draw
that kills its process would loop). If the driver dies, Ray ends its tasks; the next run finds
their trials RUNNING, marks them interrupted and re-runs their draws. Ctrl-C in the driver is held
back while it writes a trial and its books (``InterruptGuard``, as in the local pool); then
finished tasks are told, the others cancelled and their trials interrupted.
"""

from __future__ import annotations

import asyncio
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple

from rich.console import Console

from tunery._exceptions import ConfigError, TuneryError
from tunery._files import checkpoint_location, write_checkpoint
from tunery.records import FrozenTrial, TrialState
from tunery.run._guard import InterruptGuard
from tunery.run._live import LiveView
from tunery.run._protocol import Run
from tunery.run._ray_connect import check_fits, connect
from tunery.run._resources import Resources
from tunery.run._sequential import Outcome, call_objective
from tunery.trial import Trial

__all__ = ["RayExecutor"]

_POLL_SECONDS = 1.0  # the hub's long poll: the driver wakes at once for messages, else this often
_LIVE_POLL_SECONDS = 0.25  # with the live view on, so that its clock ticks
_SALVAGE_SECONDS = 5.0  # how long Ctrl-C waits for what finished trials sent
_CAPACITY_SECONDS = 1.0  # how often the driver re-reads the cluster's room while all goes well
_BATCH_SECONDS = 0.1  # a task sends its reports at most this late, in one hub call per batch


@dataclass(frozen=True)
class RayExecutor:
    """Runs trials as Ray tasks at ``address`` (``None``: a Ray of this machine), each holding
    ``resources``. Satisfies ``tunery.run.Executor``."""

    address: str | None = None
    resources: Resources = field(default_factory=Resources)
    checkpoint_dir: str | None = None  # checked (``tunery._files.check_checkpoint_dir``)

    def run(self, run: Run, console: Console | None = None) -> None:
        ray = connect(self.address)
        done = run.study.count_done()
        if done >= run.target:
            return
        check_fits(ray, self.resources)
        shared = _share(ray, run.objective, self.resources)
        _probe(ray, shared, run.objective)
        view = LiveView.of_study(run.study, target=run.target, live=run.live, console=console)
        with InterruptGuard() as guard, view:
            _Driver(ray, run, shared, done, view, self, guard).run()


def _share(ray: ModuleType, objective: Callable[[Trial], Any], resources: Resources) -> Any:
    """The objective in the object store (its dataset too, if it knows how): one copy per run."""
    prepare = getattr(objective, "prepare_for_cluster", None)
    if callable(prepare):
        objective = prepare(ray.put, ray.get, cpus=resources.cpu)
    try:
        return ray.put(objective)
    except Exception as exc:  # cloudpickle's errors vary: TypeError, PicklingError, ...
        raise ConfigError("objective", objective, f"an objective Ray can pickle ({exc})") from None


def _probe(ray: ModuleType, shared: Any, objective: object) -> None:
    """Load the objective in one Ray worker before any trial starts: an objective the cluster
    cannot import (a module only the driver has) is one ``ConfigError``, not a FAILED trial
    each. The worker keeps what it loaded for the trials it runs next."""
    probe = ray.remote(max_retries=0)(_load_remote).options(num_cpus=0)
    try:
        ray.get(probe.remote([shared]))
    except ray.exceptions.RayError as exc:  # it raised, or its worker died loading it
        lines = [line for line in str(exc).strip().splitlines() if line.strip()] or [repr(exc)]
        raise ConfigError(
            "objective",
            objective,
            "an objective the cluster's workers can import: define it in a module every node "
            f"has (installed, or on their PYTHONPATH). Loading it there failed: {lines[-1]}",
        ) from None


# -- the driver ------------------------------------------------------------------------------------


class _Settings(NamedTuple):
    """What every task of a run is told: the CPUs it holds, where checkpoints go, and whether
    the study has a pruner to ask."""

    cpus: float
    checkpoint_dir: str | None
    prunes: bool


@dataclass(eq=False)
class _Running:
    """A submitted trial: its live handle, its hub key, the nodes alive when it was submitted,
    the node it runs on once it says (with its first message), what it sent so far."""

    trial: Trial
    key: int
    alive: frozenset[str]
    node: str | None = None
    received: int = 0  # one-way messages recorded; the task's result says how many it sent
    problem: str | None = None  # a failure to record what the trial sent


class _Driver:
    """The driver's loop: submit trials, serve the hub's messages, tell finished trials."""

    def __init__(
        self,
        ray: ModuleType,
        run: Run,
        shared: Any,
        done: int,
        view: LiveView,
        executor: RayExecutor,
        guard: InterruptGuard,
    ) -> None:
        self.ray = ray
        self.job = run
        self.study = run.study
        self.shared = shared
        self.target = run.target
        self.done = done
        self.view = view
        self.resources = resources = executor.resources
        # What each task is told; a study without a pruner answers should_prune() in the task.
        prunes = run.study.pruner is not None
        self.settings = _Settings(resources.cpu, executor.checkpoint_dir, prunes)
        self.running: dict[Any, _Running] = {}  # task ObjectRef → trial
        self.by_key: dict[int, _Running] = {}
        self.next_key = 0
        self.capacity = 0
        self.capacity_read = 0.0  # time.monotonic() of the last read
        self.alive: frozenset[str] = frozenset()  # the nodes alive at that read
        self.poll = _LIVE_POLL_SECONDS if view.enabled else _POLL_SECONDS
        self.task = ray.remote(max_retries=0)(_run_remote).options(
            num_cpus=resources.cpu, num_gpus=resources.gpu
        )
        self.hub = _start_hub(ray)
        self.guard = guard

    def run(self) -> None:
        """The loop; on Ctrl-C (or an error here) the finished trials waiting are told, the
        rest cancelled and interrupted (their draws re-run next time), as with the local pool."""
        try:
            self._loop()
        except BaseException as exc:
            with self.guard.held():
                if isinstance(exc, KeyboardInterrupt):
                    self._salvage_finished()
                self._interrupt_running(exc)
            raise
        finally:
            with suppress(Exception):
                self.ray.kill(self.hub)

    def _loop(self) -> None:
        """One ``ray.wait`` a turn while all goes well; the hub is only called when it has
        messages, or when a trial ended before everything it sent was served."""
        self.inbox = self.hub.drain.remote(self.poll)
        while self.done < self.target:
            self._submit()
            ready, _ = self.ray.wait([self.inbox, *self.running], num_returns=1, timeout=self.poll)
            if self.inbox in ready:
                self._collect()
            for ref in self._ended():
                self._finish(ref)
            self.view.tick()

    def _collect(self) -> None:
        """Serve what the long poll brought, and poll again."""
        messages = self.ray.get(self.inbox)
        self.inbox = self.hub.drain.remote(self.poll)
        self._serve(messages)

    def _catch_up(self, running: _Running, sent: int, timeout: float | None = None) -> None:
        """Serve the messages a trial sent that its result arrived before: the task waited for
        the hub to hold them all, so the long poll (woken at once) and one drain bring them."""
        self.hub.kick.remote()
        messages = self.ray.get(self.inbox, timeout=timeout)
        self.inbox = self.hub.drain.remote(self.poll)
        self._serve(messages)
        if running.received < sent:
            self._serve(self.ray.get(self.hub.drain.remote(0), timeout=timeout))
        if running.received < sent and running.problem is None:
            running.problem = f"the driver got {running.received} of the {sent} messages it sent"

    def _ended(self) -> list[Any]:
        refs = list(self.running)
        if not refs:
            return []
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        return list(ready)

    # -- submitting ------------------------------------------------------------------------------

    def _slots(self) -> int:
        """Trials the cluster can run at once with the trial's resources (alive nodes only);
        notes which nodes are alive."""
        alive = [node for node in self.ray.nodes() if node.get("Alive")]
        self.alive = frozenset(node["NodeID"] for node in alive)
        cpus = sum(node.get("Resources", {}).get("CPU", 0) for node in alive)
        slots = int(cpus // self.resources.cpu)
        if self.resources.gpu > 0:
            gpus = sum(node.get("Resources", {}).get("GPU", 0) for node in alive)
            slots = min(slots, int(gpus // self.resources.gpu))
        return max(1, slots)

    def _submit(self) -> None:
        """Ask for trials while the cluster has room and more are needed to reach the target."""
        wanted = self.target - self.done - len(self.running)
        if wanted <= 0:
            return
        stale = time.monotonic() - self.capacity_read > _CAPACITY_SECONDS
        if self.capacity == 0 or stale:  # nodes come and go; a GCS call per trial would cost
            self.capacity = self._slots()
            self.capacity_read = time.monotonic()
        for _ in range(min(wanted, self.capacity - len(self.running))):
            with self.guard.held():  # a Ctrl-C here would leave a RUNNING trial nobody runs
                trial = self.study.ask()
                key, self.next_key = self.next_key, self.next_key + 1
                running = _Running(trial, key, self.alive)
                task = (trial.freeze(), trial.metric, trial.resumes)
                ref = self.task.remote([self.shared], task, self.hub, key, self.settings)
                self.running[ref] = running
                self.by_key[key] = running
            self.view.started(trial.number, trial.params)

    # -- messages ------------------------------------------------------------------------------

    def _serve(self, messages: list[tuple[Any, ...]]) -> None:
        for message in messages:
            if message[0] == "ask":
                _, question, (key, kind, argument) = message
                self._answer(question, self.by_key.get(key), kind, argument)
            else:
                running = self.by_key.get(message[0])
                if running is not None:
                    running.received += 1
                self._record(running, message[1:])

    def _record(self, running: _Running | None, message: tuple[Any, ...]) -> None:
        """A one-way call; a failure fails the trial when it ends. Late ones (trial told) drop."""
        if running is None:
            return
        trial = running.trial
        try:
            match message:
                case ("node", str(node)):
                    running.node = node
                case ("report", int(epoch), dict(metrics)):
                    trial.report(epoch, **metrics)
                    self.view.reported(trial.number, epoch, metrics)
                case ("attr", str(key), value):
                    trial.set_user_attr(key, value)
                case ("checkpoint", int(epoch), bytes(state)):
                    trial.checkpoint(state, epoch)
                case _:
                    raise TuneryError(f"a trial sent an unexpected message: {message!r:.200}")
        except Exception:
            if running.problem is None:
                running.problem = "the driver could not record what the trial sent:\n"
                running.problem += traceback.format_exc()

    def _answer(self, question: int, running: _Running | None, kind: str, argument: Any) -> None:
        try:
            if running is None:
                raise TuneryError("the trial is no longer running")
            trial = running.trial
            # A checkpoint in a checkpoint_dir goes as where it is: the task reads the file.
            answer = trial.should_prune() if kind == "prune" else trial.stored_checkpoint(argument)
            reply: tuple[str, Any] = ("ok", answer)
        except Exception:
            reply = ("error", traceback.format_exc())
        self.hub.answer.remote(question, reply)  # not awaited: the trial waits, not the driver

    # -- ending trials -----------------------------------------------------------------------------

    def _finish(self, ref: Any, timeout: float | None = None) -> None:
        with self.guard.held():  # told once, and off the books in the same breath
            frozen = self._tell(ref, timeout)
        if frozen is not None:
            self.view.finished(frozen)
            self.job.finished(frozen)

    def _tell(self, ref: Any, timeout: float | None = None) -> FrozenTrial | None:
        """Store how the task ended, after all it sent; ``None`` if its trial was given back
        (its node died)."""
        running = self.running[ref]
        try:
            outcome, sent = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # the task's own code raised
            outcome, sent = Outcome(TrialState.FAILED, None, str(exc)), 0
        except self.ray.exceptions.RayError as exc:
            self.capacity = 0  # a node may have gone: re-read the room before the next submit
            self._forget(ref)
            if self._node_gone(running, exc):
                self._give_back(running, f"interrupted: its Ray node died ({type(exc).__name__})")
                return None
            outcome, sent = Outcome(TrialState.FAILED, None, _death_note(exc, running)), 0
        if running.received < sent:
            self._catch_up(running, sent, timeout)
        self._forget(ref)
        if running.problem is not None:
            outcome = Outcome(TrialState.FAILED, None, running.problem)
        frozen = self.study.tell(running.trial, outcome.value, outcome.state, outcome.error)
        self.done += 1
        return frozen

    def _forget(self, ref: Any) -> None:
        running = self.running.pop(ref, None)
        if running is not None:
            self.by_key.pop(running.key, None)

    def _node_gone(self, running: _Running, exc: BaseException) -> bool:
        """Whether the trial's node is dead. A trial that never said where it ran (it sent
        nothing) is taken to have run on a dead node if Ray says so, or if a node alive when
        it was submitted is dead now."""
        if isinstance(exc, self.ray.exceptions.NodeDiedError):
            return True
        alive = {node["NodeID"] for node in self.ray.nodes() if node.get("Alive")}
        if running.node is None:
            return not running.alive <= alive
        return running.node not in alive

    def _give_back(self, running: _Running, error: str) -> None:
        """FAILED and interrupted: the trial does not count and the study re-runs its draw."""
        trial = running.trial
        frozen = self.study.tell(trial, state=TrialState.FAILED, error=error, interrupted=True)
        self.view.finished(frozen)

    def _salvage_finished(self) -> None:
        """On Ctrl-C: tell the trials whose tasks have already returned (re-running them would
        throw their work away), after what they sent, if the hub answers quickly."""
        for ref in self._ended():
            try:
                self._finish(ref, timeout=_SALVAGE_SECONDS)
            except Exception:  # the store or the hub may be what failed; the rest is interrupted
                break

    def _interrupt_running(self, exc: BaseException) -> None:
        """Ctrl-C or an error here: cancel the tasks, mark their trials interrupted."""
        reason = f"interrupted by {type(exc).__name__}: {exc}".rstrip(": ")
        for ref, running in list(self.running.items()):
            with suppress(Exception):
                self.ray.cancel(ref, force=True)
            with suppress(Exception):  # the store may be what failed; the next run cleans up
                self._give_back(running, reason)
        self.running.clear()


def _death_note(exc: BaseException, running: _Running) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (
        f"Ray worker process died ({type(exc).__name__}: {first}) while running trial "
        f"{running.trial.number}; its node is alive, so the draw is not re-run "
        "(out of memory is the usual cause)"
    )


# -- the hub ---------------------------------------------------------------------------------------


class _Hub:
    """An async actor between the trials and the driver: an inbox, and a future per question."""

    def __init__(self) -> None:
        self._inbox: list[tuple[Any, ...]] = []
        self._questions: dict[int, asyncio.Future[Any]] = {}
        self._next = 0
        self._arrived = asyncio.Event()

    async def post(self, messages: list[tuple[Any, ...]]) -> None:
        self._inbox.extend(messages)
        self._arrived.set()

    async def ask(self, message: tuple[Any, ...]) -> Any:
        question, self._next = self._next, self._next + 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._questions[question] = future
        await self.post([("ask", question, message)])
        return await future

    async def answer(self, question: int, reply: Any) -> None:
        future = self._questions.pop(question, None)
        if future is not None and not future.done():
            future.set_result(reply)

    async def kick(self) -> None:
        self._arrived.set()

    async def drain(self, timeout: float) -> list[tuple[Any, ...]]:
        """The messages waiting, after waiting up to ``timeout`` seconds for the first one."""
        if not self._inbox and timeout > 0:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        messages, self._inbox = self._inbox, []
        self._arrived.clear()
        return messages


def _start_hub(ray: ModuleType) -> Any:
    """The hub on the driver's node (never on a node that may be removed), holding no CPU."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    strategy = NodeAffinitySchedulingStrategy(here, soft=False)  # it must die with the driver
    hub_class = ray.remote(_Hub)
    return hub_class.options(num_cpus=0, scheduling_strategy=strategy).remote()


# -- in the task -----------------------------------------------------------------------------------


class _HubBackend:
    """The task's ``TrialBackend``: calls go to the driver through the hub; checkpoints too, or,
    with a ``checkpoint_dir``, only where the task wrote them."""

    def __init__(
        self, ray: ModuleType, hub: Any, key: int, checkpoint_dir: str | None, prunes: bool
    ) -> None:
        self._ray = ray
        self._prunes = prunes  # False: the study has no pruner, the answer is always no
        self._hub = hub
        self._key = key
        self._checkpoint_dir = checkpoint_dir
        self._posted: list[Any] = []  # the hub calls made
        self._batch: list[tuple[Any, ...]] = []  # one-way calls not sent yet
        self._lock = threading.Lock()  # the batch is sent from this thread or a timer's
        self._timer: threading.Timer | None = None
        self.sent = 0  # one-way calls made: the driver serves them all before it tells

    def post(self, *message: Any) -> None:
        """A one-way call, sent within ``_BATCH_SECONDS`` with the others made meanwhile; the
        first says which node this is (a trial that sends nothing costs the hub nothing)."""
        with self._lock:
            if self.sent == 0:
                self._add("node", self._ray.get_runtime_context().get_node_id())
            self._add(*message)
            if self._timer is None:
                self._timer = threading.Timer(_BATCH_SECONDS, self._send)
                self._timer.daemon = True
                self._timer.start()

    def _add(self, *message: Any) -> None:
        self._batch.append((self._key, *message))
        self.sent += 1

    def _send(self) -> None:
        with self._lock:
            self._send_held()

    def _send_held(self) -> None:
        """Send the batch (the lock held): in order, as the hub serves one caller's calls."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._batch:
            self._posted.append(self._hub.post.remote(self._batch))
            self._batch = []

    def report(self, trial: Trial, epoch: int, metrics: dict[str, float]) -> None:
        self.post("report", epoch, metrics)

    def should_prune(self, trial: Trial, epoch: int) -> bool:
        return self._prunes and bool(self._ask("prune", epoch))

    def checkpoint(self, trial: Trial, epoch: int, state: bytes) -> None:
        if self._checkpoint_dir is not None:  # off the network to the driver and its store
            location = checkpoint_location(self._checkpoint_dir, trial.trial_id, epoch)
            state = write_checkpoint(location, state)
        self.post("checkpoint", epoch, state)

    def restore(self, trial: Trial, epoch: int | None) -> bytes | None:
        state = self._ask("restore", epoch)
        return state if isinstance(state, bytes) else None

    def set_user_attr(self, trial: Trial, key: str, value: Any) -> None:
        self.post("attr", key, value)

    def flush(self) -> None:
        """Wait until the hub holds everything posted (before the task returns its outcome)."""
        self._send()
        if self._posted:
            self._ray.get(self._posted)
            self._posted.clear()

    def _ask(self, kind: str, argument: Any) -> Any:
        with self._lock:  # what the trial sent goes first: the pruner sees its last report
            if self.sent == 0:  # and the driver learns the node before the trial waits on it
                self._add("node", self._ray.get_runtime_context().get_node_id())
            self._send_held()
        status, answer = self._ray.get(self._hub.ask.remote((self._key, kind, argument)))
        if status != "ok":
            raise TuneryError(f"the driver failed to answer {kind!r}:\n{answer}")
        return answer


def _load_remote(box: list[Any]) -> None:
    """The objective loaded in a Ray worker (the probe before the first trial)."""
    import ray

    _objective(ray, box[0])


_OBJECTIVES: dict[bytes, Callable[[Trial], Any]] = {}  # per worker process: unpickled once


def _objective(ray: ModuleType, ref: Any) -> Callable[[Trial], Any]:
    key = ref.binary()
    if key not in _OBJECTIVES:
        _OBJECTIVES.clear()  # one study at a time per worker: drop older objectives
        _OBJECTIVES[key] = ray.get(ref)
    return _OBJECTIVES[key]


def _run_remote(
    box: list[Any],
    task: tuple[FrozenTrial, str, tuple[int, ...]],
    hub: Any,
    key: int,
    settings: _Settings,
) -> tuple[Outcome, int]:
    """One trial, in a Ray worker: its outcome, and how many one-way calls it sent. ``box``
    holds the objective's ref unresolved (cached here); ``settings``: the CPUs the task holds
    and the ``checkpoint_dir``."""
    import ray
    from threadpoolctl import threadpool_limits

    cpus, checkpoint_dir, prunes = settings
    backend = _HubBackend(ray, hub, key, checkpoint_dir, prunes)
    record, metric, resumes = task
    trial = Trial(record, backend, metric=metric, resumes=resumes)
    try:
        with threadpool_limits(limits=max(1, int(cpus))):  # BLAS on the CPUs this task holds
            outcome = call_objective(_objective(ray, box[0]), trial)
    except BaseException:  # SystemExit, KeyboardInterrupt, or the objective failed to load
        outcome = Outcome(TrialState.FAILED, None, traceback.format_exc())
    backend.flush()
    return outcome, backend.sent
