"""The page's files, read once from the package: a request names one, never a path on disk.

``StaticFiles`` would map ``/static/<path>`` onto a folder; here the folder is listed at start-up
into an allow-list of names with their bytes, so no part of a request ever reaches the filesystem.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

__all__ = ["INDEX", "StaticFile", "load_static", "render_index"]

INDEX = "index.html"
_PLACEHOLDER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>tunery dashboard</title>
<meta name="tunery-csrf" content="__TUNERY_CSRF__">
<meta name="tunery-read-only" content="__TUNERY_READ_ONLY__"></head>
<body><p>The dashboard page is not packaged; the JSON API is at /api/studies.</p></body></html>
"""
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".map": "application/json",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str


def load_static() -> dict[str, StaticFile]:
    """Every file under the package's ``static`` folder, by its name relative to it."""
    found: dict[str, StaticFile] = {}
    _walk(files("tunery.dashboard") / "static", "", found)
    return found


def _walk(folder: Traversable, prefix: str, found: dict[str, StaticFile]) -> None:
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            _walk(entry, name + "/", found)
        elif entry.is_file() and not entry.name.startswith("."):
            found[name] = StaticFile(entry.read_bytes(), _media_type(entry.name))


def _media_type(name: str) -> str:
    suffix = name[name.rfind(".") :] if "." in name else ""
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def render_index(static: dict[str, StaticFile], csrf: str, read_only: bool) -> bytes:
    """index.html with this app's CSRF secret and read-only flag put in."""
    page = static[INDEX].body.decode("utf-8") if INDEX in static else _PLACEHOLDER_PAGE
    page = page.replace("__TUNERY_CSRF__", csrf)
    page = page.replace("__TUNERY_READ_ONLY__", "true" if read_only else "false")
    return page.encode("utf-8")
