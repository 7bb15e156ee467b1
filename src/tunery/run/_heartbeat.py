"""A background thread that calls ``beat()`` every ``every`` seconds until stopped.

The study uses it while it hands trials to an executor (``Study.beating``): the beat is
time-based, so a live trial in a ten-hour epoch keeps its heartbeat fresh without reporting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Beater"]


class Beater:
    """Calls ``beat()`` from a daemon thread every ``every`` seconds, from ``start`` to ``stop``.

    A beat that raises (the store busy past its timeout, or closed at exit) is dropped: the next
    one tries again, and a missed beat only brings the heartbeat closer to its timeout.
    """

    def __init__(self, beat: Callable[[], None], every: float) -> None:
        self._beat = beat
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tunery-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._beat()
            except Exception:  # see the class docstring: the next beat retries
                continue
