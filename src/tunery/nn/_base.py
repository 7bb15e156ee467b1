"""The contract every layer of the NumPy engine keeps.

Rows are examples: a layer maps ``x: (N, D_in)`` to ``out: (N, D_out)``. ``forward`` keeps what
``backward`` needs on the layer itself (a typed cache); ``backward(dout)`` returns ``dx`` and stores the
gradients of the layer's parameters on the layer (``dW``, ``db``, ``dgamma``, ``dbeta``).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]

__all__ = ["Array", "Layer", "as_dtype"]


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
    """float32 by default; float64 for gradient checks."""
    resolved = np.dtype(dtype)
    if resolved not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected float32 or float64, got {resolved}")
    return resolved
