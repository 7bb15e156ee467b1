"""The importance ranking off the request path: fitted in a worker thread, never under the lock.

On a cold 50,000-trial page the ranking was the last panel by seconds: scikit-learn's import (about
1.1 s on first use) and a 64-tree forest on 4,000 trials (0.6 s), both inside a request that held
the store's lock (so the scatters and the stream waited too). Now the worker imports scikit-learn
as the app is made (``serve`` waits for it before it answers: an import running beside the first
requests holds the interpreter's lock, and slowed the first read of the trials from 0.4 to 1-2 s),
a study's fit starts as soon as the study is first read (its page's first request) on a copy of its
trials, and the page's importance request waits for that same fit, outside the store's lock. The
fit itself runs mostly in scikit-learn's compiled code, without the interpreter's lock.

The forest is smaller than the report's: 32 trees on up to 2,000 COMPLETE trials spread evenly over
the study rank the parameters as 64 trees on 4,000 do (the benchmark's study: the same order, every
share within 0.002; ``tests/dashboard/test_importance.py`` checks a known dominant parameter) in a
quarter of the time.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tunery.dashboard._state import StudyState
from tunery.dashboard._views import importance_json, importance_snapshot

__all__ = ["FOREST_TREES", "FOREST_TRIALS", "Importances"]

FOREST_TRIALS = 2000
FOREST_TREES = 32


def _load_forest() -> None:
    from sklearn.ensemble import RandomForestRegressor  # noqa: F401  # the import is the point


class Importances:
    """One worker thread for every study's fit (a fit is CPU-bound: two at once gain nothing)."""

    def __init__(self) -> None:
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tunery-importance")
        self.loaded = self._worker.submit(_load_forest)  # done once scikit-learn is imported
        self._primed: set[str] = set()

    def of(self, state: StudyState) -> Future[dict[str, Any]]:
        """The fit for the study's trials as they are now, started if none is. Call it under the
        store's lock and wait for the result after releasing it. A change of the trials clears
        ``state.derived``, and the fit with it: the next call fits anew."""
        found: Future[dict[str, Any]] | None = state.derived.get("importance")
        if found is None:
            snapshot = importance_snapshot(state, FOREST_TRIALS)
            found = self._worker.submit(importance_json, snapshot, FOREST_TREES)
            state.derived["importance"] = found
        return found

    def prime(self, state: StudyState) -> None:
        """Start the study's first fit now (its page asks for it once the curves are drawn);
        later ones only when asked, so that a running study's refreshes do not refit each time."""
        if state.info.name not in self._primed:
            self._primed.add(state.info.name)
            self.of(state)
