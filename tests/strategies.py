"""Hypothesis strategies for search spaces, shared by the tests of every module that takes a space.

Ranges are kept where float64 has precision to spare (a linear range is never narrower than 1e-5
of its offset, 1 - high >= 1e-6 on the one-minus-log scale), so that round trips can be held to
tight tolerances without flakiness.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from tunery.space import Choice, Distribution, Float, Int, Space

__all__ = [
    "choices",
    "distributions",
    "float_dists",
    "int_dists",
    "names",
    "numeric_dists",
    "option_key",
    "options",
    "spaces",
    "trials",
    "unit",
    "values_in",
]

unit = st.floats(min_value=0.0, max_value=1.0)
names = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)


@st.composite
def linear_floats(draw: st.DrawFn) -> Float:
    low = draw(st.floats(min_value=-1e3, max_value=1e3))
    width = draw(st.floats(min_value=1e-2, max_value=1e4))
    return Float(low, low + width)


@st.composite
def log_floats(draw: st.DrawFn) -> Float:
    exponent = draw(st.floats(min_value=-8.0, max_value=3.0))
    decades = draw(st.floats(min_value=0.1, max_value=8.0))
    return Float(10.0**exponent, 10.0 ** (exponent + decades), scale="log")


@st.composite
def one_minus_log_floats(draw: st.DrawFn) -> Float:
    # 1 - high = 10^near, 1 - low = 10^far, with near < far < 0.
    near = draw(st.floats(min_value=-6.0, max_value=-0.2))
    far = draw(st.floats(min_value=near + 0.1, max_value=-0.01))
    return Float(1.0 - 10.0**far, 1.0 - 10.0**near, scale="one_minus_log")


float_dists = st.one_of(linear_floats(), log_floats(), one_minus_log_floats())


@st.composite
def int_dists(draw: st.DrawFn) -> Int:
    log = draw(st.booleans())
    low = draw(st.integers(min_value=1 if log else -1000, max_value=1000))
    high = low + draw(st.integers(min_value=0, max_value=10**6))
    return Int(low, high, scale="log" if log else "linear")


def option_key(option: Any) -> tuple[bool, Any]:
    """Options that are the same for a Choice: 1 and 1.0 are, 1 and True are not."""
    return (isinstance(option, bool), option)


options = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.booleans(),
)
choices = st.builds(Choice, st.lists(options, min_size=1, max_size=8, unique_by=option_key))
numeric_dists = st.one_of(float_dists, int_dists())
distributions = st.one_of(float_dists, int_dists(), choices)


def spaces(min_size: int = 1, max_size: int = 4) -> st.SearchStrategy[Space]:
    """Plain-dict spaces of any mix of distributions."""
    return st.dictionaries(names, distributions, min_size=min_size, max_size=max_size)


def values_in(dist: Distribution) -> st.SearchStrategy[Any]:
    """Values ``dist`` can return, bounds included."""
    if isinstance(dist, Choice):
        return st.sampled_from(dist.options)
    if isinstance(dist, Int):
        return st.integers(min_value=dist.low, max_value=dist.high)
    assert isinstance(dist, Float)
    return st.floats(min_value=dist.low, max_value=dist.high)


@st.composite
def trials(
    draw: st.DrawFn, space: Space, min_size: int = 3, max_size: int = 40
) -> list[tuple[dict[str, Any], float | None]]:
    """``(params, value)`` pairs with params drawn from ``space``; a few values are None or NaN."""
    point = st.fixed_dictionaries({name: values_in(dist) for name, dist in space.items()})
    n = draw(st.integers(min_value=min_size, max_value=max_size))
    pairs: list[tuple[dict[str, Any], float | None]] = []
    for _ in range(n):
        # One trial in four is unfinished, so most draws still leave enough to zoom on.
        kind = draw(st.sampled_from(["done", "done", "done", "unfinished"]))
        value: float | None = draw(st.floats(min_value=-1e6, max_value=1e6))
        if kind == "unfinished":
            value = draw(st.sampled_from([None, math.nan]))
        pairs.append((draw(point), value))
    return pairs
