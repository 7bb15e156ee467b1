"""``tunery predict``: classify photos with a run folder that ``tunery train`` wrote."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
import numpy as np
from rich.markup import escape
from rich.table import Table

from tunery._exceptions import ConfigError
from tunery.cli._app import app, console
from tunery.data import load_images
from tunery.trained import TrainedRun, load_run

__all__ = ["predict"]


@app.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument(
    "images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=3,
    help="How many of the most probable classes to list per image.",
)
def predict(run: Path, images: Sequence[Path], top: int) -> None:
    """Classify photos with a trained run: RUN is a folder written by `tunery train`.

    Each image is decoded like the training photos (upright, RGB, squeezed to the run's size,
    normalized with the training set's statistics). Needs a run trained on photos (an image
    folder or .h5 files), not on the 8×8 digits.
    """
    trained = load_run(run)
    rows = load_images(list(images), size=_image_size(trained, run))
    probabilities = trained.predict_proba(rows)
    console.print(_prediction_table(images, probabilities, trained.class_names, top))


def _image_size(trained: TrainedRun, run: Path) -> int:
    """The side the run's photos were resized to; a ConfigError for a run not trained on photos."""
    if trained.image_shape is None or not trained.is_image_model:
        shape = "×".join(map(str, trained.image_shape or ())) or "unknown"
        kind = " grayscale" if trained.image_shape and len(trained.image_shape) == 2 else ""
        expected = (
            f"a run trained on photos (an image folder or .h5 files); this one was trained on "
            f"{trained.source!r} with {shape}{kind} inputs, and photos cannot be turned into those"
        )
        raise ConfigError("RUN", str(run), expected)
    return trained.image_shape[0]


def _prediction_table(
    images: Sequence[Path], probabilities: np.ndarray, class_names: Sequence[str], top: int
) -> Table:
    table = Table()
    table.add_column("file", overflow="fold")  # wrap a long path rather than cut it
    table.add_column("class", justify="center")
    table.add_column("probability", justify="right")
    table.add_column(f"top {min(top, len(class_names))}")
    for path, row in zip(images, probabilities, strict=True):
        order = np.argsort(row)[::-1][:top]
        best = int(order[0])
        ranking = ", ".join(f"{class_names[k]} {row[k]:.3f}" for k in order)
        table.add_row(escape(str(path)), class_names[best], f"{row[best]:.3f}", ranking)
    return table
