"""The JSON of each read-only route, computed from a study's state (``_state``).

Everything a chart gets is downsampled here, on the server: a page of 50,000 trials receives a
few thousand numbers per chart, never the whole study.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from tunery.dashboard._state import StudyState, counts
from tunery.records import Curve, FrozenTrial, StudySummary, TrialState, TrialSummary, is_better
from tunery.report import StudySnapshot, importance, round_ranges
from tunery.space import Choice, Distribution, Float, Int
from tunery.storage import BaseStorage
from tunery.study import Round

__all__ = [
    "best_series",
    "curves",
    "importance_json",
    "importance_snapshot",
    "scatter",
    "study_detail",
    "study_line",
    "trial_line",
    "trials_page",
]

_SAMPLED_FOR_METRICS = 200


def iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# -- studies -----------------------------------------------------------------------------------


def study_line(summary: StudySummary) -> dict[str, Any]:
    study = summary.study
    found = {state.name: 0 for state in TrialState}
    found.update({state.name: n for state, n in summary.counts.items()})
    return {
        "name": study.name,
        "direction": study.direction,
        "metric": study.metric,
        "counts": found,
        "n_trials": summary.n_trials,
        "best_value": _finite(summary.best_value),
        "last_activity": iso(summary.last_activity),
    }


def best_trial(state: StudyState) -> TrialSummary | None:
    best: TrialSummary | None = None
    direction = state.info.direction
    for trial in state.trials:
        value = _finite(trial.value)
        if (
            trial.state is TrialState.COMPLETE
            and value is not None
            and (best is None or is_better(value, best.value or 0.0, direction))
        ):
            best = trial
    return best


def study_detail(state: StudyState, storage: BaseStorage, panda: bool) -> dict[str, Any]:
    best = best_trial(state)
    return {
        "name": state.info.name,
        "direction": state.info.direction,
        "metric": state.info.metric,
        "counts": counts(state.trials),
        "n_trials": len(state.trials),
        "best": None
        if best is None
        else {"number": best.number, "value": best.value, "params": best.params},
        "params": params_of(state),
        "rounds": rounds_of(state.rounds),
        "metrics": metric_names(state, storage),
        "panda": panda,
    }


def _dist_json(dist: Distribution) -> dict[str, Any]:
    if isinstance(dist, Choice):
        return {
            "kind": "choice",
            "scale": "linear",
            "low": None,
            "high": None,
            "choices": list(dist.options),
        }
    kind = "int" if isinstance(dist, Int) else "float"
    assert isinstance(dist, Float | Int)
    return {
        "kind": kind,
        "scale": dist.scale,
        "low": float(dist.low),
        "high": float(dist.high),
        "choices": None,
    }


def params_of(state: StudyState) -> dict[str, dict[str, Any]]:
    """Each parameter's kind and scale: from the first round that holds it; a parameter no round
    holds (given params, as a panda's) from the values its trials took."""
    if "params" in state.derived:
        return dict(state.derived["params"])
    found: dict[str, dict[str, Any]] = {}
    for round_ in state.rounds:
        for name, dist in round_.space.items():
            found.setdefault(name, _dist_json(dist))
    free = dict.fromkeys(name for t in state.trials for name in t.params if name not in found)
    for name in free:
        found[name] = _free_param([t.params.get(name) for t in state.trials])
    state.derived["params"] = found
    return dict(found)


def _free_param(values: list[Any]) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    numeric = [float(v) for v in present if isinstance(v, int | float) and not isinstance(v, bool)]
    if present and len(numeric) == len(present):
        positive = min(numeric) > 0
        kind = "int" if all(isinstance(v, int) for v in present) else "float"
        scale = "log" if positive and max(numeric) / min(numeric) > 100 else "linear"
        return {
            "kind": kind,
            "scale": scale,
            "low": min(numeric),
            "high": max(numeric),
            "choices": None,
        }
    options = list({repr(v): v for v in present}.values())
    return {"kind": "choice", "scale": "linear", "low": None, "high": None, "choices": options}


def rounds_of(rounds: Sequence[Round]) -> list[dict[str, Any]]:
    """Each round with its box in values (a zoomed round's box mapped back through its base)."""
    snapshot = StudySnapshot("", "maximize", "", [], list(rounds))
    result = []
    for ranges in round_ranges(snapshot):
        box = {n: [r.low, r.high] for n, r in ranges.ranges.items() if r.options is None}
        kept = {n: list(r.options) for n, r in ranges.ranges.items() if r.options is not None}
        result.append(
            {
                "number": ranges.index,
                "origin": ranges.origin,
                "sampler": ranges.sampler,
                "box": box,
                "choices": kept,
            }
        )
    return result


def metric_names(state: StudyState, storage: BaseStorage) -> list[str]:
    """The metric names in the curves of the running trials and of up to 200 others spread over
    the study (all of a smaller study): reading every curve of 50,000 trials costs seconds."""
    if "metrics" in state.derived:
        return list(state.derived["metrics"])
    trials = state.trials
    picked = {t.trial_id for t in trials if t.state is TrialState.RUNNING}
    step = max(1, len(trials) // _SAMPLED_FOR_METRICS)
    picked.update(t.trial_id for t in trials[::step])
    names: dict[str, None] = {state.info.metric: None} if trials else {}
    for curve in storage.get_curves(picked).values():
        for row in curve.values():
            names.update(dict.fromkeys(row))
    state.derived["metrics"] = list(names)
    return list(names)


# -- trials ------------------------------------------------------------------------------------


def trial_line(trial: TrialSummary) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state.name,
        "round": trial.round,
        "value": _finite(trial.value),
        "params": trial.params,
        "epochs": trial.epochs,
        "duration": trial.duration,
    }


def trials_page(
    state: StudyState,
    *,
    states: set[TrialState] | None,
    round_: int | None,
    value_min: float | None,
    value_max: float | None,
    sort: str,
    order: str,
    offset: int,
    limit: int,
) -> dict[str, Any]:
    chosen = [
        t
        for t in state.trials
        if (states is None or t.state in states)
        and (round_ is None or t.round == round_)
        and _within(t.value, value_min, value_max)
    ]
    descending = order == "desc"
    if sort == "number":
        chosen.sort(key=lambda t: t.number, reverse=descending)
    else:
        key = (lambda t: _finite(t.value)) if sort == "value" else (lambda t: t.duration)
        known = [t for t in chosen if key(t) is not None]
        unknown = [t for t in chosen if key(t) is None]  # no value or no duration: always last
        known.sort(key=lambda t: (key(t), t.number), reverse=descending)
        chosen = known + unknown
    return {
        "total": len(chosen),
        "trials": [trial_line(t) for t in chosen[offset : offset + limit]],
    }


def _within(value: float | None, low: float | None, high: float | None) -> bool:
    if low is None and high is None:
        return True
    if value is None or not math.isfinite(value):
        return False
    return (low is None or value >= low) and (high is None or value <= high)


# -- best so far -------------------------------------------------------------------------------


def best_series(state: StudyState, max_points: int) -> dict[str, Any]:
    """The COMPLETE trials' values in number order and the best so far, at most ``max_points``
    of them plus every point where the best changes (those are the picture)."""
    key = f"best:{max_points}"
    if key in state.derived:
        return dict(state.derived[key])
    done = [
        t for t in state.trials if t.state is TrialState.COMPLETE and _finite(t.value) is not None
    ]
    values = np.array([t.value for t in done], dtype=float)
    numbers = np.array([t.number for t in done], dtype=np.int64)
    maximize = state.info.direction == "maximize"
    best = np.maximum.accumulate(values) if maximize else np.minimum.accumulate(values)
    keep = _spread(len(values), max_points)
    if len(values):
        changes = np.flatnonzero(np.r_[True, best[1:] != best[:-1]])
        keep = np.union1d(keep, changes)
    result = {
        "numbers": numbers[keep].tolist(),
        "values": values[keep].tolist(),
        "best": best[keep].tolist(),
        "total": len(values),
    }
    state.derived[key] = result
    return dict(result)


def _spread(n: int, most: int) -> np.ndarray:
    """Up to ``most`` indices of ``range(n)``, evenly spread, first and last included."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(np.int64))


# -- curves ------------------------------------------------------------------------------------


def pick_curves(state: StudyState, max_trials: int) -> list[TrialSummary]:
    """Running trials first (they grow live), then the best few, then a spread over the values."""
    running = [t for t in state.trials if t.state is TrialState.RUNNING][:max_trials]
    rest = [t for t in state.trials if t.state is not TrialState.RUNNING and t.epochs]
    valued = sorted(
        (t for t in rest if _finite(t.value) is not None),
        key=lambda t: t.value or 0.0,
        reverse=state.info.direction == "maximize",
    )
    room = max_trials - len(running)
    best = valued[: max(0, min(room, max(10, room // 10)))]
    others = valued[len(best) :] or [t for t in rest if _finite(t.value) is None]
    spread = [others[i] for i in _spread(len(others), max(0, room - len(best)))]
    chosen = {t.number: t for t in [*running, *best, *spread]}
    return [chosen[n] for n in sorted(chosen)]


def curves(
    state: StudyState, storage: BaseStorage, metric: str, max_trials: int, max_points: int
) -> dict[str, Any]:
    cursor = storage.curve_cursor()  # before the curves: a point after it comes by the stream
    shown = pick_curves(state, max_trials)
    read = storage.get_curves(t.trial_id for t in shown)
    lines = []
    for trial in shown:
        epochs, values = _metric_line(read.get(trial.trial_id, {}), metric, max_points)
        if epochs:
            lines.append(
                {
                    "number": trial.number,
                    "state": trial.state.name,
                    "value": _finite(trial.value),
                    "epochs": epochs,
                    "values": values,
                }
            )
    with_curves = sum(1 for t in state.trials if t.epochs)
    return {
        "metric": metric,
        "curves": lines,
        "cursor": cursor,
        "shown": len(lines),
        "total": with_curves,
    }


def _metric_line(curve: Curve, metric: str, max_points: int) -> tuple[list[int], list[float]]:
    epochs = [epoch for epoch in sorted(curve) if metric in curve[epoch]]
    keep = _spread(len(epochs), max_points)
    return [epochs[i] for i in keep], [curve[epochs[i]][metric] for i in keep]


# -- each parameter against the metric ---------------------------------------------------------


def scatter(state: StudyState, param: str, max_points: int) -> dict[str, Any] | None:
    """``None`` if the study has no such parameter."""
    params = params_of(state)
    if param not in params:
        return None
    key = f"scatter:{param}:{max_points}"
    if key not in state.derived:
        state.derived[key] = _scatter(state, param, params[param], max_points)
    return dict(state.derived[key])


def _scatter(
    state: StudyState, param: str, spec: dict[str, Any], max_points: int
) -> dict[str, Any]:
    choices = spec["choices"]
    index = {repr(option): i for i, option in enumerate(choices or [])}
    xs, ys, numbers, rounds = [], [], [], []
    for trial in state.trials:
        value = _finite(trial.value)
        if value is None or trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            continue
        x = _position(trial.params.get(param), index if choices is not None else None)
        if x is not None:
            xs.append(x)
            ys.append(value)
            numbers.append(trial.number)
            rounds.append(trial.round)
    keep = _spread(len(xs), max_points)
    result: dict[str, Any] = {
        "param": param,
        "scale": spec["scale"],
        "kind": spec["kind"],
        "x": [xs[i] for i in keep],
        "y": [ys[i] for i in keep],
        "numbers": [numbers[i] for i in keep],
        "rounds": [rounds[i] for i in keep],
        "total": len(xs),
    }
    if choices is not None:
        result["choices"] = choices
    return result


def _position(value: Any, index: dict[str, int] | None) -> float | None:
    if index is not None:
        found = index.get(repr(value))
        return None if found is None else float(found)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


# -- importance --------------------------------------------------------------------------------


def importance_snapshot(state: StudyState, most: int) -> StudySnapshot:
    """The study's COMPLETE trials, up to ``most`` spread evenly over them (a fixed pick), as a
    snapshot that no later refresh changes: the forest is fitted on it outside the lock."""
    done = [t for t in state.trials if t.state is TrialState.COMPLETE]
    picked = [done[i] for i in _spread(len(done), most)]
    records = [
        FrozenTrial(t.number, t.trial_id, None, t.round, t.params, t.state, t.value) for t in picked
    ]
    info = state.info
    return StudySnapshot(info.name, info.direction, info.metric, records, list(state.rounds))


def importance_json(snapshot: StudySnapshot, trees: int) -> dict[str, Any]:
    """The report's importance (a forest of ``trees`` trees) on the snapshot's trials."""
    ranking = importance(snapshot, n_estimators=trees)
    return {"importance": dict(ranking.ranking), "n_trials": ranking.n_trials, "note": ranking.note}
