"""``tunery predict``: classify photos with a run folder that ``tunery train`` wrote.

A photo whose top probability is below the run's threshold is reported as *unsure* rather than as
a confident answer: ``tunery train`` measures that threshold on the validation split (the top
probability that 95 % of its right answers exceed, ``tunery.trained.confidence_threshold``), so a
photo the model is less sure of than of nearly every photo like its training ones is most likely
unlike them (another hand, background or light), and its answer is often wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
import numpy as np
from rich.markup import escape
from rich.table import Table

from tunery._exceptions import ConfigError
from tunery.cli._app import app, console
from tunery.cli._options import FiniteFloat
from tunery.data import load_images
from tunery.trained import UNSURE_FALLBACK, TrainedRun, load_run

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
@click.option(
    "--unsure-below",
    type=FiniteFloat(min=0, max=1),
    help="Report an answer as unsure when its probability is below P [default: the run's "
    "threshold, measured on its validation split; 0.5 for runs saved without one].",
)
def predict(run: Path, images: Sequence[Path], top: int, unsure_below: float | None) -> None:
    """Classify photos with a trained run: RUN is a folder written by `tunery train`.

    Each image is decoded like the training photos (upright, RGB, squeezed to the run's size,
    normalized with the training set's statistics). Needs a run trained on photos (an image
    folder or .h5 files), not on the 8×8 digits. An answer less probable than the run's
    threshold is marked unsure: the photo is probably unlike the training photos.
    """
    trained = load_run(run)
    rows = load_images(list(images), size=_image_size(trained, run))
    probabilities = trained.predict_proba(rows)
    threshold = trained.unsure_below if unsure_below is None else unsure_below
    table = _prediction_table(images, probabilities, trained.class_names, top, threshold)
    console.print(table)
    unsure = int(np.sum(probabilities.max(axis=1) < threshold))
    if unsure:
        console.print(
            f"{unsure} of {len(images)} unsure: probability below {threshold:.3f}, which "
            f"{_threshold_origin(trained, unsure_below)}. Such a photo is probably unlike the "
            "training photos (another hand, background or light); its answer is often wrong.",
            highlight=False,
        )


def _threshold_origin(trained: TrainedRun, given: float | None) -> str:
    if given is not None:
        return "--unsure-below set"
    if trained.measured_threshold is not None:
        return "95% of the right answers on the validation split exceed"
    return f"is the default ({UNSURE_FALLBACK}) for a run saved without a measured threshold"


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
    images: Sequence[Path],
    probabilities: np.ndarray,
    class_names: Sequence[str],
    top: int,
    threshold: float,
) -> Table:
    table = Table()
    table.add_column("file", overflow="fold")  # wrap a long path rather than cut it
    table.add_column("class", justify="center")
    table.add_column("probability", justify="right")
    table.add_column(f"top {min(top, len(class_names))}")
    table.add_column("sure")
    for path, row in zip(images, probabilities, strict=True):
        order = np.argsort(row)[::-1][:top]
        best = int(order[0])
        ranking = ", ".join(f"{class_names[k]} {row[k]:.3f}" for k in order)
        sure = "yes" if row[best] >= threshold else "unsure"
        table.add_row(escape(str(path)), class_names[best], f"{row[best]:.3f}", ranking, sure)
    return table
