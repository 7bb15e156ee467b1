"""Executors: they run a study's trials. ``execute`` is the one place that picks which.

- ``workers == 1``: ``run_sequential`` (``_sequential.py``), in this process;
- ``workers > 1``: the process pool ``tunery.run.caviar.run_pool`` (its module is imported only
  then), which must keep the same contract: ask and tell in this process (one writer per study),
  objectives in the workers, classified by ``call_objective``; stop when ``study.count_done()``
  reaches ``target``; call ``on_finished(frozen_trial)`` once each trial is stored.

Executors see the study only through ``AskTell`` (``_protocol.py``): this package imports neither
``tunery.study`` nor anything above it.

``executor="ray"`` runs the trials on a Ray cluster instead (``_ray.py``, Ray imported only
then), under the same contract; ``_executor.py`` holds the seam both executors implement.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from tunery.run._capture import OUTPUT_LIMIT
from tunery.run._executor import EXECUTORS, Executor, LocalExecutor, make_executor
from tunery.run._protocol import AskTell, OnFinished, Run
from tunery.run._resources import Resources
from tunery.run._sequential import Outcome, call_objective, outcome_of, run_sequential
from tunery.trial import Trial

__all__ = [
    "EXECUTORS",
    "OUTPUT_LIMIT",
    "AskTell",
    "Executor",
    "LocalExecutor",
    "OnFinished",
    "Outcome",
    "Resources",
    "Run",
    "call_objective",
    "connect",
    "default_workers",
    "execute",
    "make_executor",
    "outcome_of",
    "run_sequential",
]


def default_workers() -> int:
    """The CPU cores this process may use (its affinity where the OS tells it)."""
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity is not None else os.cpu_count()
    return max(1, cores or 1)


def connect(executor: str, address: str | None = None) -> None:
    """Check that ``executor`` can run here (Ray installed, its cluster reachable), writing
    nothing: a caller can then open its store knowing the run will start."""
    if executor == "ray":
        from tunery.run._ray import connect as connect_ray

        connect_ray(address)
    elif address is not None or executor not in EXECUTORS:
        make_executor(executor, address=address)  # raises the ConfigError that names the key


def execute(
    study: AskTell,
    objective: Callable[[Trial], Any],
    *,
    target: int,
    workers: int = 1,
    on_finished: OnFinished | None = None,
    live: bool | None = None,
    executor: str = "local",
    address: str | None = None,
    resources: Mapping[str, Any] | Resources | None = None,
) -> None:
    """Run trials of ``study`` until it holds ``target`` finished ones.

    ``executor="local"``: with ``workers`` processes of this machine; ``"ray"``: as Ray tasks on
    the cluster at ``address`` (``"auto"``, ``HOST:PORT``, ``ray://HOST:PORT``; ``None``: a Ray of
    this machine), each holding ``resources`` (``{"cpu": 1, "gpu": 0.25}``).
    """
    chosen = make_executor(executor, workers=workers, address=address, resources=resources)
    chosen.run(Run(study, objective, target, on_finished, live))
