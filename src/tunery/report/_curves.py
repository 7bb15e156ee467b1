"""Learning curves: per-epoch numbers → plain data → a two-panel matplotlib PNG.

Computing and rendering are kept apart (as Optuna's plots do): ``learning_curve`` turns sequences
of per-epoch numbers into a validated ``LearningCurve`` of arrays, and ``render_learning_curve``
draws one into a PNG. The left panel is the cost per epoch (log scale when every cost is positive,
since a cost that falls from 2 to 0.001 is flat on a linear axis); the right panel holds one line
per accuracy series. A cost that became NaN or inf (a diverged run) ends the cost line, and the
epoch where it happened is marked on both panels.

Rendering goes through matplotlib's Agg canvas directly, never ``pyplot``: no global figure state,
no display needed, safe in worker processes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray

from tunery._exceptions import ConfigError

__all__ = ["LearningCurve", "learning_curve", "render_learning_curve"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class LearningCurve:
    """What a learning-curve plot shows, as plain arrays.

    ``epochs: (E,)`` int64, increasing; ``cost: (E,)`` float64 (NaN/inf where training diverged);
    ``accuracies``: series name → ``(E,)`` float64 in [0, 1] (NaN where not measured).
    ``diverged_at`` is the first epoch whose cost is not finite, or ``None``.
    """

    epochs: NDArray[np.int64]
    cost: FloatArray
    accuracies: Mapping[str, FloatArray] = field(default_factory=dict)
    title: str = ""

    @property
    def diverged_at(self) -> int | None:
        bad = np.flatnonzero(~np.isfinite(self.cost))
        return int(self.epochs[bad[0]]) if bad.size else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite costs become ``None``)."""
        return {
            "title": self.title,
            "epochs": self.epochs.tolist(),
            "cost": [_finite_or_none(value) for value in self.cost.tolist()],
            "accuracies": {
                name: [_finite_or_none(value) for value in values.tolist()]
                for name, values in self.accuracies.items()
            },
        }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def learning_curve(
    cost: Sequence[float | None],
    accuracies: Mapping[str, Sequence[float | None]] | None = None,
    *,
    epochs: Sequence[int] | None = None,
    title: str = "",
) -> LearningCurve:
    """Validate per-epoch numbers into a ``LearningCurve``.

    ``cost`` has one value per epoch (``E`` values; ``None`` reads as NaN); each accuracy series has
    ``E`` values in [0, 1] or ``None``. ``epochs`` defaults to ``1..E``.
    """
    cost_array = _as_floats("cost", cost)
    count = len(cost_array)
    epoch_array = _epochs(epochs, count)
    series = {
        name: _accuracy_series(name, values, count) for name, values in (accuracies or {}).items()
    }
    return LearningCurve(epoch_array, cost_array, series, title)


def _as_floats(field_name: str, values: Sequence[float | None]) -> FloatArray:
    try:
        array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ConfigError(field_name, values, "a sequence of numbers, one per epoch") from error
    if array.ndim != 1:
        raise ConfigError(field_name, values, "a flat sequence of numbers, one per epoch")
    return array


def _epochs(epochs: Sequence[int] | None, count: int) -> NDArray[np.int64]:
    if epochs is None:
        return np.arange(1, count + 1, dtype=np.int64)
    array = np.asarray(epochs)
    if array.shape != (count,) or not np.issubdtype(array.dtype, np.integer):
        raise ConfigError("epochs", epochs, f"{count} integers (one per cost value)")
    if count > 1 and np.any(np.diff(array) <= 0):
        raise ConfigError("epochs", epochs, "strictly increasing epoch numbers")
    return array.astype(np.int64)


def _accuracy_series(name: str, values: Sequence[float | None], count: int) -> FloatArray:
    field_name = f"accuracies[{name!r}]"
    array = _as_floats(field_name, values)
    if array.shape != (count,):
        raise ConfigError(field_name, len(array), f"{count} values (one per epoch, like cost)")
    measured = array[~np.isnan(array)]
    if np.any((measured < 0) | (measured > 1)):
        raise ConfigError(field_name, values, "accuracies in [0, 1] (or None)")
    return array


def render_learning_curve(curve: LearningCurve, path: str | Path, *, dpi: int = 120) -> Path:
    """Draw ``curve`` (cost | accuracies, side by side) into the PNG ``path``; return the path."""
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)  # attaches itself to the figure: render with Agg, no pyplot
    cost_axes, accuracy_axes = figure.subplots(1, 2)
    _draw_cost(cost_axes, curve)
    _draw_accuracies(accuracy_axes, curve)
    if curve.title:
        figure.suptitle(curve.title)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png", dpi=dpi)
    return target


def _draw_cost(axes: Any, curve: LearningCurve) -> None:
    finite = np.isfinite(curve.cost)
    axes.plot(curve.epochs[finite], curve.cost[finite], color="tab:blue", label="cost")
    log_scale = bool(finite.any() and np.all(curve.cost[finite] > 0))
    if log_scale:
        axes.set_yscale("log")
    axes.set_title("cost (log scale)" if log_scale else "cost")
    _epoch_axis(axes)
    _mark_divergence(axes, curve)


def _draw_accuracies(axes: Any, curve: LearningCurve) -> None:
    for name, values in curve.accuracies.items():
        measured = ~np.isnan(values)
        axes.plot(curve.epochs[measured], values[measured], label=name)
    axes.set_ylim(0.0, 1.02)
    axes.set_title("accuracy")
    _epoch_axis(axes)
    _mark_divergence(axes, curve)
    if curve.accuracies:
        axes.legend(loc="lower right")


def _epoch_axis(axes: Any) -> None:
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, alpha=0.3)


def _mark_divergence(axes: Any, curve: LearningCurve) -> None:
    epoch = curve.diverged_at
    if epoch is not None:
        axes.axvline(epoch, color="tab:red", linestyle="--", label=f"diverged (epoch {epoch})")
        axes.text(
            epoch,
            0.5,
            f" diverged at epoch {epoch}",
            color="tab:red",
            transform=axes.get_xaxis_transform(),
        )
