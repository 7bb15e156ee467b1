"""The loop: ``Panda`` trains one branch epoch by epoch and applies the events at each boundary."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from tunery._exceptions import ConfigError, Diverged
from tunery.config import TuneConfig
from tunery.nn.train import EpochMetrics, Trainer
from tunery.records import Curve, Event, TrialState
from tunery.workflows.panda._branches import branch_curve, hyperparameters_at, latest_branch
from tunery.workflows.panda._control import PandaControl
from tunery.workflows.panda._events import (
    BRANCH_ATTR,
    KINDS,
    AppliedEvent,
    settle_waiting,
    supersede_nudges,
    write_log,
)
from tunery.workflows.panda._plans import Plan, first_plan, load_point
from tunery.workflows.panda._recipes import (
    TrainerFactory,
    check_epochs,
    check_trainer,
    make_recipe,
    reported,
    sync_hyperparameters,
)
from tunery.workflows.panda._signals import holding_ctrl_c

if TYPE_CHECKING:
    from tunery.data import Dataset
    from tunery.study import Study, Trial


def babysit(
    study: Study,
    source: TuneConfig | TrainerFactory,
    params: Mapping[str, Any] | None = None,
    *,
    epochs: int | None = None,
    dataset: Dataset | None = None,
    control: Callable[[Panda], Any] | None = None,
) -> Panda:
    """Babysit one model of ``study``, epoch by epoch.

    ``source`` is a config (its ``[model]``, with ``params`` put in) or ``factory(params) ->
    Trainer``. Returns the ``Panda``, ready to step with ``run_epoch()``; with ``control``, it
    has already run to the end, calling ``control(panda)`` at every epoch boundary.
    """
    panda = Panda(study, source, params, epochs=epochs, dataset=dataset)
    if control is not None:
        panda.run(control)
    return panda


class Panda:
    """One model, babysat: see ``tunery.workflows.panda``. ``babysit(study, ...)`` makes one.

    Args:
        study: the study that keeps the branches (one panda per study: it claims the study).
        source: a ``TuneConfig`` (its ``[model]`` and data) or ``factory(params) -> Trainer``.
        params: the first branch's params (config: searchable names such as ``lr``, ``units``).
        epochs: the epoch a branch trains to (default: the config's epochs).
        dataset: the config's data, if already loaded.
        poll: seconds between looks at the store while paused.
    """

    def __init__(
        self,
        study: Study,
        source: TuneConfig | TrainerFactory,
        params: Mapping[str, Any] | None = None,
        *,
        epochs: int | None = None,
        dataset: Dataset | None = None,
        poll: float = 0.25,
    ) -> None:
        self.study = study
        self.epochs = check_epochs(epochs, source)
        self.poll = _check_poll(poll)
        self.control = PandaControl(study)
        self.events: list[AppliedEvent] = []
        self.paused = False
        self.done = False
        self._recipe = make_recipe(source, dataset)
        self._trial: Trial | None = None  # the branch training now
        self._latest: Trial | None = None  # the branch training now, or the last one
        self._trainer: Trainer | None = None
        self._params: dict[str, Any] = {}
        self._waiting: list[int] = []  # indices of events applied while no branch existed
        # Claim the study first: a second panda on it fails here, before anything is written.
        study.storage.claim_study(study.study_id)
        self._plan = first_plan(study, params, self._recipe.check_params)
        self._opening = True
        self.apply_events()
        self._opening = False
        if self._plan.epoch < self.epochs:
            self._start_branch(self._plan)
        else:
            self.done = True

    # -- state -----------------------------------------------------------------------------------

    @property
    def branch(self) -> int | None:
        """The number of the branch (trial) training now, or of the last one once done."""
        return None if self._latest is None else self._latest.number

    @property
    def parent(self) -> tuple[int, int] | None:
        """``(trial, epoch)`` that ``branch`` started from; ``None`` for a first branch."""
        return None if self._latest is None else self._latest.parent

    @property
    def origin(self) -> str:
        """How the current (or next) branch started: ``"start"``, ``"resume"`` or ``"rollback"``."""
        return self._plan.origin

    @property
    def trainer(self) -> Trainer:
        if self._trainer is None:
            raise ConfigError("panda", "no branch", "a branch (its epochs were done already)")
        return self._trainer

    @property
    def epoch(self) -> int:
        """Epochs trained on the current path (the fork epoch before a branch trains)."""
        return self._plan.epoch if self._trainer is None else self._trainer.epoch

    @property
    def params(self) -> dict[str, Any]:
        """The current branch's params with the nudges applied so far."""
        return dict(self._params)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The current values of what a nudge can change, under the names a nudge uses."""
        info = self._recipe.describe(self._params, self.trainer)
        settings = info["settings"]
        if isinstance(settings, dict):
            return {name: settings[name] for name in info["nudgeable"]}
        return self.trainer.hyperparameters()

    @property
    def curve(self) -> Curve:
        """``epoch -> {metric: value}`` along the current path (ancestors up to each fork)."""
        number = self.branch
        if number is None:
            head = latest_branch(self.study.trials)
            if head is None:
                return {}
            number = head.number
        return branch_curve(self.study.trials, number)

    def __repr__(self) -> str:
        state = "done" if self.done else "paused" if self.paused else "running"
        where = f"branch={self.branch}, epoch={self.epoch}"
        return f"Panda(study={self.study.name!r}, {where}, {state})"

    # -- control (queued, applied at the next boundary) ------------------------------------------

    def nudge(self, **changes: Any) -> Event:
        """Queue new hyperparameter values (validated now): ``panda.nudge(lr=3e-4)``."""
        if self._trainer is not None:
            clean = self._recipe.check_nudge(self._params, changes, self._trainer)
            head = self.control.head()
            return self.study.storage.add_event(
                self.study.study_id, "nudge", clean, trial_number=head.number
            )
        return self.control.nudge(**changes)

    def rollback(self, epoch: int, trial: int | None = None) -> Event:
        """Queue a rollback to ``epoch`` of the current path (or of trial ``trial``'s path)."""
        return self.control.rollback(epoch, trial)

    def pause(self) -> Event:
        return self.control.pause()

    def resume(self) -> Event:
        return self.control.resume()

    # -- running ---------------------------------------------------------------------------------

    def run_epoch(self) -> EpochMetrics | None:
        """Apply the queued events, then train one epoch unless paused or done.

        Returns the epoch's metrics, or ``None`` when nothing was trained.
        """
        self.apply_events()
        if self.done or self.paused or self._trainer is None:
            return None
        return self._train_epoch(self._trainer)

    def run(self, control: Callable[[Panda], Any] | None = None) -> Self:
        """Train to the end: ``run_epoch`` until done, sleeping ``poll`` seconds while paused.

        ``control(panda)``, if given, is called before every boundary. If anything stops the run
        (Ctrl-C, an exception), the branch is recorded interrupted and the exception propagates.
        """
        with self, self.study.beating():  # a paused branch is alive: keep its heartbeat fresh
            while not self.done:
                if control is not None:
                    control(self)
                if self.run_epoch() is None and not self.done:
                    self.wait()
        return self

    def wait(self, seconds: float | None = None) -> None:
        """Sleep (``poll`` seconds by default): what the loop does while paused."""
        time.sleep(self.poll if seconds is None else seconds)

    def apply_events(self) -> list[AppliedEvent]:
        """Apply the store's pending events, oldest first; returns what was applied."""
        storage = self.study.storage
        applied = []
        for event in storage.get_events(self.study.study_id, pending=True):
            with holding_ctrl_c():  # applied and marked so, or neither
                entry = self._apply(event)
                storage.mark_event_applied(event.event_id)
            applied.append(entry)
        return applied

    def close(self, reason: str | None = None) -> None:
        """End the running branch, if its epochs are not done: FAILED and interrupted."""
        if self._trial is None:
            return
        why = reason or "closed"
        error = (
            f"interrupted ({why}) at epoch {self.epoch} of {self.epochs}; running panda again "
            "continues from the last checkpoint"
        )
        self.study.tell(self._trial, state=TrialState.FAILED, error=error, interrupted=True)
        self._end()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        reason = None if kind is None else f"{kind.__name__}: {exc}".rstrip(": ")
        self.close(reason)

    # -- epochs ----------------------------------------------------------------------------------

    def _train_epoch(self, trainer: Trainer) -> EpochMetrics:
        trial = self._live_trial()
        try:
            metrics = trainer.run_epoch()
        except Diverged:
            metrics = trainer.history[-1]
        with holding_ctrl_c():  # an epoch in the curve always has its checkpoint
            if metrics.diverged:
                # Only the loss: NaN accuracies would read as (terrible) values.
                trial.report(metrics.epoch, loss=metrics.cost)
                error = f"training diverged at epoch {metrics.epoch}: loss is {metrics.cost}"
                self.study.tell(trial, state=TrialState.DIVERGED, error=error)
                self._end()
                return metrics
            trial.report(metrics.epoch, **reported(metrics))
            trial.checkpoint(trainer.to_bytes(), metrics.epoch)
            if trainer.epoch >= self.epochs:
                self.study.tell(trial, trial.last(self.study.metric))
                self._end()
        return metrics

    def _live_trial(self) -> Trial:
        if self._trial is None:
            raise ConfigError("panda", "no branch", "a running branch")
        return self._trial

    def _end(self) -> None:
        self._trial = None  # the trainer stays, to look at (or predict with) after the end
        self.done = True

    # -- branches --------------------------------------------------------------------------------

    def _start_branch(self, plan: Plan) -> None:
        """Create the branch ``plan`` describes: build, restore, ask for the trial, checkpoint.

        Nothing is written until the trainer stands; the branch running so far (if any) is left
        to the caller.
        """
        trainer = self._recipe.build(plan.params)
        check_trainer(trainer, self.study.metric)
        if plan.parent is not None:
            trainer.restore(load_point(self.study, plan.parent))
        self._sync(trainer, plan.params)
        space = None if self.study.rounds else self._recipe.space(trainer)
        with holding_ctrl_c():  # a branch is made whole, or not at all
            trial = self.study.ask(space, params=plan.params, parent=plan.parent)
            info = {"origin": plan.origin, **self._recipe.describe(plan.params, trainer)}
            trial.set_user_attr(BRANCH_ATTR, info)
            self._plan, self._trial, self._latest, self._trainer = plan, trial, trial, trainer
            self._params = dict(plan.params)
            self.done = False
            self._flush_waiting(trial)
            trial.checkpoint(trainer.to_bytes(), trainer.epoch)

    def _sync(self, trainer: Trainer, params: Mapping[str, Any]) -> None:
        sync_hyperparameters(self._recipe, trainer, params)

    def _flush_waiting(self, trial: Trial) -> None:
        """Log the events applied while no branch existed on the branch that starts now."""
        if not self._waiting:
            return
        settle_waiting(self.events, self._waiting, trial.number)
        write_log(trial, [self.events[index] for index in self._waiting])
        self._waiting = []

    # -- events ----------------------------------------------------------------------------------

    def _apply(self, event: Event) -> AppliedEvent:
        live = None if self._trial is None else self._trial.number
        entry = AppliedEvent(event.event_id, event.kind, dict(event.payload), self.epoch, live)
        logged = False
        try:
            entry, logged = self._act(entry)
        except ConfigError as error:  # validated when sent; only a change since then gets here
            entry = dataclasses.replace(entry, error=str(error))
        self.events.append(entry)
        if not logged:
            if self._trial is None:
                self._waiting.append(len(self.events) - 1)
            else:
                write_log(self._trial, [entry])
        return entry

    def _act(self, entry: AppliedEvent) -> tuple[AppliedEvent, bool]:
        """Do what the event says; returns the entry and whether it is already logged."""
        if entry.kind == "nudge":
            self._apply_nudge(entry.payload)
        elif entry.kind == "rollback":
            return self._apply_rollback(entry)
        elif entry.kind in ("pause", "resume"):
            self.paused = entry.kind == "pause"
        else:
            raise ConfigError("event kind", entry.kind, "one of " + ", ".join(KINDS))
        return entry, False

    def _apply_nudge(self, changes: Mapping[str, Any]) -> None:
        if self._trainer is None:  # no branch yet: the next one starts with these values
            trainer = self._recipe.build(self._plan.params)
            clean = self._recipe.check_nudge(self._plan.params, changes, trainer)
            self._plan = dataclasses.replace(self._plan, params={**self._plan.params, **clean})
            return
        clean = self._recipe.check_nudge(self._params, changes, self._trainer)
        self._sync(self._trainer, {**self._params, **clean})
        self._params.update(clean)

    def _apply_rollback(self, entry: AppliedEvent) -> tuple[AppliedEvent, bool]:
        owner, epoch = self.control.resolve(entry.payload.get("epoch"), entry.payload.get("trial"))
        source = next(t for t in self.study.trials if t.number == owner)
        plan = Plan("rollback", hyperparameters_at(source, epoch), (owner, epoch))
        old = self._trial
        if old is None:
            supersede_nudges(self.events, self._waiting, entry.event_id)
            if self._opening:  # the branch starts once every queued event is applied
                self._plan = plan
                return entry, False
            self._start_branch(plan)
            return dataclasses.replace(entry, branch=self.branch, new_branch=self.branch), False
        self._start_branch(plan)  # the pause, if any, holds on the new branch
        ended = dataclasses.replace(entry, branch=old.number, new_branch=self.branch)
        write_log(old, [ended])
        self.study.tell(old, state=TrialState.PRUNED)
        return ended, True


def _check_poll(poll: Any) -> float:
    if isinstance(poll, bool) or not isinstance(poll, int | float) or not 0 < poll <= 60:
        raise ConfigError("poll", poll, "seconds in (0, 60]")
    return float(poll)
