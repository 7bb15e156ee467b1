"""Search spaces: distributions on the right scale, the unit-cube mapping, and coarse-to-fine zoom.

Bounds are inclusive everywhere: ``Float(low, high)`` can return ``low`` and ``high``, ``Int(1, 6)``
returns each of 1, 2, ..., 6, and a zoomed space contains the trials it was cut around.

Every distribution maps a point ``u`` of the unit interval ``[0, 1]`` to a value (``from_unit``) and
back (``to_unit``). Samplers draw ``u`` and zoom narrows boxes of ``u``; neither knows about scales.

    Float(1e-4, 1, scale="log")               lr = 10^r, r uniform in [-4, 0]: even decades
    Float(0.9, 0.999, scale="one_minus_log")  1 - beta = 10^r, r uniform in [-3, -1]: median 0.99
    Int(10, 100)                              each integer 10..100 equally likely
    Choice([32, 64, 128, 256])                each option equally likely

A space is a plain dict ``{"lr": Float(1e-4, 1, scale="log"), ...}``, or the ``[space]`` table of a
config file, read by :func:`space_from_config`::

    [space]
    lr = { low = 1e-4, high = 1, scale = "log" }
    beta = { low = 0.9, high = 0.999, scale = "one_minus_log" }
    units = { low = 10, high = 100 }               # both bounds are integers: an Int
    keep_prob = { low = 0.5, high = 1.0 }          # a float bound: a Float
    layers = { low = 1, high = 4, type = "float" } # an explicit type wins
    batch_size = { choices = [32, 64, 128, 256] }

Without ``type``, a parameter whose bounds are both integers is an ``Int`` (unless its scale is
``one_minus_log``): write ``0.0``, not ``0``, for a float that starts at zero. Every rule broken
raises :class:`tunery.ConfigError` naming the parameter (``space.lr.low``), the rule and the value.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import numpy as np

from tunery._exceptions import ConfigError
from tunery._validation import Interval, check_int, check_scalar

__all__ = [
    "Box",
    "Choice",
    "Distribution",
    "Float",
    "Int",
    "Space",
    "distribution_from_dict",
    "space_from_config",
    "space_from_dict",
    "space_to_dict",
    "validate_space",
    "zoom",
]

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


@dataclass(frozen=True)
class Float(Distribution):
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

    def __post_init__(self) -> None:
        low, high, scale = self._validate(self.low, self.high, self.scale, where=self._label())
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "scale", scale)

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
class Int(Distribution):
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

    def __post_init__(self) -> None:
        low, high, scale = self._validate(self.low, self.high, self.scale, where=self._label())
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "scale", scale)

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


# --------------------------------------------------------------------------------------------------
# Spaces: plain dicts of distributions

Space = dict[str, Distribution]

_KEYS = {
    "float": {"type", "low", "high", "scale"},
    "int": {"type", "low", "high", "scale"},
    "choice": {"type", "choices"},
}


def _infer_type(d: Mapping[str, Any], where: str) -> str:
    if "type" in d:
        kind = d["type"]
        _check_scale(kind, tuple(_KEYS), f"{where}.type")
        return cast(str, kind)
    if "choices" in d:
        return "choice"
    if d.get("scale") == "one_minus_log":  # a scale only a Float has
        return "float"
    bounds = (d.get("low"), d.get("high"))
    ints = all(isinstance(b, numbers.Integral) and not isinstance(b, bool) for b in bounds)
    return "int" if ints else "float"


def distribution_from_dict(d: Mapping[str, Any], *, where: str = "distribution") -> Distribution:
    """Build a distribution from ``to_dict()`` output or a config table.

    ``{"low", "high", "scale"?, "type"?}`` gives a Float or an Int (``scale`` defaults to linear;
    without ``type``, integer bounds give an Int); ``{"choices": [...]}`` gives a Choice.
    Unknown keys, missing keys, wrong types and bad bounds raise ConfigError under ``where``.
    """
    if not isinstance(d, Mapping):
        raise ConfigError(where, d, 'a table like { low = 1e-4, high = 1, scale = "log" }')
    kind = _infer_type(d, where)
    for key in d:
        if key not in _KEYS[kind]:
            allowed = ", ".join(repr(k) for k in sorted(_KEYS[kind]))
            raise ConfigError(where, key, f"one of the keys {allowed} for a {kind} parameter")
    if kind == "choice":
        return Choice(Choice._validate(d.get("choices", _MISSING), where=f"{where}.choices"))
    low, high, scale = d.get("low", _MISSING), d.get("high", _MISSING), d.get("scale", "linear")
    if kind == "int":
        return Int(*Int._validate(low, high, scale, where=where))
    return Float(*Float._validate(low, high, scale, where=where))


def validate_space(space: Mapping[str, Any], *, where: str = "space") -> Space:
    """Check a space and return it as a plain dict of distributions (in the given key order).

    Values may be distributions or dicts accepted by :func:`distribution_from_dict`. Names must be
    non-empty strings, and a space needs at least one parameter. Errors name ``{where}.{name}``.
    """
    if not isinstance(space, Mapping):
        raise ConfigError(where, space, "a table of parameters")
    if not space:
        raise ConfigError(where, dict(space), "at least one parameter")
    checked: Space = {}
    for name, value in space.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(where, name, "parameter names that are non-empty strings")
        if isinstance(value, Distribution):
            checked[name] = value
        else:
            checked[name] = distribution_from_dict(value, where=f"{where}.{name}")
    return checked


def space_from_config(table: Mapping[str, Any], *, where: str = "space") -> Space:
    """Read the ``[space]`` table of a config file (see the module docstring for its form)."""
    if isinstance(table, Mapping):
        for name, value in table.items():
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"{where}.{name}",
                    value,
                    "a table like { low = 1, high = 10 } or { choices = [..] }",
                )
    return validate_space(table, where=where)


def space_to_dict(space: Mapping[str, Distribution]) -> dict[str, dict[str, Any]]:
    """A JSON-able dict of ``to_dict()`` per parameter."""
    return {name: dist.to_dict() for name, dist in space.items()}


def space_from_dict(d: Mapping[str, Any]) -> Space:
    """The inverse of :func:`space_to_dict`."""
    return validate_space(d)


# --------------------------------------------------------------------------------------------------
# Coarse to fine


@dataclass(frozen=True)
class Box:
    """The region a zoomed space was cut from, in the ORIGINAL space's unit coordinates.

    ``bounds[name] = (u_low, u_high)`` for each Float and Int; ``choices[name]``, the options kept
    for each Choice. Being in the original coordinates, the boxes of every round can be drawn over
    the first round's axes. For an Int, the zoomed space holds each integer whose bin meets the box.
    """

    bounds: dict[str, tuple[float, float]]
    choices: dict[str, tuple[Any, ...]]

    @classmethod
    def full(cls, space: Mapping[str, Distribution]) -> Box:
        """The whole unit cube of ``space``: the box of round 1."""
        bounds = {n: (0.0, 1.0) for n, d in space.items() if not isinstance(d, Choice)}
        choices = {n: d.options for n, d in space.items() if isinstance(d, Choice)}
        return cls(bounds, choices)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``{"bounds": {name: [lo, hi]}, "choices": {name: [...]}}``."""
        return {
            "bounds": {n: list(b) for n, b in self.bounds.items()},
            "choices": {n: list(c) for n, c in self.choices.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Box:
        """The inverse of :meth:`to_dict`."""
        bounds = {n: (float(lo), float(hi)) for n, (lo, hi) in d["bounds"].items()}
        return cls(bounds, {n: tuple(c) for n, c in d["choices"].items()})


def _top_count(top: Any, min_top: int, n: int) -> int:
    """How many of the ``n`` finished trials count as the best."""
    if isinstance(top, int) and not isinstance(top, bool) and top >= 1:
        k = top
    elif isinstance(top, float) and 0.0 < top <= 1.0:
        k = math.ceil(top * n)
    else:
        raise ConfigError("zoom.top", top, "a count >= 1 or a fraction in (0, 1]")
    return min(n, max(k, min_top))


def _finished(
    trials: Sequence[tuple[Mapping[str, Any], float | None]],
) -> list[tuple[Mapping[str, Any], float]]:
    """Trials with a finite value; None and NaN mean "not finished", inf means nothing useful."""
    return [
        (params, float(value))
        for params, value in trials
        if value is not None and math.isfinite(value)
    ]


def _check_base(space: Space, base: Space) -> None:
    if set(space) != set(base):
        raise ConfigError("zoom.base", sorted(base), f"the parameters {sorted(space)}")
    for name, dist in space.items():
        original = base[name]
        same_kind = type(dist) is type(original) and getattr(dist, "scale", None) == getattr(
            original, "scale", None
        )
        if not same_kind or (
            isinstance(dist, Choice) and not all(original.contains(o) for o in dist.options)
        ):
            raise ConfigError(f"zoom.base.{name}", original, f"a parent of {dist!r}")


def _param_values(best: list[tuple[Mapping[str, Any], float]], name: str) -> list[Any]:
    try:
        return [params[name] for params, _ in best]
    except KeyError:
        raise ConfigError(
            "zoom.trials", name, "a value for every parameter in each trial"
        ) from None


def _extent(dist: Float | Int, original: Float | Int) -> float:
    """Width of ``dist`` in ``original``'s unit coordinates (both share one scale)."""
    low_edge, high_edge = dist._edges()
    return _fraction(high_edge, *original._edges()) - _fraction(low_edge, *original._edges())


def _zoom_numeric(
    dist: Float | Int, original: Float | Int, values: list[Any], margin: float
) -> tuple[Distribution, tuple[float, float]]:
    us = [original.to_unit(v) for v in values]
    lo, hi = min(us), max(us)
    # A single point has no width to take a margin of: take it of the zoomed space's width.
    width = hi - lo or _extent(dist, original)
    lo, hi = max(0.0, lo - margin * width), min(1.0, hi + margin * width)
    # Rounding in from_unit must not cut off a top trial, nor a stray value widen past the bounds.
    new_low = max(original.low, min(original.from_unit(lo), *values))
    new_high = min(original.high, max(original.from_unit(hi), *values))
    narrowed: Distribution
    if isinstance(original, Int):
        narrowed = Int(math.floor(new_low), math.ceil(new_high), original.scale)
    else:
        narrowed = Float(new_low, new_high, original.scale)
    return narrowed, (lo, hi)


def zoom(
    space: Space,
    trials: Sequence[tuple[Mapping[str, Any], float | None]],
    *,
    maximize: bool = True,
    top: float | int = 0.1,
    min_top: int = 3,
    margin: float = 0.1,
    base: Space | None = None,
) -> tuple[Space, Box]:
    """Narrow ``space`` to the region of its best trials: one step of coarse to fine.

    ``trials`` are ``(params, value)`` pairs; a value of None or NaN (not finished) or inf is
    ignored. The best ``k`` trials are kept, ``k = top`` if ``top`` is an int, else
    ``ceil(top * n)``, at least ``min_top`` and at most ``n`` (the number of finished trials).

    Per parameter, in unit coordinates (so each on its own scale), the box is the bounding box of
    the best trials, widened by ``margin`` times its width on each side (by ``margin`` times the
    width of ``space`` when all best trials agree), then clipped to the original bounds. The
    narrowed space keeps each scale, with ``low``/``high = from_unit`` of the box edges (an Int
    rounds outward). A Choice keeps the options that appear among the best trials.

    ``base`` is the round-1 space when ``space`` is itself a zoomed space: the box is computed and
    returned in ``base``'s unit coordinates and clipped to ``base``'s bounds, so a later round may
    widen back past the current bounds if the best trials sit on its edge. ``trials`` may come
    from any round. Fewer than ``min_top`` finished trials raise ConfigError.
    """
    original = space if base is None else base
    _check_base(space, original)
    if isinstance(min_top, bool) or not isinstance(min_top, int) or min_top < 1:
        raise ConfigError("zoom.min_top", min_top, "an integer >= 1")
    margin = _check_real(margin, "zoom.margin")
    if margin < 0:
        raise ConfigError("zoom.margin", margin, "a number >= 0")
    finished = _finished(trials)
    if len(finished) < min_top:
        raise ConfigError(
            "zoom.trials", len(finished), f"at least min_top={min_top} finished trials"
        )
    k = _top_count(top, min_top, len(finished))
    best = sorted(finished, key=lambda trial: trial[1], reverse=maximize)[:k]

    narrowed: Space = {}
    bounds: dict[str, tuple[float, float]] = {}
    choices: dict[str, tuple[Any, ...]] = {}
    for name, dist in space.items():
        values = _param_values(best, name)
        parent = original[name]
        if isinstance(parent, Choice):
            indices = {parent.index(v) for v in values}  # ConfigError for an unknown option
            kept = tuple(parent.options[i] for i in sorted(indices))
            narrowed[name], choices[name] = Choice(kept), kept
        else:
            narrowed[name], bounds[name] = _zoom_numeric(
                cast(Float | Int, dist), cast(Float | Int, parent), values, margin
            )
    return narrowed, Box(bounds, choices)
