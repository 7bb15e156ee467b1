"""Samplers: pure functions of (seed, number), on the unit cube, with the promised spread."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.stats import qmc

from tests.strategies import spaces
from tunery import ConfigError
from tunery.samplers import (
    GridSampler,
    RandomSampler,
    Sampler,
    SobolSampler,
    make_sampler,
    sample_params,
)
from tunery.samplers import _unit as samplers_module
from tunery.space import Choice, Distribution, Float, Int, Space

ALL = [RandomSampler(), GridSampler(), SobolSampler()]
seeds = st.integers(min_value=0, max_value=2**63)
numbers = st.integers(min_value=0, max_value=3000)


def draws(sampler: Sampler, space: Space, n: int, seed: int = 0) -> list[dict[str, Any]]:
    return [sample_params(sampler, space, seed, number) for number in range(n)]


# --------------------------------------------------------------------------------------------------
# Reproducible, on the cube, independent of key order


@pytest.mark.parametrize("sampler", ALL, ids=lambda s: s.name)
@settings(max_examples=30)
@given(space=spaces(), seed=seeds, number=numbers)
def test_a_draw_is_a_pure_function_of_seed_and_number(
    sampler: Sampler, space: Space, seed: int, number: int
) -> None:
    first = sampler.sample_unit(space, seed, number)
    samplers_module._SOBOL_CACHE.clear()  # a fresh process has an empty cache
    again = make_sampler(**sampler.to_dict()).sample_unit(space, seed, number)
    assert first == again
    assert set(first) == set(space)
    assert all(0.0 <= u <= 1.0 for u in first.values())


@pytest.mark.parametrize("sampler", ALL, ids=lambda s: s.name)
def test_a_resumed_study_samples_what_the_uninterrupted_one_would(sampler: Sampler) -> None:
    space: Space = {
        "lr": Float(1e-4, 1.0, scale="log"),
        "units": Int(8, 512),
        "act": Choice(["a", "b"]),
    }
    uninterrupted = [sampler.sample_unit(space, 7, n) for n in range(40)]
    samplers_module._SOBOL_CACHE.clear()
    resumed = [sampler.sample_unit(space, 7, n) for n in range(25, 40)]
    backwards = [sampler.sample_unit(space, 7, n) for n in reversed(range(40))]
    assert resumed == uninterrupted[25:]
    assert backwards[::-1] == uninterrupted


@pytest.mark.parametrize("sampler", ALL, ids=lambda s: s.name)
def test_key_order_does_not_change_the_draws(sampler: Sampler) -> None:
    space: Space = {"b": Float(0.0, 1.0), "a": Int(0, 9), "c": Choice([1, 2, 3])}
    reordered = {name: space[name] for name in ("c", "a", "b")}
    for number in range(10):
        assert sampler.sample_unit(space, 3, number) == sampler.sample_unit(reordered, 3, number)


@pytest.mark.parametrize("sampler", [RandomSampler(), SobolSampler()], ids=lambda s: s.name)
def test_seeds_and_numbers_give_different_points(sampler: Sampler) -> None:
    space: Space = {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}
    points = {tuple(sampler.sample_unit(space, s, n).values()) for s in range(4) for n in range(25)}
    assert len(points) == 100


@pytest.mark.parametrize("sampler", ALL, ids=lambda s: s.name)
@settings(max_examples=30)
@given(space=spaces(), seed=seeds, number=numbers)
def test_sample_params_stay_in_the_space(
    sampler: Sampler, space: Space, seed: int, number: int
) -> None:
    params = sample_params(sampler, space, seed, number)
    assert list(params) == list(space)
    assert all(space[name].contains(value) for name, value in params.items())


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_seed_and_number_must_be_non_negative_integers(bad: Any) -> None:
    space: Space = {"x": Float(0.0, 1.0)}
    for sampler in ALL:
        with pytest.raises(ConfigError, match=r"^seed"):
            sampler.sample_unit(space, bad, 0)
        with pytest.raises(ConfigError, match=r"^trial number"):
            sampler.sample_unit(space, 0, bad)


# --------------------------------------------------------------------------------------------------
# Random: the scales put the draws where they should


def test_log_scale_gives_each_decade_a_quarter_of_the_draws() -> None:
    lr = np.array(
        [d["lr"] for d in draws(RandomSampler(), {"lr": Float(1e-4, 1.0, "log")}, 20_000)]
    )
    per_decade = np.histogram(np.log10(lr), bins=[-4, -3, -2, -1, 0])[0] / len(lr)
    assert per_decade == pytest.approx([0.25] * 4, abs=0.02)


def test_one_minus_log_puts_half_the_betas_above_099() -> None:
    space: Space = {"beta": Float(0.9, 0.999, scale="one_minus_log")}
    beta = np.array([d["beta"] for d in draws(RandomSampler(), space, 20_000)])
    assert np.median(beta) == pytest.approx(0.99, abs=1e-3)
    assert np.mean(beta < 0.99) == pytest.approx(0.5, abs=0.02)
    assert beta.min() >= 0.9
    assert beta.max() <= 0.999


def test_int_draws_are_uniform_over_the_inclusive_range() -> None:
    rolls = [d["die"] for d in draws(RandomSampler(), {"die": Int(1, 6)}, 12_000)]
    counts = np.bincount(rolls, minlength=7)
    assert counts[0] == 0
    assert stats.chisquare(counts[1:]).pvalue > 1e-3


# --------------------------------------------------------------------------------------------------
# Grid


@given(d=st.integers(min_value=1, max_value=3), k=st.integers(min_value=1, max_value=5))
def test_grid_covers_k_to_the_d_points_then_wraps(d: int, k: int) -> None:
    space: Space = {f"x{i}": Float(-1.0, 1.0) for i in range(d)}
    grid = GridSampler(points_per_dim=k)
    points = [tuple(grid.sample_unit(space, 0, n).values()) for n in range(k**d)]
    assert grid.size(space) == k**d
    assert len(set(points)) == k**d
    assert tuple(grid.sample_unit(space, 0, k**d).values()) == points[0]
    for axis in range(d):
        assert len({p[axis] for p in points}) == k


def test_grid_includes_the_bounds_on_each_scale() -> None:
    space: Space = {"lr": Float(1e-4, 1.0, "log")}
    lr = sorted(d["lr"] for d in draws(GridSampler(points_per_dim=5), space, 5))
    assert lr == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0], rel=1e-12)


def test_grid_lists_every_option_and_distinct_integers() -> None:
    space: Space = {"act": Choice(["relu", "tanh"]), "units": Int(1, 3), "n": Int(1, 1000, "log")}
    grid = GridSampler(points_per_dim=4)
    seen = draws(grid, space, grid.size(space))
    assert grid.size(space) == 2 * 3 * 4
    assert {d["act"] for d in seen} == {"relu", "tanh"}
    assert {d["units"] for d in seen} == {1, 2, 3}
    assert {d["n"] for d in seen} == {1, 10, 100, 1000}
    assert len({tuple(d.values()) for d in seen}) == len(seen)


# --------------------------------------------------------------------------------------------------
# Sobol


@pytest.mark.parametrize("d", [2, 3, 5])
def test_sobol_is_better_spread_than_random(d: int) -> None:
    space: Space = {f"x{i}": Float(0.0, 1.0) for i in range(d)}
    for seed in range(3):
        sobol = np.array(
            [list(SobolSampler().sample_unit(space, seed, n).values()) for n in range(256)]
        )
        rand = np.array(
            [list(RandomSampler().sample_unit(space, seed, n).values()) for n in range(256)]
        )
        assert qmc.discrepancy(sobol) < qmc.discrepancy(rand)


def test_sobol_stratifies_every_axis() -> None:
    space: Space = {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0), "z": Float(0.0, 1.0)}
    points = np.array([list(SobolSampler().sample_unit(space, 11, n).values()) for n in range(64)])
    # Each of the 64 equal slices of each axis holds exactly one of the first 64 points.
    for axis in points.T:
        assert sorted(np.floor(axis * 64).astype(int).tolist()) == list(range(64))


def test_sobol_draws_each_point_once_not_once_per_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real_sobol = qmc.Sobol

    class CountingSobol(real_sobol):  # type: ignore[misc, valid-type]
        def random(self, n: int = 1, **kwargs: Any) -> Any:
            calls.append(n)
            return super().random(n, **kwargs)

    monkeypatch.setattr(qmc, "Sobol", CountingSobol)  # the module tunery.samplers uses
    samplers_module._SOBOL_CACHE.clear()
    space: Space = {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}
    for number in range(2000):
        SobolSampler().sample_unit(space, 5, number)
    assert sum(calls) < 2 * 2000
    assert len(calls) <= 12


# --------------------------------------------------------------------------------------------------
# make_sampler


def test_make_sampler_defaults_to_random_and_round_trips() -> None:
    assert isinstance(make_sampler(), RandomSampler)
    for sampler in [GridSampler(points_per_dim=7), SobolSampler(scramble=False)]:
        assert make_sampler(**sampler.to_dict()) == sampler


@pytest.mark.parametrize(
    ("name", "options", "field"),
    [
        ("tpe", {}, "sampler"),
        ("grid", {"points": 3}, "sampler.grid"),
        ("random", {"points_per_dim": 3}, "sampler.random"),
        ("grid", {"points_per_dim": 0}, "sampler.points_per_dim"),
        ("grid", {"points_per_dim": 2.5}, "sampler.points_per_dim"),
        ("sobol", {"scramble": "yes"}, "sampler.scramble"),
    ],
)
def test_make_sampler_refuses_bad_names_and_options(
    name: str, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_sampler(name, **options)
    assert caught.value.field == field


def test_every_distribution_kind_is_sampled_by_every_sampler() -> None:
    dists: list[Distribution] = [Float(0.1, 0.2), Int(-3, 3, "linear"), Choice([True, False])]
    space: Space = {f"p{i}": d for i, d in enumerate(dists)}
    for sampler, number in itertools.product(ALL, range(5)):
        params = sample_params(sampler, space, 0, number)
        assert [type(params[f"p{i}"]) for i in range(3)] == [float, int, bool]
