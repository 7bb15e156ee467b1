"""Learning curves: plain data from per-epoch numbers, then a PNG that matplotlib can read back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.report._curves import LearningCurve, learning_curve, render_learning_curve

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

costs = st.lists(
    st.one_of(st.floats(min_value=1e-6, max_value=1e3), st.just(math.nan), st.just(math.inf)),
    min_size=1,
    max_size=30,
)


@given(costs, st.data())
def test_learning_curve_keeps_the_numbers(cost: list[float], data: st.DataObject) -> None:
    accuracy = data.draw(
        st.lists(st.floats(min_value=0, max_value=1), min_size=len(cost), max_size=len(cost))
    )
    curve = learning_curve(cost, {"train": accuracy})
    np.testing.assert_array_equal(curve.epochs, np.arange(1, len(cost) + 1))
    np.testing.assert_array_equal(curve.cost, np.array(cost))
    np.testing.assert_array_equal(curve.accuracies["train"], np.array(accuracy))
    bad = [epoch for epoch, value in enumerate(cost, start=1) if not math.isfinite(value)]
    assert curve.diverged_at == (bad[0] if bad else None)


@given(costs)
def test_to_dict_is_strict_json_with_none_for_non_finite(cost: list[float]) -> None:
    data = json.loads(json.dumps(learning_curve(cost).to_dict(), allow_nan=False))
    assert data["cost"] == [value if math.isfinite(value) else None for value in cost]
    assert data["epochs"] == list(range(1, len(cost) + 1))


def test_none_reads_as_an_unmeasured_epoch() -> None:
    curve = learning_curve([1.0, 0.5], {"val": [None, 0.75]}, epochs=[5, 10])
    assert np.isnan(curve.accuracies["val"][0])
    assert curve.accuracies["val"][1] == 0.75
    assert curve.epochs.tolist() == [5, 10]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cost": [1.0, 0.5], "accuracies": {"train": [0.5, 1.5]}}, "accuracies['train']"),
        ({"cost": [1.0, 0.5], "accuracies": {"val": [0.5]}}, "accuracies['val']"),
        ({"cost": [1.0, 0.5], "epochs": [2, 1]}, "epochs"),
        ({"cost": [1.0, 0.5], "epochs": [1]}, "epochs"),
        ({"cost": ["low", 0.5]}, "cost"),
    ],
)
def test_bad_numbers_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        learning_curve(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def _render(curve: LearningCurve, path: Path) -> np.ndarray:
    written = render_learning_curve(curve, path)
    assert written == path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image: np.ndarray = matplotlib.image.imread(path)
    return image


def _has_colour(image: np.ndarray, colour: str) -> bool:
    target = np.array(matplotlib.colors.to_rgb(colour))
    return bool(np.any(np.all(np.abs(image[..., :3] - target) < 0.02, axis=-1)))


def test_render_draws_both_panels_into_a_png(tmp_path: Path) -> None:
    epochs = np.arange(1, 41)
    curve = learning_curve(
        list(2.0 / epochs),
        {"train": list(1 - 0.5 / epochs), "validation": list(0.9 - 0.5 / epochs)},
        title="digits 64-25-12-10",
    )
    image = _render(curve, tmp_path / "nested" / "curve.png")
    height, width = image.shape[:2]
    assert width > height > 100  # two panels side by side
    assert image[..., :3].std() > 0.01  # something drawn on the white canvas
    # the cost line, and the two accuracy lines in matplotlib's default cycle
    assert _has_colour(image, "tab:blue")
    assert _has_colour(image, "tab:orange")
    assert not _has_colour(image, "tab:red")


def test_a_diverged_curve_is_marked(tmp_path: Path) -> None:
    curve = learning_curve([1.0, 0.8, math.nan], {"train": [0.3, 0.4, None]})
    assert curve.diverged_at == 3
    image = _render(curve, tmp_path / "curve.png")
    assert _has_colour(image, "tab:red")
