"""The in-process trial backend: what a ``Trial`` asked in this process does with its calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from tunery._files import checkpoint_location, stored_location, write_checkpoint
from tunery.pruners import Pruner
from tunery.records import FrozenTrial
from tunery.storage import BaseStorage
from tunery.study._heartbeats import Heartbeats
from tunery.trial import Trial

__all__ = ["LocalBackend"]


class _Host(Protocol):
    """What the backend needs of its study (``tunery.study.Study``; a protocol, not an import,
    so that the study's module can import this one)."""

    storage: BaseStorage
    _heartbeats: Heartbeats

    @property
    def pruner(self) -> Pruner | None: ...

    @property
    def trials(self) -> Sequence[FrozenTrial]: ...

    @property
    def checkpoint_dir(self) -> str | None: ...

    def restore_checkpoint(
        self, trial: Trial, epoch: int | None, *, read: bool
    ) -> bytes | None: ...


class LocalBackend:
    """The in-process backend: a trial's calls go straight to the study's store."""

    def __init__(self, study: _Host) -> None:
        self._study = study

    def report(self, trial: Trial, epoch: int, metrics: dict[str, float]) -> None:
        self._study.storage.report(trial.trial_id, epoch, metrics)
        self._study._heartbeats.beat(trial.trial_id)

    def should_prune(self, trial: Trial, epoch: int) -> bool:
        pruner = self._study.pruner
        if pruner is None:
            return False
        return bool(pruner.should_prune(self._study.trials, trial.freeze(), epoch))

    def checkpoint(self, trial: Trial, epoch: int, state: bytes) -> None:
        folder = self._study.checkpoint_dir
        if folder is not None and stored_location(state) is None:  # not written by a Ray task
            state = write_checkpoint(checkpoint_location(folder, trial.trial_id, epoch), state)
        self._study.storage.save_checkpoint(trial.trial_id, epoch, state)
        self._study._heartbeats.beat(trial.trial_id)

    def restore(self, trial: Trial, epoch: int | None) -> bytes | None:
        return self._study.restore_checkpoint(trial, epoch, read=False)

    def set_user_attr(self, trial: Trial, key: str, value: Any) -> None:
        self._study.storage.set_trial_user_attr(trial.trial_id, key, value)
        self._study._heartbeats.beat(trial.trial_id)
