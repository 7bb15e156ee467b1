"""Every part of the report at once, from one read of the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tunery.records import FrozenTrial
from tunery.report._data import (
    CurvesData,
    ParamAxis,
    ParamPoints,
    StudyLike,
    StudySnapshot,
    best_trials,
    curves_data,
    param_axes,
    param_points,
    state_counts,
)
from tunery.report._importance import Importance, importance
from tunery.report._population import (
    MemberSchedule,
    Stretch,
    is_segment,
    member_schedules,
    population_lineage,
)
from tunery.report._rounds import RoundRanges, ZoomData, round_ranges, zoom_data

__all__ = [
    "ReportData",
    "report_data",
]


# -- everything at once ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportData:
    """Everything the report and the terminal summary show, computed from one read of the store."""

    name: str
    direction: str
    metric: str
    n_trials: int
    counts: dict[str, int]
    best: list[FrozenTrial]
    curves: CurvesData
    params: list[ParamPoints]
    importance: Importance
    zoom: ZoomData | None
    rounds: list[RoundRanges]
    lineage: list[Stretch] = field(default_factory=list)
    schedules: list[MemberSchedule] = field(default_factory=list)
    axes: dict[str, ParamAxis] = field(default_factory=dict)


def report_data(study: StudyLike, *, top: int = 10, seed: int = 0) -> ReportData:
    """Read ``study`` once and compute every part of the report (``top`` best trials listed)."""
    snapshot = StudySnapshot.of(study)
    ranking = importance(snapshot, seed=seed)
    return ReportData(
        name=snapshot.name,
        direction=snapshot.direction,
        metric=snapshot.metric,
        n_trials=len(snapshot.trials),
        counts=state_counts(snapshot),
        best=best_trials(snapshot, top),
        curves=curves_data(snapshot),
        params=param_points(snapshot),
        importance=ranking,
        zoom=zoom_data(snapshot, ranking=ranking),
        rounds=round_ranges(snapshot),
        **_population(snapshot),
    )


def _population(snapshot: StudySnapshot) -> dict[str, Any]:
    """A PBT study's lineage and schedules (empty for any other study)."""
    if not any(is_segment(t) for t in snapshot.trials):
        return {}
    return {
        "lineage": population_lineage(snapshot.trials),
        "schedules": member_schedules(snapshot.trials),
        "axes": param_axes(snapshot),
    }
