"""Coarse to fine as data: the zoom picture of the two top parameters and each round's ranges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tunery._exceptions import ConfigError
from tunery.records import TrialState
from tunery.report._data import (
    ParamAxis,
    StudyLike,
    StudySnapshot,
    _finite_value,
    format_value,
    param_axes,
)
from tunery.report._importance import Importance
from tunery.space import Choice, Distribution, Float, Int
from tunery.study import Round

__all__ = [
    "ParamRange",
    "RoundRanges",
    "ZoomBox",
    "ZoomData",
    "round_ranges",
    "zoom_data",
]


# -- the coarse-to-fine picture --------------------------------------------------------------------


@dataclass(frozen=True)
class ZoomBox:
    """One round's region over two parameters, in values (option positions for a Choice).

    ``origin`` is ``"zoomed"`` for a box cut by ``Study.zoom`` or ``"given"`` for a space the user
    passed after round 1.
    """

    round: int
    origin: Literal["zoomed", "given"]
    x: tuple[float, float]
    y: tuple[float, float]


@dataclass(frozen=True)
class ZoomData:
    """Two parameters, the trials over them and the box of every round after the first.

    ``xs``, ``ys``, ``values``, ``rounds``, ``states``: one entry per trial holding both params;
    ``values[i]`` is ``None`` for a trial without a finite value.
    """

    x_axis: ParamAxis
    y_axis: ParamAxis
    xs: list[float]
    ys: list[float]
    values: list[float | None]
    rounds: list[int]
    states: list[str]
    boxes: list[ZoomBox]


def zoom_data(
    study: StudyLike,
    params: tuple[str, str] | None = None,
    *,
    ranking: Importance | None = None,
) -> ZoomData | None:
    """The coarse-to-fine picture over ``params`` (default: the two most important parameters).

    Without a ranking, the first two parameters of the first round are drawn. ``None`` when the
    study has fewer than two parameters.
    """
    snapshot = StudySnapshot.of(study)
    axes = param_axes(snapshot)
    pair = params or _top_two(axes, ranking)
    if pair is None:
        return None
    for name in pair:
        if name not in axes:
            raise ConfigError("params", name, f"a parameter of the study ({sorted(axes)})")
    x_axis, y_axis = axes[pair[0]], axes[pair[1]]
    xs, ys, values, rounds, states = [], [], [], [], []
    for trial in snapshot.trials:
        x = x_axis.position(trial.params.get(pair[0]))
        y = y_axis.position(trial.params.get(pair[1]))
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
            values.append(_finite_value(trial))
            rounds.append(trial.round)
            states.append(trial.state.name)
    boxes = _boxes(snapshot.rounds, x_axis, y_axis)
    return ZoomData(x_axis, y_axis, xs, ys, values, rounds, states, boxes)


def _top_two(axes: dict[str, ParamAxis], ranking: Importance | None) -> tuple[str, str] | None:
    ranked = [name for name in (ranking.names if ranking else []) if name in axes]
    names = ranked + [name for name in axes if name not in ranked]
    return (names[0], names[1]) if len(names) >= 2 else None


def _boxes(rounds: Sequence[Round], x_axis: ParamAxis, y_axis: ParamAxis) -> list[ZoomBox]:
    boxes = []
    for round_, base in _with_bases(rounds):
        if round_.index == rounds[0].index:
            continue  # round 1 is the whole picture, not a box in it
        ranges = _ranges_of(round_, base)
        x = _extent(ranges.get(x_axis.name), x_axis)
        y = _extent(ranges.get(y_axis.name), y_axis)
        if x is not None and y is not None:
            origin: Literal["zoomed", "given"] = "zoomed" if round_.zoomed else "given"
            boxes.append(ZoomBox(round_.index, origin, x, y))
    return boxes


def _extent(span: ParamRange | None, axis: ParamAxis) -> tuple[float, float] | None:
    """A range as an interval on ``axis``; a Choice's kept options span their positions ± 0.5."""
    if span is None:
        return None
    if span.options is not None:
        spots = [p for p in (axis.position(o) for o in span.options) if p is not None]
        return (min(spots) - 0.5, max(spots) + 0.5) if spots else None
    if span.low is None or span.high is None:
        return None
    return (span.low, span.high)


# -- each round's ranges ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamRange:
    """One parameter's range in a round: ``low``/``high`` values, or the ``options`` kept."""

    low: float | None = None
    high: float | None = None
    options: tuple[Any, ...] | None = None

    def describe(self) -> str:
        if self.options is not None:
            return "{" + ", ".join(format_value(o) for o in self.options) + "}"
        return f"[{format_value(self.low)}, {format_value(self.high)}]"


@dataclass(frozen=True)
class RoundRanges:
    """A round: where it came from, how its trials did, and the value range of each parameter."""

    index: int
    origin: Literal["given", "zoomed"]
    sampler: str  # as tunery show names it: "random sampler", "guided by gp, batches of 8"
    n_trials: int
    best: float | None
    ranges: dict[str, ParamRange]


def round_ranges(study: StudyLike) -> list[RoundRanges]:
    """Every round, first to last. A zoomed round's ranges are its box mapped back to values."""
    snapshot = StudySnapshot.of(study)
    sign = 1.0 if snapshot.maximize else -1.0
    result = []
    for round_, base in _with_bases(snapshot.rounds):
        mine = [t for t in snapshot.trials if t.round == round_.index]
        values = [
            value
            for t in mine
            if t.state is TrialState.COMPLETE and (value := _finite_value(t)) is not None
        ]
        best = max(values, key=lambda v: sign * v) if values else None
        result.append(
            RoundRanges(
                round_.index,
                "zoomed" if round_.zoomed else "given",
                round_.sampler_text,
                len(mine),
                best,
                _ranges_of(round_, base),
            )
        )
    return result


def _with_bases(rounds: Sequence[Round]) -> list[tuple[Round, Round]]:
    """Each round with its base: the latest round the user gave, up to and including it."""
    pairs = []
    base = rounds[0] if rounds else None
    for round_ in rounds:
        if not round_.zoomed or base is None:
            base = round_
        pairs.append((round_, base))
    return pairs


def _ranges_of(round_: Round, base: Round) -> dict[str, ParamRange]:
    """Per parameter, the values ``round_`` covers.

    For a zoomed round: its box (unit coordinates of ``base``, the latest round the user gave before
    it) mapped back through ``base``'s space, so ``(0.25, 0.5)`` on ``Float(1e-4, 1, "log")`` reads
    ``(1e-3, 1e-2)``. For a given round, or a parameter its box leaves out: the space's bounds and
    options.
    """
    ranges = {name: _space_range(dist) for name, dist in round_.space.items()}
    if round_.box is None:
        return ranges
    for name, (u_low, u_high) in round_.box.bounds.items():
        dist = base.space.get(name)
        if isinstance(dist, Float | Int):
            ranges[name] = ParamRange(float(dist.from_unit(u_low)), float(dist.from_unit(u_high)))
    for name, kept in round_.box.choices.items():
        ranges[name] = ParamRange(options=tuple(kept))
    return ranges


def _space_range(dist: Distribution) -> ParamRange:
    if isinstance(dist, Choice):
        return ParamRange(options=dist.options)
    if isinstance(dist, Float | Int):
        return ParamRange(float(dist.low), float(dist.high))
    raise ConfigError("space", dist, "a Float, Int or Choice")
