"""A study's heartbeats: which of its RUNNING trials this process vouches for, and when to look
for stale ones.

The store keeps a ``heartbeat`` time per RUNNING trial, refreshed by its reports, checkpoints and
user attributes (at most once per beat interval, a tenth of ``heartbeat_timeout``) and, while
``caviar`` (or ``panda``) runs it, by a background thread every beat interval, however long its
epochs. A RUNNING trial whose heartbeat is older than ``heartbeat_timeout`` (10 minutes by default)
is stale: nothing runs it any more, e.g. a notebook cell interrupted between ``ask`` and ``tell``.
The process running the study takes stale trials back (FAILED and interrupted, their draws
re-queued, exactly as a crash's) at the start of ``caviar`` and at ``ask`` (looked for at most once
per beat interval). It beats the trials its executors hold just before, so it never takes back one
of its own running trials. Another process takes back every RUNNING trial once it can claim the
study, which it can only when the old writer has died. A late ``tell`` of a trial taken back stores
nothing (the draw is re-run instead), warns, and returns the stored record, which does not count.
The heartbeat says that the process runs the trial, not that the trial progresses: an objective
stuck forever in a live pool keeps beating.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tunery.run._heartbeat import Beater
from tunery.storage import BaseStorage

__all__ = ["DEFAULT_HEARTBEAT_TIMEOUT", "Heartbeats"]

DEFAULT_HEARTBEAT_TIMEOUT = 600.0
"""Seconds without a heartbeat after which a RUNNING trial is stale: ten missed beats of one a
minute, far above any pause of a live process (a slow disk, a busy machine), short enough that an
abandoned notebook trial is re-queued within a coffee break."""


class Heartbeats:
    """The beats one study's process writes, and the times of its sweeps for stale trials.

    ``lock`` is the study's own: holding and forgetting happen inside its ask and tell.
    """

    def __init__(
        self,
        storage: BaseStorage,
        timeout: float,
        clock: Callable[[], float],
        lock: threading.RLock,
    ) -> None:
        self.storage = storage
        self.timeout = timeout
        self.clock = clock
        self.every = timeout / 10
        self._lock = lock
        self._held: set[int] = set()  # ids of trials asked inside ``beating``: executors run them
        self._holding = 0
        self._written: dict[int, float] = {}  # trial id -> the last heartbeat this process wrote
        self._last_sweep = -math.inf

    @contextmanager
    def beating(self) -> Iterator[None]:
        """Beat, from a background thread, every trial held until the block ends."""
        with self._lock:
            self._holding += 1
            beater = Beater(self._beat_held, self.every) if self._holding == 1 else None
        if beater is not None:
            beater.start()
        try:
            yield
        finally:
            if beater is not None:
                beater.stop()
            with self._lock:
                self._holding -= 1

    def hold(self, trial_id: int) -> None:
        """A trial just asked: inside ``beating`` an executor runs it, so the thread beats it."""
        if self._holding:
            self._held.add(trial_id)

    def beat(self, trial_id: int) -> None:
        """A report's beat, written at most once per beat interval (a clock read otherwise)."""
        now = self.clock()
        if now - self._written.get(trial_id, -math.inf) >= self.every:
            self._written[trial_id] = now
            self.storage.heartbeat([trial_id], now)

    def forget(self, trial_id: int) -> None:
        self._held.discard(trial_id)
        self._written.pop(trial_id, None)

    def stale_before(self, *, force: bool) -> float | None:
        """The cut time of a sweep that is due (after beating what we hold), else ``None``."""
        now = self.clock()
        if not force and now - self._last_sweep < self.every:
            return None
        self._last_sweep = now
        self.storage.heartbeat(self._held, now)  # what our executors run is alive, by definition
        return now - self.timeout

    def _beat_held(self) -> None:
        with self._lock:
            held = list(self._held)
        # Outside the study's lock: a slow store write must not hold up ask and tell.
        self.storage.heartbeat(held, self.clock())
