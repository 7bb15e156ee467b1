"""Executors: they run a study's trials. ``execute`` is the one place that picks which.

- ``workers == 1``: ``run_sequential`` (``_sequential.py``), in this process;
- ``workers > 1``: the process pool ``tunery.run.caviar.run_pool`` (its module is imported only
  then), which must keep the same contract: ask and tell in this process (one writer per study),
  objectives in the workers, classified by ``call_objective``; stop when ``study.count_done()``
  reaches ``target``; call ``on_finished(frozen_trial)`` once each trial is stored.

Executors see the study only through ``AskTell`` (``_protocol.py``): this package imports neither
``tunery.study`` nor anything above it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tunery._exceptions import ConfigError
from tunery.run._capture import OUTPUT_LIMIT
from tunery.run._protocol import AskTell, OnFinished
from tunery.run._sequential import Outcome, call_objective, outcome_of, run_sequential
from tunery.trial import Trial

__all__ = [
    "OUTPUT_LIMIT",
    "AskTell",
    "OnFinished",
    "Outcome",
    "call_objective",
    "default_workers",
    "execute",
    "outcome_of",
    "run_sequential",
]


def default_workers() -> int:
    """The CPU cores this process may use (its affinity where the OS tells it)."""
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity is not None else os.cpu_count()
    return max(1, cores or 1)


def execute(
    study: AskTell,
    objective: Callable[[Trial], Any],
    *,
    target: int,
    workers: int = 1,
    on_finished: OnFinished | None = None,
    live: bool | None = None,
) -> None:
    """Run trials of ``study`` until it holds ``target`` finished ones, with ``workers`` workers."""
    if workers == 1:
        run_sequential(study, objective, target=target, on_finished=on_finished)
        return
    try:
        from tunery.run.caviar import run_pool  # the process pool
    except ModuleNotFoundError as exc:
        if exc.name != "tunery.run.caviar":
            raise
        raise ConfigError("workers", workers, "1 (this build has no process pool)") from None
    run_pool(study, objective, target=target, workers=workers, on_finished=on_finished, live=live)
