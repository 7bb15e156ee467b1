"""The SQLite store's reads over many trials at once: the study list, and what a dashboard over
50,000 trials asks (summaries without curves, some trials' curves, the points after a cursor).

Functions of an open connection; ``SqliteStorage`` calls them under its lock (several queries in
one read transaction where they must agree).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from tunery.records import (
    Curve,
    CurvePoint,
    FrozenTrial,
    StudyInfo,
    StudySummary,
    TrialState,
    TrialSummary,
    decode_json,
)
from tunery.storage._sqlite_rows import (
    COMPLETE,
    SUMMARY_COLUMNS,
    TRIAL_COLUMNS,
    decode_all_metrics,
    decode_metrics,
    pick_best,
    trial_record,
    trial_summaries,
)

__all__ = [
    "curve_cursor",
    "curve_points",
    "get_curves",
    "list_studies",
    "load_trials",
    "summaries",
]

_CHUNK = 500  # ids per IN (...): SQLite caps the number of host parameters of one statement


def list_studies(con: sqlite3.Connection) -> list[StudySummary]:
    """Every study with its counts by state, best COMPLETE value and last activity (call it in
    one read transaction: the four queries must see the same trials)."""
    studies = [
        StudyInfo(*row)
        for row in con.execute(
            "SELECT study_id, name, direction, seed, metric, created FROM studies ORDER BY study_id"
        )
    ]
    counts: dict[int, dict[TrialState, int]] = {study.study_id: {} for study in studies}
    for study_id, state, count in con.execute(
        "SELECT study_id, state, COUNT(*) FROM trials GROUP BY study_id, state"
    ):
        counts[study_id][TrialState(state)] = count
    extremes = {
        row[0]: row[1:]
        for row in con.execute(
            "SELECT study_id, MAX(value), MIN(value) FROM trials WHERE state = ? GROUP BY study_id",
            (COMPLETE,),
        )
    }
    latest = dict(
        con.execute(
            "SELECT study_id, MAX(MAX(started), COALESCE(MAX(finished), 0), "
            "COALESCE(MAX(heartbeat), 0)) FROM trials GROUP BY study_id"
        ).fetchall()
    )
    return [
        StudySummary(
            study,
            counts[study.study_id],
            pick_best(extremes.get(study.study_id), study.direction),
            latest.get(study.study_id),
        )
        for study in studies
    ]


def load_trials(con: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> list[FrozenTrial]:
    """Full records of the trials matching ``where`` (over ``trials t``), in trial_id order (call
    it in one read transaction: trials, curves and attributes must agree)."""
    rows = con.execute(
        f"SELECT {TRIAL_COLUMNS} FROM trials t WHERE {where} ORDER BY t.trial_id", args
    ).fetchall()
    if not rows:
        return []
    curves: dict[int, Curve] = {}
    for trial_id, epoch, metrics in con.execute(
        f"SELECT c.trial_id, c.epoch, c.metrics FROM curves c JOIN trials t "
        f"ON c.trial_id = t.trial_id WHERE {where}",
        args,
    ):
        curves.setdefault(trial_id, {})[epoch] = decode_metrics(metrics)
    attrs: dict[int, dict[str, Any]] = {}
    for trial_id, key, value in con.execute(
        f"SELECT a.trial_id, a.key, a.value FROM user_attrs a JOIN trials t "
        f"ON a.trial_id = t.trial_id WHERE {where}",
        args,
    ):
        attrs.setdefault(trial_id, {})[key] = decode_json(value)
    return [trial_record(row, curves.get(row[0], {}), attrs.get(row[0], {})) for row in rows]


def summaries(con: sqlite3.Connection, study_id: int, after_id: int) -> list[TrialSummary]:
    rows = con.execute(
        f"SELECT {SUMMARY_COLUMNS} FROM trials t WHERE t.study_id = ? AND t.trial_id > ? "
        "ORDER BY t.trial_id",
        (study_id, after_id),
    ).fetchall()
    return trial_summaries(rows)


def get_curves(con: sqlite3.Connection, trial_ids: Iterable[int]) -> dict[int, Curve]:
    wanted = sorted({int(trial_id) for trial_id in trial_ids})
    rows: list[tuple[int, int, str]] = []
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows += con.execute(
            f"SELECT trial_id, epoch, metrics FROM curves WHERE trial_id IN ({marks})", chunk
        ).fetchall()
    curves: dict[int, Curve] = {}
    for (trial_id, epoch, _), metrics in zip(rows, decode_all_metrics(rows), strict=True):
        curves.setdefault(trial_id, {})[epoch] = metrics
    return {trial_id: dict(sorted(curve.items())) for trial_id, curve in curves.items()}


def curve_points(
    con: sqlite3.Connection, study_id: int, after: int, limit: int
) -> list[CurvePoint]:
    rows = con.execute(
        "SELECT c.seq, t.number, c.epoch, c.metrics FROM curves c JOIN trials t "
        "ON c.trial_id = t.trial_id WHERE c.seq > ? AND t.study_id = ? ORDER BY c.seq LIMIT ?",
        (after, study_id, limit),
    ).fetchall()
    return [
        CurvePoint(seq, number, epoch, decode_metrics(metrics))
        for seq, number, epoch, metrics in rows
    ]


def curve_cursor(con: sqlite3.Connection) -> int:
    ((seq,),) = con.execute("SELECT COALESCE(MAX(seq), 0) FROM curves").fetchall()
    return int(seq)
