"""``serve``: the dashboard on uvicorn, on a socket bound here first (so a port in use is one clear
error, not a traceback from the server's start-up)."""

from __future__ import annotations

import errno
import ipaddress
import secrets
import socket
import webbrowser
from collections.abc import Callable

from tunery._exceptions import TuneryError
from tunery.storage import BaseStorage, get_storage

__all__ = ["LOOPBACK_NAMES", "DashboardError", "bind", "is_loopback", "serve"]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


class DashboardError(TuneryError):
    """The dashboard cannot start: a port in use, an address that cannot be bound."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``DashboardError`` if it cannot have one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise DashboardError(
                f"port {port} on {host} is in use (another dashboard?): pick one with --port"
            ) from None
        raise DashboardError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int, token: str | None) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(
    storage: str | BaseStorage = "sqlite:///tunery.db",
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    read_only: bool = False,
    open_browser: bool = False,
    *,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve the dashboard of ``storage`` until Ctrl-C.

    On a host other than loopback a token is required: without one a random token is made. The
    URL to open (with the token) is passed to ``echo``. A store that is not there, or not a tunery
    store, raises ``ConfigError``/``StorageError``; a port in use ``DashboardError``.
    """
    import uvicorn  # the extra: imported only here

    from tunery.dashboard._app import create_app

    store = get_storage(storage, create=False, field="--storage")
    store.list_studies()  # an SQLite file of another program fails here, before the port opens
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    allowed = list(LOOPBACK_NAMES) if is_loopback(host) else None
    app = create_app(store, token=token, read_only=read_only, allowed_hosts=allowed)
    sock = bind(host, port)
    app.state.importances.loaded.result()  # scikit-learn imported before any page can open
    url = url_of(host, sock.getsockname()[1], token)
    echo(f"tunery dashboard of {store.url} at {url}" + (" (read-only)" if read_only else ""))
    if open_browser:
        webbrowser.open(url)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        store.close()
