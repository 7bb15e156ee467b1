"""How trials travel between SQLite rows and records: the column list, metrics as JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tunery.records import Curve, FrozenTrial, TrialState, decode_json, encode_json

TRIAL_COLUMNS = (
    "t.trial_id, t.number, t.sample_id, t.round, t.params, t.state, t.value, t.error, "
    "t.interrupted, t.started, t.finished, t.parent_number, t.parent_epoch, "
    "CASE WHEN t.state = 0 THEN COALESCE(t.heartbeat, t.started) END, t.output"
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
