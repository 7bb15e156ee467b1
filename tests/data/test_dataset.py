"""load_dataset on the bundled digits, Dataset's API, argument validation and the public surface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

import tunery.data
from tunery import ConfigError, DataError
from tunery.data import Dataset, Normalizer, load_dataset


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset()


def test_public_surface() -> None:
    assert set(tunery.data.__all__) == {
        "AUGMENT_AMOUNTS",
        "AugmentSettings",
        "Augmenter",
        "CACHE_ENV",
        "DEFAULT_TEST_FRACTION",
        "DEFAULT_VAL_FRACTION",
        "DIGITS",
        "NORMALIZE_KINDS",
        "Dataset",
        "NormalizeKind",
        "Normalizer",
        "resizes_images",
        "cache_root",
        "load_dataset",
        "load_images",
        "parse_classes",
        "sort_class_names",
    }
    for name in tunery.data.__all__:
        assert getattr(tunery.data, name) is not None


def test_digits_is_the_default_source(digits: Dataset) -> None:
    assert digits.source == "digits"
    assert digits.class_names == tuple(str(k) for k in range(10))
    assert digits.num_classes == 10
    assert digits.num_features == 64
    assert digits.image_shape == (8, 8)
    sizes = [len(digits.y_train), len(digits.y_val), len(digits.y_test)]
    assert sum(sizes) == len(load_digits().target)
    assert sizes[1] == pytest.approx(0.15 * sum(sizes), abs=2)
    assert sizes[2] == pytest.approx(0.15 * sum(sizes), abs=2)
    for X, y in ((digits.X_train, digits.y_train), (digits.X_test, digits.y_test)):
        assert X.dtype == np.float32
        assert y.dtype == np.int64


def test_default_is_standardized_with_training_statistics(digits: Dataset) -> None:
    assert digits.normalizer.kind == "standardize"
    varying = digits.X_train.std(axis=0) > 0
    np.testing.assert_allclose(digits.X_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(digits.X_train.std(axis=0)[varying], 1, atol=1e-4)
    # The validation set is transformed with the training statistics, so it is only roughly centred.
    assert abs(float(digits.X_val.mean())) < 0.2


def test_scale_keeps_the_pixels_in_unit_range(digits: Dataset) -> None:
    scaled = load_dataset(normalize="scale")
    assert scaled.normalizer.kind == "scale"
    assert scaled.X_train.min() == 0.0
    assert scaled.X_train.max() == 1.0
    # Pixels were 0-16, so 16 * x is a whole number.
    np.testing.assert_array_equal(scaled.X_train * 16, np.rint(scaled.X_train * 16))
    # Same seed, same split: the standardized rows are the scaled rows through the normalizer.
    np.testing.assert_allclose(
        digits.normalizer.transform(scaled.X_test), digits.X_test, rtol=1e-5, atol=1e-6
    )


def test_class_subset_of_digits() -> None:
    data = load_dataset(classes="0-5")
    assert data.class_names == ("0", "1", "2", "3", "4", "5")
    assert set(np.unique(data.y_train).tolist()) == set(range(6))
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == int(
        np.isin(load_digits().target, range(6)).sum()
    )


def test_seed_decides_the_split(digits: Dataset) -> None:
    again = load_dataset(seed=0)
    other = load_dataset(seed=1)
    np.testing.assert_array_equal(again.X_test, digits.X_test)
    assert not np.array_equal(other.y_test, digits.y_test)


def test_fractions_are_configurable() -> None:
    data = load_dataset(val_fraction=0.1, test_fraction=0.3)
    total = len(data.y_train) + len(data.y_val) + len(data.y_test)
    assert len(data.y_test) == pytest.approx(0.3 * total, abs=2)
    assert len(data.y_val) == pytest.approx(0.1 * total, abs=2)


def test_astype(digits: Dataset) -> None:
    wide = digits.astype(np.float64)
    assert wide.X_train.dtype == wide.X_val.dtype == wide.X_test.dtype == np.float64
    assert wide.y_train.dtype == np.int64
    np.testing.assert_array_equal(wide.X_train, digits.X_train)
    assert wide.normalizer is digits.normalizer
    assert digits.X_train.dtype == np.float32
    with pytest.raises(ConfigError, match="dtype"):
        digits.astype(np.int32)


def test_repr_is_a_summary(digits: Dataset) -> None:
    text = repr(digits)
    assert "features=64" in text
    assert f"train={len(digits.y_train)}" in text
    assert len(text) < 300


def test_dataset_checks_shapes(digits: Dataset) -> None:
    with pytest.raises(ConfigError, match="X_val, y_val"):
        Dataset(
            digits.X_train,
            digits.y_train,
            digits.X_val[:, :10],
            digits.y_val,
            digits.X_test,
            digits.y_test,
            digits.class_names,
            "digits",
            Normalizer("scale", 64),
        )


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"normalize": "minmax"}, "normalize"),
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction + test_fraction"),
        ({"seed": -1}, "seed"),
        ({"classes": "5-0"}, "classes"),
        ({"image_size": 0}, "image_size"),
    ],
)
def test_bad_arguments_are_config_errors(options: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_dataset(**options)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_unknown_digit_class() -> None:
    with pytest.raises(DataError, match=r"digits: unknown classes \['12'\]"):
        load_dataset(classes="0,12")


def test_a_path_named_digits_is_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"data not found: digits .*'digits'"):
        load_dataset(Path("digits"))
