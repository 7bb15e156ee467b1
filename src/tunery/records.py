"""The records of a study: trial states, frozen trials, studies, rounds and control events.

The vocabulary every floor shares: the stores build these records, the executors, pruners and
reports read them, and none of them needs a store or a study to do so. ``direction`` helpers and
the JSON encoding of stored values live here for the same reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NamedTuple

from tunery._exceptions import ConfigError

__all__ = [
    "DIRECTIONS",
    "Curve",
    "CurvePoint",
    "Event",
    "FrozenTrial",
    "RoundRecord",
    "StudyInfo",
    "StudySummary",
    "TrialState",
    "TrialSummary",
    "best_of",
    "check_direction",
    "clean_value",
    "decode_json",
    "encode_json",
    "is_better",
]

DIRECTIONS = ("maximize", "minimize")

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
    Unix seconds. ``heartbeat`` is the last sign of life of the process running the trial (its
    start, a report, or a periodic beat; see ``tunery.study``), ``None`` once it is finished: a
    RUNNING trial whose heartbeat is old is stale. ``output`` is the tail of what the trial
    printed, where its executor captured it (a process pool's worker; see ``tunery.run``).
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
    heartbeat: float | None = None
    output: str | None = None

    def is_stale(self, now: float, timeout: float) -> bool:
        """RUNNING with no heartbeat for more than ``timeout`` seconds at ``now``."""
        last = self.heartbeat if self.heartbeat is not None else self.started
        return self.state is TrialState.RUNNING and last is not None and now - last > timeout

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


class TrialSummary(NamedTuple):
    """A trial without its curve and user attributes: what a table of 50,000 trials needs.

    ``epochs`` is the number of epochs its curve holds; ``heartbeat`` as in ``FrozenTrial``.
    A named tuple, not a frozen dataclass: as immutable, and built in half the time (a store
    builds 50,000 of them when a dashboard opens a big study).
    """

    number: int
    trial_id: int
    round: int
    params: dict[str, Any]
    state: TrialState
    value: float | None
    started: float | None
    finished: float | None
    parent: tuple[int, int] | None
    epochs: int
    heartbeat: float | None = None

    @property
    def duration(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One reported epoch of a trial, with its place ``seq`` in the store's order of reports.

    ``seq`` grows with every report in the store (a re-reported epoch gets a new one), so "the
    points after ``seq`` N" are exactly what was reported since a reader saw N.
    """

    seq: int
    number: int
    epoch: int
    metrics: dict[str, float]


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
    last_activity: float | None = None  # the latest start, finish or heartbeat of its trials

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


def check_direction(direction: Any) -> str:
    if direction not in DIRECTIONS:
        raise ConfigError("direction", direction, "'maximize' or 'minimize'")
    return str(direction)


def is_better(value: float, best: float, direction: str) -> bool:
    return value > best if direction == "maximize" else value < best


def best_of(values: Iterable[float | None], direction: str) -> float | None:
    """The best finite value, or ``None``."""
    best: float | None = None
    for value in values:
        if value is None or not math.isfinite(value):
            continue
        if best is None or is_better(value, best, direction):
            best = value
    return best


def _numpy_scalar(value: Any) -> Any:
    """``json.dumps`` hook: NumPy scalars (``np.int64``, ``np.bool_``) become Python numbers."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_numpy_scalar)


def encode_json(value: Any, field: str) -> str:
    """Compact JSON text; non-finite floats allowed (Python's ``NaN``/``Infinity`` tokens)."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(field, value, f"JSON-able values ({exc})") from None


def decode_json(text: str) -> Any:
    return json.loads(text)
