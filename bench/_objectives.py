"""Objectives shared by the benchmarks: the search spaces, the MLP objectives, the synthetic ones.

Every objective maps a params dict to a value to MAXIMIZE and is a deterministic function of the
params (the MLP's initialization and mini-batch order are seeded with a fixed ``random_state``),
so two methods that try the same params see the same value and a benchmark may evaluate a point
once. What varies between a benchmark's seeds is where each search method looks.

- ``digits``: the bundled 8 × 8 digits (64 features, 10 classes), MLP 64-25-12-10 with batch norm.
- ``signs``: the 6-class sign-language photos (``../shared/data/sign-language-digits/images``),
  MLP D-25-12-6 with batch norm; photos resized to ``SIGNS_IMAGE_SIZE`` pixels a side.
- ``synthetic-lr`` and ``synthetic-lr-beta``: cheap functions of six parameters of which one (the
  learning rate, on a log scale) or two (with 1 − β, on a log scale) matter; the four or five
  others shift the value by at most ``SMALL_WEIGHT`` each, plus a fixed pseudo-noise.

Both MLP objectives train on the train split and score the accuracy on the validation split of
``tunery.data.load_dataset(source, seed=0)``; each process loads a dataset once.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tunery import Diverged
from tunery.data import Dataset, load_dataset
from tunery.nn import MLPClassifier
from tunery.space import Choice, Distribution, Float, Int, Space

__all__ = [
    "MLP_SPACE",
    "OBJECTIVES",
    "SIGNS",
    "SYNTHETIC_SPACE",
    "Objective",
    "linear_scale",
    "make_objective",
    "mlp_estimator",
]

SIGNS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sign-language-digits" / "images"
SIGNS_CLASSES = "0-5"
# 16 × 16 × 3 = 768 inputs rather than the course's 64 × 64 × 3 = 12,288: the size the accuracy
# benchmark's studies pick for this network (rows (g), (h) of docs/benchmarks.md: 64 × 64 overfits
# 865 photos), and a trial takes a fraction of the time, so ten seeds of every method fit easily.
SIGNS_IMAGE_SIZE = 16
HIDDEN = (25, 12)
EPOCHS = {"digits": 10, "signs": 12}

# The MLP search space, written once for every method. Keys are MLPClassifier's parameter names.
# Order matters to the grid only: earlier parameters get at least as many grid points.
MLP_SPACE: Space = {
    "learning_rate": Float(1e-4, 1.0, scale="log"),
    "beta": Float(0.8, 0.999, scale="one_minus_log"),
    "batch_size": Choice([32, 64, 128, 256]),
    "l2": Float(1e-3, 10.0, scale="log"),
}

SYNTHETIC_SPACE: Space = {
    "lr": Float(1e-5, 1.0, scale="log"),
    "beta": Float(0.8, 0.999, scale="one_minus_log"),
    "l2": Float(1e-5, 1.0, scale="log"),
    "keep_prob": Float(0.5, 1.0),
    "units": Int(10, 100),
    "batch_size": Choice([16, 32, 64, 128]),
}
BEST_LOG10_LR = -3.2  # lr* = 10^-3.2 ≈ 6.3e-4
BEST_LOG10_ONE_MINUS_BETA = -1.6  # β* = 1 - 10^-1.6 ≈ 0.975
SMALL_WEIGHT = 0.05
NOISE_SD = 0.02
# Where the small terms peak, in unit coordinates (each parameter on its own scale).
_SMALL_CENTRES = {"beta": 0.7, "l2": 0.3, "keep_prob": 0.8, "units": 0.6, "batch_size": 0.4}


@dataclass(frozen=True)
class Objective:
    """A named function ``params -> value`` (maximized) over ``space``.

    ``sklearn`` is set for the MLP objectives: what a scikit-learn search needs to run the same
    trials (see ``SklearnProblem``). ``test`` scores a search's pick where the search never
    looked: the MLP's accuracy on the test split, a synthetic function's value without its noise.
    """

    name: str
    description: str
    space: Space
    evaluate: Callable[[Mapping[str, Any]], float]
    sklearn: Callable[[], SklearnProblem] | None = field(default=None, compare=False)
    test: Callable[[Mapping[str, Any]], float] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class SklearnProblem:
    """The estimator and data of an MLP objective, for ``RandomizedSearchCV``.

    ``X: (N_train + N_val, D)`` and ``y``: the train rows, then the validation rows; ``test_fold``
    is -1 for train rows and 0 for validation rows (``PredefinedSplit``): one fixed split.
    """

    estimator: MLPClassifier
    X: NDArray[np.floating[Any]]
    y: NDArray[np.int64]
    test_fold: NDArray[np.int64]


def linear_scale(space: Space) -> Space:
    """The same bounds, every Float and Int on a linear scale: the mistake the course warns of."""
    linear: Space = {}
    for name, dist in space.items():
        if isinstance(dist, Float):
            linear[name] = Float(dist.low, dist.high)
        elif isinstance(dist, Int):
            linear[name] = Int(dist.low, dist.high)
        else:
            linear[name] = dist
    return linear


# -- MLP objectives -------------------------------------------------------------------------------


@functools.cache
def _dataset(name: str) -> Dataset:
    """Loaded once per process (each worker of a pool loads its own)."""
    if name == "signs":
        return load_dataset(SIGNS, classes=SIGNS_CLASSES, image_size=SIGNS_IMAGE_SIZE, seed=0)
    return load_dataset(name, seed=0)


def mlp_estimator(name: str) -> MLPClassifier:
    """The fixed part of an MLP objective's model: 25-12 hidden units, batch norm, Adam."""
    return MLPClassifier(hidden_layer_sizes=HIDDEN, batchnorm=True, epochs=EPOCHS[name])


def _mlp_value(name: str, params: Mapping[str, Any], split: str = "val") -> float:
    data = _dataset(name)
    estimator = mlp_estimator(name).set_params(**params)
    try:
        estimator.fit(data.X_train, data.y_train)
    except Diverged:
        return math.nan
    if split == "test":
        return float(estimator.score(data.X_test, data.y_test))
    return float(estimator.score(data.X_val, data.y_val))


def _sklearn_problem(name: str) -> SklearnProblem:
    data = _dataset(name)
    fold = np.r_[np.full(len(data.y_train), -1), np.zeros(len(data.y_val))].astype(np.int64)
    return SklearnProblem(
        estimator=mlp_estimator(name),
        X=np.vstack([data.X_train, data.X_val]),
        y=np.r_[data.y_train, data.y_val],
        test_fold=fold,
    )


def _mlp_objective(name: str, what: str) -> Objective:
    data = _dataset(name)
    description = (
        f"{what}; MLP {data.num_features}-{HIDDEN[0]}-{HIDDEN[1]}-{data.num_classes} with batch "
        f"norm and Adam, {EPOCHS[name]} epochs per trial; value: accuracy on the "
        f"{len(data.y_val)} validation rows (one row = {1 / len(data.y_val):.4f})"
    )
    return Objective(
        name,
        description,
        MLP_SPACE,
        functools.partial(_mlp_value, name),
        functools.partial(_sklearn_problem, name),
        functools.partial(_mlp_value, name, split="test"),
    )


# -- synthetic objectives -------------------------------------------------------------------------


def _pseudo_noise(params: Mapping[str, Any]) -> float:
    """A fixed N(0, NOISE_SD²) draw per point: the same params always get the same value."""
    key = zlib.crc32(repr(sorted(params.items())).encode())
    return float(np.random.default_rng(key).normal(0.0, NOISE_SD))


def _small_terms(params: Mapping[str, Any], skip: tuple[str, ...]) -> float:
    """At most ``SMALL_WEIGHT`` per parameter: distance from its centre, on its own scale."""
    total = 0.0
    for name, centre in _SMALL_CENTRES.items():
        if name not in skip:
            u = SYNTHETIC_SPACE[name].to_unit(params[name])
            total -= SMALL_WEIGHT * (u - centre) ** 2
    return total


def _synthetic_lr(params: Mapping[str, Any], noise: bool = True) -> float:
    main = -((math.log10(params["lr"]) - BEST_LOG10_LR) ** 2)
    return main + _small_terms(params, ()) + (_pseudo_noise(params) if noise else 0.0)


def _synthetic_lr_beta(params: Mapping[str, Any], noise: bool = True) -> float:
    lr_term = (math.log10(params["lr"]) - BEST_LOG10_LR) ** 2
    beta_term = (math.log10(1.0 - params["beta"]) - BEST_LOG10_ONE_MINUS_BETA) ** 2
    small = _small_terms(params, ("beta",))
    return -lr_term - beta_term + small + (_pseudo_noise(params) if noise else 0.0)


_SYNTHETIC_NOTE = (
    f"six parameters; {{}} matter{{}}, the others move the value by <= {SMALL_WEIGHT} each; "
    f"fixed pseudo-noise sd {NOISE_SD}; best value about 0"
)

OBJECTIVES: dict[str, Callable[[], Objective]] = {
    "synthetic-lr": lambda: Objective(
        "synthetic-lr",
        "-(log10 lr + 3.2)^2 + small terms; " + _SYNTHETIC_NOTE.format("only lr", "s"),
        SYNTHETIC_SPACE,
        _synthetic_lr,
        test=functools.partial(_synthetic_lr, noise=False),
    ),
    "synthetic-lr-beta": lambda: Objective(
        "synthetic-lr-beta",
        "-(log10 lr + 3.2)^2 - (log10(1 - beta) + 1.6)^2 + small terms; "
        + _SYNTHETIC_NOTE.format("lr and beta", ""),
        SYNTHETIC_SPACE,
        _synthetic_lr_beta,
        test=functools.partial(_synthetic_lr_beta, noise=False),
    ),
    "digits": lambda: _mlp_objective("digits", "bundled 8x8 digits (64 features)"),
    "signs": lambda: _mlp_objective(
        "signs",
        f"sign-language photos, classes {SIGNS_CLASSES}, resized to "
        f"{SIGNS_IMAGE_SIZE}x{SIGNS_IMAGE_SIZE} RGB ({SIGNS_IMAGE_SIZE**2 * 3} features)",
    ),
}


def make_objective(name: str) -> Objective:
    """The objective called ``name`` (one of ``OBJECTIVES``)."""
    return OBJECTIVES[name]()


def describe_distribution(dist: Distribution) -> str:
    """A short human form: ``[0.0001, 1] log`` or ``{32, 64, 128, 256}``."""
    if isinstance(dist, Choice):
        return "{" + ", ".join(str(o) for o in dist.options) + "}"
    if isinstance(dist, Float | Int):
        return f"[{dist.low:g}, {dist.high:g}] {dist.scale}"
    return repr(dist)
