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

from tunery._exceptions import ConfigError
from tunery._validation import check_int
from tunery.records import FrozenTrial, TrialState
from tunery.space import Choice, Distribution, Float, Int
from tunery.study import Round

__all__ = [
    "MIN_IMPORTANCE_TRIALS",
    "STATE_ORDER",
    "CurveLine",
    "CurvesData",
    "ParamAxis",
    "ParamPoints",
    "StudyLike",
    "StudySnapshot",
    "best_trials",
    "curves_data",
    "format_value",
    "param_axes",
    "param_points",
    "state_counts",
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


def _finite_value(trial: FrozenTrial) -> float | None:
    value = trial.value
    return float(value) if value is not None and math.isfinite(value) else None
