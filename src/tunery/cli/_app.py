"""The shared click group and consoles."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from tunery.config import DEFAULT_STORAGE

REPORT_DIR = Path("tunery-report")
"""Where `tunery tune` and `tunery report` write a study's report: REPORT_DIR/<study>/."""

TOP_OPTION = click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    help="How many of the best trials to list.",
)
"""``--top N`` of ``tunery report`` and ``tunery show``."""

console = Console()
console_err = Console(stderr=True)

STORAGE_OPTION = click.option(
    "--storage", default=DEFAULT_STORAGE, help="Study store URL, e.g. sqlite:///runs/tunery.db."
)


@click.group(
    name="tunery",
    # Every option with a default shows it in --help.
    context_settings={
        "help_option_names": ["-h", "--help"],
        "max_content_width": 100,
        "show_default": True,
    },
)
@click.version_option(package_name="tunery")
def app() -> None:
    """Tune deep networks the way the course teaches: random, on the right scale, coarse to fine."""
