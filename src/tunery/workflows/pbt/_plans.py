"""What each member trains next: the plan of a segment, and the exploit step that makes it.

At the boundary before step ``g`` every member's segment of step ``g - 1`` has ended. They are
ranked by the study's metric (ties by member number; diverged and failed segments last, since
they left no checkpoint to go on from). With ``q = ceil(population · quantile_fraction)``, capped
at half the population as Ray Tune caps it, the bottom ``q`` (and every diverged or failed one)
exploit: each loads the checkpoint of a member drawn from the top ``q`` (at least the best one)
and takes its params, then explores its nudgeable ones (``_explore``). The others go on from
their own checkpoint with their own params. Each member's draws come from a generator seeded by
``(study seed, member, step)``, so the plan is a pure function of the stored results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunery._exceptions import TuneryError
from tunery.records import FrozenTrial, TrialState
from tunery.report import PBT_ATTR, segment_info
from tunery.workflows.panda import AppliedEvent

_STREAM = 0x9B7  # keeps PBT's generators apart from any other use of (seed, member, step)


@dataclass(frozen=True)
class Exploit:
    """A bottom member's exploit: the source member, its segment (trial) and the new params."""

    source_member: int
    trial: int
    epoch: int
    perturbed: dict[str, Any]

    def payload(self, member: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """The exploit event's payload: the lineage edge and the params it leads to."""
        return {
            "member": self.source_member,
            "trial": self.trial,
            "epoch": self.epoch,
            "to_member": member,
            "params": dict(params),
            "perturbed": dict(self.perturbed),
        }


@dataclass
class Plan:
    """One member's segment of one step: params, the checkpoint it starts from, and its log.

    ``log`` holds the events already applied to it (a re-run of an interrupted segment copies
    them); ``exploit`` is set for a fresh exploit whose event is still to be written; ``marks``
    are the queued events to mark applied once the segment's trial holds them.
    """

    member: int
    step: int
    start: int
    end: int
    params: dict[str, Any]
    parent: tuple[int, int] | None = None
    exploit: Exploit | None = None
    log: list[AppliedEvent] = field(default_factory=list)
    marks: list[int] = field(default_factory=list)

    def info(self, population: int, interval: int, described: Mapping[str, Any]) -> dict[str, Any]:
        """The ``PBT_ATTR`` record of its trial."""
        return {
            "member": self.member,
            "step": self.step,
            "start": self.start,
            "end": self.end,
            "population": population,
            "perturbation_interval": interval,
            **described,
        }


def member_rng(seed: int, member: int, step: int) -> np.random.Generator:
    """The generator of one member's draws at one step."""
    return np.random.default_rng(np.random.SeedSequence([_STREAM, seed, member, step]))


def quantile_size(population: int, fraction: float) -> int:
    """How many members are in the bottom (and the top) quantile: Ray Tune's rule."""
    size = math.ceil(population * fraction)
    return min(size, population // 2)


def rank(segments: Mapping[int, FrozenTrial], maximize: bool) -> tuple[list[int], list[int]]:
    """``(ranked, failed)``: members with a finite value best first, the others by number."""
    scored = [
        (m, float(t.value))
        for m, t in segments.items()
        if t.state is TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]
    scored.sort(key=lambda item: (-item[1] if maximize else item[1], item[0]))
    ranked = [member for member, _ in scored]
    failed = sorted(set(segments) - set(ranked))
    return ranked, failed


def split(
    segments: Mapping[int, FrozenTrial], maximize: bool, fraction: float
) -> tuple[list[int], list[int]]:
    """``(top, bottom)`` members: the sources of exploits, and the members that exploit."""
    ranked, failed = rank(segments, maximize)
    if not ranked:
        states = ", ".join(f"member {m}: {t.state.name}" for m, t in sorted(segments.items()))
        raise TuneryError(f"every member's last segment ended without a value ({states})")
    size = quantile_size(len(segments), fraction)
    top = ranked[: max(size, 1)]
    bottom = ranked[max(len(ranked) - size, len(top)) :] + failed
    return top, bottom


def kept_segments(trials: Sequence[FrozenTrial]) -> dict[tuple[int, int], FrozenTrial]:
    """``(member, step) -> trial`` of the segments that ended (interrupted ones do not count)."""
    found: dict[tuple[int, int], FrozenTrial] = {}
    for trial in trials:
        info = segment_info(trial)
        if info and not trial.interrupted and trial.state is not TrialState.RUNNING:
            found[(int(info["member"]), int(info["step"]))] = trial
    return found


def unfinished_segments(trials: Sequence[FrozenTrial]) -> dict[tuple[int, int], FrozenTrial]:
    """``(member, step) -> trial``: the latest interrupted (or still RUNNING: a dead process's)
    attempt of each segment; its re-run keeps its plan."""
    found: dict[tuple[int, int], FrozenTrial] = {}
    for trial in trials:
        info = segment_info(trial)
        if info and (trial.interrupted or trial.state is TrialState.RUNNING):
            found[(int(info["member"]), int(info["step"]))] = trial
    return found


def is_pbt_trial(trial: FrozenTrial) -> bool:
    return isinstance(trial.user_attrs.get(PBT_ATTR), dict)
