"""Who may ask the dashboard what: the token, the CSRF secret and same-origin check, read-only,
escaped names, and static files that never reach the filesystem from a request."""

from __future__ import annotations

import http.client
import json
from collections.abc import Awaitable, Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest

from tests.dashboard.conftest import BASE_URL, ESCAPED_NAME, client, serving
from tunery.dashboard import create_app, serve
from tunery.storage import SqliteStorage

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def app(caviar_db: Path) -> Iterator[Any]:
    made = create_app(f"sqlite:///{caviar_db}")
    yield made
    made.state.store.close()


@pytest.fixture(scope="module")
def token_app(caviar_db: Path) -> Iterator[Any]:
    made = create_app(f"sqlite:///{caviar_db}", token=TOKEN)
    yield made
    made.state.store.close()


def events_of(db: Path, name: str = "cub") -> list[Any]:
    with SqliteStorage(db) as store:
        info = store.get_study(name)
        assert info is not None
        return store.get_events(info.study_id, pending=False)


# -- the token -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api/studies", "/api/config", "/static/vendor/README"])
async def test_without_the_token_every_request_is_refused(token_app: Any, path: str) -> None:
    async with client(token_app) as c:
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}x"}, {"Cookie": "tunery_token=no"}):
            answer = await c.get(path, headers=headers)
            assert answer.status_code == 401
            assert "token" in answer.json()["error"]
        wrong = await c.get(path, params={"token": TOKEN[:-1]})
        assert wrong.status_code == 401
        assert "set-cookie" not in wrong.headers


async def test_the_token_in_the_url_sets_a_strict_cookie_that_works_after(token_app: Any) -> None:
    async with client(token_app) as c:
        first = await c.get("/", params={"token": TOKEN})
        assert first.status_code == 200
        cookie = first.headers["set-cookie"]
        assert cookie.startswith(f"tunery_token={TOKEN};")
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        later = await c.get("/api/studies")  # the client sends the cookie back
        assert later.status_code == 200
        assert {s["name"] for s in later.json()["studies"]} == {"digits", ESCAPED_NAME}


async def test_a_bearer_header_carries_the_token(token_app: Any) -> None:
    async with client(token_app, Authorization=f"Bearer {TOKEN}") as c:
        answer = await c.get("/api/studies/digits")
    assert answer.status_code == 200
    assert answer.json()["n_trials"] == 24


Check = Callable[[Any, list[str]], Awaitable[dict[str, int]]]


def serve_once(
    db: Path, monkeypatch: pytest.MonkeyPatch, check: Check, **options: Any
) -> tuple[list[str], dict[str, int]]:
    """Run ``serve`` with uvicorn's loop replaced by ``check(app, printed_lines)``: the lines
    ``serve`` printed (before it would have served) and what ``check`` found."""
    import uvicorn

    lines: list[str] = []
    found: dict[str, int] = {}

    def run(server: uvicorn.Server, sockets: list[Any]) -> None:
        found.update(anyio.run(check, server.config.app, lines))

    monkeypatch.setattr(uvicorn.Server, "run", run)
    serve(f"sqlite:///{db}", port=0, echo=lines.append, **options)
    return lines, found


def printed_token(lines: list[str]) -> str:
    (line,) = lines
    assert "?token=" in line
    return line.rsplit("?token=", 1)[1].split()[0]


async def with_and_without_token(app: Any, lines: list[str]) -> dict[str, int]:
    async with client(app) as c:
        without = await c.get("/api/studies")
        given = await c.get("/api/studies", params={"token": printed_token(lines)})
    return {"without": without.status_code, "with": given.status_code}


def test_off_loopback_serve_makes_up_a_token_and_prints_it(
    caviar_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = "0.0.0.0"
    lines, found = serve_once(caviar_db, monkeypatch, with_and_without_token, host=host)
    assert len(printed_token(lines)) >= 20
    assert found == {"without": 401, "with": 200}


def test_off_loopback_serve_keeps_a_given_token(
    caviar_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = "0.0.0.0"
    lines, found = serve_once(
        caviar_db, monkeypatch, with_and_without_token, host=host, token=TOKEN
    )
    assert printed_token(lines) == TOKEN
    assert found == {"without": 401, "with": 200}


def test_on_loopback_serve_needs_no_token_but_refuses_other_host_names(
    caviar_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def check(app: Any, lines: list[str]) -> dict[str, int]:
        async with client(app) as c:
            plain = await c.get("/api/studies")
            rebound = await c.get("/api/studies", headers={"Host": "evil.example"})
        return {"plain": plain.status_code, "rebound": rebound.status_code}

    lines, found = serve_once(caviar_db, monkeypatch, check)
    assert "token" not in lines[0]
    assert "http://127.0.0.1:" in lines[0]
    assert found == {"plain": 200, "rebound": 400}  # a DNS-rebinding page cannot read the API


# -- POSTs: CSRF, same origin, read-only ---------------------------------------------------------


async def test_a_post_needs_the_csrf_secret_and_the_same_origin(fresh_panda_db: Path) -> None:
    app = create_app(f"sqlite:///{fresh_panda_db}")
    csrf = app.state.csrf
    before = events_of(fresh_panda_db)
    refused = [
        {},
        {"X-Tunery-CSRF": "guess"},
        {"X-Tunery-CSRF": csrf, "Origin": "http://evil.example"},
        {"X-Tunery-CSRF": csrf, "Origin": "http://127.0.0.1:9999"},
    ]
    async with client(app) as c:
        for headers in refused:
            answer = await c.post("/api/studies/cub/pause", headers=headers)
            assert answer.status_code == 403, headers
            assert answer.json()["error"]
        assert events_of(fresh_panda_db) == before  # nothing was written
        put = await c.put("/api/studies/cub/pause", headers={"X-Tunery-CSRF": csrf})
        assert put.status_code == 405
        sent = await c.post(
            "/api/studies/cub/pause", headers={"X-Tunery-CSRF": csrf, "Origin": BASE_URL}
        )
        assert sent.status_code == 200, sent.text
    app.state.store.close()
    assert [e.kind for e in events_of(fresh_panda_db)] == [*(e.kind for e in before), "pause"]


async def test_a_read_only_dashboard_refuses_every_post(fresh_panda_db: Path) -> None:
    app = create_app(f"sqlite:///{fresh_panda_db}", read_only=True)
    before = events_of(fresh_panda_db)
    async with client(app, **{"X-Tunery-CSRF": app.state.csrf}) as c:
        for kind, body in (
            ("nudge", {"changes": {"lr": 1e-3}}),
            ("pause", None),
            ("resume", None),
            ("rollback", {"epoch": 1}),
        ):
            answer = await c.post(f"/api/studies/cub/{kind}", json=body)
            assert answer.status_code == 403
            assert answer.json() == {"error": "read-only dashboard"}
        assert (await c.get("/api/config")).json()["read_only"] is True
        page = (await c.get("/")).text
    app.state.store.close()
    assert '<meta name="tunery-read-only" content="true">' in page
    assert events_of(fresh_panda_db) == before


async def test_the_page_carries_this_apps_csrf_secret(app: Any) -> None:
    async with client(app) as c:
        page = await c.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert f'<meta name="tunery-csrf" content="{app.state.csrf}">' in page.text
    assert '<meta name="tunery-read-only" content="false">' in page.text
    assert "__TUNERY_" not in page.text
    other = create_app(app.state.store)
    assert other.state.csrf != app.state.csrf  # a secret per app, not a constant


# -- escaping ------------------------------------------------------------------------------------


async def test_a_script_study_name_comes_back_as_inert_text(app: Any) -> None:
    async with client(app) as c:
        listed = await c.get("/api/studies")
        study = await c.get(f"/api/studies/{quote(ESCAPED_NAME, safe='')}")
    for answer in (listed, study):
        assert "<script>" not in answer.text
        assert "\\u003cscript\\u003e" in answer.text
    assert ESCAPED_NAME in {s["name"] for s in listed.json()["studies"]}
    assert study.json()["name"] == ESCAPED_NAME


# -- static files ----------------------------------------------------------------------------------


def packaged() -> dict[str, bytes]:
    found: dict[str, bytes] = {}

    def walk(folder: Any, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif not entry.name.startswith("."):
                found[prefix + entry.name] = entry.read_bytes()

    walk(files("tunery.dashboard") / "static", "")
    return found


async def test_every_packaged_static_file_is_served_as_it_is(app: Any) -> None:
    shipped = packaged()
    assert "vendor/uPlot.iife.min.js" in shipped
    async with client(app) as c:
        for name, body in shipped.items():
            answer = await c.get(f"/static/{name}")
            assert answer.status_code == 200, name
            assert answer.content == body
        js = await c.get("/static/vendor/uPlot.iife.min.js")
        assert js.headers["content-type"].startswith("text/javascript")


TRAVERSALS = [
    "/static/../pyproject.toml",
    "/static/../../../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/_app.py",
    "/static/..%2F_app.py",
    "/static/..%2f..%2f..%2fetc%2fpasswd",
    "/static/%252e%252e/_app.py",
    "/static//etc/passwd",
    "/static/vendor/../../_app.py",
    "/static/vendor/..%5C..%5C_app.py",
    "/static/%00",
    "/static/../__init__.py",
    "/static/",
    "/static/vendor",
    "/../../etc/passwd",
]


@pytest.mark.parametrize("raw", TRAVERSALS)
def test_no_request_path_reaches_the_filesystem(caviar_db: Path, raw: str) -> None:
    """Sent as raw bytes through a real server (an HTTP client would normalise the dots)."""
    app = create_app(f"sqlite:///{caviar_db}")
    with serving(app) as url:
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
        conn.putrequest("GET", raw, skip_accept_encoding=True)
        conn.endheaders()
        answer = conn.getresponse()
        body = answer.read()
        conn.close()
    app.state.store.close()
    assert answer.status in (400, 404), (raw, answer.status)
    assert b"root:" not in body
    assert b"import" not in body  # no Python source of the package
    assert b"[project]" not in body
    if answer.status == 404 and body:
        json.loads(body)  # our own JSON error, not a file
