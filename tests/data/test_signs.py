"""The real sign-language photos (../shared/data); skipped where they are not present."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.conftest import SIGNS, needs_signs
from tunery.data import _images as images_module
from tunery.data import load_dataset, load_images

pytestmark = [needs_signs, pytest.mark.shared_data]

CLASSIC = tuple(str(k) for k in range(6))


def test_classic_six_classes_standardized_then_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected_count = sum(len(list((SIGNS / name).glob("*.jpg"))) for name in CLASSIC)
    started = time.perf_counter()
    data = load_dataset(SIGNS, classes="0-5", cache_dir=tmp_path)
    first_seconds = time.perf_counter() - started

    assert data.class_names == CLASSIC
    assert data.num_features == 12_288
    assert data.image_shape == (64, 64, 3)
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == expected_count
    assert 1_200 <= expected_count <= 1_300
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1, atol=1e-3)
    assert first_seconds < 15  # about 0.5 s on a 2-core machine

    def refuse(path: Path, size: int) -> NDArray[np.uint8]:
        raise AssertionError(f"decoded {path} although it was cached")

    monkeypatch.setattr(images_module, "decode_image", refuse)
    again = load_dataset(SIGNS, classes="0-5", cache_dir=tmp_path)
    np.testing.assert_array_equal(again.X_train, data.X_train)


def test_a_photo_for_predict_matches_its_training_row(tmp_path: Path) -> None:
    data = load_dataset(SIGNS, classes="0-5", normalize="scale", cache_dir=tmp_path)
    photo = sorted((SIGNS / "3").glob("*.jpg"))[0]
    row = load_images([photo])[0]
    rows = np.concatenate([data.X_train, data.X_val, data.X_test])
    labels = np.concatenate([data.y_train, data.y_val, data.y_test])
    matches = np.flatnonzero(np.all(rows == row, axis=1))
    assert len(matches) >= 1
    assert data.class_names[labels[matches[0]]] == "3"
