"""What the study report shows, as plain data: dataclasses of lists, no matplotlib.

Every plot of the report is computed here first and rendered in ``_plots`` (as Optuna's
visualizations do), so the numbers can be tested without drawing anything:

- ``curves_data``: the caviar picture, the study's metric per epoch, one line per trial;
- ``param_points``: each hyperparameter against the metric, on its own scale;
- ``zoom_data``: the two most important parameters, the trials and every round's box;
- ``importance``: a random forest's impurity importances on unit-cube params;
- ``state_counts``, ``best_trials`` and ``round_ranges`` for the tables.

Parameters are placed on the scale of the first round that holds them (round 1 for a usual study).
A zoomed round's box is stored in the unit coordinates of its base round (the latest space the user
gave before it), so its edges are mapped back to values through that round's space.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from tunery._exceptions import ConfigError
from tunery._validation import check_int
from tunery.space import Choice, Distribution, Float, Int
from tunery.storage import FrozenTrial, TrialState
from tunery.study import Round

__all__ = [
    "MIN_IMPORTANCE_TRIALS",
    "STATE_ORDER",
    "CurveLine",
    "CurvesData",
    "Importance",
    "ParamAxis",
    "ParamPoints",
    "ParamRange",
    "ReportData",
    "RoundRanges",
    "StudyLike",
    "StudySnapshot",
    "ZoomBox",
    "ZoomData",
    "best_trials",
    "curves_data",
    "format_value",
    "importance",
    "param_axes",
    "param_points",
    "report_data",
    "round_ranges",
    "state_counts",
    "zoom_data",
]

MIN_IMPORTANCE_TRIALS = 5
"""Fewer COMPLETE trials than this and a forest's importances are noise: the report says so."""

STATE_ORDER = (
    TrialState.COMPLETE,
    TrialState.PRUNED,
    TrialState.DIVERGED,
    TrialState.FAILED,
    TrialState.RUNNING,
)

Scale = Literal["linear", "log", "one_minus_log", "categorical"]


class StudyLike(Protocol):
    """What the report reads from a study: ``tunery.Study`` or a ``StudySnapshot``."""

    @property
    def name(self) -> str: ...

    @property
    def direction(self) -> str: ...

    @property
    def metric(self) -> str: ...

    @property
    def trials(self) -> list[FrozenTrial]: ...

    @property
    def rounds(self) -> list[Round]: ...


@dataclass(frozen=True)
class StudySnapshot:
    """A study's trials and rounds, read from its store once (``Study.trials`` reads each time)."""

    name: str
    direction: str
    metric: str
    trials: list[FrozenTrial]
    rounds: list[Round]

    @classmethod
    def of(cls, study: StudyLike) -> StudySnapshot:
        if isinstance(study, StudySnapshot):
            return study
        return cls(study.name, study.direction, study.metric, study.trials, study.rounds)

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"


# -- formatting ------------------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """A short text for a param or metric value; values near 1 keep the digits that tell them apart.

    ``0.999`` stays ``0.999`` and ``0.99949`` stays ``0.99949`` (``:.4g`` would make both ``0.9995``
    or ``1``), since for a momentum it is ``1 - β`` that matters.
    """
    if value is None:
        return "—"
    if isinstance(value, bool | numbers.Integral):
        return str(value)
    if not isinstance(value, numbers.Real):
        return str(value)
    number = float(value)
    if not math.isfinite(number):
        return str(number)
    if 0.9 <= abs(number) < 1.0:
        digits = max(4, 2 + math.ceil(-math.log10(1.0 - abs(number))))
        return f"{number:.{digits}g}"
    return f"{number:.4g}"


# -- states and best trials ------------------------------------------------------------------------


def state_counts(study: StudyLike) -> dict[str, int]:
    """Trials per state, every state listed (zeros included), in ``STATE_ORDER``."""
    counts = dict.fromkeys((state.name for state in STATE_ORDER), 0)
    for trial in StudySnapshot.of(study).trials:
        counts[trial.state.name] += 1
    return counts


def best_trials(study: StudyLike, top: int = 10) -> list[FrozenTrial]:
    """The ``top`` best COMPLETE trials by the study's direction, best first (ties: by number)."""
    check_int("top", top, 1)
    complete = [
        t
        for t in StudySnapshot.of(study).trials
        if t.state is TrialState.COMPLETE and _finite_value(t) is not None
    ]
    sign = -1.0 if study.direction == "maximize" else 1.0
    complete.sort(key=lambda t: (sign * float(t.value or 0.0), t.number))
    return complete[:top]


# -- learning curves -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurveLine:
    """One trial's curve of the plotted metric: ``epochs`` and ``values``, both length ``E``.

    Non-finite values are left out. ``value`` is the trial's final value (``None`` if it has none).
    """

    number: int
    state: str
    epochs: list[int]
    values: list[float]
    value: float | None

    @property
    def diverged(self) -> bool:
        return self.state == TrialState.DIVERGED.name


@dataclass(frozen=True)
class CurvesData:
    """The caviar picture: ``metric`` per epoch, one line per trial that reported it."""

    metric: str
    maximize: bool
    lines: list[CurveLine]

    @property
    def value_range(self) -> tuple[float, float] | None:
        """Lowest and highest final value of the COMPLETE lines (their colour scale)."""
        values = [
            line.value
            for line in self.lines
            if line.value is not None and line.state == TrialState.COMPLETE.name
        ]
        return (min(values), max(values)) if values else None


def curves_data(study: StudyLike, metric: str | None = None) -> CurvesData:
    """One line per trial of ``metric`` (default: the study's, or the first metric reported)."""
    snapshot = StudySnapshot.of(study)
    trials = snapshot.trials
    name = metric or _plotted_metric(snapshot.metric, trials)
    lines = []
    for trial in trials:
        points = [(e, v) for e, v in trial.metric(name).items() if math.isfinite(v)]
        if points:
            epochs, values = zip(*points, strict=True)
            lines.append(
                CurveLine(
                    trial.number, trial.state.name, list(epochs), list(values), _finite_value(trial)
                )
            )
    return CurvesData(name, snapshot.maximize, lines)


def _plotted_metric(metric: str, trials: Sequence[FrozenTrial]) -> str:
    reported = list(dict.fromkeys(name for t in trials for row in t.curve.values() for name in row))
    return metric if metric in reported or not reported else reported[0]


# -- parameter axes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamAxis:
    """How one hyperparameter is drawn: its scale and its bounds (from the first round holding it).

    ``scale`` is ``"linear"``, ``"log"``, ``"one_minus_log"`` or ``"categorical"``. A categorical
    axis places option ``i`` of ``options`` at ``i``; ``low``/``high`` are ``None`` there.
    """

    name: str
    scale: Scale
    low: float | None = None
    high: float | None = None
    options: tuple[Any, ...] = ()

    @property
    def log(self) -> bool:
        return self.scale == "log"

    @property
    def categorical(self) -> bool:
        return self.scale == "categorical"

    @property
    def labels(self) -> list[str]:
        return [format_value(option) for option in self.options]

    def position(self, value: Any) -> float | None:
        """Where ``value`` goes on this axis, or ``None`` if it has no place there."""
        if self.categorical:
            key = _option_key(value)
            found = [i for i, option in enumerate(self.options) if _option_key(option) == key]
            return float(found[0]) if found else None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return None
        number = float(value)
        if not math.isfinite(number) or (self.log and number <= 0):
            return None
        if self.scale == "one_minus_log" and number >= 1.0:
            return None
        return number


def _option_key(option: Any) -> tuple[bool, Any]:
    # True == 1 in Python, but a Choice between True and 1 holds two options.
    return (isinstance(option, bool), option)


def param_axes(study: StudyLike) -> dict[str, ParamAxis]:
    """An axis per parameter, in the order of the rounds' spaces, then of the trials' params."""
    snapshot = StudySnapshot.of(study)
    rounds, trials = snapshot.rounds, snapshot.trials
    axes = {name: _axis_of(name, dist, rounds) for name, dist in _distributions(rounds).items()}
    # A param no round holds (trials run with given params): numbers linear, anything else options.
    for name in dict.fromkeys(name for trial in trials for name in trial.params):
        if name not in axes:
            axes[name] = _free_axis(name, [t.params.get(name) for t in trials])
    return axes


def _distributions(rounds: Sequence[Round]) -> dict[str, Distribution]:
    """Each parameter's distribution in the first round that holds it."""
    found: dict[str, Distribution] = {}
    for round_ in rounds:
        for name, dist in round_.space.items():
            found.setdefault(name, dist)
    return found


def _axis_of(name: str, dist: Distribution, rounds: Sequence[Round]) -> ParamAxis:
    if isinstance(dist, Choice):
        # Later rounds given by the user may add options: keep them all, round 1's first.
        options = [option for round_ in rounds for option in _options(round_, name)]
        return ParamAxis(name, "categorical", options=_unique(options))
    if isinstance(dist, Float | Int):
        return ParamAxis(name, dist.scale, float(dist.low), float(dist.high))
    raise ConfigError(f"space.{name}", dist, "a Float, Int or Choice")


def _options(round_: Round, name: str) -> tuple[Any, ...]:
    dist = round_.space.get(name)
    return dist.options if isinstance(dist, Choice) else ()


def _unique(options: Sequence[Any]) -> tuple[Any, ...]:
    return tuple({_option_key(option): option for option in options}.values())


def _free_axis(name: str, values: list[Any]) -> ParamAxis:
    present = [v for v in values if v is not None]
    numeric = [float(v) for v in present if not isinstance(v, bool) and isinstance(v, numbers.Real)]
    if numeric and len(numeric) == len(present):
        return ParamAxis(name, "linear", min(numeric), max(numeric))
    return ParamAxis(name, "categorical", options=_unique(present))


# -- each parameter against the metric -------------------------------------------------------------


@dataclass(frozen=True)
class ParamPoints:
    """One hyperparameter against the metric.

    ``x``, ``y``, ``rounds``, ``numbers``, ``states``: one entry per trial with a finite value
    (COMPLETE or PRUNED), ``x`` its position on ``axis``. ``diverged_x``: the positions of the
    DIVERGED trials, which have no value but show where the parameter is too large.
    """

    axis: ParamAxis
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    diverged_x: list[float] = field(default_factory=list)


def param_points(study: StudyLike) -> list[ParamPoints]:
    """A ``ParamPoints`` per parameter, in ``param_axes`` order."""
    snapshot = StudySnapshot.of(study)
    trials = snapshot.trials
    result = []
    for name, axis in param_axes(snapshot).items():
        points = ParamPoints(axis)
        for trial in trials:
            x = axis.position(trial.params.get(name)) if name in trial.params else None
            if x is None:
                continue
            value = _finite_value(trial)
            if trial.state is TrialState.DIVERGED:
                points.diverged_x.append(x)
            elif value is not None and trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
                points.x.append(x)
                points.y.append(value)
                points.rounds.append(trial.round)
                points.numbers.append(trial.number)
                points.states.append(trial.state.name)
        result.append(points)
    return result


# -- importance ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Importance:
    """Hyperparameter importance: ``ranking`` holds ``(name, share)``, most important first.

    Shares are a random forest's impurity importances (mean decrease in impurity), fitted on the
    COMPLETE trials' unit-cube params; they sum to 1. When there is no ranking, ``note`` says why.
    """

    ranking: list[tuple[str, float]]
    n_trials: int
    note: str | None = None

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.ranking]


def importance(
    study: StudyLike,
    *,
    seed: int = 0,
    min_trials: int = MIN_IMPORTANCE_TRIALS,
    n_estimators: int = 64,
) -> Importance:
    """Rank the parameters by how much of the metric's variance a random forest puts on them.

    Features are params in unit coordinates (``to_unit`` of the first round holding each), so a log
    parameter's decades are equal steps, as when it was sampled. ``X: (N, P)``, ``y: (N,)`` for the
    ``N`` COMPLETE trials that hold every one of the ``P`` parameters.
    """
    check_int("min_trials", min_trials, 2)
    names, X, y = _unit_features(StudySnapshot.of(study))
    if len(y) < min_trials:
        note = f"needs at least {min_trials} COMPLETE trials to rank parameters, has {len(y)}"
        return Importance([], len(y), note)
    if not names:
        return Importance([], len(y), "no parameter of the search space to rank")
    if np.ptp(y) == 0.0:
        return Importance([], len(y), f"every COMPLETE trial has the same {study.metric}")
    shares = _forest_importances(X, y, seed, n_estimators)
    order = sorted(range(len(names)), key=lambda i: (-shares[i], i))
    return Importance([(names[i], float(shares[i])) for i in order], len(y))


def _unit_features(study: StudyLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names ``(P,)``, ``X: (N, P)`` unit coordinates and ``y: (N,)`` values of COMPLETE trials."""
    distributions = _distributions(study.rounds)
    names = list(distributions)
    rows, values = [], []
    for trial in study.trials:
        value = _finite_value(trial)
        if trial.state is not TrialState.COMPLETE or value is None:
            continue
        row = _unit_row(trial, names, distributions)
        if row is not None:
            rows.append(row)
            values.append(value)
    X = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    return names, X, np.array(values, dtype=np.float64)


def _unit_row(
    trial: FrozenTrial, names: list[str], distributions: dict[str, Distribution]
) -> list[float] | None:
    try:
        return [distributions[name].to_unit(trial.params[name]) for name in names]
    except (KeyError, ConfigError):  # a param missing, or not one the space can place
        return None


def _forest_importances(X: np.ndarray, y: np.ndarray, seed: int, n_estimators: int) -> np.ndarray:
    from sklearn.ensemble import RandomForestRegressor  # heavy: loaded only for a report

    forest = RandomForestRegressor(n_estimators=n_estimators, random_state=seed, n_jobs=1)
    forest.fit(X, y)
    shares = np.asarray(forest.feature_importances_, dtype=np.float64)
    total = shares.sum()
    return shares / total if total > 0 else shares


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
    sampler: str
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
                round_.sampler,
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


# -- everything at once ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportData:
    """Everything the report and the terminal summary show, computed from one read of the store."""

    name: str
    direction: str
    metric: str
    n_trials: int
    counts: dict[str, int]
    best: list[FrozenTrial]
    curves: CurvesData
    params: list[ParamPoints]
    importance: Importance
    zoom: ZoomData | None
    rounds: list[RoundRanges]


def report_data(study: StudyLike, *, top: int = 10, seed: int = 0) -> ReportData:
    """Read ``study`` once and compute every part of the report (``top`` best trials listed)."""
    snapshot = StudySnapshot.of(study)
    ranking = importance(snapshot, seed=seed)
    return ReportData(
        name=snapshot.name,
        direction=snapshot.direction,
        metric=snapshot.metric,
        n_trials=len(snapshot.trials),
        counts=state_counts(snapshot),
        best=best_trials(snapshot, top),
        curves=curves_data(snapshot),
        params=param_points(snapshot),
        importance=ranking,
        zoom=zoom_data(snapshot, ranking=ranking),
        rounds=round_ranges(snapshot),
    )


def _finite_value(trial: FrozenTrial) -> float | None:
    value = trial.value
    return float(value) if value is not None and math.isfinite(value) else None
