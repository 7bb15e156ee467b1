"""softmax, one_hot and the fused softmax cross-entropy (against torch and against logistic
regression when C = 2)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tunery import ConfigError
from tunery.nn import one_hot, softmax, softmax_cross_entropy

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
logit_arrays = hnp.arrays(
    np.float64, st.tuples(st.integers(1, 8), st.integers(1, 6)), elements=finite
)


@settings(max_examples=50, deadline=None)
@given(z=logit_arrays, shift=st.floats(-1e3, 1e3))
def test_softmax_rows_are_distributions_and_shift_invariant(z: np.ndarray, shift: float) -> None:
    s = softmax(z)
    assert s.shape == z.shape
    assert np.all(s >= 0)
    np.testing.assert_allclose(s.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(softmax(z + shift), s, atol=1e-12)
    rows = np.arange(z.shape[0])
    np.testing.assert_array_equal(s[rows, np.argmax(z, axis=1)], s.max(axis=1))  # order is kept


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 10), st.integers(2, 6)),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.01, 30.0),
)
def test_cross_entropy_matches_torch(shape: tuple[int, int], seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(shape) * scale
    y = rng.integers(0, shape[1], shape[0])
    loss, dlogits = softmax_cross_entropy(logits, y)
    t_logits = torch.from_numpy(logits.copy()).requires_grad_(True)
    t_loss = torch.nn.functional.cross_entropy(t_logits, torch.from_numpy(y))
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(dlogits, t_logits.grad.numpy(), rtol=1e-9, atol=1e-15)  # type: ignore[union-attr]


def test_gradient_is_probabilities_minus_one_hot_over_m() -> None:
    rng = np.random.default_rng(0)
    logits, y = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    _, dlogits = softmax_cross_entropy(logits, y)
    np.testing.assert_allclose(dlogits, (softmax(logits) - one_hot(y, 4, dtype=np.float64)) / 5)
    np.testing.assert_allclose(dlogits.sum(axis=1), 0.0, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(
    z=hnp.arrays(np.float64, st.integers(1, 12), elements=st.floats(-40.0, 40.0)),
    data=st.data(),
)
def test_two_class_softmax_is_logistic_regression(z: np.ndarray, data: st.DataObject) -> None:
    labels = data.draw(hnp.arrays(np.int64, z.shape, elements=st.integers(0, 1)))
    logits = np.stack([np.zeros_like(z), z], axis=1)  # logits [0, z]
    sigma = scipy.special.expit(z)
    np.testing.assert_allclose(softmax(logits)[:, 1], sigma, rtol=1e-12, atol=1e-300)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    # Binary cross-entropy −[y log σ + (1 − y) log(1 − σ)] = log(1 + e^z) − y·z, written stably.
    bce = np.mean(np.logaddexp(0.0, z) - labels * z)
    assert loss == pytest.approx(bce, rel=1e-10, abs=1e-12)
    dz = (sigma - labels) / z.size
    np.testing.assert_allclose(dlogits[:, 1], dz, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(dlogits[:, 0], -dz, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_stay_finite(dtype: type) -> None:
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, 1e4, 1e4]], dtype=dtype)
    right = np.array([0, 1, 2])
    loss, dlogits = softmax_cross_entropy(logits, right)
    assert dlogits.dtype == dtype
    assert np.all(np.isfinite(dlogits))
    # Row 0 is certain and right (0), row 1 splits between two classes (log 2), row 2 three (log 3).
    assert loss == pytest.approx((0 + np.log(2) + np.log(3)) / 3, rel=1e-6)
    wrong_loss, wrong_grad = softmax_cross_entropy(logits, np.array([1, 0, 0]))
    assert np.isfinite(wrong_loss)
    # Row 0 puts −2e4 on label 1; row 1 puts −2e4 − log 2 on label 0; row 2 is still log 3.
    assert wrong_loss == pytest.approx((2e4 + (2e4 + np.log(2)) + np.log(3)) / 3, rel=1e-6)
    assert np.all(np.abs(wrong_grad) <= 1 / 3 + 1e-6)
    assert np.all(np.isfinite(softmax(logits)))


def test_float32_logits_give_float32_gradient() -> None:
    logits = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    loss, dlogits = softmax_cross_entropy(logits, np.array([0, 1, 2, 0]))
    assert isinstance(loss, float)
    assert dlogits.dtype == np.float32
    assert softmax(logits).dtype == np.float32


@settings(max_examples=30, deadline=None)
@given(num_classes=st.integers(1, 8), data=st.data())
def test_one_hot_marks_each_label(num_classes: int, data: st.DataObject) -> None:
    y = data.draw(
        hnp.arrays(np.int64, st.integers(0, 10), elements=st.integers(0, num_classes - 1))
    )
    encoded = one_hot(y, num_classes)
    assert encoded.shape == (y.size, num_classes)
    assert encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded.sum(axis=1), 1.0)
    np.testing.assert_array_equal(encoded[np.arange(y.size), y], 1.0)
    if y.size:
        np.testing.assert_array_equal(np.argmax(encoded, axis=1), y)


@pytest.mark.parametrize(
    "y",
    [
        np.array([0, 3]),  # out of range
        np.array([0, -1]),  # would silently wrap
        np.array([0.0, 1.0]),  # not integers
        np.array([[0, 1]]),  # not 1-D
        np.array([0, 1, 2]),  # one label too many
    ],
)
def test_bad_labels_are_config_errors(y: np.ndarray) -> None:
    with pytest.raises(ConfigError, match=r"^y: expected"):
        softmax_cross_entropy(np.zeros((2, 3)), y)


def test_bad_shapes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"^logits: expected a 2-D array"):
        softmax_cross_entropy(np.zeros(3), np.array([0]))
    with pytest.raises(ConfigError, match=r"^num_classes: expected"):
        one_hot(np.array([0]), 0)
    with pytest.raises(ConfigError, match=r"^y: expected labels in"):
        one_hot(np.array([0, 4]), 4)
