"""What the dashboard keeps of each study between requests, refreshed by a cheap change marker.

A study of 50,000 trials is read once, as summaries (no curves); after that each refresh asks the
store's ``change_marker`` (one pragma) and, when it moved, only for the trials after the finished
prefix (finished trials never change). Curves are read only for the trials a chart shows, and new
points only after a cursor (``curve_points``).

``version`` counts the refreshes that changed a trial's state or value (or added one); a stream
remembers the version it has sent and asks for the trials changed since.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tunery.records import RoundRecord, StudyInfo, StudySummary, TrialState, TrialSummary
from tunery.storage import BaseStorage
from tunery.study import Round

__all__ = ["StoreState", "StudyState", "UnknownStudyError", "counts"]


_FINISHED = frozenset(state for state in TrialState if state.is_finished())


class UnknownStudyError(LookupError):
    """No study of that name in the store (a 404)."""


@dataclass
class StudyState:
    info: StudyInfo
    trials: list[TrialSummary] = field(default_factory=list)  # number order
    settled: int = 0  # trials[:settled] are finished, so never read again
    rounds: list[Round] = field(default_factory=list)
    version: int = 0
    changes: list[tuple[int, int]] = field(default_factory=list)  # (version, trial number)
    derived: dict[str, Any] = field(default_factory=dict)  # results kept until trials change
    marker: tuple[int, ...] | None = None  # the store's change marker when last brought up to date

    @property
    def mark(self) -> int:
        """The trial id up to which every trial is finished and kept."""
        return self.trials[self.settled - 1].trial_id if self.settled else 0

    def take(self, newer: list[TrialSummary]) -> bool:
        """Replace the trials after the settled prefix with ``newer``; whether any trial's state or
        value changed (or a trial appeared)."""
        before = {t.number: t for t in self.trials[self.settled :]}
        self.trials[self.settled :] = newer
        if before:
            changed = [t.number for t in newer if _moved(before.get(t.number), t)]
            epochs_moved = any(
                before.get(t.number) is None or before[t.number].epochs != t.epochs for t in newer
            )
        else:  # nothing unsettled before (the first read, of 50,000 trials maybe): all are new
            changed, epochs_moved = [t.number for t in newer], bool(newer)
        trials, settled = self.trials, self.settled
        while settled < len(trials) and trials[settled].state in _FINISHED:
            settled += 1
        self.settled = settled
        if changed:
            self.version += 1
            if self.version > 1:  # no stream has seen version 0: the first read needs no list
                self.changes += [(self.version, number) for number in changed]
        if changed or epochs_moved:
            self.derived.clear()
        return bool(changed)

    def changed_since(self, version: int) -> list[TrialSummary]:
        """The trials whose state or value changed after ``version`` (>= 1: a reader has seen the
        first read), each once, number order."""
        start = bisect.bisect_right(self.changes, (version, 1 << 62))
        numbers = sorted({number for _, number in self.changes[start:]})
        return [self.trials[n] for n in numbers if n < len(self.trials)]

    def trial(self, number: int) -> TrialSummary | None:
        if 0 <= number < len(self.trials) and self.trials[number].number == number:
            return self.trials[number]
        return next((t for t in self.trials if t.number == number), None)


def _moved(before: TrialSummary | None, now: TrialSummary) -> bool:
    return before is None or (before.state, before.value) != (now.state, now.value)


class StoreState:
    """Every study's state. One lock for the lot: requests run in a thread pool, and a view is
    computed under it (``reading``), so that no refresh changes a study under a view."""

    def __init__(self, storage: BaseStorage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._studies: dict[str, StudyState] = {}
        self._summaries: tuple[tuple[int, ...], list[StudySummary]] | None = None
        self._round_records: dict[int, list[RoundRecord]] = {}

    def studies(self) -> list[StudySummary]:
        with self._lock:
            marker = self.storage.change_marker()
            if self._summaries is None or self._summaries[0] != marker:
                self._summaries = (marker, self.storage.list_studies())
            return list(self._summaries[1])

    @contextmanager
    def reading(self, name: str) -> Iterator[StudyState]:
        """The study's state, brought up to date and held still while the block runs.

        ``UnknownStudyError`` if the store has no study called ``name``.
        """
        with self._lock:
            state = self._studies.get(name)
            if state is None:
                info = self.storage.get_study(name)
                if info is None:
                    raise UnknownStudyError(name)
                state = self._studies[name] = StudyState(info)
            marker = self.storage.change_marker()
            if state.marker != marker:
                self._update(state)
                state.marker = marker
            yield state

    def _update(self, state: StudyState) -> None:
        study_id = state.info.study_id
        state.take(self.storage.trial_summaries(study_id, after_id=state.mark))
        records = self.storage.get_rounds(study_id)
        if records != self._round_records.get(study_id):
            self._round_records[study_id] = records
            state.rounds = [Round.from_record(record) for record in records]
            state.derived.clear()


def counts(trials: list[TrialSummary]) -> dict[str, int]:
    found = {state.name: 0 for state in TrialState}
    for trial in trials:
        found[trial.state.name] += 1
    return found
