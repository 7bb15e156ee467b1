"""Coarse to fine: narrow a space around its best trials, on the unit cube."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from tunery._exceptions import ConfigError
from tunery.space._distributions import (
    Choice,
    Distribution,
    Float,
    Int,
    Space,
    _check_real,
    _fraction,
)

__all__ = ["Box", "zoom"]

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
