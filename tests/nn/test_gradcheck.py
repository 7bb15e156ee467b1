"""Every analytic gradient of the engine against central finite differences (float64, relative
error < 1e-6), and the checker itself: right on known functions, and it catches a wrong backward."""

from __future__ import annotations

import numpy as np
import pytest

from tunery import ConfigError
from tunery.nn import (
    MLP,
    BatchNorm,
    Dense,
    Dropout,
    Layer,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    check_layer_gradients,
    check_model_gradients,
    numerical_gradient,
    relative_error,
    softmax_cross_entropy,
)

TOL = 1e-6


def _normal(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _assert_all_close(errors: dict[str, float], keys: set[str]) -> None:
    assert set(errors) == keys
    bad = {key: error for key, error in errors.items() if not error < TOL}
    assert not bad, f"relative errors above {TOL}: {bad}"


# --- the checker ---------------------------------------------------------------------------------


def test_numerical_gradient_of_a_known_function() -> None:
    x, c = _normal((3, 4)), _normal((3, 4), seed=1)
    original = x.copy()
    grad = numerical_gradient(lambda v: float(np.sum(np.sin(v) * c)), x)
    assert relative_error(grad, np.cos(x) * c) < 1e-8
    np.testing.assert_array_equal(x, original)  # perturbations were undone


def test_numerical_gradient_restores_x_when_f_raises() -> None:
    x = np.ones(3)

    def explode(v: np.ndarray) -> float:
        raise ValueError("boom")

    with pytest.raises(ValueError, match=r"boom"):
        numerical_gradient(explode, x)
    np.testing.assert_array_equal(x, np.ones(3))


def test_numerical_gradient_needs_float64() -> None:
    with pytest.raises(ConfigError, match=r"^x: expected a float64 array"):
        numerical_gradient(lambda v: float(v.sum()), np.ones(3, dtype=np.float32))


def test_relative_error() -> None:
    a = np.array([3.0, 4.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(2), np.zeros(2)) == 0.0
    assert relative_error(a, np.zeros(2)) == 1.0
    assert relative_error(a, -a) == 1.0
    assert relative_error(a, a + np.array([0.0, 1e-3])) == pytest.approx(1e-3 / 10.0, rel=1e-3)
    assert relative_error(a, 2 * a) == relative_error(2 * a, a)
    with pytest.raises(ConfigError, match=r"^b: expected the shape of a"):
        relative_error(a, np.zeros(3))


class _WrongDense(Dense):
    """A Dense layer with a 1% error in dW: the checker must notice."""

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = super().backward(dout)
        self.dW *= 1.01
        return dx


def test_checker_catches_a_wrong_gradient() -> None:
    errors = check_layer_gradients(_WrongDense(4, 3, rng=0, dtype=np.float64), _normal((5, 4)))
    assert errors["W"] > 1e-3
    assert errors["x"] < TOL
    assert errors["b"] < TOL


def test_checker_refuses_float32_layers() -> None:
    with pytest.raises(ConfigError, match=r"^parameters: expected float64 arrays"):
        check_layer_gradients(Dense(4, 3, rng=0), _normal((5, 4)))


# --- layers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("init", ["he", "xavier"])
def test_dense(init: str) -> None:
    layer = Dense(4, 3, init=init, rng=1, dtype=np.float64)  # type: ignore[arg-type]
    layer.b[:] = _normal((3,), seed=2)  # type: ignore[index]
    _assert_all_close(check_layer_gradients(layer, _normal((5, 4))), {"x", "W", "b"})


def test_dense_without_bias_and_without_input_gradient() -> None:
    layer = Dense(4, 3, bias=False, rng=1, dtype=np.float64, input_grad=False)
    _assert_all_close(check_layer_gradients(layer, _normal((5, 4))), {"W"})


@pytest.mark.parametrize("layer_type", [ReLU, Tanh, Sigmoid, Softmax])
def test_activation(layer_type: type[Layer]) -> None:
    x = _normal((6, 5), seed=3) * 2
    _assert_all_close(check_layer_gradients(layer_type(), x, seed=4), {"x"})


def test_dropout_with_a_fixed_mask() -> None:
    layer = Dropout(0.6, rng=5)
    x = _normal((6, 5))
    state = layer.rng.bit_generator.state
    _assert_all_close(check_layer_gradients(layer, x), {"x"})
    assert layer.rng.bit_generator.state == state  # the checker rewound the generator
    mask = layer.forward(x) / x
    assert set(np.round(np.unique(mask), 9)) == {0.0, round(1 / 0.6, 9)}  # a real mask was used


@pytest.mark.parametrize("scale", [0.1, 1.0, 30.0])
def test_batchnorm_train_mode(scale: float) -> None:
    layer = BatchNorm(4, dtype=np.float64)
    layer.gamma[:] = _normal((4,), seed=6)
    layer.beta[:] = _normal((4,), seed=7)
    running = layer.running_mean.copy()
    errors = check_layer_gradients(layer, _normal((7, 4), seed=8) * scale + 2.0)
    _assert_all_close(errors, {"x", "gamma", "beta"})
    np.testing.assert_array_equal(layer.running_mean, running)  # buffers restored


def test_batchnorm_eval_mode() -> None:
    layer = BatchNorm(4, dtype=np.float64)
    layer.forward(_normal((9, 4), seed=1) * 3 + 1)  # move the running statistics off 0 and 1
    layer.gamma[:] = _normal((4,), seed=6)
    _assert_all_close(check_layer_gradients(layer.eval(), _normal((3, 4))), {"x", "gamma", "beta"})


def test_fused_softmax_cross_entropy() -> None:
    logits, y = _normal((6, 4), seed=9) * 3, np.array([0, 1, 2, 3, 3, 1])
    _, dlogits = softmax_cross_entropy(logits, y)
    numeric = numerical_gradient(lambda z: softmax_cross_entropy(z, y)[0], logits.copy())
    assert relative_error(dlogits, numeric) < TOL


# --- whole models --------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_three_layer_mlp_with_batchnorm(activation: str) -> None:
    model = MLP([5, 4, 3, 3], activation=activation, seed=2, dtype=np.float64)  # type: ignore[arg-type]
    model.parameters()["1.beta"][:] = 0.3  # nonzero β, so the check is not at a symmetric point
    x, y = _normal((8, 5), seed=10), np.array([0, 1, 2, 0, 1, 2, 2, 1])
    errors = check_model_gradients(model, x, y)
    _assert_all_close(errors, set(model.parameters()))
    assert {"0.W", "1.gamma", "1.beta", "3.W", "4.gamma", "4.beta", "6.W", "6.b"} == set(errors)


def test_mlp_with_dropout_and_mixed_batchnorm() -> None:
    model = MLP([5, 6, 4, 3], batchnorm=[True, False], keep_prob=0.7, seed=3, dtype=np.float64)
    x, y = _normal((8, 5), seed=11), np.array([0, 1, 2, 0, 1, 2, 2, 1])
    rng_state = model.rng.bit_generator.state
    buffers = {k: v.copy() for k, v in model.buffers().items()}
    _assert_all_close(check_model_gradients(model, x, y), set(model.parameters()))
    assert model.rng.bit_generator.state == rng_state
    for key, value in model.buffers().items():
        np.testing.assert_array_equal(value, buffers[key])


def test_model_checker_catches_a_wrong_layer() -> None:
    model = MLP([5, 4, 3], batchnorm=False, seed=0, dtype=np.float64)
    model.layers[0] = _WrongDense(5, 4, rng=0, dtype=np.float64, input_grad=False)
    x, y = _normal((6, 5)), np.array([0, 1, 2, 0, 1, 2])
    errors = check_model_gradients(model, x, y)
    assert errors["0.W"] > 1e-3
    assert errors["2.W"] < TOL
