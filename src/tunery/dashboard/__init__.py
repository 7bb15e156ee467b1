"""``tunery dashboard``: a live page over a study store, served on this machine.

Studies, every trial's learning curve as it trains (server-sent events), each parameter against
the metric on its own scale with the rounds' boxes, importance, a trials table, and a panda
trial's controls (nudge, pause, resume, rollback: the same events as the CLI writes)::

    from tunery.dashboard import create_app, serve
    serve("sqlite:///tunery.db", port=8765)      # blocks; Ctrl-C stops it
    app = create_app("sqlite:///tunery.db")      # an ASGI app, for any ASGI server or test client

Needs the ``dashboard`` extra (``pip install "tunery[dashboard]"``: starlette and uvicorn). The
routes and their JSON are listed in docs/dashboard.md.
"""

from __future__ import annotations

from tunery.dashboard._app import create_app
from tunery.dashboard._serve import DashboardError, serve

__all__ = ["DashboardError", "create_app", "serve"]
