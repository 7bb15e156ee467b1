"""A store in plain dicts: fast, for one process, gone when the process ends."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tunery._exceptions import ConfigError, StorageError
from tunery.records import (
    Curve,
    Event,
    FrozenTrial,
    RoundRecord,
    StudyInfo,
    StudySummary,
    TrialState,
    best_of,
    decode_json,
    encode_json,
)
from tunery.storage._base import (
    BaseStorage,
    TrialEnd,
    check_epoch,
    check_event_args,
    check_metrics,
    check_open_args,
    not_running,
)

__all__ = ["MemoryStorage"]


@dataclass
class _TrialRow:
    """A trial as kept in memory. JSON values are kept encoded, as SQLite keeps them."""

    trial_id: int
    study_id: int
    number: int
    sample_id: int | None
    round: int
    params: str
    started: float
    parent: tuple[int, int] | None
    state: TrialState = TrialState.RUNNING
    value: float | None = None
    error: str | None = None
    interrupted: bool = False
    finished: float | None = None
    curve: Curve = field(default_factory=dict)
    user_attrs: dict[str, str] = field(default_factory=dict)
    checkpoints: dict[int, bytes] = field(default_factory=dict)
    heartbeat: float | None = None
    output: str | None = None
    frozen: FrozenTrial | None = None  # built once the trial is finished (it never changes again)

    def _last_seen(self) -> float:
        return self.started if self.heartbeat is None else self.heartbeat

    def freeze(self) -> FrozenTrial:
        if self.frozen is not None:
            return self.frozen
        record = FrozenTrial(
            number=self.number,
            trial_id=self.trial_id,
            sample_id=self.sample_id,
            round=self.round,
            params=decode_json(self.params),
            state=self.state,
            value=self.value,
            curve={epoch: dict(row) for epoch, row in self.curve.items()},
            error=self.error,
            interrupted=self.interrupted,
            started=self.started,
            finished=self.finished,
            user_attrs={key: decode_json(text) for key, text in self.user_attrs.items()},
            parent=self.parent,
            heartbeat=self._last_seen() if self.state is TrialState.RUNNING else None,
            output=self.output,
        )
        if self.state.is_finished():
            self.frozen = record
        return record


@dataclass
class _StudyData:
    info: StudyInfo
    rounds: list[RoundRecord] = field(default_factory=list)
    trials: list[_TrialRow] = field(default_factory=list)  # index = trial number
    events: list[Event] = field(default_factory=list)


class MemoryStorage(BaseStorage):
    """Studies in dicts. Same behaviour as ``SqliteStorage``, minus the file."""

    def __init__(self) -> None:
        self.url = "memory"
        self._lock = threading.RLock()
        self._studies: dict[str, _StudyData] = {}
        self._by_id: dict[int, _StudyData] = {}
        self._trials: dict[int, _TrialRow] = {}
        self._events: dict[int, Event] = {}

    # -- studies -------------------------------------------------------------------------------

    def open_study(self, name: str, *, direction: str, seed: int, metric: str) -> StudyInfo:
        check_open_args(name, direction, seed, metric)
        with self._lock:
            if name not in self._studies:
                info = StudyInfo(len(self._by_id) + 1, name, direction, seed, metric, time.time())
                self._studies[name] = self._by_id[info.study_id] = _StudyData(info)
            return self._studies[name].info

    def get_study(self, name: str) -> StudyInfo | None:
        with self._lock:
            data = self._studies.get(name)
            return None if data is None else data.info

    def list_studies(self) -> list[StudySummary]:
        with self._lock:
            return [self._summary(data) for data in self._by_id.values()]

    @staticmethod
    def _summary(data: _StudyData) -> StudySummary:
        counts: dict[TrialState, int] = {}
        for row in data.trials:
            counts[row.state] = counts.get(row.state, 0) + 1
        values = (row.value for row in data.trials if row.state is TrialState.COMPLETE)
        return StudySummary(data.info, counts, best_of(values, data.info.direction))

    def _study(self, study_id: int) -> _StudyData:
        try:
            return self._by_id[study_id]
        except KeyError:
            raise StorageError(f"there is no study with id {study_id}") from None

    # -- rounds --------------------------------------------------------------------------------

    def add_round(
        self, study_id: int, *, space: dict[str, Any], box: dict[str, Any] | None, sampler: str
    ) -> RoundRecord:
        space_copy = decode_json(encode_json(space, "space"))
        box_copy = None if box is None else decode_json(encode_json(box, "box"))
        with self._lock:
            rounds = self._study(study_id).rounds
            record = RoundRecord(len(rounds) + 1, space_copy, box_copy, sampler, time.time())
            rounds.append(record)
            return record

    def get_rounds(self, study_id: int) -> list[RoundRecord]:
        with self._lock:
            return list(self._study(study_id).rounds)

    # -- trials --------------------------------------------------------------------------------

    def create_trial(
        self,
        study_id: int,
        *,
        round: int,
        sample_id: int | None,
        params: Mapping[str, Any],
        parent: tuple[int, int] | None = None,
    ) -> FrozenTrial:
        encoded = encode_json(dict(params), "params")
        with self._lock:
            trials = self._study(study_id).trials
            trial_id = len(self._trials) + 1
            row = _TrialRow(
                trial_id, study_id, len(trials), sample_id, round, encoded, time.time(), parent
            )
            trials.append(row)
            self._trials[trial_id] = row
            return row.freeze()

    def _running(self, trial_id: int) -> _TrialRow:
        row = self._trials.get(trial_id)
        if row is None or row.state.is_finished():
            raise not_running(trial_id, None if row is None else row.state)
        return row

    def _finish(self, trial_id: int, end: TrialEnd) -> float:
        with self._lock:
            row = self._running(trial_id)
            row.state, row.value, row.error, row.output = (
                end.state,
                end.value,
                end.error,
                end.output,
            )
            row.interrupted, row.finished = end.interrupted, time.time()
            return row.finished

    def fail_running_trials(
        self, study_id: int, error: str, *, stale_before: float | None = None
    ) -> list[FrozenTrial]:
        cut = math.inf if stale_before is None else stale_before
        with self._lock:
            running = [
                row
                for row in self._study(study_id).trials
                if row.state is TrialState.RUNNING and row._last_seen() < cut
            ]
            now = time.time()
            for row in running:
                row.state, row.error, row.interrupted, row.finished = (
                    TrialState.FAILED,
                    error,
                    True,
                    now,
                )
            return [row.freeze() for row in running]

    def heartbeat(self, trial_ids: Iterable[int], now: float) -> None:
        with self._lock:
            for trial_id in trial_ids:
                row = self._trials.get(trial_id)
                if row is not None and row.state is TrialState.RUNNING:
                    row.heartbeat = float(now)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._lock:
            row = self._trials.get(trial_id)
            if row is None:
                raise StorageError(f"there is no trial with id {trial_id}")
            return row.freeze()

    def get_trial_id(self, study_id: int, number: int) -> int:
        with self._lock:
            trials = self._study(study_id).trials
            if (
                isinstance(number, bool)
                or not isinstance(number, int)
                or not 0 <= number < len(trials)
            ):
                raise ConfigError(
                    "trial number", number, f"a trial of the study (0..{len(trials) - 1})"
                )
            return trials[number].trial_id

    def get_all_trials(
        self, study_id: int, *, states: Iterable[TrialState] | None = None
    ) -> list[FrozenTrial]:
        wanted = None if states is None else frozenset(states)
        with self._lock:
            rows = self._study(study_id).trials
            return [row.freeze() for row in rows if wanted is None or row.state in wanted]

    def report(self, trial_id: int, epoch: int, metrics: Mapping[str, float]) -> None:
        check_epoch(epoch)
        cleaned = check_metrics(metrics)
        with self._lock:
            self._running(trial_id).curve.setdefault(epoch, {}).update(cleaned)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise ConfigError("user attr key", key, "a non-empty string")
        encoded = encode_json(value, f"user attr {key!r}")
        with self._lock:
            self._running(trial_id).user_attrs[key] = encoded

    # -- checkpoints ---------------------------------------------------------------------------

    def save_checkpoint(self, trial_id: int, epoch: int, blob: bytes) -> None:
        check_epoch(epoch)
        if not isinstance(blob, bytes | bytearray | memoryview):
            raise ConfigError("checkpoint", type(blob).__name__, "bytes")
        with self._lock:
            self._running(trial_id).checkpoints[epoch] = bytes(blob)

    def load_checkpoint(self, trial_id: int, epoch: int | None = None) -> tuple[int, bytes] | None:
        with self._lock:
            row = self._trials.get(trial_id)
            if row is None or not row.checkpoints:
                return None
            chosen = max(row.checkpoints) if epoch is None else check_epoch(epoch)
            blob = row.checkpoints.get(chosen)
            return None if blob is None else (chosen, blob)

    def checkpoint_epochs(self, trial_id: int) -> list[int]:
        with self._lock:
            row = self._trials.get(trial_id)
            return [] if row is None else sorted(row.checkpoints)

    # -- events --------------------------------------------------------------------------------

    def add_event(
        self,
        study_id: int,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        trial_number: int | None = None,
    ) -> Event:
        body = decode_json(encode_json(check_event_args(kind, payload), "event payload"))
        with self._lock:
            events = self._study(study_id).events
            event = Event(len(self._events) + 1, study_id, trial_number, kind, body, time.time())
            events.append(event)
            self._events[event.event_id] = event
            return event

    def get_events(self, study_id: int, *, pending: bool = True) -> list[Event]:
        with self._lock:
            events = self._study(study_id).events
            return [event for event in events if not pending or event.applied is None]

    def mark_event_applied(self, event_id: int) -> None:
        with self._lock:
            event = self._events.get(event_id)
            if event is None:
                raise StorageError(f"there is no event with id {event_id}")
            if event.applied is not None:
                return
            applied = dataclasses.replace(event, applied=time.time())
            self._events[event_id] = applied
            events = self._by_id[event.study_id].events
            events[events.index(event)] = applied
