"""Coarse to fine: a zoomed space holds the best trials, stays inside the original, keeps scales."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.strategies import spaces, trials
from tunery import ConfigError
from tunery.samplers import RandomSampler, sample_params
from tunery.space import Box, Choice, Float, Int, Space, zoom

Trials = list[tuple[dict[str, Any], float | None]]


def best_of(history: Trials, k: int, maximize: bool = True) -> Trials:
    """The k best finished trials, written independently of zoom's own sort."""
    done = [t for t in history if t[1] is not None and not math.isnan(t[1])]
    order = np.argsort([t[1] for t in done], kind="stable")
    return [done[i] for i in (order[::-1] if maximize else order)[:k]]


def sampled_history(space: Space, n: int, score: Any) -> Trials:
    params = [sample_params(RandomSampler(), space, 0, number) for number in range(n)]
    return [(p, score(p)) for p in params]


# --------------------------------------------------------------------------------------------------
# Properties over any space and history


@settings(max_examples=60)
@given(data=st.data(), space=spaces(), maximize=st.booleans(), margin=st.floats(0.0, 0.5))
def test_zoomed_space_holds_the_best_trials_inside_the_original(
    data: st.DataObject, space: Space, maximize: bool, margin: float
) -> None:
    history = data.draw(trials(space))
    finished = [t for t in history if t[1] is not None and not math.isnan(t[1])]
    assume(len(finished) >= 3)
    narrowed, box = zoom(space, history, maximize=maximize, margin=margin)

    k = min(len(finished), max(3, math.ceil(0.1 * len(finished))))
    kth = sorted((t[1] for t in finished), reverse=maximize)[k - 1]
    # Ties with the k-th value may go either way; trials strictly better must all be inside.
    top = [t for t in finished if (t[1] > kth if maximize else t[1] < kth)]
    inside = [p for p, _ in finished if all(narrowed[n].contains(v) for n, v in p.items())]
    assert len(inside) >= k
    assert list(narrowed) == list(space)
    for name, dist in space.items():
        new = narrowed[name]
        assert type(new) is type(dist)
        values = [params[name] for params, _ in top]
        assert all(new.contains(v) for v in values), (name, new, values)
        if isinstance(dist, Choice):
            assert all(dist.contains(o) for o in new.options)
            assert box.choices[name] == new.options
            continue
        assert isinstance(new, Float | Int)
        assert new.scale == dist.scale
        assert dist.low <= new.low <= new.high <= dist.high
        lo, hi = box.bounds[name]
        assert 0.0 <= lo <= hi <= 1.0
        assert all(lo <= dist.to_unit(v) <= hi for v in values)


@settings(max_examples=40)
@given(data=st.data(), space=spaces())
def test_zooming_a_zoomed_space_reports_the_box_in_the_original_coordinates(
    data: st.DataObject, space: Space
) -> None:
    round1 = data.draw(trials(space, min_size=10))
    assume(sum(v is not None and not math.isnan(v) for _, v in round1) >= 3)
    space2, _ = zoom(space, round1)
    round2 = data.draw(trials(space2, min_size=10))
    assume(sum(v is not None and not math.isnan(v) for _, v in round2) >= 3)

    space3, box = zoom(space2, round2, base=space)
    for name, dist in space.items():
        if isinstance(dist, Float):
            lo, hi = box.bounds[name]
            # The box, read on round 1's axes, is where round 3's bounds lie.
            assert dist.from_unit(lo) == pytest.approx(space3[name].low, rel=1e-9, abs=1e-12)
            assert dist.from_unit(hi) == pytest.approx(space3[name].high, rel=1e-9, abs=1e-12)
        if isinstance(dist, Float | Int):
            assert dist.low <= space3[name].low <= space3[name].high <= dist.high


@given(data=st.data(), space=spaces())
def test_base_equal_to_the_space_changes_nothing(data: st.DataObject, space: Space) -> None:
    history = data.draw(trials(space))
    assume(sum(v is not None and not math.isnan(v) for _, v in history) >= 3)
    assert zoom(space, history, base=dict(space)) == zoom(space, history)


# --------------------------------------------------------------------------------------------------
# Worked examples


def test_linear_box_around_the_peak() -> None:
    space: Space = {"x": Float(0.0, 1.0)}
    history: Trials = [({"x": i / 99}, -abs(i / 99 - 0.5)) for i in range(100)]
    narrowed, box = zoom(space, history, top=0.1, margin=0.1)
    # The ten closest to 0.5 span 45/99..54/99; the margin adds a tenth of that on each side.
    width = 9 / 99
    assert box.bounds["x"] == pytest.approx((45 / 99 - 0.1 * width, 54 / 99 + 0.1 * width))
    assert narrowed["x"].low == pytest.approx(box.bounds["x"][0])


def test_minimize_takes_the_lowest_values() -> None:
    space: Space = {"x": Float(0.0, 10.0)}
    history: Trials = [({"x": float(i)}, float(i)) for i in range(11)]
    low_end, _ = zoom(space, history, maximize=False, top=3, margin=0.0)
    high_end, _ = zoom(space, history, maximize=True, top=3, margin=0.0)
    assert (low_end["x"].low, low_end["x"].high) == pytest.approx((0.0, 2.0))
    assert (high_end["x"].low, high_end["x"].high) == pytest.approx((8.0, 10.0))


def test_log_scale_zooms_in_decades() -> None:
    space: Space = {"lr": Float(1e-6, 1.0, scale="log")}
    history = sampled_history(space, 400, lambda p: -abs(math.log10(p["lr"]) + 2.5))
    narrowed, _ = zoom(space, history, top=0.05, margin=0.1)
    lr = narrowed["lr"]
    assert isinstance(lr, Float)
    assert lr.scale == "log"
    best = [p["lr"] for p, _ in best_of(history, 20)]
    assert lr.low <= min(best)
    assert max(best) <= lr.high
    # Margins are taken in decades, not in linear units: the box is centred on 10^-2.5.
    centre = (math.log10(lr.low) + math.log10(lr.high)) / 2
    assert centre == pytest.approx(-2.5, abs=0.05)


def test_one_minus_log_stays_on_its_scale() -> None:
    space: Space = {"beta": Float(0.9, 0.9999, scale="one_minus_log")}
    history = sampled_history(space, 300, lambda p: -abs(math.log10(1 - p["beta"]) + 3))
    narrowed, _ = zoom(space, history, top=0.05)
    beta = narrowed["beta"]
    assert isinstance(beta, Float)
    assert beta.scale == "one_minus_log"
    assert beta.low < 0.999 < beta.high
    centre = (math.log10(1 - beta.low) + math.log10(1 - beta.high)) / 2
    assert centre == pytest.approx(-3, abs=0.05)


def test_degenerate_box_widens_by_margin_of_the_full_range() -> None:
    space: Space = {"x": Float(0.0, 100.0), "act": Choice(["relu", "tanh", "sigmoid"])}
    history: Trials = [({"x": 40.0, "act": "tanh"}, 1.0)] * 3 + [({"x": 90.0, "act": "relu"}, 0.0)]
    narrowed, box = zoom(space, history, top=3, margin=0.1)
    assert box.bounds["x"] == pytest.approx((0.3, 0.5))
    assert (narrowed["x"].low, narrowed["x"].high) == pytest.approx((30.0, 50.0))
    assert narrowed["act"] == Choice(["tanh"])


def test_int_rounds_outward_and_keeps_every_best_integer() -> None:
    space: Space = {"units": Int(1, 100)}
    history: Trials = [({"units": k}, -abs(k - 50)) for k in range(1, 101)]
    narrowed, box = zoom(space, history, top=5, margin=0.1)
    units = narrowed["units"]
    assert isinstance(units, Int)
    assert units.low <= 48
    assert units.high >= 52
    lo, hi = box.bounds["units"]
    assert space["units"].from_unit(lo) == units.low
    assert space["units"].from_unit(hi) == units.high


def test_without_margin_rounding_does_not_cut_off_a_best_trial() -> None:
    # 10^log10(x) is often x plus an ulp: the narrowed bounds must still hold x itself.
    space: Space = {"lr": Float(1e-4, 1.0, scale="log")}
    lrs = np.random.default_rng(0).uniform(1e-4, 1.0, 50).tolist()
    for lr, other in zip(lrs[::2], lrs[1::2], strict=True):
        history: Trials = [({"lr": lr}, 1.0), ({"lr": other}, 1.0), ({"lr": 1.0}, 0.0)]
        narrowed, _ = zoom(space, history, top=2, min_top=2, margin=0.0)
        assert narrowed["lr"].contains(lr)
        assert narrowed["lr"].contains(other)


def test_box_is_clipped_to_the_original_bounds() -> None:
    space: Space = {"x": Float(0.0, 1.0)}
    history: Trials = [({"x": x}, x) for x in np.linspace(0, 1, 30).tolist()]
    narrowed, box = zoom(space, history, top=5, margin=0.5)
    assert box.bounds["x"][1] == 1.0
    assert narrowed["x"].high == 1.0


def test_choice_keeps_the_options_of_the_best_trials_in_their_order() -> None:
    space: Space = {"bs": Choice([32, 64, 128, 256])}
    history: Trials = [({"bs": 256}, 0.9), ({"bs": 32}, 0.8), ({"bs": 64}, 0.1), ({"bs": 256}, 0.7)]
    narrowed, box = zoom(space, history, top=3)
    assert narrowed["bs"] == Choice([32, 256])
    assert box.choices == {"bs": (32, 256)}
    assert box.bounds == {}


# --------------------------------------------------------------------------------------------------
# How many trials count as the best


@pytest.mark.parametrize(
    ("top", "min_top", "n", "k"),
    [(0.1, 3, 100, 10), (0.1, 3, 20, 3), (0.25, 1, 10, 3), (7, 3, 100, 7), (50, 3, 10, 10)],
)
def test_top_count(top: float | int, min_top: int, n: int, k: int) -> None:
    # Value i at x = i: the best k trials are exactly x = n-k .. n-1, so the box shows k.
    space: Space = {"x": Float(0.0, float(n))}
    history: Trials = [({"x": float(i)}, float(i)) for i in range(n)]
    narrowed, _ = zoom(space, history, top=top, min_top=min_top, margin=0.0)
    assert narrowed["x"].low == pytest.approx(n - k)


def test_unfinished_trials_are_ignored() -> None:
    space: Space = {"x": Float(0.0, 1.0)}
    history: Trials = [({"x": 0.9}, None), ({"x": 0.95}, math.nan), ({"x": 0.99}, math.inf)]
    history += [({"x": x}, x) for x in (0.1, 0.2, 0.3)]
    narrowed, _ = zoom(space, history, top=3, margin=0.0)
    assert narrowed["x"].high == pytest.approx(0.3)


def test_too_few_finished_trials_is_a_config_error() -> None:
    space: Space = {"x": Float(0.0, 1.0)}
    history: Trials = [({"x": 0.1}, 1.0), ({"x": 0.2}, 2.0), ({"x": 0.3}, None)]
    with pytest.raises(ConfigError, match=r"^zoom\.trials: expected at least min_top=3"):
        zoom(space, history)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"top": 0}, "zoom.top"),
        ({"top": 1.5}, "zoom.top"),
        ({"top": True}, "zoom.top"),
        ({"min_top": 0}, "zoom.min_top"),
        ({"margin": -0.1}, "zoom.margin"),
        ({"margin": math.nan}, "zoom.margin"),
        ({"base": {"y": Float(0.0, 1.0)}}, "zoom.base"),
        ({"base": {"x": Float(0.01, 1.0, "log")}}, "zoom.base.x"),
        ({"base": {"x": Int(0, 1)}}, "zoom.base.x"),
    ],
)
def test_bad_zoom_arguments(options: dict[str, Any], field: str) -> None:
    space: Space = {"x": Float(0.0, 1.0)}
    history: Trials = [({"x": x}, x) for x in (0.1, 0.2, 0.3, 0.4)]
    with pytest.raises(ConfigError) as caught:
        zoom(space, history, **options)
    assert caught.value.field == field


def test_a_trial_without_a_parameter_is_a_config_error() -> None:
    space: Space = {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}
    history: Trials = [({"x": 0.5}, 1.0)] * 3
    with pytest.raises(ConfigError, match="'y'"):
        zoom(space, history)


# --------------------------------------------------------------------------------------------------
# Box


def test_box_round_trips_through_json_and_full_covers_the_cube() -> None:
    space: Space = {"x": Float(0.0, 1.0), "n": Int(1, 9), "act": Choice(["relu", "tanh"])}
    full = Box.full(space)
    assert full.bounds == {"x": (0.0, 1.0), "n": (0.0, 1.0)}
    assert full.choices == {"act": ("relu", "tanh")}
    history = sampled_history(space, 50, lambda p: p["x"])
    _, box = zoom(space, history)
    assert Box.from_dict(json.loads(json.dumps(box.to_dict()))) == box
