"""Distributions, the unit-cube mapping, and reading spaces from dicts and config tables."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import (
    choices,
    distributions,
    float_dists,
    int_dists,
    numeric_dists,
    spaces,
    unit,
    values_in,
)
from tunery import ConfigError
from tunery.space import (
    Choice,
    Distribution,
    Float,
    Int,
    distribution_from_dict,
    space_from_config,
    space_from_dict,
    space_to_dict,
    validate_space,
)

# --------------------------------------------------------------------------------------------------
# Round trips and bounds


@given(dist=float_dists, u=unit)
def test_float_unit_round_trip(dist: Float, u: float) -> None:
    assert dist.to_unit(dist.from_unit(u)) == pytest.approx(u, abs=1e-8)


@given(data=st.data(), dist=float_dists)
def test_float_value_round_trip(data: st.DataObject, dist: Float) -> None:
    value = data.draw(values_in(dist))
    back = dist.from_unit(dist.to_unit(value))
    assert math.isclose(back, value, rel_tol=1e-12, abs_tol=1e-12 * (abs(dist.low) + dist.high))


@pytest.mark.parametrize(
    "dist",
    [Float(1e-4, 1.0, scale="log"), Float(0.9, 0.999, scale="one_minus_log"), Float(-3, 7)],
)
def test_practical_ranges_invert_to_1e_12(dist: Float) -> None:
    u = np.linspace(0, 1, 1001)[1:-1]
    back = np.array([dist.to_unit(dist.from_unit(x)) for x in u.tolist()])
    assert np.max(np.abs(back - u)) < 1e-12


def test_one_minus_log_keeps_precision_near_one() -> None:
    beta = Float(1 - 1e-3, 1 - 1e-9, scale="one_minus_log")
    # r uniform in [-9, -3]: the middle is 1 - 1e-6, whose distance to 1 must keep ~10 digits.
    assert (1.0 - beta.from_unit(0.5)) == pytest.approx(1e-6, rel=1e-9)


@given(dist=numeric_dists, u=unit)
def test_from_unit_stays_within_inclusive_bounds(dist: Float | Int, u: float) -> None:
    value = dist.from_unit(u)
    assert dist.low <= value <= dist.high
    assert dist.contains(value)


@given(dist=numeric_dists)
def test_unit_ends_give_the_bounds(dist: Float | Int) -> None:
    assert dist.from_unit(0.0) == dist.low
    assert dist.from_unit(1.0) == dist.high


@given(dist=numeric_dists, u1=unit, u2=unit)
def test_from_unit_is_monotone(dist: Float | Int, u1: float, u2: float) -> None:
    lo, hi = sorted((u1, u2))
    assert dist.from_unit(lo) <= dist.from_unit(hi)


@given(data=st.data(), dist=st.one_of(int_dists(), choices))
def test_discrete_value_round_trip_is_exact(data: st.DataObject, dist: Int | Choice) -> None:
    value = data.draw(values_in(dist))
    u = dist.to_unit(value)
    assert 0.0 < u < 1.0
    back = dist.from_unit(u)
    assert back == value
    assert type(back) is type(value)


@given(dist=st.one_of(int_dists(), choices), u=unit)
def test_discrete_unit_round_trip_stays_in_the_bin(dist: Int | Choice, u: float) -> None:
    value = dist.from_unit(u)
    assert dist.from_unit(dist.to_unit(value)) == value


@given(dist=distributions, u=unit)
def test_to_unit_lands_in_the_unit_interval(dist: Distribution, u: float) -> None:
    assert 0.0 <= dist.to_unit(dist.from_unit(u)) <= 1.0


@given(dist=numeric_dists)
def test_values_beyond_the_bounds_clip_to_the_ends(dist: Float | Int) -> None:
    assert dist.to_unit(dist.low - 1) == 0.0
    assert dist.to_unit(dist.high + 1) == 1.0


# --------------------------------------------------------------------------------------------------
# Each scale puts the mass where it says


def test_log_float_gives_each_decade_a_quarter_of_the_unit_interval() -> None:
    lr = Float(1e-4, 1.0, scale="log")
    decade_edges = [lr.to_unit(10.0**e) for e in range(-4, 1)]
    assert np.diff(decade_edges) == pytest.approx([0.25] * 4, abs=1e-12)


def test_one_minus_log_median_is_099() -> None:
    beta = Float(0.9, 0.999, scale="one_minus_log")
    assert beta.from_unit(0.5) == pytest.approx(0.99, abs=1e-12)
    assert beta.to_unit(0.99) == pytest.approx(0.5, abs=1e-12)


def test_int_linear_bins_are_equal() -> None:
    dice = Int(1, 6)
    u = (np.arange(60_000) + 0.5) / 60_000
    counts = np.bincount([dice.from_unit(x) for x in u.tolist()], minlength=7)[1:]
    assert counts.tolist() == [10_000] * 6


def test_int_log_gives_each_decade_a_third() -> None:
    units = Int(1, 999, scale="log")
    u = (np.arange(30_000) + 0.5) / 30_000
    digits = np.array([len(str(units.from_unit(x))) for x in u.tolist()])
    assert np.bincount(digits)[1:] / len(u) == pytest.approx([1 / 3] * 3, abs=1e-3)


@given(dist=choices, u=unit)
def test_choice_picks_floor_u_n(dist: Choice, u: float) -> None:
    n = len(dist.options)
    assert dist.from_unit(u) is dist.options[min(n - 1, math.floor(u * n))]


def test_choice_tells_bools_from_ints() -> None:
    flag = Choice([1, True, "1"])
    assert [flag.from_unit(flag.to_unit(o)) for o in (1, True, "1")] == [1, True, "1"]
    assert type(flag.from_unit(flag.to_unit(True))) is bool
    assert not Choice([1, 2]).contains(True)


def test_degenerate_range_returns_its_single_value() -> None:
    assert Float(0.5, 0.5).from_unit(0.7) == 0.5
    assert Int(3, 3).from_unit(0.2) == 3
    assert Float(0.5, 0.5).to_unit(0.5) == 0.5


def test_inputs_are_normalised_to_python_scalars() -> None:
    dist = Int(np.int64(2), np.int64(9))
    assert type(dist.low) is int
    assert type(Float(np.float32(0.5), 1).high) is float
    assert Choice([np.int64(3), np.bool_(True)]).options == (3, True)
    assert json.dumps(Choice([np.int64(3), np.float64(0.5)]).to_dict())


# --------------------------------------------------------------------------------------------------
# Serialisation


@given(dist=distributions)
def test_to_dict_survives_json(dist: Distribution) -> None:
    restored = distribution_from_dict(json.loads(json.dumps(dist.to_dict())))
    assert restored == dist
    assert type(restored) is type(dist)


@given(space=spaces())
def test_space_dict_round_trip(space: dict[str, Distribution]) -> None:
    assert space_from_dict(json.loads(json.dumps(space_to_dict(space)))) == space


# --------------------------------------------------------------------------------------------------
# Config tables


def test_config_table_from_the_docs() -> None:
    space = space_from_config(
        {
            "lr": {"low": 1e-4, "high": 1, "scale": "log"},
            "beta": {"low": 0.9, "high": 0.999, "scale": "one_minus_log"},
            "units": {"low": 10, "high": 100, "type": "int"},
            "batch_size": {"choices": [32, 64, 128, 256]},
        }
    )
    assert space == {
        "lr": Float(1e-4, 1.0, scale="log"),
        "beta": Float(0.9, 0.999, scale="one_minus_log"),
        "units": Int(10, 100),
        "batch_size": Choice([32, 64, 128, 256]),
    }


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"low": 10, "high": 100}, Int(10, 100)),
        ({"low": 1, "high": 64, "scale": "log"}, Int(1, 64, scale="log")),
        ({"low": 0.0, "high": 1}, Float(0.0, 1.0)),
        ({"low": 1, "high": 4, "type": "float"}, Float(1.0, 4.0)),
        ({"low": 0.9, "high": 0.99, "scale": "one_minus_log"}, Float(0.9, 0.99, "one_minus_log")),
        ({"choices": ["relu", "tanh"], "type": "choice"}, Choice(["relu", "tanh"])),
    ],
)
def test_type_is_inferred_from_the_bounds_unless_given(
    table: dict[str, Any], expected: Distribution
) -> None:
    got = space_from_config({"p": table})["p"]
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("table", "field", "value"),
    [
        ({"low": 1.0, "high": 0.5}, "space.p.high", 0.5),
        ({"low": 0.0, "high": 1.0, "scale": "log"}, "space.p.low", 0.0),
        ({"low": -1.0, "high": 1.0, "scale": "log"}, "space.p.low", -1.0),
        ({"low": 0, "high": 8, "scale": "log"}, "space.p.low", 0),
        ({"low": 0.0, "high": 0.9, "scale": "one_minus_log"}, "space.p.low", 0.0),
        ({"low": 0.9, "high": 1.0, "scale": "one_minus_log"}, "space.p.high", 1.0),
        ({"low": 0.9, "high": 1.5, "scale": "one_minus_log"}, "space.p.high", 1.5),
        ({"choices": []}, "space.p.choices", []),
        ({"choices": [32, 64, 32]}, "space.p.choices", [32, 64, 32]),
        ({"choices": "relu"}, "space.p.choices", "relu"),
        ({"choices": [1, None]}, "space.p.choices[1]", None),
        ({"low": math.nan, "high": 1.0}, "space.p.low", math.nan),
        ({"low": 0.0, "high": math.inf}, "space.p.high", math.inf),
        ({"low": "0", "high": 1.0}, "space.p.low", "0"),
        ({"low": True, "high": 3}, "space.p.low", True),
        ({"low": 1.5, "high": 3, "type": "int"}, "space.p.low", 1.5),
        ({"low": 1, "high": 3, "scale": "cubic"}, "space.p.scale", "cubic"),
        ({"low": 1, "high": 3, "type": "bool"}, "space.p.type", "bool"),
        ({"low": 1, "high": 3, "step": 1}, "space.p", "step"),
        ({"choices": [1, 2], "low": 1}, "space.p", "low"),
        ({"high": 3.0}, "space.p.low", None),
    ],
)
def test_bad_tables_name_the_parameter_rule_and_value(
    table: dict[str, Any], field: str, value: Any
) -> None:
    with pytest.raises(ConfigError) as caught:
        space_from_config({"p": table})
    error = caught.value
    assert error.field == field
    assert str(error).startswith(f"{field}: expected ")
    if value is not None and not (isinstance(value, float) and math.isnan(value)):
        assert error.value == value
        assert repr(value) in str(error)


@pytest.mark.parametrize(
    "space",
    [{}, {"p": [1, 2]}, {"": {"low": 1, "high": 2}}, {3: {"low": 1, "high": 2}}, [("p", {})]],
)
def test_bad_spaces_are_refused(space: Any) -> None:
    with pytest.raises(ConfigError):
        space_from_config(space)


def test_validate_space_accepts_distributions_and_tables() -> None:
    space = validate_space({"lr": Float(1e-3, 1.0, scale="log"), "n": {"choices": [1, 2]}})
    assert space == {"lr": Float(1e-3, 1.0, scale="log"), "n": Choice([1, 2])}
    with pytest.raises(ConfigError, match=r"^search\.lr\.low"):
        validate_space({"lr": {"low": 0.0, "high": 1.0, "scale": "log"}}, where="search")


def test_python_constructors_raise_the_same_format() -> None:
    with pytest.raises(ConfigError, match=r"^Float\(name='lr'\)\.low: expected a number > 0"):
        Float(0.0, 1.0, scale="log", name="lr")
    with pytest.raises(ConfigError, match=r"^Int\.high: expected a number >= low \(5\), got 2$"):
        Int(5, 2)
    with pytest.raises(ConfigError, match=r"^Choice\.options: expected at least one option"):
        Choice([])
    with pytest.raises(ConfigError, match=r"not a bool"):
        Float(False, 1.0)


def test_name_labels_errors_but_not_equality() -> None:
    assert Float(0.0, 1.0, name="a") == Float(0.0, 1.0)
    assert "name" not in Float(0.0, 1.0, name="a").to_dict()


@pytest.mark.parametrize("u", [-0.1, 1.1, math.nan, "0.5"])
def test_from_unit_refuses_points_off_the_unit_interval(u: Any) -> None:
    for dist in (Float(0.0, 1.0), Int(0, 3), Choice(["a"])):
        with pytest.raises(ConfigError):
            dist.from_unit(u)


def test_to_unit_refuses_unknown_options_and_non_numbers() -> None:
    with pytest.raises(ConfigError, match="one of"):
        Choice([32, 64]).to_unit(48)
    with pytest.raises(ConfigError):
        Float(0.0, 1.0).to_unit("0.5")
