"""A PBT population as plain data: its lineage tree and each final member's schedule.

Population-based training (``tunery.workflows.pbt``) runs each member as a chain of *segment*
trials, one per ``perturbation_interval`` epochs. Each segment holds the user attribute
``PBT_ATTR``, ``{"member", "step", "start", "end", "settings", "nudgeable"}``, and a parent
``(trial, epoch)``: the segment it continues, its own member's previous one, or, after an exploit,
a top member's segment whose checkpoint at ``epoch`` it loaded. The attribute is named here, below
the workflow, so that the report reads what the workflow writes without importing it.

- ``population_lineage``: the tree of *stretches*, a member's run of segments between exploits;
  a stretch that began by exploiting hangs under the stretch it copied, at the epoch it copied;
- ``member_schedules``: for each final member, the hyperparameters in force at every epoch along
  its whole path (the segments of other members it descends from included).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunery.records import FrozenTrial

__all__ = [
    "PBT_ATTR",
    "MemberSchedule",
    "Stretch",
    "final_segments",
    "is_segment",
    "member_schedules",
    "population_lineage",
    "segment_info",
]

PBT_ATTR = "pbt"
"""User attribute of every PBT segment trial (see the module docstring)."""


def is_segment(trial: FrozenTrial) -> bool:
    return isinstance(trial.user_attrs.get(PBT_ATTR), dict)


def segment_info(trial: FrozenTrial) -> dict[str, Any]:
    info = trial.user_attrs.get(PBT_ATTR)
    return dict(info) if isinstance(info, dict) else {}


def _kept(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """The segments that stand: not interrupted (a re-run took their place)."""
    return [t for t in trials if is_segment(t) and not t.interrupted]


@dataclass
class Stretch:
    """One member's segments between two exploits (or from the start).

    ``source`` is ``(member, trial, epoch)`` of the checkpoint it began from (``None``: a first
    segment); ``children`` the stretches that exploited it, with the epoch each copied.
    """

    member: int
    trials: list[FrozenTrial]
    source: tuple[int, int, int] | None
    children: list[tuple[int, Stretch]] = field(default_factory=list)

    @property
    def start(self) -> int:
        return int(segment_info(self.trials[0])["start"])

    @property
    def end(self) -> int:
        return int(segment_info(self.trials[-1])["end"])

    @property
    def last(self) -> FrozenTrial:
        return self.trials[-1]


def population_lineage(trials: Sequence[FrozenTrial]) -> list[Stretch]:
    """The roots of the population's lineage (one per first-step member), stretches nested."""
    segments = sorted(_kept(trials), key=lambda t: (segment_info(t)["step"], t.number))
    by_number = {t.number: t for t in segments}
    stretch_of: dict[int, Stretch] = {}
    roots: list[Stretch] = []
    for trial in segments:
        member = int(segment_info(trial)["member"])
        parent = None if trial.parent is None else by_number.get(trial.parent[0])
        if parent is None:
            stretch = Stretch(member, [trial], None)
            roots.append(stretch)
        elif int(segment_info(parent)["member"]) == member:
            stretch = stretch_of[parent.number]
            stretch.trials.append(trial)
        else:
            epoch = int(segment_info(trial)["start"])
            source_member = int(segment_info(parent)["member"])
            stretch = Stretch(member, [trial], (source_member, parent.number, epoch))
            stretch_of[parent.number].children.append((epoch, stretch))
        stretch_of[trial.number] = stretch
    return roots


def final_segments(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Each member's latest standing segment, by member."""
    latest: dict[int, FrozenTrial] = {}
    for trial in _kept(trials):
        info = segment_info(trial)
        member = int(info["member"])
        held = latest.get(member)
        if held is None or int(info["step"]) >= int(segment_info(held)["step"]):
            latest[member] = trial
    return [latest[member] for member in sorted(latest)]


@dataclass(frozen=True)
class MemberSchedule:
    """A final member's hyperparameters per epoch along its whole path.

    ``values[name][i]`` is in force during ``epochs[i]``; ``exploits`` lists ``(epoch, member)``
    where the path jumps to another member's checkpoint; ``value`` is the final segment's.
    """

    member: int
    trial: int
    state: str
    value: float | None
    epochs: list[int]
    values: dict[str, list[Any]]
    exploits: list[tuple[int, int]]


def member_schedules(trials: Sequence[FrozenTrial]) -> list[MemberSchedule]:
    """The schedule of every member's latest segment (``MemberSchedule``), by member."""
    by_number = {t.number: t for t in _kept(trials)}
    return [_schedule(final, by_number) for final in final_segments(trials)]


def _path(final: FrozenTrial, by_number: Mapping[int, FrozenTrial]) -> list[FrozenTrial]:
    path = [final]
    while path[-1].parent is not None and path[-1].parent[0] in by_number:
        path.append(by_number[path[-1].parent[0]])
        if len(path) > len(by_number):
            break  # a cycle: no store written by tunery has one; draw what is there
    return path[::-1]


def _schedule(final: FrozenTrial, by_number: Mapping[int, FrozenTrial]) -> MemberSchedule:
    path = _path(final, by_number)
    names = list(dict.fromkeys(name for trial in path for name in trial.params))
    epochs: list[int] = []
    values: dict[str, list[Any]] = {name: [] for name in names}
    exploits: list[tuple[int, int]] = []
    for before, trial in zip([None, *path[:-1]], path, strict=True):
        info = segment_info(trial)
        member = int(info["member"])
        if before is not None and int(segment_info(before)["member"]) != member:
            exploits.append((int(info["start"]), int(segment_info(before)["member"])))
        for epoch in range(int(info["start"]) + 1, int(info["end"]) + 1):
            epochs.append(epoch)
            for name in names:
                values[name].append(trial.params.get(name))
    return MemberSchedule(
        member=int(segment_info(final)["member"]),
        trial=final.number,
        state=final.state.name,
        value=final.value,
        epochs=epochs,
        values=values,
        exploits=exploits,
    )
