"""The contract every layer of the NumPy engine keeps.

Rows are examples: a layer maps ``x: (N, D_in)`` to ``out: (N, D_out)``. ``forward`` keeps
what ``backward`` needs on the layer itself (a typed cache); ``backward(dout) -> dx`` returns the
gradient with respect to the input and stores the gradients of the layer's parameters on the layer
(``dW``, ``db``, ``dgamma``, ``dbeta``), written in place into arrays allocated once, so the arrays
returned by ``parameters()`` and ``gradients()`` stay valid for the layer's whole life.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from tunery._exceptions import ConfigError
from tunery._validation import check_int

Array = NDArray[Any]

__all__ = ["Array", "Layer", "as_dtype", "check_positive_int", "column_sums"]


class Layer:
    """Base class: train/eval mode, and named access to parameters, gradients and buffers.

    ``parameters()`` and ``gradients()`` return the live arrays under the same keys, so an optimizer
    can update the parameters in place. ``buffers()`` returns state that is not trained but must be
    checkpointed (batch norm's running statistics).
    """

    training: bool = True

    def forward(self, x: Array) -> Array:
        raise NotImplementedError

    def backward(self, dout: Array) -> Array:
        raise NotImplementedError

    def parameters(self) -> dict[str, Array]:
        return {}

    def gradients(self) -> dict[str, Array]:
        return {}

    def buffers(self) -> dict[str, Array]:
        return {}

    def train(self) -> Self:
        self.training = True
        return self

    def eval(self) -> Self:
        self.training = False
        return self

    def __call__(self, x: Array) -> Array:
        return self.forward(x)


def as_dtype(dtype: Any) -> np.dtype[Any]:
    """float32 by default; float64 for gradient checks. Anything else is a ConfigError."""
    try:
        resolved: np.dtype[Any] = np.dtype(dtype)
    except TypeError as error:
        raise ConfigError("dtype", dtype, "float32 or float64") from error
    if resolved not in (np.float32, np.float64):
        raise ConfigError("dtype", dtype, "float32 or float64")
    return resolved


def check_positive_int(field: str, value: object) -> int:
    """``value`` as an int if it is an integer >= 1 (bools are refused), else a ConfigError."""
    return check_int(field, value, 1)


TALL = 4096
"""Rows from which ``column_sums`` sums by BLAS."""


def column_sums(x: Array) -> Array:
    """``x.sum(axis=0)`` of an ``(m, D)`` matrix. A tall, narrow one (a batch norm's ``N·H·W``
    pixels × ``C`` channels, ``m >= TALL``) is summed as one BLAS product ``1ᵀ·x``, 20x faster than
    NumPy's reduction down the rows; a short one (a mini-batch of rows) by NumPy's pairwise sum,
    as fast there and rounding less in float32, as PyTorch's batch norm does."""
    if len(x) < TALL:
        sums: Array = x.sum(axis=0)
        return sums
    result: Array = np.ones(len(x), x.dtype) @ x
    return result
