"""The records a store keeps: trial states, frozen trials, studies, rounds and control events.

They live here, below ``tunery.study``, so that the stores can build them without importing the
study (which imports the stores). ``tunery.study`` re-exports ``TrialState`` and ``FrozenTrial``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

__all__ = [
    "Curve",
    "Event",
    "FrozenTrial",
    "RoundRecord",
    "StudyInfo",
    "StudySummary",
    "TrialState",
]

Curve = dict[int, dict[str, float]]
"""Per-epoch rows of a trial: ``epoch -> {metric: value}``."""


class TrialState(IntEnum):
    """Where a trial stands. Only ``RUNNING`` is unfinished.

    ``DIVERGED`` is a trial whose loss became NaN or inf. It is kept apart from ``FAILED`` (a bug or
    a crash) because it carries information: the learning rate, or another setting, is too large.
    """

    RUNNING = 0
    COMPLETE = 1
    PRUNED = 2
    FAILED = 3
    DIVERGED = 4

    def is_finished(self) -> bool:
        return self is not TrialState.RUNNING


@dataclass(frozen=True, slots=True)
class FrozenTrial:
    """The stored record of one trial. Treat it as read-only: stores share finished records.

    ``sample_id`` says which draw of the round's sampler produced ``params`` (``None`` for a trial
    whose params were given, such as a panda branch); a trial re-run after a crash keeps the draw
    of the interrupted one. ``parent`` is ``(trial number, epoch)`` for a trial branched off
    another. ``curve`` holds the reported metrics, ``epoch -> {metric: value}``. Timestamps are
    Unix seconds.
    """

    number: int
    trial_id: int
    sample_id: int | None
    round: int
    params: dict[str, Any]
    state: TrialState
    value: float | None = None
    curve: Curve = field(default_factory=dict)
    error: str | None = None
    interrupted: bool = False
    started: float | None = None
    finished: float | None = None
    user_attrs: dict[str, Any] = field(default_factory=dict)
    parent: tuple[int, int] | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, or ``None`` while running."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def metric(self, name: str) -> dict[int, float]:
        """The curve of one metric: ``epoch -> value``, epochs in increasing order."""
        return {epoch: row[name] for epoch, row in sorted(self.curve.items()) if name in row}

    def last(self, name: str) -> float | None:
        """The value of ``name`` at the latest epoch that reported it, or ``None``."""
        values = self.metric(name)
        return values[max(values)] if values else None


@dataclass(frozen=True, slots=True)
class StudyInfo:
    """A study's identity and the settings fixed at its creation."""

    study_id: int
    name: str
    direction: str
    seed: int
    metric: str
    created: float


@dataclass(frozen=True, slots=True)
class StudySummary:
    """One line of ``list_studies``: a study, its trial counts by state and its best value."""

    study: StudyInfo
    counts: Mapping[TrialState, int]
    best_value: float | None

    @property
    def n_trials(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """A round as stored: space and box as JSON-able dicts (``tunery.study.Round`` decodes them)."""

    index: int
    space: dict[str, Any]
    box: dict[str, Any] | None
    sampler: str
    created: float


@dataclass(frozen=True, slots=True)
class Event:
    """A control message for a running study, usually written by a second process (the panda CLI).

    ``kind`` is e.g. ``"nudge"``, ``"rollback"``, ``"pause"``, ``"resume"``; ``payload`` is
    JSON-able.
    ``applied`` is the time the coordinating process acted on it, ``None`` while pending.
    """

    event_id: int
    study_id: int
    trial_number: int | None
    kind: str
    payload: dict[str, Any]
    created: float
    applied: float | None = None


def clean_value(value: float | None) -> float | None:
    """NaN becomes ``None`` (SQLite stores NaN as NULL; the memory store must agree)."""
    if value is None or math.isnan(value):
        return None
    return float(value)
