"""Learning-rate decay: the learning rate as a function of the base rate ``lr0`` and the epoch.

``epoch`` counts the epochs already finished: it is 0 while the first epoch runs. So every schedule
but ``inverse_sqrt`` with ``k ≠ 1`` trains the first epoch at ``lr0``.

- ``none``:          ``lr0``
- ``inverse_time``:  ``lr0 / (1 + rate·epoch)``;        ``rate >= 0`` (default 1.0)
- ``exponential``:   ``lr0 · rate**epoch``;             ``0 < rate <= 1`` (default 0.95)
- ``inverse_sqrt``:  ``lr0 · k / √(epoch + 1)``;        ``k > 0`` (default 1.0)
- ``step``:          ``lr0 · factor**(epoch // every)``;  ``every >= 1`` (default 10),
  ``0 < factor <= 1`` (default 0.5)

``inverse_sqrt`` is the course's ``α = k/√epoch_num · α0`` with the epoch numbered from 1
(``epoch_num = epoch + 1``), which keeps the first epoch finite.

``make_schedule(name, **options)`` validates the options and returns a ``Schedule``, a callable
``(lr0, epoch) -> lr``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunery._exceptions import ConfigError

__all__ = [
    "SCHEDULES",
    "Schedule",
    "constant",
    "exponential",
    "inverse_sqrt",
    "inverse_time",
    "make_schedule",
    "step",
]


def constant(lr0: float, epoch: int) -> float:
    """No decay: ``lr0`` at every epoch."""
    return lr0


def inverse_time(lr0: float, epoch: int, rate: float = 1.0) -> float:
    """``lr0 / (1 + rate·epoch)``."""
    return lr0 / (1.0 + rate * epoch)


def exponential(lr0: float, epoch: int, rate: float = 0.95) -> float:
    """``lr0 · rate**epoch`` (e.g. ``0.95**epoch``)."""
    return lr0 * rate**epoch


def inverse_sqrt(lr0: float, epoch: int, k: float = 1.0) -> float:
    """``lr0 · k / √(epoch + 1)``."""
    return lr0 * k / math.sqrt(epoch + 1)


def step(lr0: float, epoch: int, every: int = 10, factor: float = 0.5) -> float:
    """``lr0 · factor**(epoch // every)``: drop by ``factor`` every ``every`` epochs."""
    return lr0 * factor ** (epoch // every)


@dataclass(frozen=True)
class _Option:
    """One option of a schedule: its default and its rule, declared as data."""

    default: float
    check: Callable[[float], bool]
    expected: str
    integer: bool = False


@dataclass(frozen=True)
class _Kind:
    formula: Callable[..., float]
    options: Mapping[str, _Option] = field(default_factory=dict)


SCHEDULES: Mapping[str, _Kind] = {
    "none": _Kind(constant),
    "inverse_time": _Kind(
        inverse_time, {"rate": _Option(1.0, lambda x: x >= 0, "a finite number >= 0")}
    ),
    "exponential": _Kind(
        exponential, {"rate": _Option(0.95, lambda x: 0 < x <= 1, "a number in (0, 1]")}
    ),
    "inverse_sqrt": _Kind(
        inverse_sqrt, {"k": _Option(1.0, lambda x: x > 0, "a finite number > 0")}
    ),
    "step": _Kind(
        step,
        {
            "every": _Option(10, lambda x: x >= 1, "an integer >= 1", integer=True),
            "factor": _Option(0.5, lambda x: 0 < x <= 1, "a number in (0, 1]"),
        },
    ),
}


@dataclass(frozen=True)
class Schedule:
    """A validated schedule: ``schedule(lr0, epoch) -> lr``. ``options`` holds every option."""

    name: str
    options: Mapping[str, float] = field(default_factory=dict)

    def __call__(self, lr0: float, epoch: int) -> float:
        return SCHEDULES[self.name].formula(lr0, epoch, **self.options)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}


def make_schedule(name: str | None, **options: float) -> Schedule:
    """The schedule called ``name`` (``None`` means ``"none"``) with validated ``options``.

    Names may use ``-`` for ``_`` (``"inverse-time"``). Raises ``ConfigError`` naming the field.
    """
    given = "none" if name is None else name
    key = given.strip().lower().replace("-", "_") if isinstance(given, str) else ""
    kind = SCHEDULES.get(key)
    if kind is None:
        raise ConfigError("schedule", name, f"one of {', '.join(SCHEDULES)}")
    values = {option: rule.default for option, rule in kind.options.items()}
    for option, value in options.items():
        rule = kind.options.get(option)
        if rule is None:
            known = ", ".join(kind.options) or "it takes none"
            raise ConfigError(option, value, f"an option of the {key} schedule ({known})")
        values[option] = _checked(option, value, rule)
    return Schedule(key, values)


def _checked(name: str, value: object, option: _Option) -> float:
    """``value`` as a plain float (int for integer options), or ``ConfigError``."""
    kinds = (int, np.integer) if option.integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ConfigError(name, value, option.expected)
    number = int(value) if option.integer else float(value)
    if not math.isfinite(number) or not option.check(number):
        raise ConfigError(name, value, option.expected)
    return number
