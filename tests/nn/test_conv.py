"""Conv2D, MaxPool2D, Flatten and BatchNorm2d against finite differences (float64) and torch."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery.nn import check_layer_gradients
from tunery.nn.conv import Conv2D, Flatten, MaxPool2D

TOL = 1e-6


def _x(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@settings(max_examples=15, deadline=None)
@given(
    c=st.integers(1, 3),
    f=st.integers(1, 3),
    k=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.integers(0, 1),
    bias=st.booleans(),
)
def test_conv2d_gradients(c: int, f: int, k: int, stride: int, padding: int, bias: bool) -> None:
    layer = Conv2D(c, f, k, stride, padding, bias=bias, rng=0, dtype=np.float64)
    errors = check_layer_gradients(layer, _x((2, c, 5, 6)))
    assert errors
    assert max(errors.values()) < TOL, errors


@settings(max_examples=15, deadline=None)
@given(k=st.integers(1, 3), stride=st.integers(1, 3))
def test_conv2d_forward_matches_torch(k: int, stride: int) -> None:
    layer = Conv2D(2, 3, k, stride, padding=1, rng=1, dtype=np.float64)
    assert layer.b is not None
    layer.b[:] = _x((3,), 2)
    x = _x((2, 2, 6, 7))
    expected = torch.nn.functional.conv2d(
        torch.from_numpy(x),
        torch.from_numpy(layer.W),
        torch.from_numpy(layer.b),
        stride=stride,
        padding=1,
    )
    np.testing.assert_allclose(layer.forward(x), expected.numpy(), atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(k=st.integers(1, 3), stride=st.integers(1, 3))
def test_maxpool_gradients_and_forward(k: int, stride: int) -> None:
    layer = MaxPool2D(k, stride)
    x = _x((2, 2, 6, 7))
    errors = check_layer_gradients(layer, x)
    assert max(errors.values()) < TOL, errors
    expected = torch.nn.functional.max_pool2d(torch.from_numpy(x), k, stride)
    np.testing.assert_array_equal(layer.forward(x), expected.numpy())


def test_flatten_round_trips_shape() -> None:
    errors = check_layer_gradients(Flatten(), _x((2, 3, 4, 4)))
    assert errors["x"] < TOL
