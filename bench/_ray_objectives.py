"""Objectives of ``bench/ray_cluster.py``, in a module so that Ray workers import them by name."""

from __future__ import annotations

import statistics
import time
from typing import Any

from tunery.trial import Trial


def trivial(trial: Trial) -> float:
    """No work at all: what is left is the executor's cost per trial."""
    return float(trial.params["x"])


def trivial_tune(config: dict[str, Any]) -> dict[str, float]:
    """The same for Ray Tune (a function trainable returning its final result)."""
    return {"score": float(config["x"])}


def prune_round_trips(trial: Trial) -> float:
    """Report once, then ask the pruner 20 times; the median round trip in ms as a user attr."""
    trial.report(1, val_accuracy=float(trial.params["x"]))
    times = []
    for _ in range(20):
        start = time.perf_counter()
        trial.should_prune()
        times.append(time.perf_counter() - start)
    trial.set_user_attr("prune_ms", 1000 * statistics.median(times))
    return float(trial.params["x"])
