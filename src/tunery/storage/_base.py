"""The storage contract: what every study store keeps, and who may write it.

One writer per study. The process that runs a study (the coordinator: the sequential executor,
or the parent of a process pool) is the only one that creates and finishes its trials, reports
metrics and saves checkpoints. Any number of other processes may read at the same time (a report,
``tunery ls``), and a second process may *add events* (the panda control CLI sends nudge, rollback,
pause, resume); the coordinator applies them and marks them applied.

A store never loses a finished trial: ``finish_trial`` has committed when it returns. Finished
trials are immutable; writing to one raises ``StorageError``. Rounds are numbered from 1, trials
from 0.

Values that a store keeps as JSON (params, user attributes, event payloads, round spaces and boxes)
must be JSON-able; NumPy scalars are accepted and stored as Python numbers. A NaN objective value is
stored as ``None``; NaN and inf in curves are kept.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from tunery._exceptions import ConfigError, StorageError
from tunery._validation import ANY_REAL, check_int, check_scalar
from tunery.records import (
    Event,
    FrozenTrial,
    RoundRecord,
    StudyInfo,
    StudySummary,
    TrialState,
    check_direction,
    clean_value,
)

__all__ = ["BaseStorage"]


@dataclass(frozen=True, slots=True)
class TrialEnd:
    """How a trial ended, checked: what ``finish_trial`` hands a store to write."""

    state: TrialState
    value: float | None
    error: str | None
    interrupted: bool
    output: str | None


def check_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Metric values as floats; NaN and inf are kept (they mark divergence). Names are strings."""
    cleaned: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise ConfigError("metric name", name, "a non-empty string")
        cleaned[name] = check_scalar(f"metric {name!r}", value, ANY_REAL)
    return cleaned


def check_epoch(epoch: Any) -> int:
    return check_int("epoch", epoch, 0)


class BaseStorage(ABC):
    """A place that keeps studies: rounds, trials, curves, user attributes, checkpoints and events.

    Implementations: ``MemoryStorage`` (dicts, one process) and ``SqliteStorage`` (a file, shared by
    processes). Both pass ``tests/storage/test_conformance.py``. See the module docstring for the
    one-writer rule. Every method is safe to call from several threads of one process.
    """

    url: str

    # -- studies -------------------------------------------------------------------------------

    @abstractmethod
    def open_study(self, name: str, *, direction: str, seed: int, metric: str) -> StudyInfo:
        """The study called ``name``, created with these settings if it does not exist yet.

        An existing study keeps its stored settings; the caller compares them.
        """

    @abstractmethod
    def get_study(self, name: str) -> StudyInfo | None:
        """The study called ``name``, or ``None``."""

    @abstractmethod
    def list_studies(self) -> list[StudySummary]:
        """Every study, oldest first, with its trial counts by state and its best COMPLETE value."""

    # -- rounds --------------------------------------------------------------------------------

    @abstractmethod
    def add_round(
        self, study_id: int, *, space: dict[str, Any], box: dict[str, Any] | None, sampler: str
    ) -> RoundRecord:
        """Append the next round (index 1 for the first) and return it."""

    @abstractmethod
    def get_rounds(self, study_id: int) -> list[RoundRecord]:
        """The study's rounds, first to last."""

    # -- trials --------------------------------------------------------------------------------

    @abstractmethod
    def create_trial(
        self,
        study_id: int,
        *,
        round: int,
        sample_id: int | None,
        params: Mapping[str, Any],
        parent: tuple[int, int] | None = None,
    ) -> FrozenTrial:
        """Create the next trial of the study, RUNNING, committed, and return its record."""

    def finish_trial(
        self,
        trial_id: int,
        *,
        state: TrialState,
        value: float | None = None,
        error: str | None = None,
        interrupted: bool = False,
        output: str | None = None,
    ) -> float:
        """Mark a RUNNING trial finished; committed when it returns. Returns the finish time.

        ``output`` is kept with it: the tail of what it printed.

        Raises ``StorageError`` if the trial is already finished.
        """
        if not TrialState(state).is_finished():
            raise ConfigError("state", state, "a finished state")
        end = TrialEnd(TrialState(state), clean_value(value), error, interrupted, output)
        return self._finish(trial_id, end)

    @abstractmethod
    def _finish(self, trial_id: int, end: TrialEnd) -> float:
        """``finish_trial`` once its arguments are checked: write ``end``, return the time."""

    def claim_study(self, study_id: int) -> None:  # noqa: B027 (one process: nothing to claim)
        """Become the study's one writer, until ``close`` or the process ends.

        ``StorageError`` if another live process holds the study. Called before the writer marks
        RUNNING trials as dead, so that it never fails the trials of a process still running them.
        """

    @abstractmethod
    def fail_running_trials(
        self, study_id: int, error: str, *, stale_before: float | None = None
    ) -> list[FrozenTrial]:
        """Mark the study's RUNNING trials FAILED, interrupted (their process died); return them.

        With ``stale_before``: only those whose heartbeat is older than that time.
        """

    @abstractmethod
    def heartbeat(self, trial_ids: Iterable[int], now: float) -> None:
        """Set the heartbeat of those of ``trial_ids`` that are RUNNING to ``now``.

        Finished or unknown ids are skipped: a beat may cross a trial's end.
        """

    @abstractmethod
    def get_trial(self, trial_id: int) -> FrozenTrial:
        """One trial. ``StorageError`` if there is none with this id."""

    @abstractmethod
    def get_trial_id(self, study_id: int, number: int) -> int:
        """The id of trial ``number`` of the study. ``ConfigError`` if there is none."""

    @abstractmethod
    def get_all_trials(
        self, study_id: int, *, states: Iterable[TrialState] | None = None
    ) -> list[FrozenTrial]:
        """The study's trials in number order, optionally only those in ``states``."""

    @abstractmethod
    def report(self, trial_id: int, epoch: int, metrics: Mapping[str, float]) -> None:
        """Record metrics of a RUNNING trial at an epoch (merging with metrics already there)."""

    @abstractmethod
    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        """Attach a JSON-able value to a RUNNING trial."""

    # -- checkpoints ---------------------------------------------------------------------------

    @abstractmethod
    def save_checkpoint(self, trial_id: int, epoch: int, blob: bytes) -> None:
        """Keep ``blob`` as the RUNNING trial's state after ``epoch`` (replacing an older one)."""

    @abstractmethod
    def load_checkpoint(self, trial_id: int, epoch: int | None = None) -> tuple[int, bytes] | None:
        """``(epoch, blob)`` at ``epoch``, or the latest if ``epoch`` is None; else ``None``."""

    @abstractmethod
    def checkpoint_epochs(self, trial_id: int) -> list[int]:
        """The epochs at which the trial has a checkpoint, increasing."""

    # -- events --------------------------------------------------------------------------------

    @abstractmethod
    def add_event(
        self,
        study_id: int,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        trial_number: int | None = None,
    ) -> Event:
        """Queue a control event for the study's coordinator."""

    @abstractmethod
    def get_events(self, study_id: int, *, pending: bool = True) -> list[Event]:
        """The study's events, oldest first: only those not yet applied when ``pending``."""

    @abstractmethod
    def mark_event_applied(self, event_id: int) -> None:
        """Record that the coordinator acted on the event."""

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:  # noqa: B027 (a store without resources has nothing to do)
        """Release the store's resources (a no-op for the memory store)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def check_open_args(name: Any, direction: Any, seed: Any, metric: Any) -> None:
    """Shared validation of ``open_study`` arguments, so both stores refuse the same things."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("name", name, "a non-empty study name")
    check_direction(direction)
    check_int("seed", seed, 0)
    if not isinstance(metric, str) or not metric:
        raise ConfigError("metric", metric, "a non-empty metric name")


def check_event_args(kind: Any, payload: Any) -> dict[str, Any]:
    if not isinstance(kind, str) or not kind:
        raise ConfigError("event kind", kind, "a non-empty string")
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise ConfigError("event payload", payload, "a mapping of JSON-able values")
    return dict(payload)


def not_running(trial_id: int, state: TrialState | None) -> StorageError:
    """The error for writing to a trial that is finished (or absent)."""
    if state is None:
        return StorageError(f"there is no trial with id {trial_id}")
    return StorageError(
        f"trial id {trial_id} is {state.name}: a finished trial cannot be changed "
        "(one writer per study)"
    )
