"""Stratified, seeded splits and the validation of their arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tunery import ConfigError, DataError
from tunery.data._splits import Part, check_fractions, check_seed, split_three


def labelled_ids(counts: list[int]) -> Part:
    """Rows whose only feature is their own id, so splits can be checked for overlap."""
    y = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
    return Part(np.arange(len(y))[:, None], y)


fractions = st.floats(min_value=0.05, max_value=0.3)


@settings(deadline=None, max_examples=40)
@given(
    counts=st.lists(st.integers(min_value=12, max_value=60), min_size=2, max_size=5),
    val=fractions,
    test=fractions,
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_every_class_keeps_its_share(counts: list[int], val: float, test: float, seed: int) -> None:
    # A stratified cut needs at least one row per class on each side; smaller cuts are refused
    # with a DataError (tested on its own), not a case of this property.
    assume(min(val, test) * sum(counts) >= len(counts) + 1)
    part = labelled_ids(counts)
    train, validation, testing = split_three(part, val, test, seed, "src")
    ids = np.concatenate([train.X[:, 0], validation.X[:, 0], testing.X[:, 0]])
    assert sorted(ids.tolist()) == list(range(sum(counts)))  # a partition: nothing lost or repeated
    assert len(testing.y) == math.ceil(test * sum(counts))
    for label, count in enumerate(counts):
        # Stratification rounds per class; two cuts of rounding stay within a few rows.
        assert abs(np.sum(testing.y == label) - test * count) <= 2
        assert abs(np.sum(validation.y == label) - val * count) <= 3
        assert np.sum(train.y == label) >= 1
    for piece in (train, validation, testing):
        np.testing.assert_array_equal(piece.y, part.y[piece.X[:, 0]])


def test_same_seed_same_split_other_seed_other_split() -> None:
    part = labelled_ids([40, 40, 40])
    first = split_three(part, 0.15, 0.15, 7, "src")
    again = split_three(part, 0.15, 0.15, 7, "src")
    other = split_three(part, 0.15, 0.15, 8, "src")
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(first[2].X, other[2].X)


def test_class_too_small_to_stratify_names_the_source() -> None:
    with pytest.raises(DataError, match=r"some/where: cannot split .*\[1, 30\]"):
        split_three(labelled_ids([1, 30]), 0.15, 0.15, 0, "some/where")


@pytest.mark.parametrize(
    ("val", "test", "field"),
    [
        (0, 0.1, "val_fraction"),
        (1, 0.1, "val_fraction"),
        (-0.1, 0.1, "val_fraction"),
        (math.nan, 0.1, "val_fraction"),
        ("0.1", 0.1, "val_fraction"),
        (True, 0.1, "val_fraction"),
        (0.1, 0.0, "test_fraction"),
        (0.1, math.inf, "test_fraction"),
        (0.5, 0.5, "val_fraction + test_fraction"),
        (0.6, 0.45, "val_fraction + test_fraction"),
    ],
)
def test_bad_fractions(val: object, test: object, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_fractions(val, test)
    assert caught.value.field == field


def test_good_fractions_pass_through() -> None:
    assert check_fractions(0.1, 0.2) == (0.1, 0.2)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", None, True])
def test_bad_seed(seed: object) -> None:
    with pytest.raises(ConfigError, match="seed"):
        check_seed(seed)


def test_numpy_seed_is_accepted() -> None:
    assert check_seed(np.int64(5)) == 5
