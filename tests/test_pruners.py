"""Median and ASHA pruners on synthetic curves, their options, and pruning inside a study."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tunery import ConfigError, Pruned
from tunery.pruners import ASHAPruner, MedianPruner, make_pruner
from tunery.records import FrozenTrial, TrialState
from tunery.space import Float
from tunery.study import Study, Trial

METRIC = "val_accuracy"

values = st.floats(-1e6, 1e6, allow_nan=False)
directions = st.sampled_from(["maximize", "minimize"])


def record(
    number: int,
    curve: dict[int, float],
    state: TrialState = TrialState.COMPLETE,
    metric: str = METRIC,
) -> FrozenTrial:
    """A trial whose ``metric`` took ``curve[epoch]`` at each epoch."""
    return FrozenTrial(
        number=number,
        trial_id=number,
        sample_id=number,
        round=1,
        params={},
        state=state,
        curve={epoch: {metric: value} for epoch, value in curve.items()},
    )


def at_epoch(epoch: int, peers: list[float], value: float) -> tuple[list[FrozenTrial], FrozenTrial]:
    """(study_trials, trial): COMPLETE peers with one value at ``epoch``, and the judged trial."""
    trials = [record(i, {epoch: v}) for i, v in enumerate(peers)]
    judged = record(len(peers), {epoch: value}, TrialState.RUNNING)
    return [*trials, judged], judged


def flipped(values: list[float]) -> list[float]:
    return [-v for v in values]


# -- median ----------------------------------------------------------------------------------------


def test_median_prunes_below_the_median_of_complete_trials() -> None:
    pruner = MedianPruner(min_trials=3)
    peers = [0.2, 0.4, 0.6]
    assert pruner.should_prune(*at_epoch(2, peers, 0.3), 2)
    assert not pruner.should_prune(*at_epoch(2, peers, 0.5), 2)
    assert not pruner.should_prune(*at_epoch(2, peers, 0.4), 2)  # equal to the median: goes on


def test_median_respects_the_direction() -> None:
    pruner = MedianPruner(min_trials=3, direction="minimize")
    peers = [0.2, 0.4, 0.6]
    assert not pruner.should_prune(*at_epoch(2, peers, 0.3), 2)
    assert pruner.should_prune(*at_epoch(2, peers, 0.5), 2)


@given(
    peers=st.lists(values, min_size=1, max_size=12),
    value=values,
    warmup=st.integers(0, 5),
    epoch=st.integers(0, 10),
)
def test_median_never_prunes_during_warmup(
    peers: list[float], value: float, warmup: int, epoch: int
) -> None:
    assume(epoch <= warmup)
    pruner = MedianPruner(warmup_epochs=warmup, min_trials=1)
    assert not pruner.should_prune(*at_epoch(epoch, peers, value), epoch)


@given(peers=st.lists(values, min_size=1, max_size=12), direction=directions)
def test_median_never_prunes_the_best_and_always_prunes_the_worst(
    peers: list[float], direction: str
) -> None:
    best = max(peers) if direction == "maximize" else min(peers)
    pruner = MedianPruner(min_trials=1, direction=direction)
    assert not pruner.should_prune(*at_epoch(3, peers, best), 3)
    worst = min(peers) - 1 if direction == "maximize" else max(peers) + 1
    assert pruner.should_prune(*at_epoch(3, peers, worst), 3)


@given(peers=st.lists(values, min_size=1, max_size=12), value=values, epoch=st.integers(1, 9))
def test_median_decisions_mirror_when_values_and_direction_flip(
    peers: list[float], value: float, epoch: int
) -> None:
    up = MedianPruner(min_trials=1, direction="maximize")
    down = MedianPruner(min_trials=1, direction="minimize")
    assert up.should_prune(*at_epoch(epoch, peers, value), epoch) == down.should_prune(
        *at_epoch(epoch, flipped(peers), -value), epoch
    )


@given(n_complete=st.integers(0, 6), min_trials=st.integers(1, 6))
def test_median_waits_for_min_trials_complete_ones(n_complete: int, min_trials: int) -> None:
    pruner = MedianPruner(min_trials=min_trials)
    trials, judged = at_epoch(2, [1.0] * n_complete, 0.0)
    # Others at the same epoch that did not complete do not count toward min_trials.
    others = [
        record(100 + i, {2: 1.0}, state)
        for i, state in enumerate([TrialState.RUNNING, TrialState.PRUNED, TrialState.FAILED])
    ]
    assert pruner.should_prune([*trials, *others], judged, 2) == (n_complete >= min_trials)


def test_median_compares_at_the_same_epoch_only() -> None:
    pruner = MedianPruner(min_trials=1)
    other = record(0, {1: 0.9, 2: 0.1})
    judged = record(1, {1: 0.5, 2: 0.5}, TrialState.RUNNING)
    assert pruner.should_prune([other, judged], judged, 1)
    assert not pruner.should_prune([other, judged], judged, 2)
    assert not pruner.should_prune([other, judged], judged, 3)  # nobody has epoch 3


def test_median_prunes_nan_and_ignores_trials_without_the_metric() -> None:
    pruner = MedianPruner(min_trials=1)
    assert pruner.should_prune(*at_epoch(2, [0.5], math.nan), 2)
    judged = record(1, {2: 0.0}, TrialState.RUNNING, metric="loss")  # no val_accuracy reported
    assert not pruner.should_prune([record(0, {2: 0.5}), judged], judged, 2)


# -- ASHA ------------------------------------------------------------------------------------------


def test_asha_rungs_grow_geometrically_below_max_epochs() -> None:
    assert ASHAPruner(min_epochs=1, reduction_factor=3, max_epochs=30).rungs(100) == [1, 3, 9, 27]
    assert ASHAPruner(min_epochs=1, reduction_factor=3, max_epochs=27).rungs(100) == [1, 3, 9]
    assert ASHAPruner(min_epochs=2, reduction_factor=2).rungs(20) == [2, 4, 8, 16]


@given(
    min_epochs=st.integers(1, 5),
    eta=st.integers(2, 5),
    epoch=st.integers(0, 200),
    peers=st.lists(values, max_size=8),
)
def test_asha_judges_rung_epochs_only(
    min_epochs: int, eta: int, epoch: int, peers: list[float]
) -> None:
    assume(all(epoch != min_epochs * eta**k for k in range(10)))
    pruner = ASHAPruner(min_epochs=min_epochs, reduction_factor=eta)
    worst = min(peers, default=0.0) - 1
    assert not pruner.should_prune(*at_epoch(epoch, peers, worst), epoch)


@given(
    curve=st.lists(values, min_size=1, max_size=40, unique=True),
    eta=st.integers(2, 4),
    direction=directions,
)
def test_asha_keeps_the_top_fraction_of_a_full_rung(
    curve: list[float], eta: int, direction: str
) -> None:
    """With every trial at the rung, exactly the best ``max(1, n // eta)`` go on."""
    pruner = ASHAPruner(min_epochs=1, reduction_factor=eta, direction=direction)
    trials = [record(i, {1: v}, TrialState.RUNNING) for i, v in enumerate(curve)]
    goes_on = {t.number for t in trials if not pruner.should_prune(trials, t, 1)}
    ranked = sorted(trials, key=lambda t: t.curve[1][METRIC], reverse=direction == "maximize")
    keep = max(1, len(curve) // eta)
    assert goes_on == {t.number for t in ranked[:keep]}


def test_asha_lets_the_first_trial_at_a_rung_through_and_ignores_failed_ones() -> None:
    pruner = ASHAPruner(min_epochs=1, reduction_factor=2)
    assert not pruner.should_prune(*at_epoch(1, [], 0.1), 1)
    failed = [record(i, {1: 0.9}, state) for i, state in enumerate([TrialState.FAILED] * 3)]
    judged = record(9, {1: 0.1}, TrialState.RUNNING)
    assert not pruner.should_prune([*failed, judged], judged, 1)
    assert pruner.should_prune([record(0, {1: 0.9}, TrialState.PRUNED), judged], judged, 1)


def test_asha_respects_the_direction() -> None:
    up = ASHAPruner(reduction_factor=2)
    down = ASHAPruner(reduction_factor=2, direction="minimize")
    trials, judged = at_epoch(4, [0.5], 0.2)  # rungs 1, 2, 4, ...
    assert up.should_prune(trials, judged, 4)
    assert not down.should_prune(trials, judged, 4)


# -- options ---------------------------------------------------------------------------------------


def test_make_pruner_by_name() -> None:
    assert make_pruner(None) is None
    assert make_pruner(None, min_trials=2) is None  # pruning off, whatever the options
    assert make_pruner("median", warmup_epochs=2) == MedianPruner(warmup_epochs=2)
    asha = make_pruner("asha", min_epochs=2, reduction_factor=4, max_epochs=40)
    assert asha == ASHAPruner(min_epochs=2, reduction_factor=4, max_epochs=40)


@pytest.mark.parametrize(
    ("field", "name", "options"),
    [
        ("pruner", "hyperband", {}),
        ("pruner", 3, {}),
        ("pruner option 'patience'", "median", {"patience": 3}),
        ("warmup_epochs", "median", {"warmup_epochs": -1}),
        ("min_trials", "median", {"min_trials": 0}),
        ("min_trials", "median", {"min_trials": True}),
        ("min_epochs", "asha", {"min_epochs": 0}),
        ("reduction_factor", "asha", {"reduction_factor": 1}),
        ("reduction_factor", "asha", {"reduction_factor": 2.5}),
        ("max_epochs", "asha", {"min_epochs": 4, "max_epochs": 3}),
        ("direction", "asha", {"direction": "up"}),
        ("pruner metric", "median", {"metric": ""}),
    ],
)
def test_bad_pruner_options_name_the_field(field: str, name: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        make_pruner(name, **options)
    assert info.value.field == field


def test_bind_fills_only_what_was_left_open() -> None:
    bound = MedianPruner(min_trials=2).bind(metric="loss", direction="minimize")
    assert (bound.metric, bound.direction, bound.min_trials) == ("loss", "minimize", 2)
    fixed = ASHAPruner(metric="acc").bind(metric="loss", direction="minimize")
    assert (fixed.metric, fixed.direction) == ("acc", "minimize")


# -- in a study ------------------------------------------------------------------------------------

EPOCHS = 6


def losses(trial: Trial) -> float:
    """Even-numbered trials learn (loss falls to ~0.1); odd ones stay near 1. Minimize loss."""
    floor = 0.1 if trial.number % 2 == 0 else 1.0
    loss = math.inf
    for epoch in range(1, EPOCHS + 1):
        loss = floor + 1.0 / epoch
        trial.report(epoch, loss=loss, val_accuracy=1 - loss / 3)
        if trial.should_prune():
            raise Pruned()
    return loss


@pytest.mark.parametrize(
    "pruner",
    [MedianPruner(min_trials=2, warmup_epochs=1), ASHAPruner(min_epochs=1, reduction_factor=2)],
)
def test_a_study_prunes_the_bad_trials_early(pruner: MedianPruner | ASHAPruner) -> None:
    bound = pruner.bind(metric="loss", direction="minimize")
    study = Study("s", ":memory:", "minimize", metric="loss", pruner=bound)
    study.caviar(losses, {"x": Float(0.0, 1.0)}, n_trials=10, workers=1)
    pruned = study.get_trials([TrialState.PRUNED])
    assert pruned, "no trial was pruned"
    for trial in pruned:
        assert trial.number % 2 == 1  # only the bad ones
        assert max(trial.curve) < EPOCHS
        assert trial.value == trial.last("loss")
    for trial in study.get_trials([TrialState.COMPLETE]):
        assert max(trial.curve) == EPOCHS
    assert {t.number for t in study.trials if t.number % 2 == 0} <= {
        t.number for t in study.get_trials([TrialState.COMPLETE])
    }
