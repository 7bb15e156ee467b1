"""The ``tunery`` command line.

Each command group lives in its own module and registers itself on ``app``. A user's mistake
(any :class:`tunery.TuneryError`, or a click usage error) becomes a short message on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import sys

import click
from rich.markup import escape

from tunery._exceptions import TuneryError
from tunery.cli._app import app, console_err

__all__ = ["app", "main"]


def _register_commands() -> None:
    # Importing a command module registers its commands on ``app``.
    from tunery.cli import (
        _panda,  # noqa: F401
        _pbt,  # noqa: F401
        _predict,  # noqa: F401
        _report,  # noqa: F401
        _train,  # noqa: F401
        _tune,  # noqa: F401
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``tunery`` console script."""
    _register_commands()
    try:
        result = app.main(args=argv, prog_name="tunery", standalone_mode=False)
    except TuneryError as error:
        console_err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
        sys.exit(2)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (click.Abort, KeyboardInterrupt):
        console_err.print("interrupted")
        sys.exit(130)
    # Without standalone mode click returns the exit code of ``--help``/``--version`` and friends.
    sys.exit(result if isinstance(result, int) else 0)
