"""BatchNorm against torch.nn.BatchNorm1d (float64, both modes, forward and backward), plus the
properties of the train-mode transform and the input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.nn import BatchNorm

RTOL, ATOL = 1e-6, 1e-9


def _batches(seed: int, steps: int, n: int, d: int, scale: float, shift: float) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, d)) * scale + shift for _ in range(steps)]


def _pair(d: int, seed: int) -> tuple[BatchNorm, torch.nn.BatchNorm1d]:
    """Our layer and torch's with the same random γ, β (defaults otherwise)."""
    ours = BatchNorm(d, dtype=np.float64)
    theirs = torch.nn.BatchNorm1d(d, eps=1e-5, momentum=0.1).double()
    rng = np.random.default_rng(seed + 1)
    ours.gamma[:] = rng.uniform(0.5, 2.0, d)
    ours.beta[:] = rng.standard_normal(d)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.gamma))
        theirs.bias.copy_(torch.from_numpy(ours.beta))
    return ours, theirs


def _step(ours: BatchNorm, theirs: torch.nn.BatchNorm1d, x: np.ndarray, dout: np.ndarray) -> None:
    """One forward and backward through both; assert out, dx, dgamma and dbeta agree."""
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    theirs.zero_grad()
    tout = theirs(tx)
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(ours.forward(x), tout.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours.backward(dout), tx.grad.numpy(), rtol=RTOL, atol=ATOL)  # type: ignore[union-attr]
    np.testing.assert_allclose(ours.dgamma, theirs.weight.grad.numpy(), rtol=RTOL, atol=ATOL)  # type: ignore[union-attr]
    np.testing.assert_allclose(ours.dbeta, theirs.bias.grad.numpy(), rtol=RTOL, atol=ATOL)  # type: ignore[union-attr]


def _assert_same_running_stats(ours: BatchNorm, theirs: torch.nn.BatchNorm1d) -> None:
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=RTOL, atol=ATOL)  # type: ignore[union-attr]
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=RTOL, atol=ATOL)  # type: ignore[union-attr]


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(2, 12),
    d=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.01, 100.0),
    shift=st.floats(-50.0, 50.0),
)
def test_matches_torch_in_train_then_eval_mode(
    n: int, d: int, seed: int, scale: float, shift: float
) -> None:
    ours, theirs = _pair(d, seed)
    batches = _batches(seed, 4, n, d, scale, shift)
    douts = _batches(seed + 7, 4, n, d, 1.0, 0.0)
    for x, dout in zip(batches[:3], douts[:3], strict=True):
        _step(ours.train(), theirs.train(), x, dout)
        _assert_same_running_stats(ours, theirs)
    _step(ours.eval(), theirs.eval(), batches[3], douts[3])
    _assert_same_running_stats(ours, theirs)


def test_eval_mode_works_on_one_example_like_torch() -> None:
    ours, theirs = _pair(3, seed=5)
    for x, dout in zip(_batches(1, 2, 8, 3, 2.0, 1.0), _batches(2, 2, 8, 3, 1.0, 0.0), strict=True):
        _step(ours, theirs, x, dout)
    _step(ours.eval(), theirs.eval(), np.array([[0.3, -1.0, 2.0]]), np.array([[1.0, 2.0, -1.0]]))


def test_train_mode_refuses_a_batch_of_one_like_torch() -> None:
    x = np.array([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match=r"more than 1 value"):
        torch.nn.BatchNorm1d(3).double()(torch.from_numpy(x))
    layer = BatchNorm(3, dtype=np.float64)
    with pytest.raises(ConfigError, match=r"at least 2 examples in train mode.*\.eval\(\)"):
        layer.forward(x)
    np.testing.assert_array_equal(layer.running_mean, np.zeros(3))  # nothing was half-updated


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 30),
    d=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    scale=st.floats(1e-4, 1e3),
)
def test_train_output_is_standardized_per_feature(n: int, d: int, seed: int, scale: float) -> None:
    (x,) = _batches(seed, 1, n, d, scale, 3.0)
    out = BatchNorm(d, dtype=np.float64).forward(x)
    var = x.var(axis=0)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-9)
    # Exactly unit variance only when σ² ≫ ε: the transform divides by √(σ² + ε).
    np.testing.assert_allclose(out.var(axis=0), var / (var + 1e-5), rtol=1e-9, atol=1e-12)


def test_gamma_and_beta_set_the_output_scale_and_shift() -> None:
    (x,) = _batches(0, 1, 50, 2, 4.0, -2.0)
    layer = BatchNorm(2, dtype=np.float64)
    layer.gamma[:] = [3.0, 0.5]
    layer.beta[:] = [1.0, -4.0]
    out = layer.forward(x)
    np.testing.assert_allclose(out.mean(axis=0), [1.0, -4.0], atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), [3.0, 0.5], rtol=1e-5)


def test_running_stats_follow_the_momentum_rule() -> None:
    (x,) = _batches(3, 1, 10, 4, 2.0, 5.0)
    layer = BatchNorm(4, momentum=0.75, dtype=np.float64)
    layer.forward(x)
    np.testing.assert_allclose(layer.running_mean, 0.25 * x.mean(axis=0))
    np.testing.assert_allclose(layer.running_var, 0.75 + 0.25 * x.var(axis=0, ddof=1))


def test_float32_stays_float32() -> None:
    layer = BatchNorm(4)
    (x,) = _batches(0, 1, 6, 4, 1.0, 0.0)
    x32 = x.astype(np.float32)
    out = layer.forward(x32)
    dx = layer.backward(x32)
    arrays = [out, dx, layer.dgamma, layer.dbeta, layer.running_mean, layer.running_var]
    arrays += [layer.eval().forward(x32), layer.backward(x32)]
    assert all(a.dtype == np.float32 for a in arrays)


def test_gradients_and_buffers_are_live_arrays() -> None:
    layer = BatchNorm(3, dtype=np.float64)
    grads, params, buffers = layer.gradients(), layer.parameters(), layer.buffers()
    (x,) = _batches(0, 1, 5, 3, 1.0, 2.0)
    layer.forward(x)
    layer.backward(x)
    assert grads["gamma"] is layer.dgamma
    assert grads["beta"] is layer.dbeta
    assert params["gamma"] is layer.gamma
    assert buffers["running_mean"] is layer.running_mean
    np.testing.assert_allclose(grads["beta"], x.sum(axis=0))
    assert buffers["running_mean"].any()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_features": 0}, "num_features"),
        ({"num_features": 2, "eps": 0.0}, "eps"),
        ({"num_features": 2, "eps": float("inf")}, "eps"),
        ({"num_features": 2, "momentum": 1.5}, "momentum"),
        ({"num_features": 2, "momentum": -0.1}, "momentum"),
        ({"num_features": 2, "dtype": np.float16}, "dtype"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}: expected"):
        BatchNorm(**kwargs)  # type: ignore[arg-type]


def test_backward_before_forward_is_an_error() -> None:
    with pytest.raises(RuntimeError, match=r"before forward"):
        BatchNorm(2).backward(np.zeros((2, 2), np.float32))
