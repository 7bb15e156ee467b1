"""Convolutional layers on image mini-batches ``x: (N, C, H, W)`` (PyTorch's layout).

Forward products run through ``sliding_window_view`` and one BLAS ``tensordot``; backward scatters
window gradients with a loop over the ``k × k`` kernel offsets only (never over pixels or
examples), which avoids ``np.add.at``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tunery._validation import check_int
from tunery.nn._base import Array, Layer, as_dtype, check_positive_int
from tunery.nn.layers import Weighted

__all__ = ["Conv2D", "Flatten", "MaxPool2D"]


def _windows(x: Array, kernel: int, stride: int) -> Array:
    """``(N, C, H, W) -> (N, C, H_out, W_out, k, k)``, a strided view (no copy)."""
    view = sliding_window_view(x, (kernel, kernel), axis=(2, 3))
    return view[:, :, ::stride, ::stride]


def _cached(array: Array | None, layer: Layer) -> Array:
    if array is None:
        raise RuntimeError(f"{type(layer).__name__}.backward called before forward")
    return array


class Conv2D(Weighted):
    """``out[n, f] = Σ_c x[n, c] ⋆ W[f, c] + b[f]``; ``W: (F, C, k, k)``, He-initialised."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        *,
        bias: bool = True,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float32,
    ) -> None:
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.kernel = check_positive_int("kernel", kernel)
        self.stride = check_positive_int("stride", stride)
        self.padding = check_int("padding", padding, 0)
        self.dtype = as_dtype(dtype)
        shape = (self.out_channels, self.in_channels, self.kernel, self.kernel)
        self.W: Array = np.random.default_rng(rng).standard_normal(shape, dtype=self.dtype)
        self.W *= math.sqrt(2.0 / (self.in_channels * self.kernel * self.kernel))
        self.b: Array | None = np.zeros(self.out_channels, self.dtype) if bias else None
        self.dW: Array = np.zeros_like(self.W)
        self.db: Array | None = None if self.b is None else np.zeros_like(self.b)
        self._x_shape: tuple[int, ...] | None = None
        self._cols: Array | None = None

    def _pad(self, x: Array) -> Array:
        p = self.padding
        return x if p == 0 else np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))

    def forward(self, x: Array) -> Array:
        """``x: (N, C, H, W) -> (N, F, H_out, W_out)``."""
        self._x_shape = x.shape
        cols = _windows(self._pad(x), self.kernel, self.stride)
        self._cols = cols
        out = np.tensordot(cols, self.W, axes=([1, 4, 5], [1, 2, 3]))  # (N, Ho, Wo, F)
        if self.b is not None:
            out += self.b
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    def backward(self, dout: Array) -> Array:
        """``dout: (N, F, H_out, W_out) -> dx: (N, C, H, W)``; fills ``dW``, ``db``."""
        cols = _cached(self._cols, self)
        assert self._x_shape is not None
        self.dW[...] = np.tensordot(dout, cols, axes=([0, 2, 3], [0, 2, 3]))
        if self.db is not None:
            np.sum(dout, axis=(0, 2, 3), out=self.db)
        n, c, h, w = self._x_shape
        p, k, s = self.padding, self.kernel, self.stride
        dxp = np.zeros((n, c, h + 2 * p, w + 2 * p), dout.dtype)
        ho, wo = dout.shape[2], dout.shape[3]
        # (N, Ho, Wo, C, k, k): every window's gradient in one BLAS product.
        dcols = np.tensordot(dout.transpose(0, 2, 3, 1), self.W, axes=([3], [0]))
        for i in range(k):
            for j in range(k):
                patch = dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
                dxp[:, :, i : i + s * ho : s, j : j + s * wo : s] += patch
        return dxp if p == 0 else dxp[:, :, p:-p, p:-p]

    def __repr__(self) -> str:
        return (
            f"Conv2D({self.in_channels}, {self.out_channels}, {self.kernel}, stride={self.stride}, "
            f"padding={self.padding}, bias={self.b is not None}, dtype={self.dtype.name})"
        )


class MaxPool2D(Layer):
    """Max over ``k × k`` windows every ``stride`` pixels; ties send the gradient to the first."""

    def __init__(self, kernel: int, stride: int | None = None) -> None:
        self.kernel = check_positive_int("kernel", kernel)
        self.stride = check_positive_int("stride", kernel if stride is None else stride)
        self._argmax: Array | None = None
        self._x_shape: tuple[int, ...] = ()

    def forward(self, x: Array) -> Array:
        """``x: (N, C, H, W) -> (N, C, H_out, W_out)``."""
        self._x_shape = x.shape
        cols = _windows(x, self.kernel, self.stride)
        flat = cols.reshape(*cols.shape[:4], -1)
        self._argmax = np.argmax(flat, axis=-1)
        return np.take_along_axis(flat, self._argmax[..., None], axis=-1)[..., 0]

    def backward(self, dout: Array) -> Array:
        """``dout: (N, C, H_out, W_out) -> dx: (N, C, H, W)``."""
        argmax = _cached(self._argmax, self)
        k, s = self.kernel, self.stride
        ho, wo = dout.shape[2], dout.shape[3]
        dx = np.zeros(self._x_shape, dout.dtype)
        for i in range(k):
            for j in range(k):
                hit = np.where(argmax == i * k + j, dout, 0)
                dx[:, :, i : i + s * ho : s, j : j + s * wo : s] += hit
        return dx

    def __repr__(self) -> str:
        return f"MaxPool2D({self.kernel}, stride={self.stride})"


class Flatten(Layer):
    """``(N, ...) -> (N, D)``, the seam between the convolutional body and a dense head."""

    def __init__(self) -> None:
        self._shape: tuple[int, ...] = ()

    def forward(self, x: Array) -> Array:
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: Array) -> Array:
        return dout.reshape(self._shape)

    def __repr__(self) -> str:
        return "Flatten()"
