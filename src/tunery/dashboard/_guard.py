"""Who may ask: the token, the CSRF secret and the same-origin check, and the read-only switch.

A pure ASGI middleware (``BaseHTTPMiddleware`` would buffer the event stream). In order:

1. with a token: ``?token=``, the ``tunery_token`` cookie or ``Authorization: Bearer`` must carry
   it, else 401; a right ``?token=`` also sets the cookie (HttpOnly, SameSite=Strict), so the
   page's own requests carry it from then on;
2. every POST: refused (403) by a read-only app; else it must carry ``X-Tunery-CSRF`` equal to
   the app's secret (only the page served by this app knows it) and, if the browser sent an
   ``Origin``, come from this server's own origin.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tunery.dashboard._json import error

__all__ = ["COOKIE", "CSRF_HEADER", "Guard", "GuardSettings"]

COOKIE = "tunery_token"
CSRF_HEADER = "x-tunery-csrf"


@dataclass(frozen=True)
class GuardSettings:
    csrf: str
    token: str | None
    read_only: bool


def _same(given: str | None, secret: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), secret.encode())


class Guard:
    def __init__(self, app: ASGIApp, settings: GuardSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            status, message = refusal
            await error(status, message)(scope, receive, send)
            return
        if self.settings.token is not None and _same(
            request.query_params.get("token"), self.settings.token
        ):
            send = self._setting_cookie(send)
        await self.app(scope, receive, send)

    def _refusal(self, request: Request) -> tuple[int, str] | None:
        token = self.settings.token
        if token is not None and not self._authorised(request, token):
            return 401, "this dashboard needs its token: open the URL it printed (?token=...)"
        if request.method == "POST":
            return self._post_refusal(request)
        if request.method not in ("GET", "HEAD"):
            return 405, f"method {request.method} is not allowed"
        return None

    @staticmethod
    def _authorised(request: Request, token: str) -> bool:
        bearer = request.headers.get("authorization", "")
        return (
            _same(request.query_params.get("token"), token)
            or _same(request.cookies.get(COOKIE), token)
            or (bearer.startswith("Bearer ") and _same(bearer.removeprefix("Bearer "), token))
        )

    def _post_refusal(self, request: Request) -> tuple[int, str] | None:
        if self.settings.read_only:
            return 403, "read-only dashboard"
        if not _same(request.headers.get(CSRF_HEADER), self.settings.csrf):
            return 403, "missing or wrong X-Tunery-CSRF header (reload the page)"
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin is not None and origin != own:
            return 403, f"cross-origin request from {origin} refused (this dashboard is {own})"
        return None

    def _setting_cookie(self, send: Send) -> Send:
        token = self.settings.token

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.append("set-cookie", f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")
            await send(message)

        return sending
