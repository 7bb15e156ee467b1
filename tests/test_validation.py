"""The one scalar check: a declared Interval accepts exactly its numbers and names itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunery import ConfigError
from tunery._validation import (
    ANY_REAL,
    FRACTION,
    KEEP_PROB,
    POSITIVE,
    Interval,
    check_int,
    check_scalar,
)

CLOSED = st.sampled_from(["both", "left", "right", "neither"])


@given(
    low=st.integers(-5, 5),
    width=st.integers(0, 5),
    closed=CLOSED,
    value=st.floats(-10, 10, allow_nan=False),
)
def test_an_interval_accepts_exactly_the_numbers_between_its_bounds(
    low: int, width: int, closed: str, value: float
) -> None:
    rule = Interval(float, low, low + width, closed=closed)  # type: ignore[arg-type]
    above = value >= low if closed in ("both", "left") else value > low
    below = value <= low + width if closed in ("both", "right") else value < low + width
    assert rule.accepts(value) is (above and below)


@given(value=st.one_of(st.booleans(), st.text(), st.none(), st.lists(st.integers())))
def test_what_is_not_a_number_is_refused_with_field_value_and_rule(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        check_scalar("model.lr", value, POSITIVE)
    assert info.value.field == "model.lr"
    assert info.value.value is value
    assert str(info.value).startswith("model.lr: expected a finite number > 0")


def test_a_bool_is_refused_and_the_message_says_why() -> None:
    with pytest.raises(ConfigError, match=r"^epochs: expected an int >= 1, not a bool, got True$"):
        check_int("epochs", True, 1)


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (Interval(int, 1), "an int >= 1"),
        (Interval(int, 0, 10), "an int in [0, 10]"),
        (POSITIVE, "a finite number > 0"),
        (Interval(float, 0), "a finite number >= 0"),
        (Interval(float, None, 1, closed="neither"), "a finite number < 1"),
        (FRACTION, "a number in (0, 1)"),
        (KEEP_PROB, "a number in (0, 1]"),
        (Interval(float, 0.5, 2.5, closed="left"), "a number in [0.5, 2.5)"),
        (ANY_REAL, "a real number"),
        (Interval(int), "an int"),
    ],
)
def test_each_rule_describes_itself(rule: Interval, text: str) -> None:
    assert str(rule) == text


def test_numpy_numbers_count_and_come_back_as_python_numbers() -> None:
    assert type(check_int("n", np.int64(3), 1)) is int
    assert type(check_scalar("x", np.float32(0.5), FRACTION)) is float
    assert check_int("n", np.int64(3), 1) == 3


def test_floats_must_be_finite_unless_the_rule_says_otherwise() -> None:
    for value in (math.nan, math.inf, -math.inf):
        assert not Interval(float).accepts(value)
        assert ANY_REAL.accepts(value)
    assert math.isnan(check_scalar("metric 'loss'", math.nan, ANY_REAL))


@given(st.integers(-100, 100), st.integers(-100, 100))
def test_check_int_keeps_integers_and_refuses_floats(value: int, low: int) -> None:
    if value >= low:
        assert check_int("n", value, low) == value
    else:
        with pytest.raises(ConfigError, match=f"an int >= {low}"):
            check_int("n", value, low)
    with pytest.raises(ConfigError, match="an int"):
        check_int("n", float(value) + 0.5)
