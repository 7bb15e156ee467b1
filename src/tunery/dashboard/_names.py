"""Study names in paths: a name may hold any character, ``/`` included (sent as ``%2F``).

An ASGI server decodes ``%2F`` into ``scope["path"]`` before routing, so ``/api/studies/a%2Fb``
would route as ``/api/studies/a/b``. This middleware routes on the raw path instead: every
segment is decoded except the study name's, which stays percent-encoded so that it matches one
``{name}`` segment; ``study_name`` decodes it in the handler.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["StudyNames", "study_name"]

_PREFIX = "/api/studies/"
_NAME_SEGMENT = 3  # "", "api", "studies", name, ...


class StudyNames:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(_PREFIX):
            scope = {**scope, "path": _routed_path(scope)}
        await self.app(scope, receive, send)


def _routed_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if not raw:  # a server without raw_path: a decoded '/' in a name cannot be told apart
        segments = scope["path"].split("/")
        segments[_NAME_SEGMENT] = quote(segments[_NAME_SEGMENT], safe="")
        return "/".join(segments)
    segments = raw.decode("latin-1").split("/")
    return "/".join(
        segment if i == _NAME_SEGMENT else unquote(segment) for i, segment in enumerate(segments)
    )


def study_name(request: Request) -> str:
    """The study name of the request's path, decoded."""
    return unquote(request.path_params["name"])
