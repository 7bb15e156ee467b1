"""The live stream of a study: server-sent events with the points and trial changes since a cursor.

The server polls the store every ``poll`` seconds (in a worker thread: the store blocks) and sends
only what is new: ``points`` (each reported epoch after the cursor, one entry per metric; ``id:``
is the new cursor, so a browser reconnecting sends it back as ``Last-Event-ID``), ``trials`` (the
summaries of trials whose state or value changed) and a ``ping`` every ``ping`` seconds so that
proxies and browsers keep the connection open.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio

from tunery.dashboard._json import dumps
from tunery.dashboard._state import StoreState
from tunery.dashboard._views import trial_line

__all__ = ["stream"]

BATCH = 5000  # points per event at most; a backlog comes as several events at once


def _event(kind: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {dumps(data)}\n\n"


def _delta(
    state: StoreState, name: str, cursor: int, version: int
) -> tuple[list[str], int, int, bool]:
    """The events since ``cursor`` (points) and ``version`` (trials), the new pair, and whether
    more points wait (a full batch)."""
    events: list[str] = []
    with state.reading(name) as study:
        changed = study.changed_since(version)
        version = study.version
        points = state.storage.curve_points(study.info.study_id, after=cursor, limit=BATCH)
    if points:
        cursor = points[-1].seq
        data = [
            {"number": p.number, "metric": metric, "epoch": p.epoch, "value": value}
            for p in points
            for metric, value in p.metrics.items()
        ]
        events.append(_event("points", {"cursor": cursor, "points": data}, cursor))
    if changed:
        events.append(_event("trials", {"trials": [trial_line(t) for t in changed]}))
    return events, cursor, version, len(points) == BATCH


async def stream(
    state: StoreState, name: str, cursor: int | None, *, poll: float = 0.5, ping: float = 15.0
) -> AsyncIterator[str]:
    def start() -> tuple[int, int]:
        with state.reading(name) as study:
            return state.storage.curve_cursor() if cursor is None else cursor, study.version

    at, version = await anyio.to_thread.run_sync(start)
    yield _event("ping", {"cursor": at})
    last_ping = time.monotonic()
    while True:
        events, at, version, more = await anyio.to_thread.run_sync(_delta, state, name, at, version)
        for event in events:
            yield event
        if time.monotonic() - last_ping >= ping:
            yield _event("ping", {"cursor": at})
            last_ping = time.monotonic()
        if not more:
            await anyio.sleep(poll)
