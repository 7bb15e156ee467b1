"""The live stream: a trial that another thread or process is training shows its new points (and
its end) on the study's server-sent events, through a real uvicorn server.

No timing is asserted: the reader waits (generously) until what it expects has come.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.dashboard.conftest import EPOCHS as PANDA_EPOCHS
from tests.dashboard.conftest import NUDGED_LR, panda_config, serving
from tunery.config import load_config
from tunery.dashboard import create_app
from tunery.records import TrialState
from tunery.storage import SqliteStorage
from tunery.study import Study
from tunery.workflows.panda import PandaControl, babysit

TIMEOUT = 120.0  # seconds: a busy 2-core machine may be slow; nothing here is timed
EPOCHS = 6


@dataclass
class Sse:
    kind: str
    data: Any
    id: str | None


def parse(lines: Iterator[str]) -> Iterator[Sse]:
    kind, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield Sse(kind, json.loads("\n".join(data)), event_id)
            kind, data, event_id = "message", [], None
        elif line.startswith("event:"):
            kind = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif line.startswith("id:"):
            event_id = line.removeprefix("id:").strip()


def listen(
    url: str,
    done: Callable[[list[Sse]], bool],
    *,
    headers: dict[str, str] | None = None,
    on_open: Callable[[Sse], None] = lambda first: None,
) -> list[Sse]:
    """The stream's events until ``done(events)``; ``on_open`` gets the first (the ping)."""
    seen: list[Sse] = []
    deadline = time.monotonic() + TIMEOUT
    with httpx.stream("GET", url, headers=headers, timeout=TIMEOUT) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        for event in parse(answer.iter_lines()):
            seen.append(event)
            if len(seen) == 1:
                on_open(event)
            if done(seen) or time.monotonic() > deadline:
                break
    return seen


def points(events: list[Sse], number: int = 0) -> dict[int, float]:
    """epoch -> val_accuracy of trial ``number``, from every points event (a later one wins)."""
    found: dict[int, float] = {}
    for event in events:
        if event.kind == "points":
            for point in event.data["points"]:
                if point["number"] == number and point["metric"] == "val_accuracy":
                    found[point["epoch"]] = point["value"]
    return found


def finished(events: list[Sse], number: int = 0) -> bool:
    return any(
        t["number"] == number and t["state"] == "COMPLETE"
        for e in events
        if e.kind == "trials"
        for t in e.data["trials"]
    )


def accuracy(epoch: int) -> float:
    return 1 - 0.5**epoch


def start_live_study(db: Path) -> tuple[int, int]:
    """Study "live" with trial 0 RUNNING at epoch 1: (study_id, trial_id)."""
    with SqliteStorage(db) as store:
        study_id = store.open_study(
            "live", direction="maximize", seed=0, metric="val_accuracy"
        ).study_id
        space = {"lr": {"type": "float", "low": 0.01, "high": 1.0, "scale": "log"}}
        store.add_round(study_id, space=space, box=None, sampler='{"name": "random"}')
        trial_id = store.create_trial(study_id, round=1, sample_id=None, params={"lr": 0.1})
        store.report(trial_id.trial_id, 1, {"val_accuracy": accuracy(1)})
        return study_id, trial_id.trial_id


def train(db: Path, trial_id: int, started: threading.Event) -> None:
    """Epochs 2..EPOCHS of the trial, then its end: what a study's runner writes."""
    started.wait(TIMEOUT)
    with SqliteStorage(db) as store:
        for epoch in range(2, EPOCHS + 1):
            store.report(trial_id, epoch, {"val_accuracy": accuracy(epoch), "loss": 0.5**epoch})
            time.sleep(0.05)
        store.finish_trial(trial_id, state=TrialState.COMPLETE, value=accuracy(EPOCHS))


def test_a_trial_trained_by_another_thread_grows_on_the_stream(fresh_db: Path) -> None:
    _, trial_id = start_live_study(fresh_db)
    app = create_app(f"sqlite:///{fresh_db}", poll=0.1)
    opened = threading.Event()
    writer = threading.Thread(target=train, args=(fresh_db, trial_id, opened), daemon=True)
    writer.start()
    with serving(app) as url:
        events = listen(
            f"{url}/api/studies/live/stream",
            lambda seen: len(points(seen)) == EPOCHS - 1 and finished(seen),
            on_open=lambda first: opened.set(),
        )
    writer.join(TIMEOUT)
    app.state.store.close()
    assert events[0].kind == "ping"
    assert points(events) == {e: accuracy(e) for e in range(2, EPOCHS + 1)}  # epoch 1 was before
    assert finished(events)
    cursors = [int(e.id) for e in events if e.kind == "points" and e.id is not None]
    assert cursors == sorted(cursors)
    assert cursors[0] > events[0].data["cursor"]


WRITER = """
import sys, time
from tunery.records import TrialState
from tunery.storage import SqliteStorage
store = SqliteStorage(sys.argv[1])
trial_id = int(sys.argv[2])
for epoch in range(2, {epochs} + 1):
    store.report(trial_id, epoch, {{"val_accuracy": 1 - 0.5 ** epoch}})
    time.sleep(0.05)
store.finish_trial(trial_id, state=TrialState.COMPLETE, value=1 - 0.5 ** {epochs})
store.close()
"""


def test_a_trial_trained_by_another_process_grows_on_a_resumed_stream(fresh_db: Path) -> None:
    """The page passes the cursor of /curves; a reconnect passes the last id (Last-Event-ID)."""
    _, trial_id = start_live_study(fresh_db)
    app = create_app(f"sqlite:///{fresh_db}", poll=0.1)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with serving(app) as url:
        curves = httpx.get(f"{url}/api/studies/live/curves", timeout=TIMEOUT).json()
        (line,) = curves["curves"]
        assert (line["epochs"], line["state"]) == ([1], "RUNNING")
        process = subprocess.Popen(
            [sys.executable, "-c", WRITER.format(epochs=EPOCHS), str(fresh_db), str(trial_id)],
            env=env,
        )
        try:
            first = listen(
                f"{url}/api/studies/live/stream?cursor={curves['cursor']}",
                lambda seen: 3 in points(seen),
            )
            last_id = next(e.id for e in reversed(first) if e.kind == "points")
            assert last_id is not None
            rest = listen(
                f"{url}/api/studies/live/stream",
                lambda seen: EPOCHS in points(seen) and finished(seen),
                headers={"Last-Event-ID": last_id},
            )
        finally:
            assert process.wait(TIMEOUT) == 0
    app.state.store.close()
    assert first[0].data["cursor"] == curves["cursor"]
    assert 1 not in points(first)  # /curves had it
    seen_first = points(first)
    assert set(points(rest)).isdisjoint(seen_first)  # only what came after the id
    assert seen_first | points(rest) == {e: accuracy(e) for e in range(2, EPOCHS + 1)}


def test_a_bad_cursor_or_study_is_refused_before_streaming(caviar_db: Path) -> None:
    app = create_app(f"sqlite:///{caviar_db}", poll=0.1)
    with serving(app) as url:
        bad = httpx.get(f"{url}/api/studies/digits/stream?cursor=-3", timeout=TIMEOUT)
        missing = httpx.get(f"{url}/api/studies/nope/stream", timeout=TIMEOUT)
    app.state.store.close()
    assert bad.status_code == 400
    assert "'cursor'" in bad.json()["error"]
    assert missing.status_code == 404


def test_control_events_come_on_the_stream_when_sent_and_when_applied(
    fresh_panda_db: Path,
) -> None:
    """A nudge sent by another writer (as ``tunery nudge`` would) comes as pending; a panda run
    applies it, and it comes again with its time applied. Events from before the stream opened
    do not come."""
    url = f"sqlite:///{fresh_panda_db}"
    config = load_config(panda_config(fresh_panda_db.parent, fresh_panda_db))
    app = create_app(url, poll=0.1)
    opened = threading.Event()

    def steer() -> None:
        opened.wait(TIMEOUT)
        with Study("cub", url) as study:
            PandaControl(study).nudge(lr=NUDGED_LR / 4)
            time.sleep(0.5)  # the stream may see it pending first (not asserted: timing)
            babysit(study, config, epochs=PANDA_EPOCHS + 1, control=lambda panda: None)

    def applied(seen: list[Sse]) -> bool:
        return any(
            e["applied"] is not None for s in seen if s.kind == "events" for e in s.data["events"]
        )

    writer = threading.Thread(target=steer, daemon=True)
    writer.start()
    with serving(app) as base:
        events = listen(
            f"{base}/api/studies/cub/stream", applied, on_open=lambda first: opened.set()
        )
    writer.join(TIMEOUT)
    app.state.store.close()
    sent = [e for s in events if s.kind == "events" for e in s.data["events"]]
    assert {(e["kind"], tuple(e["payload"].items())) for e in sent} == {
        ("nudge", (("lr", NUDGED_LR / 4),))
    }
    assert sent[-1]["applied"] is not None
    assert sent[-1]["trial_number"] == 1
    assert len({e["event_id"] for e in sent}) == 1  # the study's earlier nudge and rollback: not


def test_a_reconnect_with_since_gets_the_control_events_of_the_gap(fresh_panda_db: Path) -> None:
    """A page that saw the stream up to ``since``, then lost it while a nudge was sent and a pause
    sent and applied, gets both first on reconnecting; a fresh stream (no ``since``) does not."""
    url = f"sqlite:///{fresh_panda_db}"
    app = create_app(url, poll=0.1)

    def events_of(seen: list[Sse]) -> list[dict[str, Any]]:
        return [e for s in seen if s.kind == "events" for e in s.data["events"]]

    with serving(app) as base:
        (first,) = listen(f"{base}/api/studies/cub/stream", lambda seen: True)
        since = first.data["since"]
        assert since > 0  # the study's earlier nudge and rollback, told of as known
        with Study("cub", url) as study:  # while no stream is open
            control = PandaControl(study)
            control.nudge(lr=NUDGED_LR / 2)
            paused = control.pause()
            study.storage.mark_event_applied(paused.event_id)
        replayed = listen(
            f"{base}/api/studies/cub/stream?since={since!r}",
            lambda seen: len(events_of(seen)) >= 2,
        )
        fresh = listen(f"{base}/api/studies/cub/stream", lambda seen: True)
    app.state.store.close()
    told = events_of(replayed)
    assert [(e["kind"], e["applied"] is not None) for e in told] == [
        ("nudge", False),
        ("pause", True),
    ]
    assert replayed[1].data["since"] >= max(e["applied"] or e["created"] for e in told)
    assert [s.kind for s in fresh] == ["ping"]
