"""Which parameters mattered: a random forest's importances on the unit-cube params."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tunery._exceptions import ConfigError
from tunery._validation import check_int
from tunery.records import FrozenTrial, TrialState
from tunery.report._data import (
    MIN_IMPORTANCE_TRIALS,
    StudyLike,
    StudySnapshot,
    _distributions,
    _finite_value,
)
from tunery.space import Distribution

__all__ = [
    "Importance",
    "importance",
]


# -- importance ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Importance:
    """Hyperparameter importance: ``ranking`` holds ``(name, share)``, most important first.

    Shares are a random forest's impurity importances (mean decrease in impurity), fitted on the
    COMPLETE trials' unit-cube params; they sum to 1. When there is no ranking, ``note`` says why.
    """

    ranking: list[tuple[str, float]]
    n_trials: int
    note: str | None = None

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.ranking]


def importance(
    study: StudyLike,
    *,
    seed: int = 0,
    min_trials: int = MIN_IMPORTANCE_TRIALS,
    n_estimators: int = 64,
) -> Importance:
    """Rank the parameters by how much of the metric's variance a random forest puts on them.

    Features are params in unit coordinates (``to_unit`` of the first round holding each), so a log
    parameter's decades are equal steps, as when it was sampled. ``X: (N, P)``, ``y: (N,)`` for the
    ``N`` COMPLETE trials that hold every one of the ``P`` parameters.
    """
    check_int("min_trials", min_trials, 2)
    names, X, y = _unit_features(StudySnapshot.of(study))
    if len(y) < min_trials:
        note = f"needs at least {min_trials} COMPLETE trials to rank parameters, has {len(y)}"
        return Importance([], len(y), note)
    if not names:
        return Importance([], len(y), "no parameter of the search space to rank")
    if np.ptp(y) == 0.0:
        return Importance([], len(y), f"every COMPLETE trial has the same {study.metric}")
    shares = _forest_importances(X, y, seed, n_estimators)
    order = sorted(range(len(names)), key=lambda i: (-shares[i], i))
    return Importance([(names[i], float(shares[i])) for i in order], len(y))


def _unit_features(study: StudyLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names ``(P,)``, ``X: (N, P)`` unit coordinates and ``y: (N,)`` values of COMPLETE trials."""
    distributions = _distributions(study.rounds)
    names = list(distributions)
    rows, values = [], []
    for trial in study.trials:
        value = _finite_value(trial)
        if trial.state is not TrialState.COMPLETE or value is None:
            continue
        row = _unit_row(trial, names, distributions)
        if row is not None:
            rows.append(row)
            values.append(value)
    X = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    return names, X, np.array(values, dtype=np.float64)


def _unit_row(
    trial: FrozenTrial, names: list[str], distributions: dict[str, Distribution]
) -> list[float] | None:
    try:
        return [distributions[name].to_unit(trial.params[name]) for name in names]
    except (KeyError, ConfigError):  # a param missing, or not one the space can place
        return None


def _forest_importances(X: np.ndarray, y: np.ndarray, seed: int, n_estimators: int) -> np.ndarray:
    from sklearn.ensemble import RandomForestRegressor  # heavy: loaded only for a report

    forest = RandomForestRegressor(n_estimators=n_estimators, random_state=seed, n_jobs=1)
    forest.fit(X, y)
    shares = np.asarray(forest.feature_importances_, dtype=np.float64)
    total = shares.sum()
    return shares / total if total > 0 else shares
