"""Option types and parsers of ``tunery train``: each turns a bad value into a one-line usage error
naming the option (exit code 2)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

from tunery._exceptions import ConfigError
from tunery.data import parse_classes
from tunery.nn.schedules import SCHEDULES, Schedule, make_schedule

__all__ = ["FiniteFloat", "Parsed", "check_classes", "parse_conv", "parse_decay", "parse_layers"]


class FiniteFloat(click.FloatRange):
    """A ``click.FloatRange`` that also refuses NaN and infinity (which compare as in range)."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def parse_layers(text: str) -> tuple[int, ...]:
    """``"25,12"`` → ``(25, 12)``; ``"none"`` or ``""`` → ``()`` (softmax regression)."""
    cleaned = text.strip().lower()
    if cleaned in ("", "none"):
        return ()
    expected = "hidden-layer sizes as integers >= 1 separated by commas, e.g. 25,12 (or none)"
    sizes = []
    for part in cleaned.split(","):
        try:
            size = int(part.strip())
        except ValueError:
            raise ConfigError("--layers", text, expected) from None
        if size < 1:
            raise ConfigError("--layers", text, expected)
        sizes.append(size)
    return tuple(sizes)


def parse_conv(text: str) -> tuple[tuple[int, int], ...]:
    """``"16:3,32:3"`` → ``((16, 3), (32, 3))``: a CNN's blocks as FILTERS:KERNEL pairs."""
    expected = "blocks FILTERS:KERNEL of integers >= 1 separated by commas, e.g. 16:3,32:3"
    blocks = []
    for part in text.strip().split(","):
        pieces = part.strip().split(":")
        try:
            filters, kernel = (int(piece) for piece in pieces)
        except ValueError:
            raise ConfigError("--conv", text, expected) from None
        if filters < 1 or kernel < 1:
            raise ConfigError("--conv", text, expected)
        blocks.append((filters, kernel))
    return tuple(blocks)


def parse_decay(text: str) -> Schedule:
    """``NAME[:V1[:V2]]`` → a ``Schedule``; values fill the schedule's options in order.

    ``none``, ``inverse_time:RATE``, ``exponential:RATE``, ``inverse_sqrt:K``,
    ``step:EVERY:FACTOR``; omitted values take the schedule's defaults.
    """
    name, *values = (part.strip() for part in text.split(":"))
    kind = SCHEDULES.get(name.lower().replace("-", "_"))
    if kind is None:
        raise ConfigError("--decay", text, f"one of {', '.join(SCHEDULES)} (see --help)")
    option_names = list(kind.options)
    if len(values) > len(option_names):
        expected = ":".join([name, *(option.upper() for option in option_names)])
        raise ConfigError("--decay", text, f"at most {len(option_names)} values: {expected}")
    options: dict[str, float] = {}
    for option, value in zip(option_names, values, strict=False):
        options[option] = _number(value, integer=kind.options[option].integer, text=text)
    try:
        return make_schedule(name, **options)
    except ConfigError as error:
        form = ":".join([name, *(option.upper() for option in option_names)])
        expected = f"{form} with {error.field.upper()} {error.expected}"
        raise ConfigError("--decay", text, expected) from None


def _number(value: str, *, integer: bool, text: str) -> float:
    try:
        return int(value) if integer else float(value)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError("--decay", text, f"{kind} after ':', not {value!r}") from None


class Parsed(click.ParamType[Any]):
    """A click type from a parser that raises ``ConfigError``: the error becomes a usage error."""

    def __init__(self, name: str, parser: Callable[[str], Any]) -> None:
        self.name = name
        self.parser = parser

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value  # already converted (a default given as a value)
        try:
            return self.parser(value)
        except ConfigError as error:
            self.fail(f"expected {error.expected}, got {value!r}.", param, ctx)


def check_classes(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parse_classes(value)
        except ConfigError as error:
            raise click.BadParameter(f"expected {error.expected}.") from None
    return value
