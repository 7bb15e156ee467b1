"""Samplers: where the next trial goes, as a point of the unit cube.

A sampler returns ``u`` in ``[0, 1]`` per parameter; the space's distributions turn ``u`` into
values on their own scales (:func:`sample_params`). Every draw is a pure function of
``(study seed, trial number)``: a resumed study, or a worker that only knows the trial number,
samples what the uninterrupted study would have. The cube's axes are the parameter names in sorted
order, as scikit-learn's ``ParameterSampler`` does, so the order a space is written in does not
matter; adding or removing a parameter changes the draws.

- ``random`` (the default): ``numpy.random.default_rng([seed, number]).random(d)``. The pair seeds a
  ``SeedSequence``, so trial streams are independent and none depends on another.
- ``grid``: a fixed grid, trial ``n`` takes grid point ``n mod size`` (it wraps when exhausted).
  Kept for comparison: with few parameters that matter, random search tries more distinct values
  of each (Bergstra and Bengio, 2012).
- ``sobol``: scrambled Sobol' points (``scipy.stats.qmc.Sobol`` seeded with the study seed);
  trial ``n`` takes the ``n``-th point. Points are cached per ``(seed, d)`` and drawn in powers of
  two, so trial ``n`` costs ``O(1)`` after the first few.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from tunery._exceptions import ConfigError
from tunery._validation import check_int
from tunery.space import Choice, Distribution, Float, Int

if TYPE_CHECKING:
    from scipy.stats import qmc

__all__ = [
    "GridSampler",
    "RandomSampler",
    "Sampler",
    "SobolSampler",
    "sample_params",
]


def _check_count(value: Any, where: str) -> int:
    return check_int(where, value, 0)


@dataclass(frozen=True)
class Sampler(ABC):
    """Maps ``(space, study seed, trial number)`` to a point of the unit cube, deterministically."""

    name: ClassVar[str]

    @abstractmethod
    def sample_unit(
        self, space: Mapping[str, Distribution], seed: int, number: int
    ) -> dict[str, float]:
        """``u`` in ``[0, 1]`` for each parameter of ``space``, for trial ``number``."""

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., **options}``: ``make_sampler(**sampler.to_dict())`` rebuilds it."""
        return {"name": self.name, **asdict(self)}

    def describe(self) -> str:
        """How ``tunery show`` and the report name it: ``random sampler``."""
        return f"{self.name} sampler"


@dataclass(frozen=True)
class RandomSampler(Sampler):
    """Uniform in the unit cube: ``default_rng([seed, number]).random(d)`` over sorted names."""

    name: ClassVar[str] = "random"

    def sample_unit(
        self, space: Mapping[str, Distribution], seed: int, number: int
    ) -> dict[str, float]:
        seed, number = _check_count(seed, "seed"), _check_count(number, "trial number")
        names = sorted(space)
        u = np.random.default_rng([seed, number]).random(len(names))
        return dict(zip(names, u.tolist(), strict=True))


@dataclass(frozen=True)
class GridSampler(Sampler):
    """A grid with ``points_per_dim`` points per axis, walked in a fixed order.

    Per axis: a Float gets ``points_per_dim`` points evenly spaced on its scale from ``low`` to
    ``high`` (both included; the middle if only one); an Int gets the same points rounded to
    integers (fewer where they coincide: at most ``high - low + 1``); a Choice gets all its
    options. Trial ``n`` takes point ``n mod size`` in C order over the sorted names (the last name
    varies fastest), so a study longer than the grid goes round it again. The default, 3, is the
    smallest grid with a point inside each axis as well as on both bounds.
    """

    name: ClassVar[str] = "grid"
    points_per_dim: int = 3

    def __post_init__(self) -> None:
        if _check_count(self.points_per_dim, "sampler.points_per_dim") < 1:
            raise ConfigError("sampler.points_per_dim", self.points_per_dim, "an integer >= 1")

    def axis(self, dist: Distribution) -> NDArray[np.float64]:
        """The grid's ``u`` coordinates along one parameter, ascending: shape ``(m,)``."""
        if isinstance(dist, Choice):
            return (np.arange(len(dist.options)) + 0.5) / len(dist.options)
        k = self.points_per_dim
        t = np.linspace(0.0, 1.0, k) if k > 1 else np.array([0.5])
        if isinstance(dist, Float):
            return t
        if isinstance(dist, Int):
            if dist.scale == "log":
                values = dist.low * (dist.high / dist.low) ** t
            else:
                values = dist.low + t * (dist.high - dist.low)
            return np.array([dist.to_unit(i) for i in np.unique(np.rint(values)).tolist()])
        raise ConfigError("space", dist, "a Float, Int or Choice")

    def size(self, space: Mapping[str, Distribution]) -> int:
        """Number of grid points: the product of the axis lengths."""
        size = 1
        for name in space:
            size *= len(self.axis(space[name]))
        return size

    def sample_unit(
        self, space: Mapping[str, Distribution], seed: int, number: int
    ) -> dict[str, float]:
        # The grid ignores the seed; it is checked so that every sampler takes the same input.
        _check_count(seed, "seed")
        number = _check_count(number, "trial number")
        names = sorted(space)
        axes = [self.axis(space[name]) for name in names]
        # Python ints, not np.unravel_index: a grid of many axes overflows int64.
        index = number % self.size(space)
        point: dict[str, float] = {}
        for name, axis in zip(reversed(names), reversed(axes), strict=True):
            index, position = divmod(index, len(axis))
            point[name] = float(axis[position])
        return {name: point[name] for name in names}


_SOBOL_LOCK = threading.Lock()
_SOBOL_CACHE: dict[tuple[int, int, bool], tuple[qmc.Sobol, NDArray[np.float64]]] = {}
_SOBOL_CACHE_SIZE = 16


def _sobol_points(seed: int, d: int, scramble: bool, n: int) -> NDArray[np.float64]:
    """At least the first ``n`` points of the Sobol' sequence of ``(seed, d)``: ``(>= n, d)``."""
    key = (seed, d, scramble)
    with _SOBOL_LOCK:
        cached = _SOBOL_CACHE.pop(key, None)
        if cached is None:
            from scipy.stats import qmc  # scipy.stats costs ~0.5 s to import: only for Sobol

            cached = (qmc.Sobol(d, scramble=scramble, rng=seed), np.empty((0, d)))
        engine, points = cached
        if len(points) < n:
            # Powers of two keep Sobol's balance (and scipy quiet); the cached engine goes on where
            # it stopped, so the points are the same however they were drawn.
            total = 1 << max(4, (n - 1).bit_length())
            points = np.concatenate([points, engine.random(total - len(points))])
        _SOBOL_CACHE[key] = (engine, points)  # most recently used last
        while len(_SOBOL_CACHE) > _SOBOL_CACHE_SIZE:
            del _SOBOL_CACHE[next(iter(_SOBOL_CACHE))]
        return points


@dataclass(frozen=True)
class SobolSampler(Sampler):
    """Scrambled Sobol' points: the ``number``-th point of the sequence seeded by ``seed``.

    Quasi-random points cover the cube more evenly than random ones (lower discrepancy), while
    every axis still gets as many distinct values as there are trials.
    """

    name: ClassVar[str] = "sobol"
    scramble: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.scramble, bool):
            raise ConfigError("sampler.scramble", self.scramble, "true or false")

    def sample_unit(
        self, space: Mapping[str, Distribution], seed: int, number: int
    ) -> dict[str, float]:
        seed, number = _check_count(seed, "seed"), _check_count(number, "trial number")
        names = sorted(space)
        if not names:
            return {}
        u = _sobol_points(seed, len(names), self.scramble, number + 1)[number]
        return dict(zip(names, u.tolist(), strict=True))


def sample_params(
    sampler: Sampler, space: Mapping[str, Distribution], seed: int, number: int
) -> dict[str, Any]:
    """The values of trial ``number``: the sampler's unit point mapped through each distribution.

    Keys follow the order of ``space``.
    """
    u = sampler.sample_unit(space, seed, number)
    return {name: dist.from_unit(u[name]) for name, dist in space.items()}
