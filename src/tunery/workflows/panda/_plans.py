"""Where a branch starts: from nothing, from the study's latest branch, or from a checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunery._exceptions import ConfigError
from tunery._files import read_checkpoint
from tunery.records import FrozenTrial
from tunery.workflows.panda._branches import hyperparameters_at, latest_branch, path_to

if TYPE_CHECKING:
    from tunery.study import Study


@dataclass(frozen=True)
class Plan:
    """Where the next branch starts: from nothing, or from a checkpoint ``(trial, epoch)``."""

    origin: str
    params: dict[str, Any]
    parent: tuple[int, int] | None = None

    @property
    def epoch(self) -> int:
        return 0 if self.parent is None else self.parent[1]


def first_plan(
    study: Study,
    params: Mapping[str, Any] | None,
    check_params: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> Plan:
    """A new lineage from ``params``, or the continuation of the study's latest branch."""
    trials = study.trials
    head = latest_branch(trials)
    if head is None:
        return Plan("start", check_params(params or {}))
    root = path_to({t.number: t for t in trials}, head.number)[0]
    if params is not None and dict(params) != root.params:
        expected = (
            f"{root.params!r}, the params of trial {root.number} that began this study's "
            "lineage (continuing, change hyperparameters with a nudge)"
        )
        raise ConfigError("params", dict(params), expected)
    return Plan("resume", hyperparameters_at(head, None), last_point(study, head))


def last_point(study: Study, trial: FrozenTrial) -> tuple[int, int] | None:
    """The latest checkpoint of the branch, else the point it started from."""
    own = study.storage.checkpoint_epochs(trial.trial_id)
    if own:
        return (trial.number, own[-1])
    return trial.parent


def load_point(study: Study, point: tuple[int, int]) -> bytes:
    """The checkpoint ``(trial, epoch)`` of ``study``."""
    number, epoch = point
    storage = study.storage
    found = storage.load_checkpoint(storage.get_trial_id(study.study_id, number), epoch)
    if found is None:
        raise ConfigError("rollback", f"trial {number} @ epoch {epoch}", "a checkpoint")
    return read_checkpoint(found[1])
