"""PBT's explore and exploit choices: every perturbation on its parameter's scale, inside bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery.records import FrozenTrial, TrialState
from tunery.space import Choice, Float, Int
from tunery.workflows.pbt import explore, member_rng, perturb, quantile_size, split

FACTORS = (0.8, 1.25)
seeds = st.integers(0, 2**32 - 1)
units = st.floats(0, 1)


@given(low=st.floats(1e-6, 1.0), span=st.floats(1.0, 1e4), u=units, seed=seeds)
def test_a_log_float_moves_by_a_factor_or_stops_at_a_bound(
    low: float, span: float, u: float, seed: int
) -> None:
    space = Float(low, low * span, scale="log")
    value = space.from_unit(u)
    moved = perturb(space, value, np.random.default_rng(seed), FACTORS)
    assert space.low <= moved <= space.high
    if moved not in (space.low, space.high):
        assert any(math.isclose(moved / value, f, rel_tol=1e-9) for f in FACTORS)


@given(low=st.floats(0.5, 0.99), gap=st.floats(1e-4, 0.009), u=units, seed=seeds)
def test_beta_moves_through_one_minus_beta_and_never_reaches_one(
    low: float, gap: float, u: float, seed: int
) -> None:
    space = Float(low, 1.0 - gap, scale="one_minus_log")
    value = space.from_unit(u)
    moved = perturb(space, value, np.random.default_rng(seed), FACTORS)
    assert space.low <= moved <= space.high < 1.0
    if moved not in (space.low, space.high):
        ratio = (1.0 - moved) / (1.0 - value)
        assert any(math.isclose(ratio, f, rel_tol=1e-6) for f in FACTORS)


@given(low=st.integers(1, 50), span=st.integers(1, 500), u=units, seed=seeds)
def test_an_int_steps_at_least_once_unless_at_a_bound(
    low: int, span: int, u: float, seed: int
) -> None:
    space = Int(low, low + span)
    value = space.from_unit(u)
    moved = perturb(space, value, np.random.default_rng(seed), FACTORS)
    assert isinstance(moved, int)
    assert space.low <= moved <= space.high
    assert moved != value or value in (space.low, space.high)


@given(options=st.lists(st.integers(1, 512), min_size=2, max_size=6, unique=True), data=st.data())
def test_a_choice_moves_to_a_neighbouring_option(options: list[int], data: st.DataObject) -> None:
    space = Choice(options)
    index = data.draw(st.integers(0, len(options) - 1))
    moved = perturb(space, options[index], np.random.default_rng(data.draw(seeds)), FACTORS)
    assert abs(space.index(moved) - index) <= 1


@settings(max_examples=50)
@given(seed=seeds, probability=st.sampled_from([0.0, 1.0]))
def test_explore_changes_only_the_names_asked_and_stays_in_the_space(
    seed: int, probability: float
) -> None:
    space = {
        "lr": Float(1e-4, 1.0, scale="log"),
        "beta": Float(0.8, 0.999, scale="one_minus_log"),
        "units": Int(8, 64),
        "batch_size": Choice([32, 64, 128]),
    }
    params = {"lr": 0.01, "beta": 0.9, "units": 16, "batch_size": 64}
    names = ["lr", "beta", "batch_size"]  # units is no nudge: it shapes the weights
    rng = np.random.default_rng(seed)
    changes = explore(params, space, names, rng, factors=FACTORS, resample_probability=probability)
    assert set(changes) == set(names)
    for name, value in changes.items():
        assert space[name].contains(value), (name, value)
    if probability == 0.0:  # perturbed, never redrawn: lr is a factor away
        assert any(math.isclose(changes["lr"] / 0.01, f) for f in FACTORS)


def test_the_same_member_and_step_draw_alike_and_others_differ() -> None:
    first = member_rng(3, 1, 2).random(4)
    assert np.array_equal(first, member_rng(3, 1, 2).random(4))
    assert not np.array_equal(first, member_rng(3, 2, 2).random(4))
    assert not np.array_equal(first, member_rng(3, 1, 3).random(4))
    assert not np.array_equal(first, member_rng(4, 1, 2).random(4))


@pytest.mark.parametrize(
    ("population", "fraction", "size"),
    [(8, 0.25, 2), (4, 0.25, 1), (5, 0.25, 2), (4, 0.5, 2), (3, 0.5, 1), (8, 0.0, 0)],
)
def test_quantile_size_follows_ray_tune(population: int, fraction: float, size: int) -> None:
    assert quantile_size(population, fraction) == size


def _segment(number: int, value: float | None, state: TrialState) -> FrozenTrial:
    return FrozenTrial(
        number=number, trial_id=number, sample_id=None, round=1, params={}, state=state, value=value
    )


@given(
    values=st.lists(st.floats(0, 1), min_size=2, max_size=12),
    fraction=st.floats(0, 0.5),
    maximize=st.booleans(),
)
def test_the_bottom_quantile_exploits_the_top_one(
    values: list[float], fraction: float, maximize: bool
) -> None:
    segments = {m: _segment(m, v, TrialState.COMPLETE) for m, v in enumerate(values)}
    top, bottom = split(segments, maximize, fraction)
    size = quantile_size(len(values), fraction)
    assert len(bottom) == size
    assert len(top) == max(size, 1)
    assert not set(top) & set(bottom)
    sign = 1 if maximize else -1
    worst_top = min(sign * values[m] for m in top)
    assert all(sign * values[m] <= worst_top for m in bottom)
    others = set(segments) - set(top)
    assert all(sign * values[m] <= worst_top for m in others)


def test_diverged_and_failed_members_always_exploit() -> None:
    segments = {
        0: _segment(0, 0.9, TrialState.COMPLETE),
        1: _segment(1, None, TrialState.DIVERGED),
        2: _segment(2, 0.5, TrialState.COMPLETE),
        3: _segment(3, None, TrialState.FAILED),
    }
    top, bottom = split(segments, True, 0.0)
    assert (top, bottom) == ([0], [1, 3])
