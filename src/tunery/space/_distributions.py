"""Distributions on the right scale, each mapping the unit interval to its values and back."""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import numpy as np

from tunery._exceptions import ConfigError
from tunery._validation import Interval, check_int, check_scalar

__all__ = ["Choice", "Distribution", "Float", "Int", "Space"]

FloatScale = Literal["linear", "log", "one_minus_log"]
IntScale = Literal["linear", "log"]


class _Missing:
    """Stands in for a key the user left out, so the message reads "got nothing"."""

    def __repr__(self) -> str:
        return "nothing (the key is missing)"


_MISSING: Any = _Missing()


# --------------------------------------------------------------------------------------------------
# Checks shared by the constructors and the config reader: one rule, one message.


_FINITE = Interval(float)
_UNIT = Interval(float, 0, 1)


def _check_real(value: Any, where: str) -> float:
    return check_scalar(where, value, _FINITE)


def _check_integer(value: Any, where: str) -> int:
    return check_int(where, value)


def _check_unit(u: Any, where: str) -> float:
    return check_scalar(where, u, _UNIT)


def _check_scale(scale: Any, allowed: tuple[str, ...], where: str) -> str:
    if scale not in allowed:
        raise ConfigError(where, scale, "one of " + ", ".join(repr(s) for s in allowed))
    return cast(str, scale)


def _check_order(low: float, high: float, where: str) -> None:
    if low > high:
        raise ConfigError(f"{where}.high", high, f"a number >= low ({low!r})")


def _lerp(a: float, b: float, u: float) -> float:
    # This form returns a and b exactly at u = 0 and u = 1.
    return (1.0 - u) * a + u * b


def _fraction(x: float, a: float, b: float) -> float:
    """Where x lies between a and b, clipped to [0, 1]; the middle when a == b."""
    if a == b:
        return 0.5
    return min(1.0, max(0.0, (x - a) / (b - a)))


# --------------------------------------------------------------------------------------------------
# Distributions


@dataclass(frozen=True)
class Distribution(ABC):
    """One hyperparameter: a map between the unit interval ``[0, 1]`` and its values.

    ``from_unit(to_unit(v)) == v`` for every value ``v`` it can return (to ~1e-12 for floats), and
    ``from_unit`` is non-decreasing in ``u``. The optional ``name`` only labels error messages.
    """

    @abstractmethod
    def to_unit(self, value: Any) -> float:
        """Map a value to ``u`` in ``[0, 1]``; values beyond the bounds map to 0 or 1."""

    @abstractmethod
    def from_unit(self, u: float) -> Any:
        """Map ``u`` in ``[0, 1]`` to a value within the bounds."""

    @abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one this distribution can return."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :func:`distribution_from_dict` turns it back into the distribution."""

    def _label(self) -> str:
        name = getattr(self, "name", None)
        return f"{type(self).__name__}(name={name!r})" if name else type(self).__name__


class _Range(Distribution):
    """A distribution between two bounds on a scale: its fields are checked once, here."""

    low: Any
    high: Any
    scale: Any

    def __post_init__(self) -> None:
        low, high, scale = self._validate(self.low, self.high, self.scale, where=self._label())
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "scale", scale)

    @staticmethod
    @abstractmethod
    def _validate(low: Any, high: Any, scale: Any, *, where: str) -> tuple[Any, Any, Any]:
        """The fields, checked and converted; ``where`` prefixes error fields."""


@dataclass(frozen=True)
class Float(_Range):
    """A real number in ``[low, high]`` on a linear, log or one-minus-log scale.

    - ``"linear"``: uniform in ``[low, high]``.
    - ``"log"``: ``value = 10^r``, ``r`` uniform in ``[log10 low, log10 high]``; needs ``low > 0``.
      For ``Float(1e-4, 1, scale="log")`` each decade gets a quarter of the draws.
    - ``"one_minus_log"``: ``1 - value = 10^r``, for momentum-like parameters close to 1; needs
      ``0 < low <= high < 1``. For ``Float(0.9, 0.999, scale="one_minus_log")``, ``r`` is uniform in
      ``[-3, -1]``: half the draws fall in ``[0.9, 0.99]``, half in ``[0.99, 0.999]``, median 0.99.
      (Keras Tuner's ``reverse_log`` mirrors the log scale about ``low + high`` instead of about 1;
      on ``[0.9, 0.999]`` its median is about 0.95, so it rarely tries the values that matter.)

    ``1 - value`` is computed as ``10^r`` directly, so values near 1 keep their precision.
    """

    low: float
    high: float
    scale: FloatScale = "linear"
    name: str | None = field(default=None, kw_only=True, compare=False, repr=False)

    @staticmethod
    def _validate(
        low: Any, high: Any, scale: Any, *, where: str
    ) -> tuple[float, float, FloatScale]:
        """Validate the fields; return them as plain floats. ``where`` prefixes error fields."""
        checked_scale = _check_scale(scale, get_args(FloatScale), f"{where}.scale")
        low_f = _check_real(low, f"{where}.low")
        high_f = _check_real(high, f"{where}.high")
        if checked_scale == "log" and low_f <= 0:
            raise ConfigError(f"{where}.low", low, "a number > 0 on the log scale")
        if checked_scale == "one_minus_log":
            for bound, value in (("low", low_f), ("high", high_f)):
                if not 0.0 < value < 1.0:
                    raise ConfigError(
                        f"{where}.{bound}", value, "a number in (0, 1) on the one_minus_log scale"
                    )
        _check_order(low_f, high_f, where)
        return low_f, high_f, cast(FloatScale, checked_scale)

    def _edges(self) -> tuple[float, float]:
        """The bounds in the coordinate where the scale is uniform (x, log10 x or log10(1 - x))."""
        if self.scale == "log":
            return math.log10(self.low), math.log10(self.high)
        if self.scale == "one_minus_log":
            return math.log10(1.0 - self.low), math.log10(1.0 - self.high)
        return self.low, self.high

    def from_unit(self, u: float) -> float:
        u = _check_unit(u, f"{self._label()}.from_unit(u)")
        if u == 0.0:
            return self.low
        if u == 1.0:
            return self.high
        r = _lerp(*self._edges(), u)
        value: float
        if self.scale == "log":
            value = 10.0**r
        elif self.scale == "one_minus_log":
            value = 1.0 - 10.0**r
        else:
            value = r
        return min(self.high, max(self.low, value))

    def to_unit(self, value: Any) -> float:
        x = _check_real(value, f"{self._label()}.to_unit(value)")
        if self.low == self.high:
            return 0.5
        # Clip first: it keeps the logarithms below in their domain.
        if x <= self.low:
            return 0.0
        if x >= self.high:
            return 1.0
        if self.scale == "log":
            r = math.log10(x)
        elif self.scale == "one_minus_log":
            r = math.log10(1.0 - x)
        else:
            r = x
        return _fraction(r, *self._edges())

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        return self.low <= float(value) <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "scale": self.scale}


@dataclass(frozen=True)
class Int(_Range):
    """An integer in ``[low, high]`` (both included).

    - ``"linear"``: each integer equally likely; ``u`` is cut into ``high - low + 1`` equal bins.
    - ``"log"``: ``floor(10^r)`` with ``r`` uniform in ``[log10 low, log10(high + 1)]``, so integer
      ``k`` owns the bin ``[log k, log(k + 1))``: each decade is equally likely. Needs ``low >= 1``.

    ``to_unit(k)`` is the centre of ``k``'s bin, so ``from_unit(to_unit(k)) == k``.
    """

    low: int
    high: int
    scale: IntScale = "linear"
    name: str | None = field(default=None, kw_only=True, compare=False, repr=False)

    @staticmethod
    def _validate(low: Any, high: Any, scale: Any, *, where: str) -> tuple[int, int, IntScale]:
        """Validate the fields; return them as plain ints. ``where`` prefixes error fields."""
        checked_scale = _check_scale(scale, get_args(IntScale), f"{where}.scale")
        low_i = _check_integer(low, f"{where}.low")
        high_i = _check_integer(high, f"{where}.high")
        if checked_scale == "log" and low_i < 1:
            raise ConfigError(f"{where}.low", low, "an integer >= 1 on the log scale")
        _check_order(low_i, high_i, where)
        return low_i, high_i, cast(IntScale, checked_scale)

    def _edges(self) -> tuple[float, float]:
        """Outer edges of the first and last bins, in the coordinate where bins are equal."""
        if self.scale == "log":
            return math.log10(self.low), math.log10(self.high + 1)
        return float(self.low), float(self.high + 1)

    def from_unit(self, u: float) -> int:
        u = _check_unit(u, f"{self._label()}.from_unit(u)")
        r = _lerp(*self._edges(), u)
        k = math.floor(10.0**r if self.scale == "log" else r)
        # u = 1 lands on the outer edge of the last bin, and rounding may stray by one.
        return min(self.high, max(self.low, k))

    def to_unit(self, value: Any) -> float:
        k = _check_real(value, f"{self._label()}.to_unit(value)")
        if k <= self.low - 1 or (self.scale == "log" and k <= 0):
            return 0.0
        # The centre of k's bin, in the coordinate where bins are equal.
        centre = 0.5 * (math.log10(k) + math.log10(k + 1)) if self.scale == "log" else k + 0.5
        return _fraction(centre, *self._edges())

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return False
        return self.low <= int(value) <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "scale": self.scale}


def _option_key(option: Any) -> tuple[str, Any]:
    # True == 1 in Python, but a choice between True and 1 holds two different options.
    return ("bool" if isinstance(option, bool) else "scalar", option)


def _check_option(option: Any, where: str) -> bool | int | float | str:
    if isinstance(option, bool):
        return option
    if isinstance(option, str):
        return str(option)
    if isinstance(option, np.bool_):  # numpy's bool is no subclass of bool
        return bool(option)
    if isinstance(option, numbers.Integral):
        return int(option)
    if isinstance(option, numbers.Real):
        return _check_real(option, where)
    raise ConfigError(where, option, "a JSON scalar (int, float, str or bool)")


@dataclass(frozen=True, init=False)
class Choice(Distribution):
    """One of a few options (ints, floats, strings or bools), each equally likely.

    ``from_unit(u)`` picks option ``floor(u * n)``; ``to_unit`` gives the centre of its bin.
    ``Choice([32, 64])`` accepts any sequence and stores a tuple.
    """

    options: tuple[Any, ...]
    name: str | None = field(default=None, kw_only=True, compare=False, repr=False)

    # A hand-written __init__ so that type checkers accept a list, as the docs write it.
    def __init__(self, options: Sequence[Any], *, name: str | None = None) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(
            self, "options", self._validate(options, where=f"{self._label()}.options")
        )

    @staticmethod
    def _validate(options: Any, *, where: str) -> tuple[Any, ...]:
        """Validate the options; return them as a tuple of plain Python scalars.

        ``where`` names the list in errors: ``Choice.options`` or ``space.batch_size.choices``.
        """
        if isinstance(options, str | bytes) or not isinstance(options, Sequence):
            raise ConfigError(where, options, "a list of options")
        if not options:
            raise ConfigError(where, list(options), "at least one option")
        checked = tuple(_check_option(option, f"{where}[{i}]") for i, option in enumerate(options))
        seen: set[tuple[str, Any]] = set()
        for option in checked:
            if _option_key(option) in seen:
                raise ConfigError(where, list(options), f"options without duplicates ({option!r})")
            seen.add(_option_key(option))
        return checked

    def index(self, option: Any) -> int:
        """Position of ``option`` among the options; ConfigError if it is not one of them."""
        for i, candidate in enumerate(self.options):
            if _option_key(candidate) == _option_key(option):
                return i
        raise ConfigError(self._label(), option, f"one of {list(self.options)!r}")

    def from_unit(self, u: float) -> Any:
        u = _check_unit(u, f"{self._label()}.from_unit(u)")
        n = len(self.options)
        return self.options[min(n - 1, math.floor(u * n))]

    def to_unit(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.options)

    def contains(self, value: Any) -> bool:
        return any(_option_key(value) == _option_key(option) for option in self.options)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "choice", "choices": list(self.options)}


Space = dict[str, Distribution]
"""A search space: parameter name → distribution."""
