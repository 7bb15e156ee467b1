"""The control side: validated events, what ``tunery nudge / rollback / pause / resume`` send."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tunery._exceptions import ConfigError
from tunery.records import Event, FrozenTrial, TrialState
from tunery.workflows.panda._branches import (
    first_own_epoch,
    last_path_epoch,
    latest_branch,
    owner_of,
    path_to,
)
from tunery.workflows.panda._nudges import check_branch_nudge

if TYPE_CHECKING:
    from tunery.study import Study


class PandaControl:
    """Sends control events to the panda of ``study``, validated first: a mistake writes nothing.

    Works from any process. Events queued while no panda runs are applied when one next starts.
    """

    def __init__(self, study: Study) -> None:
        self.study = study

    def head(self) -> FrozenTrial:
        """The latest branch (``ConfigError`` if the study has none)."""
        head = latest_branch(self.study.trials)
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
        return self._send("nudge", check_branch_nudge(head, changes), head)

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
        path = path_to(trials, number)
        at = owner_of(path, epoch)
        if epoch not in self.study.storage.checkpoint_epochs(at.trial_id):
            available = _ranges(self._checkpointed(path))
            raise ConfigError(
                "epoch", epoch, f"an epoch with a checkpoint on trial {number}'s path ({available})"
            )
        return at.number, epoch

    def _checkpointed(self, path: Sequence[FrozenTrial]) -> list[int]:
        epochs: set[int] = set()
        for trial, child in zip(path, [*path[1:], None], strict=True):
            last = last_path_epoch(child)
            own = self.study.storage.checkpoint_epochs(trial.trial_id)
            epochs.update(e for e in own if first_own_epoch(trial) <= e <= last)
        return sorted(epochs)

    def _send(self, kind: str, payload: dict[str, Any], head: FrozenTrial) -> Event:
        storage = self.study.storage
        return storage.add_event(self.study.study_id, kind, payload, trial_number=head.number)


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
