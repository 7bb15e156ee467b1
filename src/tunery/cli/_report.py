"""``tunery report``: a study's HTML report (PNGs and index.html) and its summary in the terminal.

It only reads: a store that is not there is an error, never created, and a study that is not in
the store is one line naming the studies that are (exit code 2).
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from tunery.cli._app import REPORT_DIR, STORAGE_OPTION, TOP_OPTION, app, console
from tunery.storage import get_storage
from tunery.study import load_study

__all__ = ["REPORT_DIR", "report"]

_SQLITE_PREFIX = "sqlite:///"
_IN_MEMORY = ("sqlite:///:memory:",)


@app.command()
@click.argument("study_name", metavar="STUDY")
@STORAGE_OPTION
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Folder to write the report into [default: {REPORT_DIR}/STUDY].",
)
@TOP_OPTION
@click.option("--seed", type=int, default=0, help="Seed of the importance forest.")
def report(study_name: str, storage: str, out_dir: Path | None, top: int, seed: int) -> None:
    """Write the report of STUDY to a folder and print its summary.

    \b
    The folder holds index.html (open it in a browser; it links only to files beside it) and:
      curves.png       the metric per epoch of every trial (diverged trials in red)
      param-NN-*.png   each hyperparameter against the metric, on its own scale
      zoom.png         the two most important parameters with every round's box
      importance.png   a random forest's ranking of the parameters (>= 5 COMPLETE trials)
    The terminal summary shows the trials by state, the best trials, each round's range per
    parameter and the importance ranking. Exit code 2 for an unknown study or store.
    """
    from tunery.report import print_summary, report_data, write_report

    with (
        get_storage(storage, create=False, field="--storage") as store,
        load_study(study_name, store) as study,
    ):
        data = report_data(study, top=top, seed=seed)
    print_summary(data, console, top=top)
    path = write_report(data, out_dir if out_dir is not None else REPORT_DIR / study_name)
    console.print(f"report: [bold]{escape(str(path))}[/]", highlight=False)
