"""Branches and the paths through them: a branch's events, its curve, the lineage as data."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tunery._exceptions import StorageError
from tunery.records import Curve, FrozenTrial
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


# --------------------------------------------------------------------------------------------------
# The lineage, as plain data (``tunery show`` draws it as a tree)


@dataclass(frozen=True)
class LineageNode:
    """A trial in the lineage and, in epoch order, what happened on it.

    ``origin`` is how the branch began (``"start"``, ``"resume"``, ``"rollback"``; ``"branch"``
    for a trial panda did not make); ``changed`` its params that differ from its parent's (a
    root's: all); ``items`` its nudges and rollbacks and, at their fork epochs, the branches that
    came from it (a fork comes before an event of the same epoch).
    """

    trial: FrozenTrial
    origin: str
    changed: dict[str, Any]
    items: tuple[AppliedEvent | LineageNode, ...]


def lineage(trials: Sequence[FrozenTrial]) -> list[LineageNode]:
    """The roots of the study's lineage, each with the branches that came from it. Trials that
    neither branched nor were branched are left out."""
    children: dict[int, list[FrozenTrial]] = {}
    for trial in trials:
        if trial.parent is not None:
            children.setdefault(trial.parent[0], []).append(trial)
    by_number = {t.number: t for t in trials}
    shown = [t for t in trials if is_branch(t) or t.parent is not None or t.number in children]
    roots = [t for t in shown if t.parent is None or t.parent[0] not in by_number]
    return [_node(root, None, children) for root in roots]


def _node(
    trial: FrozenTrial, parent: FrozenTrial | None, children: Mapping[int, list[FrozenTrial]]
) -> LineageNode:
    # Nudges, rollbacks and exploits change the lineage; pauses do not (they stay in the log).
    items: list[tuple[int, int, AppliedEvent | FrozenTrial]] = [
        (entry.epoch, 1, entry)
        for entry in branch_events(trial)
        if entry.kind in ("nudge", "rollback", "exploit")
    ]
    items += [(_fork_epoch(child), 0, child) for child in children.get(trial.number, [])]
    ordered = [item for _, _, item in sorted(items, key=lambda x: (x[0], x[1]))]
    info = trial.user_attrs.get(BRANCH_ATTR)
    return LineageNode(
        trial=trial,
        origin=info.get("origin", "branch") if isinstance(info, dict) else "branch",
        changed=_changed_params(trial.params, parent.params if parent is not None else {}),
        items=tuple(
            item if isinstance(item, AppliedEvent) else _node(item, trial, children)
            for item in ordered
        ),
    )


def _changed_params(params: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in before or before[k] != v}


def _fork_epoch(trial: FrozenTrial) -> int:
    return -1 if trial.parent is None else trial.parent[1]
