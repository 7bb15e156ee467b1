"""The ASGI app: the routes of docs/dashboard.md's contract over one store.

Read routes are plain functions (Starlette runs them in its thread pool: the store blocks); the
stream and the POSTs are ``async`` and hand the store work to a thread. Errors are JSON
``{"error": ...}``: 400 for a bad query or a refused control (its ``ConfigError`` message), 404
for an unknown study or trial, 401/403 from the guard (``_guard``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from importlib.metadata import version as _package_version
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tunery._exceptions import ConfigError, StorageError
from tunery.dashboard import _query as query
from tunery.dashboard import _views as views
from tunery.dashboard._controls import event_json, send
from tunery.dashboard._guard import Guard, GuardSettings
from tunery.dashboard._importance import Importances
from tunery.dashboard._json import JSON, error
from tunery.dashboard._names import StudyNames, study_name
from tunery.dashboard._state import StoreState, UnknownStudyError
from tunery.dashboard._static import load_static, render_index
from tunery.dashboard._stream import stream
from tunery.dashboard._trial import is_panda, trial_detail
from tunery.records import TrialState
from tunery.storage import BaseStorage, get_storage

__all__ = ["create_app"]

_VERSION = _package_version("tunery")
_STATES = ",".join(state.name for state in TrialState)


def create_app(
    storage: str | BaseStorage,
    *,
    token: str | None = None,
    read_only: bool = False,
    allowed_hosts: Sequence[str] | None = None,
    poll: float = 0.5,
) -> Starlette:
    """The dashboard of the studies in ``storage`` (a URL of an existing store, or a store).

    ``token``: every request must carry it (see ``_guard``). ``read_only``: the POSTs are refused
    and the page hides its controls. ``allowed_hosts``: the ``Host`` names the app answers
    (``serve`` gives the loopback names when it listens on one, which stops DNS-rebinding pages);
    ``None`` answers any. ``poll``: seconds between the stream's looks at the store.
    """
    store = get_storage(storage, create=False) if isinstance(storage, str) else storage
    state = StoreState(store)
    csrf = secrets.token_urlsafe(32)
    static = load_static()
    index = render_index(static, csrf, read_only)
    guarded = _Handlers(state, read_only, poll)
    routes = [
        Route("/", lambda request: Response(index, media_type="text/html; charset=utf-8")),
        Route("/static/{name:path}", _static_route(static)),
        Route("/api/config", guarded.config),
        Route("/api/studies", guarded.studies),
        Route("/api/compare", guarded.compare),
        Route("/api/studies/{name}", guarded.study),
        Route("/api/studies/{name}/trials", guarded.trials),
        Route("/api/studies/{name}/best", guarded.best),
        Route("/api/studies/{name}/curves", guarded.curves),
        Route("/api/studies/{name}/scatter", guarded.scatter),
        Route("/api/studies/{name}/importance", guarded.importance),
        Route("/api/studies/{name}/trials/{number}", guarded.trial),
        Route("/api/studies/{name}/stream", guarded.stream),
        *[
            Route(f"/api/studies/{{name}}/{kind}", guarded.control(kind), methods=["POST"])
            for kind in ("nudge", "pause", "resume", "rollback")
        ],
    ]
    middleware = [
        Middleware(Guard, settings=GuardSettings(csrf, token, read_only)),
        Middleware(StudyNames),
    ]
    if allowed_hosts is not None:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=_HANDLERS)
    app.state.store = store
    app.state.csrf = csrf
    app.state.importances = guarded.importances
    return app


def _static_route(static: dict[str, Any]) -> Callable[[Request], Response]:
    def serve_static(request: Request) -> Response:
        found = static.get(study_name(request))
        if found is None:  # only names listed at start-up: nothing from the request meets a disk
            return error(404, "no such file")
        return Response(found.body, media_type=found.media_type)

    return serve_static


async def _bad_query(request: Request, exc: Exception) -> Response:
    return error(400, str(exc))


async def _unknown_study(request: Request, exc: Exception) -> Response:
    return error(404, f"there is no study called {exc.args[0]!r} in this store")


async def _refused(request: Request, exc: Exception) -> Response:
    return error(400, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error(exc.status_code, f"{exc.detail}: {request.url.path}")


_HANDLERS: dict[Any, Any] = {
    query.BadQueryError: _bad_query,
    UnknownStudyError: _unknown_study,
    ConfigError: _refused,
    StorageError: _refused,
    HTTPException: _http_error,  # an unknown path or method: JSON too, like every error
}


class _Handlers:
    def __init__(self, state: StoreState, read_only: bool, poll: float) -> None:
        self.state = state
        self.store = state.storage
        self.read_only = read_only
        self.poll = poll
        self.importances = Importances()

    def config(self, request: Request) -> Response:
        return JSON({"read_only": self.read_only, "version": _VERSION, "storage": self.store.url})

    def studies(self, request: Request) -> Response:
        return JSON({"studies": [views.study_line(s) for s in self.state.studies()]})

    def study(self, request: Request) -> Response:
        name = study_name(request)
        with self.state.reading(name) as study:
            panda = is_panda(study, self.store)
            self.importances.prime(study)  # the page asks for it a second later: start it now
            return JSON(views.study_detail(study, self.store, panda))

    def trials(self, request: Request) -> Response:
        q = request.query_params
        states = _states(q.get("state"))
        options: dict[str, Any] = {
            "states": states,
            "round_": query.optional_integer(q, "round", 1, 1_000_000),
            "value_min": query.number(q, "value_min"),
            "value_max": query.number(q, "value_max"),
            "sort": query.choice(q, "sort", ("number", "value", "duration"), "number"),
            "order": query.choice(q, "order", ("asc", "desc"), "asc"),
            "offset": query.integer(q, "offset", 0, 0, 10_000_000),
            "limit": query.integer(q, "limit", 100, 1, 1000),
        }
        with self.state.reading(study_name(request)) as study:
            return JSON(views.trials_page(study, **options))

    def best(self, request: Request) -> Response:
        most = query.integer(request.query_params, "max_points", 2000, 2, 100_000)
        with self.state.reading(study_name(request)) as study:
            return JSON(views.best_series(study, most))

    def curves(self, request: Request) -> Response:
        q = request.query_params
        max_trials = query.integer(q, "max_trials", 400, 1, 5000)
        max_points = query.integer(q, "max_points", 200, 2, 10_000)
        with self.state.reading(study_name(request)) as study:
            metric = q.get("metric") or study.info.metric
            return JSON(views.curves(study, self.store, metric, max_trials, max_points))

    def scatter(self, request: Request) -> Response:
        q = request.query_params
        param = query.text(q, "param")
        most = query.integer(q, "max_points", 5000, 2, 100_000)
        with self.state.reading(study_name(request)) as study:
            found = views.scatter(study, param, most)
            if found is None:
                raise query.BadQueryError("param", param, "a parameter of the study")
            return JSON(found)

    def importance(self, request: Request) -> Response:
        with self.state.reading(study_name(request)) as study:
            fit = self.importances.of(study)
        return JSON(fit.result())  # waited for outside the lock: other requests go on meanwhile

    def trial(self, request: Request) -> Response:
        raw = request.path_params["number"]
        if not raw.isdigit():
            return error(404, f"there is no trial {raw!r}")
        with self.state.reading(study_name(request)) as study:
            found = trial_detail(study, self.store, int(raw))
            if found is None:
                return error(404, f"study {study.info.name!r} has no trial {raw}")
            return JSON(found)

    def compare(self, request: Request) -> Response:
        q = request.query_params
        names = _compared(q)
        param = q.get("param")
        result = []
        for name in names[:20]:
            with self.state.reading(name) as study:
                result.append(
                    {
                        "name": name,
                        "direction": study.info.direction,
                        "metric": study.info.metric,
                        "best": views.best_series(study, 2000),
                        "scatter": None if param is None else views.scatter(study, param, 5000),
                    }
                )
        return JSON({"studies": result})

    async def stream(self, request: Request) -> Response:
        raw = request.query_params.get("cursor") or request.headers.get("last-event-id")
        cursor = None if raw is None else _cursor(raw)
        since = query.number(request.query_params, "since")  # the events told before a reconnect
        name = study_name(request)
        await anyio.to_thread.run_sync(self._check_study, name)
        return StreamingResponse(
            stream(self.state, name, cursor, since, poll=self.poll),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def _check_study(self, name: str) -> None:
        with self.state.reading(name):
            pass

    def control(self, kind: str) -> Callable[[Request], Any]:
        async def post(request: Request) -> Response:
            body = await _body(request, kind)
            name = study_name(request)
            await anyio.to_thread.run_sync(self._check_study, name)
            event = await anyio.to_thread.run_sync(send, self.store, name, kind, body)
            return JSON({"event": event_json(event)})

        return post


def _states(raw: str | None) -> set[TrialState] | None:
    if raw is None or raw == "":
        return None
    names = raw.split(",")
    known = {state.name: state for state in TrialState}
    for name in names:
        if name not in known:
            raise query.BadQueryError("state", raw, f"state names from {_STATES}, comma-separated")
    return {known[name] for name in names}


def _compared(q: Any) -> list[str]:
    """``?study=A&study=B`` (any name, a comma too), or the older ``?studies=A,B``."""
    repeated = [name for name in q.getlist("study") if name]
    if repeated:
        return repeated
    if q.get("studies"):
        return [name for name in q["studies"].split(",") if name]
    raise query.BadQueryError("study", "", "given: ?study=A&study=B (or ?studies=A,B)")


def _cursor(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise query.BadQueryError("cursor", raw, "an integer >= 0")
    return int(raw)


async def _body(request: Request, kind: str) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        body: Any = {}
    else:
        try:
            body = json.loads(raw)
        except ValueError:
            raise ConfigError(f"{kind} body", raw[:80].decode("utf-8", "replace"), "JSON") from None
    if not isinstance(body, dict):
        raise ConfigError(f"{kind} body", body, "a JSON object")
    return body
