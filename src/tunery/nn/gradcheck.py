"""Gradient checking by central finite differences, in float64.

``numerical_gradient(f, x)`` estimates ``∂f/∂x`` entry by entry; ``relative_error(a, b)`` compares
it with an analytic gradient as the course does, ``‖a − b‖ / (‖a‖ + ‖b‖)`` (below 1e-7 is right,
above 1e-3 is a bug). ``check_layer_gradients`` and ``check_model_gradients`` do both for every
parameter of a layer or a whole model (and its input, for a layer).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tunery._exceptions import ConfigError
from tunery.nn._base import Array, Layer
from tunery.nn._network import Network
from tunery.nn.layers import NO_INPUT_GRAD, Dropout
from tunery.nn.losses import softmax_cross_entropy

__all__ = [
    "check_layer_gradients",
    "check_model_gradients",
    "numerical_gradient",
    "relative_error",
]

Objective = Callable[[Array], tuple[float, Array]]
"""Maps a layer's output ``(N, D_out)`` to ``(scalar, d scalar / d output)``."""


def numerical_gradient(f: Callable[[Array], float], x: Array, eps: float = 1e-6) -> Array:
    """``(f(x + ε·e_i) − f(x − ε·e_i)) / 2ε`` for every entry ``i`` of ``x``.

    ``x`` (any shape, float64) is perturbed in place and restored, so ``f`` may read it directly or
    through another object that shares it (a layer's ``W``). Returns an array shaped like ``x``.
    """
    if x.dtype != np.float64:
        raise ConfigError("x", x.dtype, "a float64 array (float32 is too coarse for differences)")
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        try:
            x[index] = original + eps
            plus = f(x)
            x[index] = original - eps
            minus = f(x)
        finally:
            x[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a: Array, b: Array) -> float:
    """``‖a − b‖ / (‖a‖ + ‖b‖)`` for arrays of one shape; 0.0 when both are zero."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ConfigError("b", b.shape, f"the shape of a, {a.shape}")
    scale = float(np.linalg.norm(a) + np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b)) / scale


def check_layer_gradients(
    layer: Layer, x: Array, *, seed: int = 0, eps: float = 1e-6
) -> dict[str, float]:
    """Relative errors of ``layer.backward`` against finite differences, in its current mode.

    The scalar checked is ``Σ forward(x) · dout`` with a fixed random ``dout``. Returns
    ``{"x": error of dx, name: error of each parameter's gradient}`` (no ``"x"`` when the layer
    skips ``dx``). The layer must hold float64 parameters; ``x: (N, D_in)`` is copied to float64.
    """
    dout: Array | None = None

    def objective(out: Array) -> tuple[float, Array]:
        nonlocal dout
        if dout is None:
            dout = np.random.default_rng(seed).standard_normal(out.shape)
        return float(np.vdot(out, dout)), dout

    return _check(layer, np.array(x, dtype=np.float64), objective, eps)


def check_model_gradients(
    model: Network, x: Array, y: Array, *, eps: float = 1e-6
) -> dict[str, float]:
    """Relative error of every parameter gradient of a float64 ``model`` under the mean softmax
    cross-entropy of ``model.forward(x: (N, D))`` against labels ``y: (N,)``.

    Returns ``{parameter key: error}`` with the keys of ``model.parameters()``. Dropout masks are
    replayed from one RNG state for every evaluation; the RNG and batch norm's running statistics
    are restored afterwards, so the check leaves the model as it found it (gradients aside).
    """
    labels = np.asarray(y)
    inputs = np.array(x, dtype=np.float64)
    return _check(model, inputs, lambda logits: softmax_cross_entropy(logits, labels), eps)


def _check(layer: Layer, x: Array, objective: Objective, eps: float) -> dict[str, float]:
    """Backward once, then finite differences for ``x`` (if the layer returns ``dx``) and every
    parameter. Dropout RNGs are rewound before each forward so every evaluation uses one mask;
    buffers and RNG states are put back at the end."""
    wrong = {k: v.dtype.name for k, v in layer.parameters().items() if v.dtype != np.float64}
    if wrong:
        raise ConfigError("parameters", wrong, "float64 arrays (build with dtype=np.float64)")
    dropouts = _dropouts(layer)
    rng_states = [dropout.rng.bit_generator.state for dropout in dropouts]
    saved_buffers = {k: b.copy() for k, b in layer.buffers().items()}

    def evaluate() -> tuple[float, Array]:
        for dropout, state in zip(dropouts, rng_states, strict=True):
            dropout.rng.bit_generator.state = state
        return objective(layer.forward(x))

    try:
        _, dout = evaluate()
        dx = layer.backward(dout)
        analytic = {} if dx is NO_INPUT_GRAD else {"x": dx}
        analytic |= {k: g.copy() for k, g in layer.gradients().items()}
        targets = {"x": x, **layer.parameters()}
        return {
            key: relative_error(grad, numerical_gradient(_value_of(evaluate), targets[key], eps))
            for key, grad in analytic.items()
        }
    finally:
        for dropout, state in zip(dropouts, rng_states, strict=True):
            dropout.rng.bit_generator.state = state
        for key, buffer in layer.buffers().items():
            np.copyto(buffer, saved_buffers[key])


def _value_of(evaluate: Callable[[], tuple[float, Array]]) -> Callable[[Array], float]:
    """``f(x)`` for ``numerical_gradient``: ``x`` is perturbed in place, so f need not read it."""
    return lambda _: evaluate()[0]


def _dropouts(layer: Layer) -> list[Dropout]:
    layers = layer.layers if isinstance(layer, Network) else [layer]
    return [lay for lay in layers if isinstance(lay, Dropout)]
