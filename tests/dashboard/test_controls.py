"""The panda controls of the page write the very same events as ``tunery nudge / pause / resume /
rollback``; the page shows what the CLI wrote; a running panda applies the page's nudge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.conftest import BASE_URL, EPOCHS, NUDGED_LR, client, panda_config
from tunery.cli import main
from tunery.config import load_config
from tunery.dashboard import create_app
from tunery.records import Event
from tunery.storage import SqliteStorage
from tunery.study import Study
from tunery.workflows.panda import babysit

pytestmark = pytest.mark.anyio

# (CLI arguments, POST kind, POST body): the same control, both ways
CONTROLS: list[tuple[list[str], str, dict[str, Any] | None]] = [
    (["nudge", "cub", "lr=0.0005"], "nudge", {"changes": {"lr": 0.0005}}),
    (
        ["nudge", "cub", "batch_size=32", "lr=2e-3"],
        "nudge",
        {"changes": {"batch_size": 32, "lr": 2e-3}},
    ),
    (["pause", "cub"], "pause", None),
    (["resume", "cub"], "resume", None),
    (["rollback", "cub", "--epoch", "3"], "rollback", {"epoch": 3}),
    (["rollback", "cub", "--epoch", "1", "--trial", "0"], "rollback", {"epoch": 1, "trial": 0}),
    (["rollback", "cub", "--epoch", "4", "--trial", "1"], "rollback", {"epoch": 4, "trial": 1}),
]


def stored_events(db: Path) -> list[Event]:
    with SqliteStorage(db) as store:
        info = store.get_study("cub")
        assert info is not None
        return store.get_events(info.study_id, pending=False)


def what(event: Event) -> tuple[Any, ...]:
    """An event less its id and time."""
    return (event.study_id, event.trial_number, event.kind, event.payload, event.applied)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    captured = capsys.readouterr()
    code = exit_.value.code
    return (int(code) if isinstance(code, int) else 1), " ".join(captured.err.split())


async def post(app: Any, kind: str, body: dict[str, Any] | None, status: int = 200) -> Any:
    headers = {"X-Tunery-CSRF": app.state.csrf, "Origin": BASE_URL}
    async with client(app, **headers) as c:
        answer = await c.post(f"/api/studies/cub/{kind}", json=body)
    assert answer.status_code == status, answer.text
    return answer.json()


@pytest.mark.parametrize(("args", "kind", "body"), CONTROLS)
async def test_a_post_writes_the_same_event_as_the_cli(
    fresh_panda_db: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    kind: str,
    body: dict[str, Any] | None,
) -> None:
    url = f"sqlite:///{fresh_panda_db}"
    before = stored_events(fresh_panda_db)
    code, err = cli(capsys, *args, "--storage", url)
    assert code == 0, err
    by_cli = stored_events(fresh_panda_db)[len(before) :]
    app = create_app(url)
    answer = await post(app, kind, body)
    app.state.store.close()
    by_page = stored_events(fresh_panda_db)[len(before) + 1 :]
    assert len(by_cli) == len(by_page) == 1
    assert what(by_page[0]) == what(by_cli[0])
    assert answer["event"] == {
        "event_id": by_page[0].event_id,
        "kind": by_page[0].kind,
        "payload": by_page[0].payload,
        "trial_number": by_page[0].trial_number,
        "created": by_page[0].created,
    }


@pytest.mark.parametrize(
    ("args", "kind", "body", "field"),
    [
        (["nudge", "cub", "lrr=1e-3"], "nudge", {"changes": {"lrr": 1e-3}}, "lrr"),
        (["nudge", "cub", "lr=-1"], "nudge", {"changes": {"lr": -1}}, "lr"),
        (["rollback", "cub", "--epoch", "9"], "rollback", {"epoch": 9}, "epoch"),
        (
            ["rollback", "cub", "--epoch", "1", "--trial", "7"],
            "rollback",
            {"epoch": 1, "trial": 7},
            "trial",
        ),
    ],
)
async def test_a_bad_control_is_refused_by_both_and_writes_nothing(
    fresh_panda_db: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    kind: str,
    body: dict[str, Any],
    field: str,
) -> None:
    url = f"sqlite:///{fresh_panda_db}"
    before = stored_events(fresh_panda_db)
    code, err = cli(capsys, *args, "--storage", url)
    assert code == 2
    assert field in err
    app = create_app(url)
    answer = await post(app, kind, body, status=400)
    app.state.store.close()
    assert field in answer["error"]
    assert stored_events(fresh_panda_db) == before


@pytest.mark.parametrize(
    ("kind", "raw", "field"),
    [
        ("nudge", b"{not json", "nudge body"),
        ("nudge", b"[1, 2]", "nudge body"),
        ("nudge", b'{"lr": 1e-3}', "changes"),
        ("rollback", b'{"epoch": "two"}', "epoch"),
        ("rollback", b"{}", "epoch"),
    ],
)
async def test_a_malformed_body_is_a_400_naming_what_is_wrong(
    fresh_panda_db: Path, kind: str, raw: bytes, field: str
) -> None:
    app = create_app(f"sqlite:///{fresh_panda_db}")
    before = stored_events(fresh_panda_db)
    headers = {"X-Tunery-CSRF": app.state.csrf, "Content-Type": "application/json"}
    async with client(app, **headers) as c:
        answer = await c.post(f"/api/studies/cub/{kind}", content=raw)
    app.state.store.close()
    assert answer.status_code == 400
    assert field in answer.json()["error"]
    assert stored_events(fresh_panda_db) == before


async def test_a_control_of_a_study_without_panda_is_refused(fresh_db: Path) -> None:
    app = create_app(f"sqlite:///{fresh_db}")
    headers = {"X-Tunery-CSRF": app.state.csrf}
    async with client(app, **headers) as c:
        answer = await c.post("/api/studies/digits/pause")
        missing = await c.post("/api/studies/nope/pause")
    app.state.store.close()
    assert answer.status_code == 400
    assert "panda" in answer.json()["error"]
    assert missing.status_code == 404


async def test_the_trial_page_shows_what_the_cli_sent(
    fresh_panda_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{fresh_panda_db}"
    app = create_app(url)
    async with client(app) as c:
        before = (await c.get("/api/studies/cub/trials/1")).json()["events"]
        assert cli(capsys, "nudge", "cub", "lr=4e-4", "--storage", url)[0] == 0
        assert cli(capsys, "pause", "cub", "--storage", url)[0] == 0
        after = (await c.get("/api/studies/cub/trials/1")).json()["events"]
    app.state.store.close()
    assert before == []
    sent = stored_events(fresh_panda_db)[-2:]
    assert [(e["event_id"], e["kind"], e["payload"]) for e in after] == [
        (event.event_id, event.kind, event.payload) for event in sent
    ]
    assert [(e["applied"], e["epoch"]) for e in after] == [(None, None), (None, None)]


async def test_a_running_panda_applies_the_pages_nudge_at_the_next_epoch(
    fresh_panda_db: Path,
) -> None:
    """Branch 2 resumes the study (in this process, as ``tunery panda`` would in its own); the page
    nudges it; the next boundary applies the nudge and the next epoch trains with it."""
    url = f"sqlite:///{fresh_panda_db}"
    config = load_config(panda_config(fresh_panda_db.parent, fresh_panda_db))
    app = create_app(url)
    with Study("cub", url) as study:
        babysitter = babysit(study, config, epochs=EPOCHS + 3)
        babysitter.run_epoch()  # epoch 6 of the new branch
        answer = await post(app, "nudge", {"changes": {"lr": NUDGED_LR / 2}})
        assert answer["event"]["trial_number"] == babysitter.branch
        babysitter.run_epoch()  # the boundary after epoch 6 applies it; epoch 7 trains with it
        assert babysitter.hyperparameters["lr"] == NUDGED_LR / 2
        async with client(app) as c:
            page = (await c.get(f"/api/studies/cub/trials/{babysitter.branch}")).json()
        babysitter.run()
    app.state.store.close()
    (event,) = page["events"]
    assert (event["kind"], event["payload"], event["epoch"]) == ("nudge", {"lr": NUDGED_LR / 2}, 6)
    assert event["applied"] is not None
    assert event["error"] is None
    assert page["running"] is True
    assert page["hyperparameters"]["lr"] == NUDGED_LR / 2


async def test_a_nudge_queued_while_no_panda_runs_shows_on_the_branch_that_applied_it(
    fresh_panda_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{fresh_panda_db}"
    assert cli(capsys, "nudge", "cub", "lr=5e-4", "--storage", url)[0] == 0
    config = load_config(panda_config(fresh_panda_db.parent, fresh_panda_db))
    with Study("cub", url) as study:
        babysit(study, config, epochs=EPOCHS + 1, control=lambda panda: None)
    app = create_app(url)
    async with client(app) as c:
        sent_to = (await c.get("/api/studies/cub/trials/1")).json()["events"]
        applied_by = (await c.get("/api/studies/cub/trials/2")).json()
    app.state.store.close()
    (event,) = applied_by["events"]
    assert (event["kind"], event["payload"], event["epoch"]) == ("nudge", {"lr": 5e-4}, EPOCHS)
    assert event["applied"] is not None
    assert applied_by["hyperparameters"]["lr"] == 5e-4
    assert [e["event_id"] for e in sent_to] == [event["event_id"]]  # sent to the head then
