"""Panda mode: babysit one model epoch by epoch ("day by day"), as a panda raises one cub.

One trial trains in the foreground, one epoch at a time. Between epochs (at an *epoch boundary*)
it applies the control events queued in the study's store, by ``tunery nudge / rollback / pause /
resume`` from a second terminal or by the methods below::

    study = tunery.Study("digits-panda", "sqlite:///tunery.db")
    panda = babysit(study, load_config("tune.toml"), {"lr": 3e-3}, epochs=20)
    with panda:                        # leaving the block early records the branch interrupted
        for _ in range(5):
            panda.run_epoch()          # train epoch 1..5; each is reported and checkpointed
        panda.nudge(lr=1e-3)           # queued; applied at the next boundary (after epoch 5)
        panda.run_epoch()              # epoch 6 trains with lr 1e-3
        panda.rollback(3)              # a new branch from epoch 3's checkpoint (lr 3e-3 again)
        panda.run()                    # epochs 4..20 of the new branch
    panda.curve[4]["val_accuracy"]     # the curve of the current branch's whole path
    rich.print(lineage_tree(study))    # which branch came from where, with the nudges

``babysit(study, source, params, epochs=..., control=fn)`` runs to the end, calling ``fn(panda)`` at
every boundary (and at every poll while paused), so a program can babysit too.

Branches. Each branch is one trial of the study. The first (``origin`` "start") is built from
``params`` (a config's searchable names, e.g. ``lr``, ``units``; or anything a trainer factory
takes) and checkpoints its initial state as epoch 0. A rollback to epoch ``e`` starts a new
branch, a trial with ``parent = (owner, e)``, where ``owner`` is the branch on the current path
whose epoch ``e`` it is; the new branch restores that checkpoint bit for bit, with the
hyperparameters that were in force when epoch ``e`` ended, and reports epochs ``e + 1, ...`` only
(its earlier epochs are its ancestors'). Every branch checkpoints the state it starts from and
every epoch after it.

Events. A nudge changes hyperparameters for the following epochs: ``lr`` (the base rate the
schedule decays), ``l2``, ``batch_size``, and ``beta``, ``beta2``, ``epsilon`` where the optimizer
uses them (with a trainer factory: the names of ``trainer.hyperparameters()``). It is applied after
the boundary's checkpoint, so rolling back to that epoch undoes it. While paused the loop trains
nothing and polls the store every ``poll`` seconds (sleeping in between); nudges and rollbacks are
still applied, and a rollback keeps the pause. Each applied event is marked applied in the store
and logged on its branch (user attribute ``panda.log``) with the epoch at which it applied; a bad
event is logged with its error and skipped. The control side validates before it writes, so that
only happens when something changed in between.

How a branch ends:

- its epochs are done: COMPLETE, valued by the study's metric at its last epoch;
- a rollback: PRUNED (a person judged it not worth going on), valued by its last metric;
- a NaN or inf loss: DIVERGED (panda stops; nudge, or roll back, and run it again);
- anything else stopping it (Ctrl-C, an exception, leaving the ``with`` block): FAILED and
  interrupted. A Ctrl-C waits for the store writes under way (an epoch's metrics and checkpoint,
  an event and its mark), so an epoch in a curve always has its checkpoint.

Running panda again on a study continues its latest branch from the last checkpoint on its path,
as a new branch (``origin`` "resume") with the hyperparameters that branch ended with, including
nudges applied after that checkpoint. Events queued while no panda ran are applied first (a queued
rollback picks where the new branch starts; nudges queued before it are skipped as superseded).
``params`` must then be left out or equal to the first branch's: change hyperparameters with a
nudge instead. A re-run starts unpaused unless a pause is queued. With its epochs already done and
nothing queued, there is nothing to do (``done`` is True at once).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

from rich.markup import escape
from rich.tree import Tree

from tunery._exceptions import ConfigError, Diverged, StorageError
from tunery.config import SEARCHABLE, ModelSection, TuneConfig, trial_data, trial_model
from tunery.nn.optimizers import make_optimizer
from tunery.nn.train import EpochMetrics, Trainer
from tunery.records import Curve, Event, FrozenTrial, TrialState
from tunery.space import Choice, Space

if TYPE_CHECKING:
    from tunery.data import Dataset
    from tunery.study import Study, Trial

__all__ = [
    "BRANCH_ATTR",
    "KINDS",
    "LOG_ATTR",
    "AppliedEvent",
    "Panda",
    "PandaControl",
    "TrainerFactory",
    "babysit",
    "branch_curve",
    "branch_events",
    "check_model_nudge",
    "lineage_tree",
    "nudgeable",
    "sparkline",
]

BRANCH_ATTR = "panda"
"""User attribute of every panda branch: ``{"origin", "nudgeable", "settings"}`` (see ``Panda``)."""
LOG_ATTR = "panda.log"
"""User attribute of a panda branch: the events applied to it, oldest first."""
KINDS = ("nudge", "rollback", "pause", "resume")
REPORTED = ("loss", "train_accuracy", "val_accuracy", "lr")
"""What panda reports per epoch (the built-in objective's names); the study's metric is one."""

TrainerFactory = Callable[[dict[str, Any]], Trainer]
"""``factory(params) -> Trainer``: a fresh trainer for a branch's params (nudges included)."""

_TRAINER_SETTINGS = ("l2", "batch_size")


# --------------------------------------------------------------------------------------------------
# Applied events


@dataclass(frozen=True)
class AppliedEvent:
    """A control event as panda applied it.

    ``epoch`` is the trainer's epoch at that boundary (the change holds from ``epoch + 1``);
    ``branch`` the trial it applied to (``None`` while no branch existed yet: an event queued
    before panda started); ``new_branch`` the branch a rollback started; ``error`` why an event
    was skipped.
    """

    event_id: int
    kind: str
    payload: dict[str, Any]
    epoch: int
    branch: int | None = None
    new_branch: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The form kept in a branch's log (the branch is the trial that holds it)."""
        entry = {"event": self.event_id, "kind": self.kind, "payload": self.payload}
        entry["epoch"] = self.epoch
        if self.new_branch is not None:
            entry["new_branch"] = self.new_branch
        if self.error is not None:
            entry["error"] = self.error
        return entry

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any], branch: int | None) -> AppliedEvent:
        return cls(
            event_id=int(entry["event"]),
            kind=str(entry["kind"]),
            payload=dict(entry.get("payload", {})),
            epoch=int(entry["epoch"]),
            branch=branch,
            new_branch=entry.get("new_branch"),
            error=entry.get("error"),
        )

    def describe(self) -> str:
        """One line: ``"epoch 4: nudge lr=0.0003"``."""
        text = f"epoch {self.epoch}: {self.kind}"
        if self.kind == "nudge":
            text += " " + _assignments(self.payload)
        elif self.kind == "rollback":
            text += f" to trial {self.payload.get('trial')} @ epoch {self.payload.get('epoch')}"
            if self.new_branch is not None:
                text += f" → trial {self.new_branch}"
        if self.error is not None:
            text += f" (skipped: {self.error})"
        return text


def branch_events(trial: FrozenTrial) -> list[AppliedEvent]:
    """The events logged on a panda branch, oldest first."""
    log = trial.user_attrs.get(LOG_ATTR, [])
    return [AppliedEvent.from_dict(entry, trial.number) for entry in log]


def _is_branch(trial: FrozenTrial) -> bool:
    return isinstance(trial.user_attrs.get(BRANCH_ATTR), dict)


def _head(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The latest panda branch of a study (the one running, or the one to continue)."""
    branches = [t for t in trials if _is_branch(t)]
    return branches[-1] if branches else None


# --------------------------------------------------------------------------------------------------
# Paths through the lineage


def _path(trials: Mapping[int, FrozenTrial], number: int) -> list[FrozenTrial]:
    """The branches from the root down to trial ``number``."""
    path = [trials[number]]
    while path[-1].parent is not None and path[-1].parent[0] in trials:
        path.append(trials[path[-1].parent[0]])
        if len(path) > len(trials):
            raise StorageError(f"the lineage of trial {number} has a cycle")
    return path[::-1]


def _first_own_epoch(trial: FrozenTrial) -> int:
    """A branch owns its epochs after its fork (a root owns them all, from its epoch 0)."""
    return 0 if trial.parent is None else trial.parent[1] + 1


def branch_curve(trials: Iterable[FrozenTrial], number: int) -> Curve:
    """The curve along the path to trial ``number``: its ancestors' epochs up to each fork, then
    its own. ``epoch -> {metric: value}``."""
    by_number = {t.number: t for t in trials}
    path = _path(by_number, number)
    curve: Curve = {}
    for trial, child in zip(path, [*path[1:], None], strict=True):
        last = math.inf if child is None or child.parent is None else child.parent[1]
        curve.update({e: dict(row) for e, row in trial.curve.items() if e <= last})
    return dict(sorted(curve.items()))


def _owner(path: Sequence[FrozenTrial], epoch: int) -> FrozenTrial:
    """The branch on ``path`` whose epoch ``epoch`` is (the fork epoch is the parent's)."""
    for trial in reversed(path):
        if epoch >= _first_own_epoch(trial):
            return trial
    return path[0]


def _hyperparameters_at(trial: FrozenTrial, epoch: int | None) -> dict[str, Any]:
    """The branch's params with its nudges applied before ``epoch``'s checkpoint (all: None)."""
    params = dict(trial.params)
    for entry in branch_events(trial):
        if entry.kind == "nudge" and entry.error is None and (epoch is None or entry.epoch < epoch):
            params.update(entry.payload)
    return params


# --------------------------------------------------------------------------------------------------
# Validating nudges


def nudgeable(model: ModelSection) -> tuple[str, ...]:
    """What a nudge may change for ``model``: lr, what its optimizer uses, l2 and batch_size."""
    return (*model.train_spec().used_fields(), *_TRAINER_SETTINGS)


def check_model_nudge(model: ModelSection, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` validated against ``model`` (a config's settings); returns the clean values.

    An unknown name, a name the optimizer ignores, or a bad value raises ``ConfigError``.
    """
    allowed = nudgeable(model)
    _check_changes(changes, allowed, f"a setting a nudge can change ({', '.join(allowed)})")
    try:
        changed = trial_model(model, changes)
    except ConfigError as error:
        raise ConfigError(error.field.removeprefix("model."), error.value, error.expected) from None
    return {name: getattr(changed, name) for name in changes}


def _check_changes(changes: Mapping[str, Any], allowed: Iterable[str], expected: str) -> None:
    if not changes:
        raise ConfigError("nudge", {}, "at least one NAME=VALUE, e.g. lr=3e-4")
    known = set(allowed)
    for name in changes:
        if name not in known:
            raise ConfigError("nudge", name, expected)


def _check_numbers(changes: Mapping[str, Any]) -> dict[str, float | int]:
    """Finite real values (``batch_size`` an integer >= 1): the checks a factory nudge gets."""
    clean: dict[str, float | int] = {}
    for name, value in changes.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(name, value, "a finite number")
        if not math.isfinite(float(value)):
            raise ConfigError(name, value, "a finite number")
        if name == "batch_size":
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(name, value, "an integer >= 1")
            clean[name] = int(value)
            continue
        if name == "l2" and value < 0:
            raise ConfigError(name, value, "a finite number >= 0")
        clean[name] = float(value)
    return clean


# --------------------------------------------------------------------------------------------------
# Recipes: how a panda builds its trainer and maps params onto trainer hyperparameters


class _Recipe(Protocol):
    def build(self, params: Mapping[str, Any]) -> Trainer: ...

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]: ...

    def check_nudge(
        self, params: Mapping[str, Any], changes: Mapping[str, Any], trainer: Trainer
    ) -> dict[str, Any]: ...

    def hyperparameters(self, params: Mapping[str, Any], trainer: Trainer) -> dict[str, Any]: ...

    def describe(self, params: Mapping[str, Any], trainer: Trainer) -> dict[str, Any]: ...

    def space(self, trainer: Trainer) -> Space: ...


class _ConfigRecipe:
    """A config's ``[model]`` with the branch's params put in (``tunery.workflows.objective``)."""

    def __init__(self, config: TuneConfig, dataset: Dataset | None) -> None:
        from tunery.workflows.objective import DatasetCache

        self.config = config
        self.datasets = DatasetCache()
        if dataset is None:
            dataset = self.datasets.get(config.data)  # now: bad data fails before the store
        self.datasets.put(config.data, dataset)

    def settings(self, params: Mapping[str, Any]) -> ModelSection:
        from tunery.workflows.objective import trial_settings

        return trial_settings(self.config, params)

    def build(self, params: Mapping[str, Any]) -> Trainer:
        from tunery.workflows.objective import build_trainer

        dataset = self.datasets.get(trial_data(self.config.data, params))
        return build_trainer(self.config, params, dataset)

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        for name in params:
            if name not in SEARCHABLE:
                raise ConfigError("params", name, "a model setting: " + ", ".join(SEARCHABLE))
        self.settings(params)  # validates the merged settings
        data = trial_data(self.config.data, params)
        if data != self.config.data:
            from tunery.workflows.objective import check_resizable

            check_resizable(data, "params.image_size")
        return dict(params)

    def check_nudge(
        self, params: Mapping[str, Any], changes: Mapping[str, Any], trainer: Trainer
    ) -> dict[str, Any]:
        return check_model_nudge(self.settings(params), changes)

    def hyperparameters(self, params: Mapping[str, Any], trainer: Trainer) -> dict[str, Any]:
        settings = self.settings(params)
        hp: dict[str, Any] = settings.train_spec().hyperparameters()
        return {**hp, "l2": settings.l2, "batch_size": settings.batch_size}

    def describe(self, params: Mapping[str, Any], trainer: Trainer) -> dict[str, Any]:
        settings = self.settings(params)
        return {
            "nudgeable": list(nudgeable(settings)),
            "settings": {
                **{k: _plain(v) for k, v in dataclasses.asdict(settings).items()},
                "lr": settings.train_spec().learning_rate,  # a default lr, resolved
            },
        }

    def space(self, trainer: Trainer) -> Space:
        return dict(self.config.space)


class _FactoryRecipe:
    """``factory(params) -> Trainer``; nudges use the trainer's own names (``beta1``, ``eps``)."""

    def __init__(self, factory: TrainerFactory) -> None:
        self.factory = factory

    def build(self, params: Mapping[str, Any]) -> Trainer:
        trainer = self.factory(dict(params))
        if not isinstance(trainer, Trainer):
            raise ConfigError("factory", trainer, "a function params -> tunery.nn.train.Trainer")
        return trainer

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(params)

    def check_nudge(
        self, params: Mapping[str, Any], changes: Mapping[str, Any], trainer: Trainer
    ) -> dict[str, Any]:
        known = trainer.hyperparameters()
        _check_changes(changes, known, "a hyperparameter of the trainer: " + ", ".join(known))
        clean = _check_numbers(changes)
        optimizer = trainer.optimizer
        current = optimizer.hyperparameters()
        # A fresh optimizer validates the values by the optimizer's own rules, changing nothing.
        make_optimizer(optimizer.name, **{**current, **_pick(clean, current)})
        return dict(clean)

    def hyperparameters(self, params: Mapping[str, Any], trainer: Trainer) -> dict[str, Any]:
        return _pick(params, trainer.hyperparameters())

    def describe(self, params: Mapping[str, Any], trainer: Trainer) -> dict[str, Any]:
        return {"nudgeable": list(trainer.hyperparameters()), "settings": None}

    def space(self, trainer: Trainer) -> Space:
        # A panda study searches nothing: its round holds the one point it started from.
        return {name: Choice([value]) for name, value in trainer.hyperparameters().items()}


def _recipe(source: Any, dataset: Dataset | None) -> _Recipe:
    if isinstance(source, TuneConfig):
        return _ConfigRecipe(source, dataset)
    if callable(source):
        return _FactoryRecipe(source)
    raise ConfigError("source", source, "a TuneConfig or a function params -> Trainer")


def _pick(values: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {key: values[key] for key in keys if key in values}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# --------------------------------------------------------------------------------------------------
# The control side: validated events (what `tunery nudge / rollback / pause / resume` send)


class PandaControl:
    """Sends control events to the panda of ``study``, validated first: a mistake writes nothing.

    Works from any process. Events queued while no panda runs are applied when one next starts.
    """

    def __init__(self, study: Study) -> None:
        self.study = study

    def head(self) -> FrozenTrial:
        """The latest branch (``ConfigError`` if the study has none)."""
        head = _head(self.study.trials)
        if head is None:
            expected = "a study with a panda branch (start one with `tunery panda CONFIG`)"
            raise ConfigError("study", self.study.name, expected)
        return head

    def running(self) -> bool:
        """Whether the latest branch is RUNNING (a panda runs it, or one crashed)."""
        return self.head().state is TrialState.RUNNING

    def nudge(self, **changes: Any) -> Event:
        """Queue new values of hyperparameters: ``control.nudge(lr=3e-4)``."""
        head = self.head()
        return self._send("nudge", _check_branch_nudge(head, changes), head)

    def rollback(self, epoch: int, trial: int | None = None) -> Event:
        """Queue a rollback to ``epoch`` on the path of trial ``trial`` (default: the latest)."""
        head = self.head()
        owner, at = self.resolve(epoch, head.number if trial is None else trial)
        return self._send("rollback", {"trial": owner, "epoch": at}, head)

    def pause(self) -> Event:
        return self._send("pause", {}, self.head())

    def resume(self) -> Event:
        return self._send("resume", {}, self.head())

    def resolve(self, epoch: Any, number: Any) -> tuple[int, int]:
        """``(owner, epoch)``: whose checkpoint ``epoch`` is on the path of trial ``number``."""
        trials = {t.number: t for t in self.study.trials}
        if isinstance(number, bool) or not isinstance(number, int) or number not in trials:
            raise ConfigError("trial", number, f"a trial number of study {self.study.name!r}")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ConfigError("epoch", epoch, "an int >= 0")
        path = _path(trials, number)
        owner = _owner(path, epoch)
        if epoch not in self.study.storage.checkpoint_epochs(owner.trial_id):
            available = _ranges(self._checkpointed(path))
            raise ConfigError(
                "epoch", epoch, f"an epoch with a checkpoint on trial {number}'s path ({available})"
            )
        return owner.number, epoch

    def _checkpointed(self, path: Sequence[FrozenTrial]) -> list[int]:
        epochs: set[int] = set()
        for trial, child in zip(path, [*path[1:], None], strict=True):
            last = math.inf if child is None or child.parent is None else child.parent[1]
            own = self.study.storage.checkpoint_epochs(trial.trial_id)
            epochs.update(e for e in own if _first_own_epoch(trial) <= e <= last)
        return sorted(epochs)

    def _send(self, kind: str, payload: dict[str, Any], head: FrozenTrial) -> Event:
        storage = self.study.storage
        return storage.add_event(self.study.study_id, kind, payload, trial_number=head.number)


def _check_branch_nudge(branch: FrozenTrial, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a nudge from outside the panda process, with what the branch stored about itself."""
    info = branch.user_attrs.get(BRANCH_ATTR, {})
    settings = info.get("settings")
    if isinstance(settings, dict):
        try:
            model = ModelSection(**settings)
        except TypeError:  # stored by another version of tunery: check what can be checked
            model = None
        if model is not None:
            return check_model_nudge(model, changes)
    names = [str(name) for name in info.get("nudgeable", [])]
    _check_changes(changes, names, "a hyperparameter of the trainer: " + ", ".join(names))
    return dict(_check_numbers(changes))


def _ranges(epochs: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 6]`` → ``"epochs 0-2, 5-6"``."""
    if not epochs:
        return "none"
    spans: list[list[int]] = []
    for epoch in epochs:
        if spans and epoch == spans[-1][1] + 1:
            spans[-1][1] = epoch
        else:
            spans.append([epoch, epoch])
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in spans]
    return "epochs " + ", ".join(parts)


# --------------------------------------------------------------------------------------------------
# The panda


@dataclass(frozen=True)
class _Plan:
    """Where the next branch starts: from nothing, or from a checkpoint ``(trial, epoch)``."""

    origin: str
    params: dict[str, Any]
    parent: tuple[int, int] | None = None

    @property
    def epoch(self) -> int:
        return 0 if self.parent is None else self.parent[1]


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
    """One model, babysat: see the module docstring. ``babysit(study, ...)`` makes one.

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
        self.epochs = _check_epochs(epochs, source)
        self.poll = _check_poll(poll)
        self.control = PandaControl(study)
        self.events: list[AppliedEvent] = []
        self.paused = False
        self.done = False
        self._recipe = _recipe(source, dataset)
        self._trial: Trial | None = None  # the branch training now
        self._latest: Trial | None = None  # the branch training now, or the last one
        self._trainer: Trainer | None = None
        self._params: dict[str, Any] = {}
        self._waiting: list[int] = []  # indices of events applied while no branch existed
        # Claim the study first: a second panda on it fails here, before anything is written.
        study.storage.claim_study(study.study_id)
        self._plan = self._first_plan(params)
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
            head = _head(self.study.trials)
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
            with _holding_ctrl_c():  # applied and marked so, or neither
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
        with _holding_ctrl_c():  # an epoch in the curve always has its checkpoint
            if metrics.diverged:
                # Only the loss: NaN accuracies would read as (terrible) values.
                trial.report(metrics.epoch, loss=metrics.cost)
                error = f"training diverged at epoch {metrics.epoch}: loss is {metrics.cost}"
                self.study.tell(trial, state=TrialState.DIVERGED, error=error)
                self._end()
                return metrics
            trial.report(metrics.epoch, **_reported(metrics))
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

    def _first_plan(self, params: Mapping[str, Any] | None) -> _Plan:
        """A new lineage from ``params``, or the continuation of the study's latest branch."""
        trials = self.study.trials
        head = _head(trials)
        if head is None:
            return _Plan("start", self._recipe.check_params(params or {}))
        root = _path({t.number: t for t in trials}, head.number)[0]
        if params is not None and dict(params) != root.params:
            expected = (
                f"{root.params!r}, the params of trial {root.number} that began this study's "
                "lineage (continuing, change hyperparameters with a nudge)"
            )
            raise ConfigError("params", dict(params), expected)
        return _Plan("resume", _hyperparameters_at(head, None), self._last_point(head))

    def _last_point(self, trial: FrozenTrial) -> tuple[int, int] | None:
        """The latest checkpoint of the branch, else the point it started from."""
        own = self.study.storage.checkpoint_epochs(trial.trial_id)
        if own:
            return (trial.number, own[-1])
        return trial.parent

    def _start_branch(self, plan: _Plan) -> None:
        """Create the branch ``plan`` describes: build, restore, ask for the trial, checkpoint.

        Nothing is written until the trainer stands; the branch running so far (if any) is left
        to the caller.
        """
        trainer = self._recipe.build(plan.params)
        _check_trainer(trainer, self.study.metric)
        if plan.parent is not None:
            trainer.restore(self._load(plan.parent))
        self._sync(trainer, plan.params)
        space = None if self.study.rounds else self._recipe.space(trainer)
        with _holding_ctrl_c():  # a branch is made whole, or not at all
            trial = self.study.ask(space, params=plan.params, parent=plan.parent)
            info = {"origin": plan.origin, **self._recipe.describe(plan.params, trainer)}
            trial.set_user_attr(BRANCH_ATTR, info)
            self._plan, self._trial, self._latest, self._trainer = plan, trial, trial, trainer
            self._params = dict(plan.params)
            self.done = False
            self._flush_waiting(trial)
            trial.checkpoint(trainer.to_bytes(), trainer.epoch)

    def _sync(self, trainer: Trainer, params: Mapping[str, Any]) -> None:
        """Give ``trainer`` the hyperparameters ``params`` imply, touching only those that differ
        (so a restored checkpoint whose values already match stays bit for bit as saved)."""
        wanted = self._recipe.hyperparameters(params, trainer)
        current = trainer.hyperparameters()
        changed = {key: value for key, value in wanted.items() if current.get(key) != value}
        if changed:
            trainer.set_hyperparameters(**changed)

    def _load(self, point: tuple[int, int]) -> bytes:
        number, epoch = point
        storage = self.study.storage
        found = storage.load_checkpoint(storage.get_trial_id(self.study.study_id, number), epoch)
        if found is None:
            raise ConfigError("rollback", f"trial {number} @ epoch {epoch}", "a checkpoint")
        return found[1]

    def _flush_waiting(self, trial: Trial) -> None:
        """Log the events applied while no branch existed on the branch that starts now."""
        if not self._waiting:
            return
        rollbacks = [i for i in self._waiting if self.events[i].kind == "rollback"]
        starter = next((i for i in reversed(rollbacks) if self.events[i].error is None), None)
        for index in self._waiting:
            new_branch = trial.number if index == starter else self.events[index].new_branch
            self.events[index] = dataclasses.replace(
                self.events[index], branch=trial.number, new_branch=new_branch
            )
        self._write_log(trial, [self.events[index] for index in self._waiting])
        self._waiting = []

    def _write_log(self, trial: Trial, entries: Sequence[AppliedEvent]) -> None:
        log = [*trial.user_attrs.get(LOG_ATTR, []), *(entry.to_dict() for entry in entries)]
        trial.set_user_attr(LOG_ATTR, log)

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
                self._write_log(self._trial, [entry])
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
        plan = _Plan("rollback", _hyperparameters_at(source, epoch), (owner, epoch))
        old = self._trial
        if old is None:
            self._supersede_waiting_nudges(entry.event_id)
            if self._opening:  # the branch starts once every queued event is applied
                self._plan = plan
                return entry, False
            self._start_branch(plan)
            return dataclasses.replace(entry, branch=self.branch, new_branch=self.branch), False
        self._start_branch(plan)  # the pause, if any, holds on the new branch
        ended = dataclasses.replace(entry, branch=old.number, new_branch=self.branch)
        self._write_log(old, [ended])
        self.study.tell(old, state=TrialState.PRUNED)
        return ended, True

    def _supersede_waiting_nudges(self, event_id: int) -> None:
        """Nudges queued for a branch that will not exist: the rollback starts another one."""
        for index in self._waiting:
            entry = self.events[index]
            if entry.kind == "nudge" and entry.error is None:
                error = f"superseded by the rollback of event {event_id}"
                self.events[index] = dataclasses.replace(entry, error=error)


@contextmanager
def _holding_ctrl_c() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) until the block has written everything, then raise it.

    Only the main thread can handle signals; elsewhere, and under a handler that Python did not
    install, the block runs as it is.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):
        previous(signal.SIGINT, None)  # Python's own handler raises KeyboardInterrupt
    elif caught and previous == signal.SIG_DFL:
        raise KeyboardInterrupt


def _reported(metrics: EpochMetrics) -> dict[str, float]:
    reported = {"loss": metrics.cost, "train_accuracy": metrics.train_accuracy, "lr": metrics.lr}
    if metrics.val_accuracy is not None:
        reported["val_accuracy"] = metrics.val_accuracy
    return reported


def _check_trainer(trainer: Trainer, metric: str) -> None:
    if not callable(getattr(trainer, "to_bytes", None)):
        raise ConfigError("trainer", type(trainer).__name__, "a trainer with checkpoints")
    if metric not in REPORTED:
        raise ConfigError("metric", metric, "a metric panda reports: " + ", ".join(REPORTED))
    if metric == "val_accuracy" and getattr(trainer, "X_val", None) is None:
        raise ConfigError("trainer", "no validation data", "X_val and y_val for val_accuracy")


def _check_epochs(epochs: Any, source: Any) -> int:
    if epochs is None:
        if isinstance(source, TuneConfig):
            return source.epochs
        raise ConfigError("epochs", None, "an int >= 1 (a trainer factory has no default)")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError("epochs", epochs, "an int >= 1")
    return epochs


def _check_poll(poll: Any) -> float:
    if isinstance(poll, bool) or not isinstance(poll, int | float) or not 0 < poll <= 60:
        raise ConfigError("poll", poll, "seconds in (0, 60]")
    return float(poll)


# --------------------------------------------------------------------------------------------------
# Pictures: a unicode sparkline, and the lineage tree


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], low: float | None = None, high: float | None = None) -> str:
    """One character per value, ``▁`` (``low``) to ``█`` (``high``); NaN or inf is ``×``.

    ``low`` and ``high`` default to the finite values' range; values outside are clipped.
    """
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "×" * len(values)
    bottom = min(finite) if low is None else low
    top = max(finite) if high is None else high
    span = top - bottom
    chars = []
    for value in values:
        if not math.isfinite(value):
            chars.append("×")
            continue
        share = 0.5 if span <= 0 else (min(max(value, bottom), top) - bottom) / span
        chars.append(_BARS[min(len(_BARS) - 1, int(share * len(_BARS)))])
    return "".join(chars)


def lineage_tree(study: Study) -> Tree:
    """The study's branches as a tree: each trial, its nudges and, at their fork epochs, the
    branches that came from it. Trials that neither branched nor were branched are left out."""
    trials = study.trials
    children: dict[int, list[FrozenTrial]] = {}
    for trial in trials:
        if trial.parent is not None:
            children.setdefault(trial.parent[0], []).append(trial)
    by_number = {t.number: t for t in trials}
    shown = [t for t in trials if _is_branch(t) or t.parent is not None or t.number in children]
    tree = Tree(f"[bold]{escape(study.name)}[/] lineage", highlight=False)
    for trial in shown:
        if trial.parent is None or trial.parent[0] not in by_number:
            _add_branch(tree, trial, None, children, study.metric)
    return tree


def _add_branch(
    node: Tree,
    trial: FrozenTrial,
    parent: FrozenTrial | None,
    children: Mapping[int, list[FrozenTrial]],
    metric: str,
) -> None:
    branch = node.add(_branch_label(trial, parent, metric))
    # Nudges and rollbacks change the lineage; pauses do not (they stay in the branch's log).
    items: list[tuple[int, int, Any]] = [
        (entry.epoch, 1, entry)
        for entry in branch_events(trial)
        if entry.kind in ("nudge", "rollback")
    ]
    items += [(_fork_epoch(child), 0, child) for child in children.get(trial.number, [])]
    for _, _, item in sorted(items, key=lambda x: (x[0], x[1])):
        if isinstance(item, AppliedEvent):
            branch.add(escape(item.describe()), style="dim" if item.error else "")
        else:
            _add_branch(branch, item, trial, children, metric)


def _branch_label(trial: FrozenTrial, parent: FrozenTrial | None, metric: str) -> str:
    info = trial.user_attrs.get(BRANCH_ATTR)
    origin = info.get("origin", "branch") if isinstance(info, dict) else "branch"
    head = f"[bold]trial {trial.number}[/]"
    if trial.parent is not None:
        head += f" ⑂ {origin} from trial {trial.parent[0]} @ epoch {trial.parent[1]}"
    epochs = sorted(trial.curve)
    span = f"epochs {epochs[0]}–{epochs[-1]}" if epochs else "no epochs yet"
    value = trial.last(metric)
    figure = "" if value is None else f" {metric} {value:.4g}"
    state = trial.state.name + (" (interrupted)" if trial.interrupted else "")
    changed = _changed_params(trial.params, parent.params if parent is not None else {})
    params = f"  [dim]{escape(_assignments(changed))}[/]" if changed else ""
    return f"{head}  {span}  {state}{figure}{params}"


def _changed_params(params: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in before or before[k] != v}


def _assignments(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_value_text(v)}" for k, v in values.items())


def _value_text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _fork_epoch(trial: FrozenTrial) -> int:
    return -1 if trial.parent is None else trial.parent[1]
