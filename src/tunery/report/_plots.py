"""The study report's plots: plain data from ``_data`` drawn into PNGs with matplotlib.

Rendering goes through the Agg canvas directly, never ``pyplot`` (no global figure state, no
display), and matplotlib is imported inside the functions, so importing ``tunery.report`` stays
light. Each parameter is drawn on its own scale: log parameters on a log axis, one-minus-log ones
(momentum β) on an axis where 0.9, 0.99 and 0.999 are evenly spaced, options as categories.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tunery.records import TrialState
from tunery.report._data import CurveLine, CurvesData, ParamAxis, ParamPoints, format_value
from tunery.report._importance import Importance
from tunery.report._population import MemberSchedule, Stretch
from tunery.report._rounds import ZoomData

__all__ = [
    "axis_limits",
    "one_minus_log_ticks",
    "render_curves",
    "render_importance",
    "render_param",
    "render_zoom",
]

FloatArray = NDArray[np.float64]
Transform = Callable[[ArrayLike], FloatArray]

STATE_COLOURS = {
    TrialState.PRUNED.name: "0.55",
    TrialState.FAILED.name: "black",
    TrialState.DIVERGED.name: "tab:red",
    TrialState.RUNNING.name: "tab:cyan",
}
_JITTER = 0.15  # categorical points spread over ±0.15 of a slot, so equal options stay visible


# -- scales ----------------------------------------------------------------------------------------


def _one_minus_log(x: ArrayLike) -> FloatArray:
    # -log10(1 - β): 0.9 → 1, 0.99 → 2, 0.999 → 3. Clipped so that β >= 1 stays finite.
    gap = np.clip(1.0 - np.asarray(x, dtype=np.float64), 1e-300, None)
    return np.asarray(-np.log10(gap), dtype=np.float64)


def _one_minus_log_inverse(y: ArrayLike) -> FloatArray:
    return np.asarray(1.0 - 10.0 ** -np.clip(np.asarray(y, dtype=np.float64), -300, 300))


def _log10(x: ArrayLike) -> FloatArray:
    return np.asarray(np.log10(np.clip(np.asarray(x, dtype=np.float64), 1e-300, None)))


def _exp10(y: ArrayLike) -> FloatArray:
    return np.asarray(10.0 ** np.clip(np.asarray(y, dtype=np.float64), -300, 300))


def _identity(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _transforms(scale: str) -> tuple[Transform, Transform]:
    """The map to the coordinate where ``scale`` is even, and back."""
    if scale == "log":
        return _log10, _exp10
    if scale == "one_minus_log":
        return _one_minus_log, _one_minus_log_inverse
    return _identity, _identity


def axis_limits(axis: ParamAxis, values: Sequence[float]) -> tuple[float, float]:
    """Limits covering the axis bounds and ``values``, padded by 4% in the scale's even coordinate.

    A categorical axis spans its slots, ``(-0.5, n - 0.5)``.
    """
    if axis.categorical:
        return -0.5, max(len(axis.options), 1) - 0.5
    ends = [v for v in (axis.low, axis.high, *values) if v is not None]
    forward, inverse = _transforms(axis.scale)
    even = forward(np.array(ends if ends else [0.0, 1.0]))
    low, high = float(even.min()), float(even.max())
    pad = 0.04 * (high - low) if high > low else 0.5
    edges = inverse(np.array([low - pad, high + pad]))
    return float(edges[0]), float(edges[1])


def one_minus_log_ticks(low: float, high: float) -> list[float]:
    """Ticks for a one-minus-log axis over ``[low, high]``: the values 1 − 10⁻ᵏ inside it.

    ``(0.85, 0.9995)`` gives ``[0.9, 0.99, 0.999]``. A range holding fewer than two of them (a
    zoomed one) gets five ticks evenly spaced in −log10(1 − β) instead.
    """
    near, far = -math.log10(1.0 - low), -math.log10(1.0 - high)
    decades = range(math.ceil(near - 1e-9), math.floor(far + 1e-9) + 1)
    ticks = [1.0 - 10.0**-k for k in decades if k > 0]
    if len(ticks) >= 2:
        return ticks
    return [float(v) for v in _one_minus_log_inverse(np.linspace(near, far, 5))]


def _apply_scale(axes: Any, axis: ParamAxis, which: str, values: Sequence[float]) -> None:
    """Put ``axis`` on ``axes.xaxis`` or ``axes.yaxis`` (``which`` is ``"x"`` or ``"y"``)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    target = axes.xaxis if which == "x" else axes.yaxis
    set_scale = axes.set_xscale if which == "x" else axes.set_yscale
    set_limits = axes.set_xlim if which == "x" else axes.set_ylim
    low, high = axis_limits(axis, values)
    if axis.categorical:
        target.set_major_locator(FixedLocator(list(range(len(axis.options)))))
        target.set_major_formatter(FuncFormatter(lambda v, _: _label_at(axis, v)))
    elif axis.scale == "log":
        set_scale("log")
    elif axis.scale == "one_minus_log":
        set_scale("function", functions=(_one_minus_log, _one_minus_log_inverse))
        target.set_major_locator(FixedLocator(one_minus_log_ticks(low, high)))
        target.set_major_formatter(FuncFormatter(lambda v, _: format_value(v)))
        target.set_minor_locator(NullLocator())
    set_limits(low, high)
    notes = {"log": "log scale", "one_minus_log": f"log scale of 1 − {axis.name}"}
    label = axes.set_xlabel if which == "x" else axes.set_ylabel
    label(f"{axis.name} ({notes[axis.scale]})" if axis.scale in notes else axis.name)


def _label_at(axis: ParamAxis, position: float) -> str:
    index = round(position)
    return axis.labels[index] if 0 <= index < len(axis.options) else ""


def _jittered(axis: ParamAxis, xs: Sequence[float], seed: int = 0) -> FloatArray:
    """Positions on ``axis``; categorical ones spread a little (seeded) so points do not overlap."""
    positions = np.asarray(xs, dtype=np.float64)
    if not axis.categorical or positions.size == 0:
        return positions
    rng = np.random.default_rng(seed)
    return positions + rng.uniform(-_JITTER, _JITTER, size=positions.shape)


# -- figures ---------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)  # attaches itself: render with Agg, no pyplot
    return figure


def _save(figure: Any, path: str | Path, dpi: int) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png", dpi=dpi)
    return target


def _value_colours(maximize: bool) -> Any:
    """The colour map of metric values, bright where good whichever the direction."""
    from matplotlib import colormaps

    return colormaps["viridis" if maximize else "viridis_r"]


# -- the caviar picture ----------------------------------------------------------------------------


def render_curves(data: CurvesData, path: str | Path, *, dpi: int = 110) -> Path:
    """Every trial's curve of ``data.metric`` (one line each) into the PNG ``path``.

    COMPLETE lines are coloured by their final value; PRUNED are grey, FAILED black, and DIVERGED
    red with a cross where they stopped (those show the learning rates that are too large).
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    from tunery.report._curves import _epoch_axis

    figure = _figure(9, 5)
    axes = figure.subplots()
    cmap = _value_colours(data.maximize)
    value_range = data.value_range
    norm = Normalize(*value_range) if value_range else Normalize(0.0, 1.0)
    for line in data.lines:
        colour = _line_colour(line, cmap, norm)
        style = "--" if line.state == TrialState.FAILED.name else "-"
        axes.plot(line.epochs, line.values, style, color=colour, lw=1.0, alpha=0.8)
        if line.diverged:
            axes.plot(line.epochs[-1:], line.values[-1:], "x", color=colour, ms=8, mew=2)
    if value_range:
        figure.colorbar(ScalarMappable(norm, cmap), ax=axes, label=f"final {data.metric}")
    states = dict.fromkeys(line.state for line in data.lines if line.state in STATE_COLOURS)
    handles = [
        Line2D([], [], color=STATE_COLOURS[s], marker="x" if s == "DIVERGED" else "", label=s)
        for s in states
    ]
    if handles:
        axes.legend(handles=handles, loc="best", fontsize="small")
    _epoch_axis(axes)
    axes.set_ylabel(data.metric)
    axes.set_title(f"{data.metric} per epoch, {len(data.lines)} trials")
    return _save(figure, path, dpi)


def _line_colour(line: CurveLine, cmap: Any, norm: Any) -> Any:
    """A COMPLETE line's colour tells its final value; any other line's, its state."""
    if line.state == TrialState.COMPLETE.name and line.value is not None:
        return cmap(norm(line.value))
    return STATE_COLOURS.get(line.state, "0.3")


# -- one parameter against the metric --------------------------------------------------------------


def render_param(points: ParamPoints, metric: str, path: str | Path, *, dpi: int = 110) -> Path:
    """One hyperparameter (x, on its own scale) against ``metric`` (y) into the PNG ``path``.

    Points are coloured by round; PRUNED ones are hollow. DIVERGED trials have no value: they are
    red crosses along the bottom edge, at their parameter value.
    """
    from matplotlib import colormaps

    figure = _figure(5.2, 3.8)
    axes = figure.subplots()
    axis = points.axis
    palette = colormaps["tab10"]
    xs = _jittered(axis, points.x)
    ys = np.asarray(points.y, dtype=np.float64)
    rounds = np.asarray(points.rounds, dtype=np.int64)
    pruned = np.asarray([s == TrialState.PRUNED.name for s in points.states], dtype=bool)
    for index in sorted(set(points.rounds)):
        colour = palette((index - 1) % 10)
        full, hollow = (rounds == index) & ~pruned, (rounds == index) & pruned
        axes.scatter(xs[full], ys[full], s=22, color=colour, label=f"round {index}")
        axes.scatter(xs[hollow], ys[hollow], s=22, facecolors="none", edgecolors=colour)
    if points.diverged_x:
        axes.scatter(
            _jittered(axis, points.diverged_x, seed=1),
            np.full(len(points.diverged_x), 0.03),
            marker="x",
            color=STATE_COLOURS[TrialState.DIVERGED.name],
            transform=axes.get_xaxis_transform(),  # y in axes fractions: the bottom edge
            label="diverged",
        )
    _apply_scale(axes, axis, "x", [*points.x, *points.diverged_x])
    axes.set_ylabel(metric)
    axes.grid(True, alpha=0.3)
    if len(set(points.rounds)) > 1 or points.diverged_x:
        axes.legend(loc="best", fontsize="small")
    return _save(figure, path, dpi)


# -- the coarse-to-fine picture --------------------------------------------------------------------


_ROUND_MARKERS = ("o", "^", "s", "D", "v", "P")


def render_zoom(
    data: ZoomData, metric: str, path: str | Path, *, maximize: bool = True, dpi: int = 110
) -> Path:
    """Trials over two parameters, coloured by value, with every round's box, into ``path``."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    figure = _figure(7, 5.5)
    axes = figure.subplots()
    xs = _jittered(data.x_axis, data.xs, seed=2)
    ys = _jittered(data.y_axis, data.ys, seed=3)
    scored = np.array([v is not None for v in data.values], dtype=bool)
    values = np.array([np.nan if v is None else v for v in data.values], dtype=np.float64)
    diverged = np.array([s == TrialState.DIVERGED.name for s in data.states], dtype=bool)
    axes.scatter(xs[~scored & ~diverged], ys[~scored & ~diverged], s=14, color="0.7")
    axes.scatter(xs[diverged], ys[diverged], marker="x", color=STATE_COLOURS["DIVERGED"])
    if scored.any():
        norm = Normalize(float(values[scored].min()), float(values[scored].max()))
        cmap = _value_colours(maximize)
        rounds = np.array(data.rounds)
        for index, round_ in enumerate(sorted(set(rounds[scored].tolist()))):
            # One marker per round, so the denser sampling inside each zoom box shows.
            mine = scored & (rounds == round_)
            drawn = axes.scatter(
                xs[mine],
                ys[mine],
                c=values[mine],
                cmap=cmap,
                norm=norm,
                s=26,
                marker=_ROUND_MARKERS[index % len(_ROUND_MARKERS)],
                edgecolors="0.3",
                linewidths=0.4,
                label=f"round {round_} trials",
            )
        figure.colorbar(drawn, ax=axes, label=metric)
    palette = colormaps["tab10"]
    for box in data.boxes:
        colour = palette((box.round - 1) % 10)
        (x0, x1), (y0, y1) = box.x, box.y
        label = f"round {box.round} ({box.origin})"
        box_patch = Rectangle(
            (x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.6, ec=colour, label=label
        )
        axes.add_patch(box_patch)
    _apply_scale(axes, data.x_axis, "x", [*data.xs, *(e for b in data.boxes for e in b.x)])
    _apply_scale(axes, data.y_axis, "y", [*data.ys, *(e for b in data.boxes for e in b.y)])
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    axes.set_title(f"coarse to fine: {data.x_axis.name} × {data.y_axis.name}")
    return _save(figure, path, dpi)


# -- importance ------------------------------------------------------------------------------------


def render_importance(ranking: Importance, path: str | Path, *, dpi: int = 110) -> Path:
    """The importance ranking as horizontal bars, most important on top, into ``path``."""
    figure = _figure(6, 0.5 + 0.45 * max(len(ranking.ranking), 1))
    axes = figure.subplots()
    names = [name for name, _ in reversed(ranking.ranking)]
    shares = [share for _, share in reversed(ranking.ranking)]
    bars = axes.barh(range(len(names)), shares, color="tab:blue")
    axes.bar_label(bars, labels=[f"{share:.2f}" for share in shares], padding=3)
    axes.set_yticks(range(len(names)), labels=names)
    axes.set_xlim(0.0, 1.12)  # shares are at most 1; room for the labels
    axes.set_xlabel(f"importance (random forest, {ranking.n_trials} COMPLETE trials)")
    return _save(figure, path, dpi)


# -- a PBT population ------------------------------------------------------------------------------


def render_schedules(
    schedules: Sequence[MemberSchedule],
    axes_by_name: dict[str, ParamAxis],
    metric: str,
    path: str | Path,
    *,
    dpi: int = 110,
) -> Path | None:
    """Each final member's numeric hyperparameters against the epoch, one panel per parameter,
    each on its own scale (lr on a log axis); the best member's line is bold. ``None`` when no
    parameter is numeric."""
    names = [
        name
        for name in dict.fromkeys(n for s in schedules for n in s.values)
        if name in axes_by_name and not axes_by_name[name].categorical
    ]
    if not schedules or not names:
        return None
    figure = _figure(9, 2.6 * len(names))
    panels = np.atleast_1d(figure.subplots(len(names), 1, sharex=True))
    valued = [s for s in schedules if s.value is not None]
    best = max(valued, key=lambda s: float(s.value or 0.0)).member if valued else None
    colours = _member_colours(len(schedules))
    for panel, name in zip(panels, names, strict=True):
        values: list[float] = []
        for index, schedule in enumerate(schedules):
            ys = [float(v) for v in schedule.values.get(name, []) if v is not None]
            if len(ys) != len(schedule.epochs):
                continue
            values += ys
            bold = schedule.member == best
            panel.step(
                schedule.epochs,
                ys,
                where="mid",
                color=colours[index],
                lw=2.4 if bold else 1.0,
                alpha=1.0 if bold else 0.7,
                label=f"member {schedule.member}" + (" (best)" if bold else ""),
            )
        _apply_scale(panel, axes_by_name[name], "y", values)
    panels[-1].set_xlabel("epoch")
    panels[0].legend(loc="best", fontsize="x-small", ncols=2)
    panels[0].set_title(f"each final member's hyperparameters per epoch (best by {metric} bold)")
    return _save(figure, path, dpi)


def render_lineage(
    lineage: Sequence[Stretch], size: int, path: str | Path, *, dpi: int = 110
) -> Path:
    """The population's lineage: one row per member over the epochs; each exploit a line from
    the source member's row to the member's row at the epoch it copied."""
    figure = _figure(9, max(2.5, 0.45 * size + 1.2))
    axes = figure.subplots()
    colours = _member_colours(size)
    stack = list(lineage)
    while stack:
        stretch = stack.pop()
        colour = colours[stretch.member % len(colours)]
        axes.plot([stretch.start, stretch.end], [stretch.member] * 2, color=colour, lw=3)
        if stretch.source is not None:
            source, _, epoch = stretch.source
            axes.annotate(
                "",
                xy=(epoch, stretch.member),
                xytext=(epoch, source),
                arrowprops={"arrowstyle": "->", "color": "0.35", "lw": 1.0},
            )
        stack.extend(child for _, child in stretch.children)
    axes.set_yticks(range(size))
    axes.set_yticklabels([f"member {m}" for m in range(size)])
    axes.invert_yaxis()
    axes.set_xlabel("epoch")
    axes.set_title("lineage: arrows are exploits, from the member copied to the one copying")
    return _save(figure, path, dpi)


def _member_colours(count: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(max(count, 1))]
