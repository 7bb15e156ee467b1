"""Dense, activations and dropout: shapes, dtypes, initialization, in-place gradients, validation.

Gradient correctness against finite differences lives in test_gradcheck.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.nn import NO_INPUT_GRAD, Dense, Dropout, ReLU, Sigmoid, Softmax, Tanh

DTYPES = [np.float32, np.float64]


def _normal(shape: tuple[int, ...], seed: int = 0, dtype: type = np.float64) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# --- Dense -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_keeps_shapes_and_dtype(dtype: type) -> None:
    layer = Dense(5, 3, rng=0, dtype=dtype)
    x = _normal((4, 5), dtype=dtype)
    out = layer.forward(x)
    dx = layer.backward(_normal((4, 3), seed=1, dtype=dtype))
    assert out.shape == (4, 3)
    assert dx.shape == (4, 5)
    for array in (out, dx, layer.W, layer.b, layer.dW, layer.db):
        assert array is not None
        assert array.dtype == dtype


def test_dense_computes_affine_map() -> None:
    layer = Dense(5, 3, rng=0, dtype=np.float64)
    layer.b[:] = [1.0, -2.0, 0.5]  # type: ignore[index]
    x = _normal((4, 5))
    expected = np.einsum("nd,dk->nk", x, layer.W) + np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("init", "expected_std"), [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(2 / 600))]
)
def test_dense_initial_weight_scale(init: str, expected_std: float) -> None:
    layer = Dense(400, 200, init=init, rng=3)  # type: ignore[arg-type]
    assert layer.W.shape == (400, 200)
    assert abs(layer.W.mean()) < 0.05 * expected_std
    assert layer.W.std() == pytest.approx(expected_std, rel=0.02)
    assert layer.b is not None
    assert not layer.b.any()


def test_dense_seed_reproduces_weights() -> None:
    np.testing.assert_array_equal(Dense(6, 4, rng=7).W, Dense(6, 4, rng=7).W)
    assert not np.array_equal(Dense(6, 4, rng=7).W, Dense(6, 4, rng=8).W)
    generator = np.random.default_rng(7)
    assert not np.array_equal(Dense(6, 4, rng=generator).W, Dense(6, 4, rng=generator).W)


def test_dense_without_bias_has_no_b_key() -> None:
    layer = Dense(3, 2, bias=False, rng=0)
    assert layer.b is None
    assert layer.db is None
    assert set(layer.parameters()) == set(layer.gradients()) == {"W"}
    assert set(Dense(3, 2, rng=0).parameters()) == {"W", "b"}


def test_dense_without_input_grad_skips_dx_but_fills_dw() -> None:
    x, dout = _normal((4, 5)), _normal((4, 3), seed=1)
    full = Dense(5, 3, rng=0, dtype=np.float64)
    first = Dense(5, 3, rng=0, dtype=np.float64, input_grad=False)
    full.forward(x)
    first.forward(x)
    assert full.backward(dout).shape == (4, 5)
    assert first.backward(dout) is NO_INPUT_GRAD
    assert NO_INPUT_GRAD.size == 0
    assert not NO_INPUT_GRAD.flags.writeable
    np.testing.assert_array_equal(first.dW, full.dW)
    np.testing.assert_array_equal(first.db, full.db)  # type: ignore[arg-type]


def test_dense_writes_gradients_in_place() -> None:
    layer = Dense(5, 3, rng=0, dtype=np.float64)
    grads = layer.gradients()
    params = layer.parameters()
    for seed in range(2):
        layer.forward(_normal((4, 5), seed=seed))
        layer.backward(_normal((4, 3), seed=seed + 10))
        assert grads["W"] is layer.dW
        assert grads["b"] is layer.db
        assert params["W"] is layer.W
    np.testing.assert_allclose(grads["W"], _normal((4, 5), seed=1).T @ _normal((4, 3), seed=11))


def test_backward_before_forward_is_an_error() -> None:
    with pytest.raises(RuntimeError, match=r"before forward"):
        Dense(2, 2, rng=0).backward(np.zeros((1, 2), np.float32))
    with pytest.raises(RuntimeError, match=r"before forward"):
        ReLU().backward(np.zeros((1, 2), np.float32))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"in_features": 0, "out_features": 2}, "in_features"),
        ({"in_features": True, "out_features": 2}, "in_features"),
        ({"in_features": 2, "out_features": 2.5}, "out_features"),
        ({"in_features": 2, "out_features": 2, "init": "lecun"}, "init"),
        ({"in_features": 2, "out_features": 2, "dtype": np.int64}, "dtype"),
        ({"in_features": 2, "out_features": 2, "dtype": "nonsense"}, "dtype"),
    ],
)
def test_dense_rejects_bad_arguments(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}: expected") as info:
        Dense(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


# --- activations -------------------------------------------------------------------------------

shapes = st.tuples(st.integers(1, 6), st.integers(1, 6))


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), scale=st.floats(0.1, 50.0))
def test_activation_values(shape: tuple[int, int], seed: int, scale: float) -> None:
    x = _normal(shape, seed) * scale
    np.testing.assert_array_equal(ReLU().forward(x), np.where(x > 0, x, 0.0))
    np.testing.assert_allclose(Tanh().forward(x), np.tanh(x))
    sigmoid = Sigmoid().forward(x)
    np.testing.assert_allclose(sigmoid, 1 / (1 + np.exp(-x)), rtol=1e-12)
    assert np.all((sigmoid >= 0) & (sigmoid <= 1))


def test_sigmoid_is_finite_at_extremes() -> None:
    x = np.array([[-1e4, -800.0, 0.0, 800.0, 1e4]], dtype=np.float32)
    layer = Sigmoid()
    out = layer.forward(x)
    np.testing.assert_array_equal(out, [[0.0, 0.0, 0.5, 1.0, 1.0]])
    assert np.all(np.isfinite(layer.backward(np.ones_like(x))))


@pytest.mark.parametrize("layer_type", [ReLU, Tanh, Sigmoid, Softmax])
@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_keep_dtype(layer_type: type, dtype: type) -> None:
    layer = layer_type()
    x = _normal((3, 4), dtype=dtype)
    assert layer.forward(x).dtype == dtype
    assert layer.backward(_normal((3, 4), seed=1, dtype=dtype)).dtype == dtype


def test_relu_gradient_passes_only_where_active() -> None:
    x = np.array([[-2.0, -0.0, 0.5, 3.0]])
    layer = ReLU()
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.array([[1.0, 2.0, 3.0, 4.0]])), [[0, 0, 3, 4]])


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_softmax_backward_is_the_full_jacobian_product(shape: tuple[int, int], seed: int) -> None:
    x, dout = _normal(shape, seed), _normal(shape, seed + 1)
    layer = Softmax()
    s = layer.forward(x)
    np.testing.assert_allclose(s, scipy.special.softmax(x, axis=1))
    # The Jacobian of one row is diag(s) − s sᵀ; build it explicitly and multiply.
    jacobians = np.stack([np.diag(row) - np.outer(row, row) for row in s])
    expected = np.einsum("nij,nj->ni", jacobians, dout)
    np.testing.assert_allclose(layer.backward(dout), expected, rtol=1e-10, atol=1e-14)


# --- dropout -----------------------------------------------------------------------------------


def test_dropout_eval_mode_is_identity() -> None:
    layer = Dropout(0.5, rng=0).eval()
    x = _normal((5, 4))
    assert layer.forward(x) is x
    dout = _normal((5, 4), seed=1)
    assert layer.backward(dout) is dout


@settings(max_examples=25, deadline=None)
@given(keep_prob=st.floats(0.05, 0.95), seed=st.integers(0, 2**16))
def test_dropout_train_mode_is_inverted_dropout(keep_prob: float, seed: int) -> None:
    layer = Dropout(keep_prob, rng=seed)
    x = _normal((400, 50), seed) + 3.0  # no exact zeros in x
    out = layer.forward(x)
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / keep_prob, rtol=1e-12)
    # 20,000 Bernoulli draws: the kept fraction is within 6 standard deviations of keep_prob.
    sd = np.sqrt(keep_prob * (1 - keep_prob) / kept.size)
    assert abs(kept.mean() - keep_prob) < 6 * sd
    dout = _normal((400, 50), seed + 1)
    np.testing.assert_array_equal(layer.backward(dout) != 0, kept)
    np.testing.assert_allclose(layer.backward(dout)[kept], dout[kept] / keep_prob, rtol=1e-12)


def test_dropout_keeps_expected_activation() -> None:
    x = np.ones((1000, 100), dtype=np.float32)
    out = Dropout(0.8, rng=1).forward(x)
    assert out.dtype == np.float32
    assert out.mean() == pytest.approx(1.0, abs=0.01)


def test_dropout_masks_depend_on_seed_only() -> None:
    x = _normal((10, 10))
    np.testing.assert_array_equal(Dropout(0.5, rng=4).forward(x), Dropout(0.5, rng=4).forward(x))
    layer = Dropout(0.5, rng=4)
    assert not np.array_equal(layer.forward(x), layer.forward(x))


def test_dropout_with_keep_prob_one_is_identity_in_train_mode() -> None:
    x = _normal((3, 3))
    layer = Dropout(1.0, rng=0)
    assert layer.forward(x) is x
    assert layer.mask is None


@pytest.mark.parametrize("keep_prob", [0, 0.0, -0.5, 1.01, True, float("nan"), "0.5"])
def test_dropout_rejects_bad_keep_prob(keep_prob: object) -> None:
    with pytest.raises(ConfigError, match=r"^keep_prob: expected a number in"):
        Dropout(keep_prob)  # type: ignore[arg-type]
