"""``tunery dashboard``: serve the live page of a store's studies (``tunery.dashboard``).

The dashboard's libraries (starlette, uvicorn) are an extra: without them the command says how to
install them, exit code 2. So are its other refusals: a store that is not there or not a tunery
store, a port in use.
"""

from __future__ import annotations

import click
from rich.markup import escape

from tunery._exceptions import TuneryError
from tunery.cli._app import app, console
from tunery.config import DEFAULT_STORAGE

__all__ = ["dashboard"]

_EXTRA = 'the dashboard needs its extra: pip install "tunery[dashboard]"'


class MissingExtraError(TuneryError):
    """starlette or uvicorn is not installed."""


@app.command()
@click.option(
    "--storage", default=DEFAULT_STORAGE, show_default=True, help="The study store to show."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option(
    "--token",
    help="A secret every request must carry (made up and printed when --host is not loopback).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--read-only", is_flag=True, help="Show the studies; refuse the panda controls.")
def dashboard(
    storage: str, host: str, port: int, token: str | None, open_browser: bool, read_only: bool
) -> None:
    """Serve a live page of the studies in a store: curves as they train, the panda controls.

    Bound to 127.0.0.1 unless --host says otherwise; anywhere else it needs a token (given with
    --token, or made up and printed with the URL). Ctrl-C stops it.
    """
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise MissingExtraError(_EXTRA) from None
    from tunery.dashboard import serve

    serve(
        storage,
        host=host,
        port=port,
        token=token,
        read_only=read_only,
        open_browser=open_browser,
        echo=lambda line: console.print(escape(line), highlight=False, soft_wrap=True),
    )
