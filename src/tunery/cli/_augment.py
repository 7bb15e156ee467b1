"""``tunery train``'s ``--augment-*`` options: the ``[data.augment]`` amounts as flags.

``augment_options`` adds one flag per amount (and ``--augment-flip/--no-augment-flip``) and hands
the command one ``augment: AugmentSettings``; a bad value is a ConfigError naming the flag (exit
code 2). ``augmenting(factory, ...)`` wraps an engine factory when any transform is on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from tunery._exceptions import ConfigError
from tunery.data import AUGMENT_AMOUNTS, AugmentSettings, Dataset
from tunery.nn.engine import EngineFactory
from tunery.workflows.augmenting import augmenting_engine
from tunery.workflows.objective import make_augmenter

__all__ = ["augment_options", "augmenting", "flag_of"]

_HELP = {
    "rotation": "Rotate each training photo by an angle drawn from [-DEG, DEG] degrees.",
    "scale": "Zoom by a factor drawn from [1-S, 1+S] (above 1 crops, below shows more border).",
    "brightness": "Multiply the pixels by a factor drawn from [1-B, 1+B].",
    "contrast": "Scale the distance from the photo's mean grey by a factor from [1-C, 1+C].",
    "hue": "Turn the colours by up to H of the colour circle (0.05 = ±18°), at most 0.5.",
    "temperature": "Warmer or cooler light: red ×(1+t), blue ×(1-t), t drawn from [-T, T].",
    "mix": "Mix the colour channels: each a random signed mixture of the three, off-diagonal "
    "weights drawn from [-M, M] before the rows are scaled to sum 1 in absolute value.",
}
_METAVARS = {
    "rotation": "DEG", "scale": "S", "brightness": "B", "contrast": "C", "hue": "H", "mix": "M"
}  # fmt: skip


def flag_of(name: str) -> str:
    """``"rotation"`` → ``"--augment-rotation"``."""
    return f"--augment-{name}"


def augment_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the ``--augment-*`` flags to a click command; it gets them as ``augment=``."""

    @functools.wraps(command)
    def wrapped(**kwargs: Any) -> Any:
        values = {name: kwargs.pop(f"augment_{name}") for name in (*AUGMENT_AMOUNTS, "flip")}
        try:
            augment = AugmentSettings(**values)
        except ConfigError as error:
            field = flag_of(error.field.removeprefix("augment."))
            raise ConfigError(field, error.value, error.expected) from None
        return command(augment=augment, **kwargs)

    decorated: Callable[..., Any] = wrapped
    decorated = click.option(
        "--augment-flip/--no-augment-flip",
        default=False,
        help="Mirror training photos left-right half the time (a hand sign means the same "
        "mirrored: the other hand).",
    )(decorated)
    for name in reversed(AUGMENT_AMOUNTS):
        decorated = click.option(
            flag_of(name),
            f"augment_{name}",
            type=float,
            default=0.0,
            metavar=_METAVARS.get(name, "T"),
            help=_HELP[name] + " 0: off.",
        )(decorated)
    return decorated


def augmenting(
    engine: EngineFactory, augment: AugmentSettings, dataset: Dataset, seed: int
) -> EngineFactory:
    """``engine`` fed augmented training photos (``engine`` itself when nothing is on)."""
    if not augment.active:
        return engine
    try:
        augmenter = make_augmenter(augment, dataset)
    except ConfigError as error:
        flag = flag_of(error.field.removeprefix("data.augment.").removeprefix("data."))
        raise ConfigError(flag, error.value, error.expected) from None
    return augmenting_engine(engine, augmenter, seed=seed)
