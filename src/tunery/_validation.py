"""One way to check a scalar argument: the rule is declared as data, the message has one format.

    check_scalar("workers", workers, Interval(int, 1))                        # an int >= 1
    check_scalar("keep_prob", p, Interval(float, 0, 1, closed="right"))       # a number in (0, 1]
    check_scalar("lr", lr, Interval(float, 0, None, closed="neither"))        # a finite number > 0
    check_scalar("value", v, Interval(float, finite=False))                   # a real number

As in scikit-learn's parameter validation, an ``Interval`` renders its own description, so the
rule and its message cannot drift apart, and every failure is ``ConfigError(field, value,
description)``: "workers: expected an int >= 1, got 0". A bool is never a number here (``True``
is an ``int`` to Python, never what a user meant by ``epochs = true``); NumPy integers and floats
are numbers.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from tunery._exceptions import ConfigError

__all__ = [
    "ANY_REAL",
    "FRACTION",
    "KEEP_PROB",
    "POSITIVE",
    "Interval",
    "check_int",
    "check_scalar",
    "under",
]

Closed = Literal["both", "left", "right", "neither"]


@dataclass(frozen=True)
class Interval:
    """Numbers of ``kind`` between ``low`` and ``high`` (``None``: unbounded on that side).

    ``closed`` says which bounds belong to the interval. Floats must be finite unless
    ``finite=False`` (a metric may be NaN: it marks a diverged trial).
    """

    kind: type[int] | type[float]
    low: float | None = None
    high: float | None = None
    closed: Closed = "both"
    finite: bool = True

    def accepts(self, value: object) -> bool:
        # Plain ints and floats skip the abstract-class checks: they run per trial on hot paths.
        if type(value) is int or (type(value) is float and self.kind is float):
            number = float(value)
        elif isinstance(value, bool) or not isinstance(value, self._abstract):
            return False
        else:
            assert isinstance(value, numbers.Real)
            number = float(value)
        if math.isnan(number) or math.isinf(number):
            return not self.finite and self.low is None and self.high is None
        return self._above_low(number) and self._below_high(number)

    def describe(self) -> str:
        noun = "an int" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            return f"{noun} in {left}{_show(self.low)}, {_show(self.high)}{right}"
        if self.kind is float:
            noun = "a finite number" if self.finite else "a real number"
        if self.low is not None:
            sign = ">=" if self.closed in ("both", "left") else ">"
            return f"{noun} {sign} {_show(self.low)}"
        if self.high is not None:
            sign = "<=" if self.closed in ("both", "right") else "<"
            return f"{noun} {sign} {_show(self.high)}"
        return noun

    def __str__(self) -> str:
        return self.describe()

    @property
    def _abstract(self) -> type:
        return numbers.Integral if self.kind is int else numbers.Real

    def _above_low(self, number: float) -> bool:
        if self.low is None:
            return True
        return number >= self.low if self.closed in ("both", "left") else number > self.low

    def _below_high(self, number: float) -> bool:
        if self.high is None:
            return True
        return number <= self.high if self.closed in ("both", "right") else number < self.high


def check_scalar(field: str, value: object, rule: Interval) -> float:
    """``value`` as the rule's kind if the rule accepts it, else ``ConfigError``.

    Typed as ``float`` (an ``int`` is one too); ``check_int`` returns an ``int``.
    """
    if not rule.accepts(value):
        # Say why a bool is refused: to Python it is an int, so the rule alone would puzzle.
        extra = ", not a bool" if isinstance(value, bool) else ""
        raise ConfigError(field, value, rule.describe() + extra)
    if type(value) is float or type(value) is int:  # the common case, without ABC checks
        return value if rule.kind is int else float(value)
    if isinstance(value, numbers.Integral) and rule.kind is int:
        return int(value)
    assert isinstance(value, numbers.Real)  # accepts() said so; this tells the type checker
    return float(value)


def check_int(field: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (bools refused), else ConfigError."""
    if type(value) is int and (low is None or value >= low) and (high is None or value <= high):
        return value  # the common case, checked per trial: no rule object to build
    return int(check_scalar(field, value, Interval(int, low, high)))


@contextmanager
def under(where: str) -> Iterator[None]:
    """Re-raise a ConfigError of a lower-level check under the caller's field path ``where``.

    The function that checks a value names its own argument; the config reader, or the command
    line, knows where the value came from (``data.normalize``, ``--lr``).
    """
    try:
        yield
    except ConfigError as error:
        raise ConfigError(where, error.value, error.expected) from None


def _show(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


ANY_REAL = Interval(float, finite=False)
"""Any real number, NaN and inf included (a metric or an objective value may be either)."""
POSITIVE = Interval(float, 0, None, closed="neither")
"""A finite number > 0: a learning rate, an epsilon."""
FRACTION = Interval(float, 0, 1, closed="neither")
"""A number in (0, 1): a share of the data."""
KEEP_PROB = Interval(float, 0, 1, closed="right")
"""A number in (0, 1]: dropout's probability of keeping a unit (1 keeps all)."""
