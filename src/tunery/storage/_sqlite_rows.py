"""How trials travel between SQLite rows and records: the column list, metrics as JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tunery.records import (
    Curve,
    FrozenTrial,
    TrialState,
    TrialSummary,
    decode_json,
    encode_json,
)

TRIAL_COLUMNS = (
    "t.trial_id, t.number, t.sample_id, t.round, t.params, t.state, t.value, t.error, "
    "t.interrupted, t.started, t.finished, t.parent_number, t.parent_epoch, "
    "CASE WHEN t.state = 0 THEN COALESCE(t.heartbeat, t.started) END, t.output"
)
# A summary leaves the curve out (its length instead): the dashboard lists 50k trials. A finished
# trial's length was counted when it finished (``epochs``); SQLite evaluates COALESCE lazily, so
# only the others' curves are counted here.
SUMMARY_COLUMNS = (
    "t.trial_id, t.number, t.round, t.params, t.state, t.value, t.started, t.finished, "
    "t.parent_number, t.parent_epoch, CASE WHEN t.state = 0 THEN COALESCE(t.heartbeat, t.started) "
    "END, COALESCE(t.epochs, (SELECT COUNT(*) FROM curves c WHERE c.trial_id = t.trial_id))"
)
RUNNING = int(TrialState.RUNNING)
COMPLETE = int(TrialState.COMPLETE)


def encode_metrics(metrics: Mapping[str, float]) -> str:
    """JSON object of metrics; NaN and inf become the strings 'nan', 'inf', '-inf' (valid JSON)."""
    return encode_json(
        {name: value if math.isfinite(value) else repr(value) for name, value in metrics.items()},
        "metrics",
    )


def decode_metrics(text: str) -> dict[str, float]:
    return {name: float(value) for name, value in decode_json(text).items()}


def decode_all_metrics(rows: list[tuple[Any, Any, str]]) -> list[dict[str, float]]:
    """The metrics of each ``(_, _, metrics)`` row, by one ``json.loads`` of them all."""
    every = decode_json("[" + ",".join(row[2] for row in rows) + "]")
    return [{name: float(value) for name, value in found.items()} for found in every]


def pick_best(extremes: tuple[float, float] | None, direction: str) -> float | None:
    if extremes is None:
        return None
    high, low = extremes
    return float(high) if direction == "maximize" else float(low)


def trial_record(row: tuple[Any, ...], curve: Curve, user_attrs: dict[str, Any]) -> FrozenTrial:
    (
        trial_id,
        number,
        sample_id,
        round_index,
        params,
        state,
        value,
        error,
        interrupted,
        started,
        finished,
        parent_number,
        parent_epoch,
        heartbeat,
        output,
    ) = row
    return FrozenTrial(
        number=number,
        trial_id=trial_id,
        sample_id=sample_id,
        round=round_index,
        params=decode_json(params),
        state=TrialState(state),
        value=value,
        curve=curve,
        error=error,
        interrupted=bool(interrupted),
        started=started,
        finished=finished,
        user_attrs=user_attrs,
        parent=None if parent_number is None else (parent_number, parent_epoch),
        heartbeat=heartbeat,
        output=output,
    )


_STATES = {int(state): state for state in TrialState}


def trial_summaries(rows: list[tuple[Any, ...]]) -> list[TrialSummary]:
    """Summaries of rows of ``SUMMARY_COLUMNS``. The params of all rows are decoded by one
    ``json.loads`` of their array: 50,000 calls cost three times as much."""
    every_params = decode_json("[" + ",".join(row[3] for row in rows) + "]")
    states = _STATES
    return [
        TrialSummary(
            number,
            trial_id,
            round_index,
            params,
            states[state],
            value,
            started,
            finished,
            None if parent_number is None else (parent_number, parent_epoch),
            epochs,
            heartbeat,
        )
        for (
            trial_id,
            number,
            round_index,
            _,
            state,
            value,
            started,
            finished,
            parent_number,
            parent_epoch,
            heartbeat,
            epochs,
        ), params in zip(rows, every_params, strict=True)
    ]
