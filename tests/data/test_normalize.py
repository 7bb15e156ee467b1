"""Normalizer: fitted on training rows, applied to new rows, saved and restored."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import ConfigError, DataError
from tunery.data import Normalizer


def unit_rows(seed: int, n: int = 40, d: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).random((n, d), dtype=np.float32)


def test_standardize_centres_and_scales_the_training_rows() -> None:
    X = unit_rows(0)
    normalizer = Normalizer.fit(X)
    out = normalizer.transform(X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-5)
    assert normalizer.mean is not None
    np.testing.assert_allclose(normalizer.mean, X.mean(axis=0, dtype=np.float64), rtol=1e-6)


def test_constant_feature_maps_to_zero_without_nan() -> None:
    X = unit_rows(1)
    X[:, 2] = 0.0
    X[:, 4] = 0.5
    normalizer = Normalizer.fit(X)
    assert normalizer.std is not None
    assert normalizer.std[2] == 1.0
    assert normalizer.std[4] == 1.0
    out = normalizer.transform(X)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[:, [2, 4]], 0.0)


def test_new_rows_get_the_training_transform() -> None:
    train, new = unit_rows(2), unit_rows(3, n=5)
    normalizer = Normalizer.fit(train)
    expected = (new - train.mean(axis=0)) / train.std(axis=0)
    np.testing.assert_allclose(normalizer.transform(new), expected, rtol=1e-4, atol=1e-5)


def test_scale_is_the_identity_on_unit_rows() -> None:
    X = unit_rows(4)
    normalizer = Normalizer.fit(X, "scale")
    assert normalizer.mean is None
    out = normalizer.transform(X)
    np.testing.assert_array_equal(out, X)
    assert out is not X


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    d=st.integers(min_value=1, max_value=20),
    kind=st.sampled_from(["standardize", "scale"]),
)
def test_json_round_trip_gives_the_same_transform(seed: int, d: int, kind: str) -> None:
    X = unit_rows(seed, d=d)
    normalizer = Normalizer.fit(X, kind)  # type: ignore[arg-type]
    restored = Normalizer.from_dict(json.loads(json.dumps(normalizer.to_dict())))
    assert restored.kind == kind
    assert restored.num_features == d
    np.testing.assert_array_equal(restored.transform(X), normalizer.transform(X))


def test_rows_of_the_wrong_width_are_refused() -> None:
    normalizer = Normalizer.fit(unit_rows(5, d=6))
    with pytest.raises(DataError, match=r"\(N, 6\)"):
        normalizer.transform(unit_rows(5, d=7))
    with pytest.raises(DataError, match=r"\(N, 6\)"):
        normalizer.transform(np.zeros(6, dtype=np.float32))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "minmax", "num_features": 2}, "normalizer.kind"),
        ({"num_features": 2}, "normalizer"),
        ("standardize", "normalizer"),
        ({"kind": "standardize", "num_features": 2}, "normalizer.mean"),
        ({"kind": "standardize", "num_features": 2, "mean": [0, 0], "std": [1]}, "normalizer.std"),
        (
            {"kind": "standardize", "num_features": 1, "mean": [np.nan], "std": [1]},
            "normalizer.mean",
        ),
        ({"kind": "scale", "num_features": 0}, "normalizer.num_features"),
        ({"kind": "scale", "num_features": "3"}, "normalizer.num_features"),
    ],
)
def test_bad_saved_normalizers(data: object, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Normalizer.from_dict(data)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_unknown_kind_at_fit() -> None:
    with pytest.raises(ConfigError, match="normalize: expected 'standardize' or 'scale'"):
        Normalizer.fit(unit_rows(6), "zscore")  # type: ignore[arg-type]
