"""BatchNorm2d: finite differences in float64 (dx, dγ, dβ, both modes) over random shapes, and
torch.nn.BatchNorm2d's outputs, gradients and running statistics over several steps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.nn import numerical_gradient
from tunery.nn.batchnorm import BatchNorm2d

TOL = 1e-6  # relative error of a right gradient in float64 is ~1e-9; a wrong term gives > 1e-3
RTOL, ATOL = 1e-6, 1e-9
# A centered difference with ε = 1e-6 rounds to about 1e-16·|f|/ε ≈ 1e-10·|f| per entry; |f| here
# stays below ~1e2. A gradient can be tiny: normalization leaves dx a projection of dout (x̂ keeps
# mean 0 and variance 1, so few directions of x change the output), and dβ = Σ dout can nearly
# cancel. Then a relative error measures rounding only, and an absolute bound is what tells it
# from a wrong term, whose error is of the order of dout·γ/σ (> 1e-3).
GRAD_ATOL = 1e-7

shapes = st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4))


def _layer(c: int, seed: int) -> BatchNorm2d:
    """A float64 layer with random γ, β and running statistics (so no term hides behind 1 or 0)."""
    layer = BatchNorm2d(c, dtype=np.float64)
    rng = np.random.default_rng(seed)
    layer.gamma[:] = rng.uniform(0.5, 2.0, c)
    layer.beta[:] = rng.standard_normal(c)
    layer.running_mean[:] = rng.standard_normal(c)
    layer.running_var[:] = rng.uniform(0.5, 2.0, c)
    return layer


def _x(shape: tuple[int, ...], seed: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape) * scale + shift


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), scale=st.floats(0.1, 10), shift=st.floats(-5, 5))
def test_train_mode_gradients_match_finite_differences(
    shape: tuple[int, int, int, int], seed: int, scale: float, shift: float
) -> None:
    n, c, h, w = shape
    if n * h * w < 3:
        # One value per channel has no variance (refused, tested below); with two, x̂ = ±1 whatever
        # x is, so dx is ~0 and only rounding is left to compare (tested apart, below).
        n = 3
    _assert_gradients_match_differences(_layer(c, seed), _x((n, c, h, w), seed, scale, shift), seed)


@settings(max_examples=15, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_eval_mode_gradients_match_finite_differences(
    shape: tuple[int, int, int, int], seed: int
) -> None:
    _assert_gradients_match_differences(_layer(shape[1], seed).eval(), _x(shape, seed), seed)


def _assert_gradients_match_differences(layer: BatchNorm2d, x: np.ndarray, seed: int) -> None:
    """dx, dγ and dβ against centered differences (ε = 1e-6) of the smooth nonlinear loss
    ``Σ dout · tanh(out)``, in the layer's mode (its running statistics are put back)."""
    dout = _x(x.shape, seed + 1)
    running = (layer.running_mean.copy(), layer.running_var.copy())

    def loss(_: np.ndarray) -> float:
        return float(np.vdot(dout, np.tanh(layer.forward(x))))

    out = layer.forward(x)
    analytic = {"x": layer.backward(dout * (1 - np.tanh(out) ** 2))}
    analytic |= {"gamma": layer.dgamma.copy(), "beta": layer.dbeta.copy()}
    targets = {"x": x, "gamma": layer.gamma, "beta": layer.beta}
    for key, grad in analytic.items():
        numeric = numerical_gradient(loss, targets[key], eps=1e-6)
        np.testing.assert_allclose(grad, numeric, rtol=TOL, atol=GRAD_ATOL, err_msg=key)
    layer.running_mean[:], layer.running_var[:] = running


def test_two_values_per_channel_give_no_input_gradient() -> None:
    """With m = 2 the output is ±γ + β whatever x is (up to ε), so dx vanishes, as torch says."""
    layer = _layer(3, seed=4)
    x = _x((2, 3, 1, 1), 4, 3.0, 1.0)
    theirs = _torch_twin(layer)
    _step(layer, theirs, x, 4)
    assert np.abs(layer.backward(_x(x.shape, 5))).max() < 1e-5


def test_a_wrong_backward_fails_the_check() -> None:
    """The check can fail: a train-mode backward that treats μ and σ² as constants (the eval-mode
    formula) is caught."""

    class ConstantStatistics(BatchNorm2d):
        def backward(self, dout: np.ndarray) -> np.ndarray:
            assert self._cache is not None
            self._cache = replace(self._cache, batch_stats=False)
            return super().backward(dout)

    layer = ConstantStatistics(2, dtype=np.float64)
    with pytest.raises(AssertionError, match="Mismatched elements"):
        _assert_gradients_match_differences(layer, _x((3, 2, 3, 3), 1), 1)


def _torch_twin(layer: BatchNorm2d) -> torch.nn.BatchNorm2d:
    twin = torch.nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=0.1).double()
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(layer.gamma))
        twin.bias.copy_(torch.from_numpy(layer.beta))
        twin.running_mean.copy_(torch.from_numpy(layer.running_mean))  # type: ignore[union-attr]
        twin.running_var.copy_(torch.from_numpy(layer.running_var))  # type: ignore[union-attr]
    return twin


def _step(ours: BatchNorm2d, theirs: torch.nn.BatchNorm2d, x: np.ndarray, seed: int) -> None:
    dout = _x(x.shape, seed + 99)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    theirs.zero_grad()
    tout = theirs(tx)
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(ours.forward(x), tout.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours.backward(dout), tx.grad.numpy(), rtol=RTOL, atol=ATOL)  # type: ignore[union-attr]
    np.testing.assert_allclose(ours.dgamma, theirs.weight.grad.numpy(), rtol=RTOL, atol=ATOL)  # type: ignore[union-attr]
    np.testing.assert_allclose(ours.dbeta, theirs.bias.grad.numpy(), rtol=RTOL, atol=ATOL)  # type: ignore[union-attr]
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=RTOL)  # type: ignore[union-attr]
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=RTOL)  # type: ignore[union-attr]


@settings(max_examples=15, deadline=None)
@given(
    shape=shapes, seed=st.integers(0, 2**16), scale=st.floats(0.01, 50), shift=st.floats(-20, 20)
)
def test_matches_torch_in_train_then_eval_mode(
    shape: tuple[int, int, int, int], seed: int, scale: float, shift: float
) -> None:
    n, c, h, w = shape
    n = max(n, 2)
    ours = _layer(c, seed)
    theirs = _torch_twin(ours)
    for step in range(3):
        _step(ours.train(), theirs.train(), _x((n, c, h, w), seed + step, scale, shift), step)
    _step(ours.eval(), theirs.eval(), _x((1, c, h, w), seed + 5, scale, shift), 5)


def test_one_value_per_channel_in_train_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match="batch size"):
        BatchNorm2d(2).forward(np.zeros((1, 2, 1, 1), np.float32))


def test_the_channel_count_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"\(N, 3, H, W\)"):
        BatchNorm2d(3).forward(np.zeros((2, 2, 4, 4), np.float32))
    with pytest.raises(ConfigError, match="x"):
        BatchNorm2d(3).eval().forward(np.zeros((2, 12), np.float32))
