"""Stratified, seeded splits into training, validation and test sets.

Each split keeps every class's share (``sklearn.model_selection.train_test_split``, ``stratify``).
The test set is cut first (``test_fraction`` of all rows), then the validation set
(``val_fraction`` of all rows) from what is left. Sizes round up, as scikit-learn's do. The two cuts
draw from independent streams spawned from ``seed``, so the same seed gives the same split.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from tunery._exceptions import ConfigError, DataError
from tunery._validation import FRACTION, check_int, check_scalar

__all__ = [
    "DEFAULT_TEST_FRACTION",
    "DEFAULT_VAL_FRACTION",
    "Part",
    "check_fraction",
    "check_fractions",
    "check_seed",
    "split_off",
    "split_seeds",
    "split_three",
]

DEFAULT_VAL_FRACTION = 0.15
DEFAULT_TEST_FRACTION = 0.15


class Part(NamedTuple):
    """Rows ``X: (N, D)`` and labels ``y: (N,)``."""

    X: NDArray[Any]
    y: NDArray[np.int64]


def check_fraction(value: object, field: str) -> float:
    """A fraction strictly between 0 and 1."""
    return check_scalar(field, value, FRACTION)


def check_fractions(val_fraction: object, test_fraction: object) -> tuple[float, float]:
    """Both fractions in (0, 1), leaving a training set: ``val_fraction + test_fraction < 1``."""
    val = check_fraction(val_fraction, "val_fraction")
    test = check_fraction(test_fraction, "test_fraction")
    if val + test >= 1:
        raise ConfigError(
            "val_fraction + test_fraction", val + test, "less than 1, to leave a training set"
        )
    return val, test


def check_seed(seed: object) -> int:
    """A non-negative integer seed."""
    return check_int("seed", seed, 0)


def split_off(part: Part, fraction: float, seed: int, source: object) -> tuple[Part, Part]:
    """``(kept, cut)``: ``cut`` holds ``ceil(fraction * N)`` rows, stratified by label.

    Raises ``DataError`` naming ``source`` when a class is too small to appear on both sides.
    """
    try:
        from sklearn.model_selection import (
            train_test_split,  # scikit-learn is slow to import: on use
        )

        X_kept, X_cut, y_kept, y_cut = train_test_split(
            part.X, part.y, test_size=fraction, random_state=seed, stratify=part.y
        )
    except ValueError as exc:
        counts = np.bincount(part.y)
        raise DataError(
            f"{source}: cannot split {len(part.y)} examples (per class: {counts.tolist()}) "
            f"with a fraction of {fraction} stratified by class: {exc}"
        ) from exc
    return Part(X_kept, y_kept), Part(X_cut, y_cut)


def split_seeds(seed: int) -> tuple[int, int]:
    """Two independent ``random_state`` values for the test cut and the validation cut."""
    first, second = np.random.SeedSequence(seed).generate_state(2)
    return int(first), int(second)


def split_three(
    part: Part, val_fraction: float, test_fraction: float, seed: int, source: object
) -> tuple[Part, Part, Part]:
    """``(train, val, test)`` with about ``val_fraction`` and ``test_fraction`` of all rows."""
    test_seed, val_seed = split_seeds(seed)
    rest, test = split_off(part, test_fraction, test_seed, source)
    # val_fraction is a share of all rows; after the test cut it is a larger share of the rest.
    train, val = split_off(rest, val_fraction / (1 - test_fraction), val_seed, source)
    return train, val, test
