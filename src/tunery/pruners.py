"""Pruners: stop hopeless trials early, judging a running trial's curve against the others'.

A pruner is asked by ``trial.should_prune()`` (in the coordinating process, also for trials that
run in a process pool) as ``pruner.should_prune(study_trials, trial, epoch)``, where ``trial`` is
the running trial's record with its curve so far (``epoch -> {metric: value}``). It reads the
study's metric from the curves and compares values by the study's direction.

- ``MedianPruner``: after ``warmup_epochs``, stop a trial whose metric is worse than the median of
  the COMPLETE trials at the same epoch (once ``min_trials`` of them reached it).
- ``ASHAPruner``: asynchronous successive halving. Rungs sit at ``min_epochs · η^k`` epochs; at a
  rung a trial goes on only if it is in the top ``1/η`` of the trials that reached that rung so far
  (the best one always goes on, so the first trials to arrive are never starved).

``metric`` and ``direction`` are the study's: ``pruner.bind(metric=study.metric,
direction=study.direction)`` returns a copy with the fields left as ``None`` filled in (the config
runner, ``tunery.workflows.objective``, does it). Unbound, a pruner watches ``val_accuracy`` and
maximizes it (the study defaults).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

import numpy as np

from tunery._exceptions import ConfigError
from tunery._validation import check_int
from tunery.records import FrozenTrial, TrialState, check_direction

__all__ = ["PRUNERS", "ASHAPruner", "MedianPruner", "Pruner", "make_pruner"]

DEFAULT_METRIC = "val_accuracy"
DEFAULT_DIRECTION = "maximize"


class Pruner(Protocol):
    """Decides, from the study's trials, whether a running trial should stop at ``epoch``."""

    def should_prune(
        self, study_trials: Sequence[FrozenTrial], trial: FrozenTrial, epoch: int
    ) -> bool:
        """``trial`` is the running trial's record, with its curve so far."""
        ...


@dataclass(frozen=True, kw_only=True)
class _Watch:
    """What every pruner watches: the metric and the direction in which it improves."""

    metric: str | None = None
    direction: str | None = None

    def __post_init__(self) -> None:
        if self.metric is not None and (not isinstance(self.metric, str) or not self.metric):
            raise ConfigError("pruner metric", self.metric, "a non-empty metric name or None")
        if self.direction is not None:
            check_direction(self.direction)

    def bind(self, *, metric: str, direction: str) -> Self:
        """A copy that watches the study's ``metric`` and ``direction`` where this one has None."""
        return dataclasses.replace(
            self,
            metric=self.metric if self.metric is not None else metric,
            direction=self.direction if self.direction is not None else direction,
        )

    @property
    def watched(self) -> str:
        return self.metric if self.metric is not None else DEFAULT_METRIC

    @property
    def maximize(self) -> bool:
        return (self.direction or DEFAULT_DIRECTION) == "maximize"

    def value_at(self, trial: FrozenTrial, epoch: int) -> float | None:
        """The watched metric of ``trial`` at exactly ``epoch``, or None."""
        row = trial.curve.get(epoch)
        return None if row is None else row.get(self.watched)

    def worse(self, value: float, than: float) -> bool:
        """Whether ``value`` is strictly worse than ``than``; NaN is worse than anything."""
        if math.isnan(value):
            return True
        return value < than if self.maximize else value > than

    def peers_at(
        self, study_trials: Sequence[FrozenTrial], trial: FrozenTrial, epoch: int, states: set[Any]
    ) -> list[float]:
        """Finite values at ``epoch`` of the other trials in ``states``."""
        values = []
        for other in study_trials:
            if other.number == trial.number or other.state not in states:
                continue
            value = self.value_at(other, epoch)
            if value is not None and math.isfinite(value):
                values.append(value)
        return values


@dataclass(frozen=True, kw_only=True)
class MedianPruner(_Watch):
    """Stop a trial whose metric is worse than the median of the COMPLETE trials at that epoch.

    Args:
        warmup_epochs: epochs ``<= warmup_epochs`` are never judged (early curves are noisy).
        min_trials: how many COMPLETE trials must have a value at the epoch before judging.
        metric, direction: the study's, filled in by ``bind`` (see the module docstring).
    """

    warmup_epochs: int = 0
    min_trials: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("warmup_epochs", self.warmup_epochs, minimum=0)
        _check_int("min_trials", self.min_trials, minimum=1)

    def should_prune(
        self, study_trials: Sequence[FrozenTrial], trial: FrozenTrial, epoch: int
    ) -> bool:
        if epoch <= self.warmup_epochs:
            return False
        value = self.value_at(trial, epoch)
        if value is None:
            return False
        peers = self.peers_at(study_trials, trial, epoch, {TrialState.COMPLETE})
        if len(peers) < self.min_trials:
            return False
        return self.worse(value, float(np.median(peers)))


@dataclass(frozen=True, kw_only=True)
class ASHAPruner(_Watch):
    """Asynchronous successive halving (Li et al., 2020).

    Rungs sit at ``min_epochs · reduction_factor^k`` epochs, below ``max_epochs`` (the end of
    training, where there is nothing left to save). When a trial reports at a rung, it goes on if
    it ranks among the best ``max(1, n // reduction_factor)`` of the ``n`` trials (any state but
    FAILED and DIVERGED, itself included) that have a value at that rung. Only rung epochs are
    judged, so call ``should_prune`` every epoch.

    Args:
        min_epochs: the first rung.
        reduction_factor: ``η``; only the top ``1/η`` of a rung goes on to the next.
        max_epochs: no rung at or past this epoch; ``None`` puts no end to the rungs.
        metric, direction: the study's, filled in by ``bind``.
    """

    min_epochs: int = 1
    reduction_factor: int = 3
    max_epochs: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("min_epochs", self.min_epochs, minimum=1)
        _check_int("reduction_factor", self.reduction_factor, minimum=2)
        if self.max_epochs is not None:
            _check_int("max_epochs", self.max_epochs, minimum=self.min_epochs)

    def rungs(self, up_to: int) -> list[int]:
        """The rung epochs ``<= up_to`` (and below ``max_epochs``), increasing."""
        end = up_to if self.max_epochs is None else min(up_to, self.max_epochs - 1)
        rungs, epoch = [], self.min_epochs
        while epoch <= end:
            rungs.append(epoch)
            epoch *= self.reduction_factor
        return rungs

    def is_rung(self, epoch: int) -> bool:
        return epoch in self.rungs(epoch)

    def should_prune(
        self, study_trials: Sequence[FrozenTrial], trial: FrozenTrial, epoch: int
    ) -> bool:
        if not self.is_rung(epoch):
            return False
        value = self.value_at(trial, epoch)
        if value is None:
            return False
        if math.isnan(value):
            return True
        peers = self.peers_at(study_trials, trial, epoch, _RANKED)
        keep = max(1, (len(peers) + 1) // self.reduction_factor)
        better = sum(1 for peer in peers if self.worse(value, peer))
        return better >= keep


_RANKED = {TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED}

PRUNERS: dict[str, type[MedianPruner] | type[ASHAPruner]] = {
    "median": MedianPruner,
    "asha": ASHAPruner,
}


def make_pruner(name: str | None, **options: Any) -> MedianPruner | ASHAPruner | None:
    """The pruner called ``name`` ("median", "asha"), built with ``options``; None for None.

    ``make_pruner("asha", min_epochs=2, reduction_factor=3, max_epochs=30)``. An unknown name or
    option raises ``ConfigError``. ``None`` ignores the options, so that turning pruning off (a
    ``--pruner none`` flag) works whatever options a config file holds.
    """
    if name is None:
        return None
    kind = PRUNERS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ConfigError("pruner", name, f"one of {sorted(PRUNERS)} or None")
    known = {field.name for field in dataclasses.fields(kind)}
    for key in options:
        if key not in known:
            raise ConfigError(f"pruner option {key!r}", options[key], f"one of {sorted(known)}")
    return kind(**options)


def _check_int(field: str, value: object, *, minimum: int) -> None:
    check_int(field, value, minimum)
