"""InstanceNorm2d: finite differences in float64 over random shapes, torch.nn.InstanceNorm2d's
outputs and input gradients, and the invariance it exists for (a colour cast and an exposure of
the light, a gain and an offset per channel of a photo, leave its output unchanged)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.nn import InstanceNorm2d, numerical_gradient
from tunery.nn.layers import NO_INPUT_GRAD

TOL = 1e-6  # a right gradient in float64 is off by ~1e-9 relatively; a wrong term by > 1e-3
GRAD_ATOL = 1e-7  # dx is a projection of dout and can be tiny: see test_batchnorm2d.py

# At least 3 pixels per image: with 2, x̂ = ±1 whatever x is, and dx is rounding only.
shapes = st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(2, 5), st.integers(2, 5))


def _x(shape: tuple[int, ...], seed: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape) * scale + shift


def _assert_gradient_matches_differences(layer: InstanceNorm2d, x: np.ndarray, seed: int) -> None:
    """dx against centered differences of the nonlinear loss ``Σ dout · tanh(out)``."""
    dout = _x(x.shape, seed + 1)

    def loss(_: np.ndarray) -> float:
        return float(np.vdot(dout, np.tanh(layer.forward(x))))

    out = layer.forward(x)
    analytic = layer.backward(dout * (1 - np.tanh(out) ** 2))
    numeric = numerical_gradient(loss, x, eps=1e-6)
    np.testing.assert_allclose(analytic, numeric, rtol=TOL, atol=GRAD_ATOL)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), scale=st.floats(0.1, 10), shift=st.floats(-5, 5))
def test_gradient_matches_finite_differences_in_both_modes(
    shape: tuple[int, int, int, int], seed: int, scale: float, shift: float
) -> None:
    layer = InstanceNorm2d(shape[1])
    x = _x(shape, seed, scale, shift)
    _assert_gradient_matches_differences(layer, x, seed)
    _assert_gradient_matches_differences(layer.eval(), x, seed)  # the same function in eval


def test_a_wrong_backward_fails_the_check() -> None:
    """The check can fail: a backward that treats μ and σ² as constants is caught."""

    class ConstantStatistics(InstanceNorm2d):
        def backward(self, dout: np.ndarray) -> np.ndarray:
            assert self._cache is not None
            return dout * self._cache[1]

    with pytest.raises(AssertionError, match="Mismatched elements"):
        _assert_gradient_matches_differences(ConstantStatistics(2), _x((3, 2, 3, 3), 1), 1)


@settings(max_examples=20, deadline=None)
@given(
    shape=shapes, seed=st.integers(0, 2**16), scale=st.floats(0.01, 50), shift=st.floats(-20, 20)
)
def test_matches_torch_forward_and_input_gradient(
    shape: tuple[int, int, int, int], seed: int, scale: float, shift: float
) -> None:
    x, dout = _x(shape, seed, scale, shift), _x(shape, seed + 7)
    layer = InstanceNorm2d(shape[1], eps=1e-5)
    twin = torch.nn.InstanceNorm2d(shape[1], eps=1e-5).double()
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    tout = twin(tx)
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(layer.forward(x), tout.detach().numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(layer.backward(dout), tx.grad.numpy(), rtol=1e-6, atol=1e-9)  # type: ignore[union-attr]


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    gains=st.lists(st.floats(0.3, 3.0), min_size=3, max_size=3),
    offsets=st.lists(st.floats(-0.5, 0.5), min_size=3, max_size=3),
)
def test_a_colour_cast_and_an_exposure_change_nothing(
    seed: int, gains: list[float], offsets: list[float]
) -> None:
    photos = np.random.default_rng(seed).random((2, 3, 6, 6))
    lit = photos * np.array(gains)[None, :, None, None] + np.array(offsets)[None, :, None, None]
    layer = InstanceNorm2d(3, eps=1e-12)
    np.testing.assert_allclose(layer.forward(lit), layer.forward(photos), atol=1e-6)


def test_each_image_and_channel_is_standardized_on_its_own() -> None:
    out = InstanceNorm2d(2).forward(_x((3, 2, 4, 5), 0, 4.0, 2.0))
    np.testing.assert_allclose(out.mean(axis=(2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(2, 3)), 1, rtol=1e-4)


def test_the_first_layer_passes_no_input_gradient_through() -> None:
    layer = InstanceNorm2d(1)
    layer.forward(_x((2, 1, 3, 3), 0))
    assert layer.backward(NO_INPUT_GRAD) is NO_INPUT_GRAD


def test_bad_input_is_named() -> None:
    with pytest.raises(ConfigError, match="x"):
        InstanceNorm2d(3).forward(np.zeros((2, 4, 3, 3)))
    with pytest.raises(ConfigError, match="num_channels"):
        InstanceNorm2d(0)
    with pytest.raises(ConfigError, match="eps"):
        InstanceNorm2d(2, eps=0.0)
    with pytest.raises(RuntimeError, match="before forward"):
        InstanceNorm2d(2).backward(np.zeros((1, 2, 2, 2)))
