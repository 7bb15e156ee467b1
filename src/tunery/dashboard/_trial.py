"""A trial's page: its curves, events, lineage, checkpoints and, for a panda branch, what a nudge
may change and on which scale."""

from __future__ import annotations

import math
from typing import Any

from tunery.dashboard._state import StudyState
from tunery.dashboard._views import params_of
from tunery.records import Curve, Event, FrozenTrial, TrialState
from tunery.storage import BaseStorage
from tunery.workflows.panda import BRANCH_ATTR, branch_curve, branch_events

__all__ = ["is_panda", "trial_detail"]

# Where a nudge moves a setting that the study's space does not bound: its scale and a wide range.
_NUDGE_SCALES: dict[str, dict[str, Any]] = {
    "lr": {"kind": "float", "scale": "log", "low": 1e-6, "high": 1.0},
    "l2": {"kind": "float", "scale": "log", "low": 1e-8, "high": 1.0},
    "beta": {"kind": "float", "scale": "one_minus_log", "low": 0.5, "high": 0.9999},
    "beta2": {"kind": "float", "scale": "one_minus_log", "low": 0.9, "high": 0.99999},
    "epsilon": {"kind": "float", "scale": "log", "low": 1e-10, "high": 1e-3},
    "batch_size": {"kind": "int", "scale": "log", "low": 1, "high": 4096},
}
_UNKNOWN = {"kind": "float", "scale": "linear", "low": None, "high": None}


def is_panda(study: StudyState, storage: BaseStorage) -> bool:
    """Whether the study's latest trial is a panda branch (a panda study is made of branches)."""
    if not study.trials:
        return False
    if "panda" not in study.derived:
        latest = storage.get_trial(study.trials[-1].trial_id)
        study.derived["panda"] = isinstance(latest.user_attrs.get(BRANCH_ATTR), dict)
    return bool(study.derived["panda"])


def trial_detail(study: StudyState, storage: BaseStorage, number: int) -> dict[str, Any] | None:
    summary = study.trial(number)
    if summary is None:
        return None
    trial = storage.get_trial(summary.trial_id)
    branch = trial.user_attrs.get(BRANCH_ATTR)
    panda = isinstance(branch, dict)
    everyone = storage.get_all_trials(study.info.study_id) if panda else []
    head = _head(study, storage) if panda else None
    result = {
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value,
        "params": trial.params,
        "round": trial.round,
        "parent": list(trial.parent) if trial.parent else None,
        "started": trial.started,
        "finished": trial.finished,
        "error": trial.error,
        "curves": _curves(trial.curve),
        "path_curves": _curves(branch_curve(everyone, number)) if panda else None,
        "events": _events(trial, storage.get_events(study.info.study_id, pending=False)),
        "lineage": _lineage(study, everyone),
        "checkpoints": storage.checkpoint_epochs(trial.trial_id),
        "panda": panda,
        "head": head,
        "running": trial.state is TrialState.RUNNING,
        "nudgeable": _nudgeable(study, branch) if isinstance(branch, dict) else {},
        "hyperparameters": _current(trial) if panda else None,
        "output": trial.output,
    }
    return result


def _head(study: StudyState, storage: BaseStorage) -> int:
    return study.trials[-1].number


def _curves(curve: Curve) -> dict[str, dict[str, list[Any]]]:
    lines: dict[str, dict[str, list[Any]]] = {}
    for epoch in sorted(curve):
        for metric, value in curve[epoch].items():
            line = lines.setdefault(metric, {"epochs": [], "values": []})
            line["epochs"].append(epoch)
            line["values"].append(value)
    return lines


def _events(trial: FrozenTrial, stored: list[Event]) -> list[dict[str, Any]]:
    """The events sent to this trial or applied by it, with the epoch at which panda applied each
    (from its log). An event queued while no panda ran is sent to the latest branch and applied by
    the branch the next run starts: both pages show it."""
    at = {entry.event_id: entry for entry in branch_events(trial)}
    result = []
    for event in stored:
        if event.trial_number != trial.number and event.event_id not in at:
            continue
        applied = at.get(event.event_id)
        result.append(
            {
                "event_id": event.event_id,
                "kind": event.kind,
                "payload": event.payload,
                "epoch": None if applied is None else applied.epoch,
                "error": None if applied is None else applied.error,
                "created": event.created,
                "applied": event.applied,
            }
        )
    return result


def _lineage(study: StudyState, everyone: list[FrozenTrial]) -> list[dict[str, Any]]:
    """Trials that branched or were branched from: number, parent ``[number, epoch]``, origin."""
    parents = {t.parent[0] for t in study.trials if t.parent is not None}
    origins = {
        t.number: t.user_attrs[BRANCH_ATTR].get("origin", "branch")
        for t in everyone
        if isinstance(t.user_attrs.get(BRANCH_ATTR), dict)
    }
    return [
        {
            "number": t.number,
            "parent": list(t.parent) if t.parent else None,
            "origin": origins.get(t.number, "branch"),
            "state": t.state.name,
        }
        for t in study.trials
        if t.parent is not None or t.number in parents or t.number in origins
    ]


def _nudgeable(study: StudyState, branch: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each setting a nudge may change, on the study space's scale and bounds where it has them."""
    space = params_of(study)
    result = {}
    for name in branch.get("nudgeable", []):
        known = space.get(name)
        if known is not None and known["kind"] != "choice" and known["low"] is not None:
            spec = {key: known[key] for key in ("kind", "scale", "low", "high")}
        else:
            spec = dict(_NUDGE_SCALES.get(name, _UNKNOWN))
        result[str(name)] = spec
    return result


def _current(trial: FrozenTrial) -> dict[str, Any]:
    """The branch's params with the nudges panda applied to it so far."""
    params = dict(trial.params)
    for entry in branch_events(trial):
        if entry.kind == "nudge" and entry.error is None:
            params.update(entry.payload)
    return {k: v for k, v in params.items() if not (isinstance(v, float) and math.isnan(v))}
