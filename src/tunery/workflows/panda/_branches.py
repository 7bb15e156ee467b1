"""Branches and the paths through them: a branch's events, its curve, the lineage as data."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tunery._exceptions import StorageError
from tunery.records import Curve
from tunery.storage import FrozenTrial
from tunery.workflows.panda._events import BRANCH_ATTR, LOG_ATTR, AppliedEvent


def branch_events(trial: FrozenTrial) -> list[AppliedEvent]:
    """The events logged on a panda branch, oldest first."""
    log = trial.user_attrs.get(LOG_ATTR, [])
    return [AppliedEvent.from_dict(entry, trial.number) for entry in log]


def is_branch(trial: FrozenTrial) -> bool:
    return isinstance(trial.user_attrs.get(BRANCH_ATTR), dict)


def latest_branch(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The latest panda branch of a study (the one running, or the one to continue)."""
    branches = [t for t in trials if is_branch(t)]
    return branches[-1] if branches else None


def path_to(trials: Mapping[int, FrozenTrial], number: int) -> list[FrozenTrial]:
    """The branches from the root down to trial ``number``."""
    path = [trials[number]]
    while path[-1].parent is not None and path[-1].parent[0] in trials:
        path.append(trials[path[-1].parent[0]])
        if len(path) > len(trials):
            raise StorageError(f"the lineage of trial {number} has a cycle")
    return path[::-1]


def first_own_epoch(trial: FrozenTrial) -> int:
    """A branch owns its epochs after its fork (a root owns them all, from its epoch 0)."""
    return 0 if trial.parent is None else trial.parent[1] + 1


def last_path_epoch(child: FrozenTrial | None) -> float:
    """The last epoch of a branch that is on the path to ``child`` (all of them: None)."""
    return math.inf if child is None or child.parent is None else child.parent[1]


def branch_curve(trials: Iterable[FrozenTrial], number: int) -> Curve:
    """The curve along the path to trial ``number``: its ancestors' epochs up to each fork, then
    its own. ``epoch -> {metric: value}``."""
    by_number = {t.number: t for t in trials}
    path = path_to(by_number, number)
    curve: Curve = {}
    for trial, child in zip(path, [*path[1:], None], strict=True):
        last = last_path_epoch(child)
        curve.update({e: dict(row) for e, row in trial.curve.items() if e <= last})
    return dict(sorted(curve.items()))


def owner_of(path: Sequence[FrozenTrial], epoch: int) -> FrozenTrial:
    """The branch on ``path`` whose epoch ``epoch`` is (the fork epoch is the parent's)."""
    for trial in reversed(path):
        if epoch >= first_own_epoch(trial):
            return trial
    return path[0]


def hyperparameters_at(trial: FrozenTrial, epoch: int | None) -> dict[str, Any]:
    """The branch's params with its nudges applied before ``epoch``'s checkpoint (all: None)."""
    params = dict(trial.params)
    for entry in branch_events(trial):
        if entry.kind == "nudge" and entry.error is None and (epoch is None or entry.epoch < epoch):
            params.update(entry.payload)
    return params
