"""Dense layer, activations and inverted dropout.

Rows are examples: every layer maps ``x: (N, D_in)`` to ``out: (N, D_out)`` and ``backward``
maps ``dout: (N, D_out)`` to ``dx: (N, D_in)``. Each layer caches only what its backward needs
(usually an array it produced or received anyway, so the cache costs no memory), and parameter
gradients are written in place into arrays allocated once.
"""

from __future__ import annotations

import math
from typing import Any, Final, Literal

import numpy as np
import scipy.special

from tunery._exceptions import ConfigError
from tunery._validation import KEEP_PROB, check_scalar
from tunery.nn._base import Array, Layer, as_dtype, check_positive_int
from tunery.nn.losses import softmax

__all__ = [
    "NO_INPUT_GRAD",
    "Dense",
    "Dropout",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "Weighted",
]

Init = Literal["he", "xavier"]

NO_INPUT_GRAD: Final[Array] = np.empty((0, 0), dtype=np.float32)
"""What ``Dense(..., input_grad=False).backward`` returns instead of ``dx``: an empty, read-only
array of shape ``(0, 0)``.

The first layer of a network has no one to pass ``dx`` to; skipping it saves the product
``(N, out) @ (out, in)``, which is as large as the forward one when ``in`` is 12,288 pixels.
"""
NO_INPUT_GRAD.setflags(write=False)


def _cached(array: Array | None, layer: Layer) -> Array:
    """The array ``forward`` cached for ``backward``; backward before forward is a bug."""
    if array is None:
        raise RuntimeError(f"{type(layer).__name__}.backward called before forward")
    return array


class Weighted(Layer):
    """A layer with weights ``W`` and an optional bias ``b`` (``None`` before batch norm)."""

    W: Array
    dW: Array  # noqa: N815 (CS231n names: dW is the gradient of W)
    b: Array | None
    db: Array | None

    def parameters(self) -> dict[str, Array]:
        return {"W": self.W} if self.b is None else {"W": self.W, "b": self.b}

    def gradients(self) -> dict[str, Array]:
        return {"W": self.dW} if self.db is None else {"W": self.dW, "b": self.db}


class Dense(Weighted):
    """Affine layer ``out = x @ W + b``.

    ``x: (N, in_features)``, ``W: (in_features, out_features)``, ``b: (out_features,)`` or ``None``,
    ``out: (N, out_features)``. Gradients ``dW`` and ``db`` (same shapes) are kept on the layer.

    ``init="he"`` draws ``W ~ N(0, 2 / in_features)`` (for ReLU); ``init="xavier"`` draws
    ``W ~ N(0, 2 / (in_features + out_features))`` (Glorot, for tanh and sigmoid; the same as
    ``torch.nn.init.xavier_normal_``). Biases start at zero. With ``input_grad=False`` (the first
    layer of a model) ``backward`` skips ``dx`` and returns ``NO_INPUT_GRAD``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        init: Init = "he",
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float32,
        input_grad: bool = True,
    ) -> None:
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        if init not in ("he", "xavier"):
            raise ConfigError("init", init, "'he' or 'xavier'")
        self.init: Init = init
        self.dtype = as_dtype(dtype)
        self.input_grad = bool(input_grad)
        fan = self.in_features if init == "he" else self.in_features + self.out_features
        # A Python float keeps float32 weights float32 (a NumPy float64 scalar would upcast them).
        scale = math.sqrt(2.0 / fan)
        generator = np.random.default_rng(rng)
        shape = (self.in_features, self.out_features)
        self.W: Array = generator.standard_normal(shape, dtype=self.dtype)
        self.W *= scale
        self.b: Array | None = np.zeros(self.out_features, self.dtype) if bias else None
        self.dW: Array = np.zeros_like(self.W)
        self.db: Array | None = None if self.b is None else np.zeros_like(self.b)
        self._x: Array | None = None

    def forward(self, x: Array) -> Array:
        """``x: (N, in_features) -> (N, out_features)``."""
        self._x = x
        out = x @ self.W
        if self.b is not None:
            out += self.b
        return out

    def backward(self, dout: Array) -> Array:
        """``dout: (N, out_features) -> dx: (N, in_features)`` or NO_INPUT_GRAD; fills dW, db."""
        x = _cached(self._x, self)
        np.matmul(x.T, dout, out=self.dW)
        if self.db is not None:
            np.sum(dout, axis=0, out=self.db)
        if not self.input_grad:
            return NO_INPUT_GRAD
        return dout @ self.W.T

    def __repr__(self) -> str:
        return (
            f"Dense({self.in_features}, {self.out_features}, bias={self.b is not None}, "
            f"init={self.init!r}, dtype={self.dtype.name})"
        )


class _Activation(Layer):
    """An elementwise activation whose derivative is a function of its output, which it caches."""

    def __init__(self) -> None:
        self._out: Array | None = None

    def forward(self, x: Array) -> Array:
        """``x: (N, D) -> (N, D)``."""
        self._out = self._apply(x)
        return self._out

    def backward(self, dout: Array) -> Array:
        """``dout: (N, D) -> dx: (N, D)``."""
        return self._backward(dout, _cached(self._out, self))

    def _apply(self, x: Array) -> Array:
        raise NotImplementedError

    def _backward(self, dout: Array, out: Array) -> Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(_Activation):
    """``max(x, 0)``; the gradient passes where the output is positive."""

    def _apply(self, x: Array) -> Array:
        return np.maximum(x, 0)

    def _backward(self, dout: Array, out: Array) -> Array:
        return np.where(out > 0, dout, 0)


class Tanh(_Activation):
    """``tanh(x)``; ``dx = dout · (1 − out²)``."""

    def _apply(self, x: Array) -> Array:
        return np.tanh(x)

    def _backward(self, dout: Array, out: Array) -> Array:
        dx = np.square(out)
        np.subtract(1, dx, out=dx)
        dx *= dout
        return dx


class Sigmoid(_Activation):
    """``1 / (1 + e^−x)`` (scipy's stable ``expit``); ``dx = dout · out · (1 − out)``."""

    def _apply(self, x: Array) -> Array:
        return scipy.special.expit(x)  # type: ignore[no-any-return]

    def _backward(self, dout: Array, out: Array) -> Array:
        dx = np.subtract(1, out)
        dx *= out
        dx *= dout
        return dx


class Softmax(_Activation):
    """Row-wise softmax, ``(N, C) -> (N, C)``. ``backward`` is the full Jacobian-vector product
    ``dx = s · (dout − Σ_j dout_j s_j)``.

    To train a classifier, prefer the fused ``softmax_cross_entropy`` on the logits: it is cheaper
    and stable. This layer is for models that need probabilities mid-network.
    """

    def _apply(self, x: Array) -> Array:
        return softmax(x)

    def _backward(self, dout: Array, out: Array) -> Array:
        weighted = np.einsum("ij,ij->i", dout, out)[:, np.newaxis]
        dx: Array = np.subtract(dout, weighted)
        dx *= out
        return dx


class Dropout(Layer):
    """Inverted dropout: keep each unit with probability ``keep_prob`` and scale the kept ones by
    ``1 / keep_prob``, so the expected activation is unchanged and eval mode is the identity.

    ``x: (N, D) -> (N, D)``. ``rng`` is a public ``np.random.Generator`` attribute, so a checkpoint
    can save and restore ``rng.bit_generator.state``.
    """

    def __init__(self, keep_prob: float, rng: np.random.Generator | int | None = None) -> None:
        self.keep_prob = check_scalar("keep_prob", keep_prob, KEEP_PROB)
        self.rng = np.random.default_rng(rng)
        self._mask: Array | None = None

    def forward(self, x: Array) -> Array:
        """``x: (N, D) -> (N, D)``; in eval mode (or if ``keep_prob == 1``) returns ``x`` itself."""
        if not self.training or self.keep_prob == 1.0:
            self._mask = None
            return x
        # One buffer: uniform draws → 0/1 keep mask → mask already scaled by 1/keep_prob.
        mask = self.rng.random(x.shape, dtype=x.dtype)
        np.less(mask, self.keep_prob, out=mask)
        mask *= 1.0 / self.keep_prob
        self._mask = mask
        return x * mask

    def backward(self, dout: Array) -> Array:
        """``dout: (N, D) -> dx: (N, D)``, through the same mask as the last forward."""
        return dout if self._mask is None else dout * self._mask

    @property
    def mask(self) -> Array | None:
        """The last train-mode forward's scaled keep mask ``(N, D)``: entries 0 or 1/keep_prob."""
        return self._mask

    def __repr__(self) -> str:
        return f"Dropout(keep_prob={self.keep_prob})"
