"""The live stream of a study: server-sent events with the points and trial changes since a cursor.

The server polls the store every ``poll`` seconds (in a worker thread: the store blocks) and sends
only what is new: ``points`` (each reported epoch after the cursor, one entry per metric; ``id:``
is the new cursor, so a browser reconnecting sends it back as ``Last-Event-ID``), ``trials`` (the
summaries of trials whose state or value changed), ``events`` (control events added or applied
since: a nudge sent from the CLI, panda applying one) and a ``ping`` every ``ping`` seconds so that
proxies and browsers keep the connection open.

Both carry ``since``: the latest time (an event's creation or application) of the control events
the stream has told of. A page reconnecting passes it back (``?since=``) and first gets every
event created or applied after it, so a nudge, pause or rollback during the gap is not missed.
The times are those the writers stamped (the CLI's, panda's): one machine's clock for a local store.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio

from tunery.dashboard._controls import event_json
from tunery.dashboard._json import dumps
from tunery.dashboard._state import StoreState
from tunery.dashboard._views import trial_line

__all__ = ["stream"]

BATCH = 5000  # points per event at most; a backlog comes as several events at once


def _event(kind: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {dumps(data)}\n\n"


@dataclass
class _Seen:
    """What a stream has sent so far."""

    cursor: int  # the last point's seq
    version: int  # the study state's version of trial changes
    marker: tuple[int, ...]  # the store's change marker when the events were last read
    events: dict[int, float | None]  # event id -> when it was applied (None: pending)
    since: float = 0.0  # the latest creation or application among the events told of


def _read_events(state: StoreState, study_id: int, seen: _Seen) -> list[dict[str, Any]]:
    """The control events added or applied since the stream last looked (none if nothing was
    written since: the change marker did not move)."""
    marker = state.storage.change_marker()
    if marker == seen.marker:
        return []
    seen.marker = marker
    fresh = []
    for event in state.storage.get_events(study_id, pending=False):
        if event.event_id not in seen.events or seen.events[event.event_id] != event.applied:
            seen.events[event.event_id] = event.applied
            seen.since = max(seen.since, event.created, event.applied or 0.0)
            fresh.append({**event_json(event), "applied": event.applied})
    return fresh


def _stamp(event: dict[str, Any]) -> float:
    return float(max(event["created"], event["applied"] or 0.0))


def _delta(state: StoreState, name: str, seen: _Seen) -> tuple[list[str], bool]:
    """The events since what ``seen`` holds (which moves on), and whether more points wait (a
    full batch)."""
    events: list[str] = []
    with state.reading(name) as study:
        changed = study.changed_since(seen.version)
        seen.version = study.version
        points = state.storage.curve_points(study.info.study_id, after=seen.cursor, limit=BATCH)
        controls = _read_events(state, study.info.study_id, seen)
    if points:
        seen.cursor = points[-1].seq
        data = [
            {"number": p.number, "metric": metric, "epoch": p.epoch, "value": value}
            for p in points
            for metric, value in p.metrics.items()
        ]
        events.append(_event("points", {"cursor": seen.cursor, "points": data}, seen.cursor))
    if changed:
        events.append(_event("trials", {"trials": [trial_line(t) for t in changed]}))
    if controls:
        events.append(_event("events", {"events": controls, "since": seen.since}))
    return events, len(points) == BATCH


async def stream(
    state: StoreState,
    name: str,
    cursor: int | None,
    since: float | None = None,
    *,
    poll: float = 0.5,
    ping: float = 15.0,
) -> AsyncIterator[str]:
    """``since``: replay the control events created or applied after it first (a reconnect);
    ``None``: only those after the stream opened are news."""

    def start() -> tuple[_Seen, list[dict[str, Any]]]:
        with state.reading(name) as study:
            at = state.storage.curve_cursor() if cursor is None else cursor
            seen = _Seen(at, study.version, (), {})
            known = _read_events(state, study.info.study_id, seen)
            missed = [] if since is None else [e for e in known if _stamp(e) > since]
            return seen, missed

    seen, missed = await anyio.to_thread.run_sync(start)
    yield _event("ping", {"cursor": seen.cursor, "since": seen.since})
    if missed:
        yield _event("events", {"events": missed, "since": seen.since})
    last_ping = time.monotonic()
    while True:
        events, more = await anyio.to_thread.run_sync(_delta, state, name, seen)
        for event in events:
            yield event
        if time.monotonic() - last_ping >= ping:
            yield _event("ping", {"cursor": seen.cursor, "since": seen.since})
            last_ping = time.monotonic()
        if not more:
            await anyio.sleep(poll)
