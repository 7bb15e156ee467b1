"""Learning-rate schedules: the formulas, the defaults, and validation."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.nn.schedules import Schedule, make_schedule

lr0s = st.floats(1e-6, 10.0)
epochs = st.integers(0, 500)


@given(lr0=lr0s, epoch=epochs, rate=st.floats(0.0, 10.0))
def test_inverse_time(lr0: float, epoch: int, rate: float) -> None:
    lr = make_schedule("inverse_time", rate=rate)(lr0, epoch)
    assert lr == pytest.approx(lr0 / (1 + rate * epoch), rel=1e-12)


@given(lr0=lr0s, epoch=epochs, rate=st.floats(0.01, 1.0))
def test_exponential(lr0: float, epoch: int, rate: float) -> None:
    lr = make_schedule("exponential", rate=rate)(lr0, epoch)
    assert lr == pytest.approx(rate**epoch * lr0, rel=1e-12, abs=1e-300)


@given(lr0=lr0s, epoch=epochs, k=st.floats(0.01, 10.0))
def test_inverse_sqrt(lr0: float, epoch: int, k: float) -> None:
    lr = make_schedule("inverse_sqrt", k=k)(lr0, epoch)
    assert lr == pytest.approx(lr0 * k / math.sqrt(epoch + 1), rel=1e-12)


@given(lr0=lr0s, epoch=epochs, every=st.integers(1, 50), factor=st.floats(0.01, 1.0))
def test_step(lr0: float, epoch: int, every: int, factor: float) -> None:
    lr = make_schedule("step", every=every, factor=factor)(lr0, epoch)
    assert lr == pytest.approx(lr0 * factor ** (epoch // every), rel=1e-12, abs=1e-300)


@given(lr0=lr0s, epoch=epochs)
def test_none_keeps_lr0(lr0: float, epoch: int) -> None:
    assert make_schedule(None)(lr0, epoch) == lr0
    assert make_schedule("none")(lr0, epoch) == lr0


def test_the_course_table_for_inverse_time() -> None:
    # α0 = 0.2, decay rate 1: 0.2, 0.1, 0.067, 0.05 — the course's epochs 1, 2, 3... are our
    # finished-epoch counts 1, 2, 3 (epoch 0, the first one, runs at α0).
    schedule = make_schedule("inverse_time", rate=1.0)
    assert [round(schedule(0.2, e), 3) for e in range(4)] == [0.2, 0.1, 0.067, 0.05]


def test_defaults() -> None:
    assert make_schedule("exponential")(1.0, 2) == pytest.approx(0.95**2)
    assert make_schedule("inverse_time")(1.0, 3) == pytest.approx(0.25)
    assert make_schedule("inverse_sqrt")(1.0, 3) == pytest.approx(0.5)
    step = make_schedule("step")
    assert [step(1.0, e) for e in (0, 9, 10, 19, 20)] == [1.0, 1.0, 0.5, 0.5, 0.25]


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("inverse_time", {"rate": 0.5}),
        ("exponential", {"rate": 0.9}),
        ("inverse_sqrt", {"k": 1.0}),
        ("step", {"every": 3, "factor": 0.1}),
    ],
)
def test_decays_never_increase_and_start_at_lr0(name: str, options: dict[str, float]) -> None:
    schedule = make_schedule(name, **options)
    rates = [schedule(0.1, e) for e in range(30)]
    assert rates[0] == pytest.approx(0.1)
    assert all(later <= earlier for earlier, later in pairwise(rates))
    assert rates[-1] < rates[0]


def test_names_are_forgiving_and_to_dict_round_trips() -> None:
    schedule = make_schedule("Inverse-Time", rate=2)
    assert schedule == Schedule("inverse_time", {"rate": 2.0})
    assert schedule.to_dict() == {"name": "inverse_time", "rate": 2.0}
    settings = schedule.to_dict()
    assert make_schedule(settings.pop("name"), **settings) == schedule


@pytest.mark.parametrize(
    ("name", "options", "field"),
    [
        ("cosine", {}, "schedule"),
        (3, {}, "schedule"),
        ("none", {"rate": 0.5}, "rate"),
        ("inverse_time", {"k": 1.0}, "k"),
        ("inverse_time", {"rate": -0.1}, "rate"),
        ("inverse_time", {"rate": math.inf}, "rate"),
        ("exponential", {"rate": 0.0}, "rate"),
        ("exponential", {"rate": 1.5}, "rate"),
        ("exponential", {"rate": math.nan}, "rate"),
        ("exponential", {"rate": True}, "rate"),
        ("inverse_sqrt", {"k": 0.0}, "k"),
        ("step", {"every": 0}, "every"),
        ("step", {"every": 2.5}, "every"),
        ("step", {"factor": 0.0}, "factor"),
        ("step", {"factor": "half"}, "factor"),
    ],
)
def test_bad_options_name_the_field(name: Any, options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as error:
        make_schedule(name, **options)
    assert error.value.field == field
