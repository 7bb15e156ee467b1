"""Convolutional layers on image mini-batches ``x: (N, C, H, W)`` (PyTorch's layout).

Convolutions run channels-last inside: ``sliding_window_view`` and one copy build the im2col
matrix, and one BLAS product per direction does the arithmetic. The input gradient of a stride-1
convolution is itself a convolution (of the padded output gradient with the flipped kernel); with
a larger stride, window gradients are scattered with a loop over the ``k × k`` kernel offsets only
(never over pixels or examples), which avoids ``np.add.at``. Outputs are ``(N, C, H, W)`` views of
channels-last memory; every layer here reads them in that order, so no transpose is copied
between layers. Work arrays are reused between batches of one shape; a cached im2col matrix
lives until the layer's next forward pass of that shape, after its backward.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tunery._validation import check_int
from tunery.nn._base import Array, Layer, as_dtype, check_positive_int, column_sums
from tunery.nn.layers import NO_INPUT_GRAD, Weighted

__all__ = ["Conv2D", "Flatten", "MaxPool2D"]


class _Buffers:
    """Work arrays reused from one batch to the next (a fresh 10 MB array per step costs page
    faults), one per name and shape; a few shapes are kept (the training batch, the last
    partial one, an evaluation chunk)."""

    def __init__(self, capacity: int = 6) -> None:
        self.capacity = capacity
        self._arrays: dict[tuple[str, tuple[int, ...], str], Array] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any, *, zero: bool = False) -> Array:
        key = (name, shape, np.dtype(dtype).name)
        found = self._arrays.get(key)
        if found is None:
            if len(self._arrays) >= self.capacity:
                self._arrays.pop(next(iter(self._arrays)))
            found = np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
            self._arrays[key] = found
        return found


def _in_layout_of(template: Array, values: Array) -> Array:
    """``values`` copied into an array with ``template``'s shape and memory order."""
    copy = np.empty_like(template, dtype=values.dtype)
    copy[...] = values
    return copy


def _cached(array: Array | None, layer: Layer) -> Array:
    if array is None:
        raise RuntimeError(f"{type(layer).__name__}.backward called before forward")
    return array


class Conv2D(Weighted):
    """``out[n, f] = Σ_c x[n, c] ⋆ W[f, c] + b[f]``; ``W: (F, C, k, k)``, He-initialised.

    With ``input_grad=False`` (the first layer of a model: nobody needs d(loss)/d(pixels))
    ``backward`` skips ``dx`` and returns ``NO_INPUT_GRAD``.
    """

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
        input_grad: bool = True,
    ) -> None:
        self.input_grad = bool(input_grad)
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
        self._cols: Array | None = None  # (N·Ho·Wo, C·k·k): the im2col matrix of the last input
        self._buffers = _Buffers()

    def forward(self, x: Array) -> Array:
        """``x: (N, C, H, W) -> (N, F, H_out, W_out)``.

        The work runs channels-last: one copy gathers every window of the ``(N, H, W, C)`` input
        into the im2col matrix ``(N·Ho·Wo, k·k·C)`` (kept for ``dW``; with ``C`` innermost it
        reads the input in runs of ``C`` values), and one BLAS product with ``W`` as
        ``(F, k·k·C)`` gives the output. The result is an ``(N, F, Ho, Wo)`` view of the
        channels-last ``(N, Ho, Wo, F)`` product: elementwise layers keep that memory order, so
        the next convolution reads its input channels-last with no transpose ever copied.
        """
        self._x_shape = x.shape
        n, c, h, w = x.shape
        p, k, s = self.padding, self.kernel, self.stride
        pixels = x.transpose(0, 2, 3, 1)  # (N, H, W, C), free when x is channels-last
        if p:
            shape = (n, h + 2 * p, w + 2 * p, c)
            padded = self._buffers.get("padded", shape, x.dtype, zero=True)
            padded[:, p : p + h, p : p + w, :] = pixels  # the border stays zero from allocation
            pixels = padded
        windows = sliding_window_view(pixels, (k, k), axis=(1, 2))[:, ::s, ::s]
        ho, wo = windows.shape[1], windows.shape[2]  # windows: (N, Ho, Wo, C, k, k), a view
        cols = self._buffers.get("cols", (n, ho, wo, k, k, c), x.dtype)
        np.copyto(cols, windows.transpose(0, 1, 2, 4, 5, 3))
        matrix = cols.reshape(n * ho * wo, k * k * c)
        self._cols = matrix
        out = matrix @ self._kernel_rows().T  # (N·Ho·Wo, F)
        if self.b is not None:
            out += self.b
        return out.reshape(n, ho, wo, self.out_channels).transpose(0, 3, 1, 2)

    def _kernel_rows(self) -> Array:
        """``W`` as ``(F, k·k·C)``, in the im2col matrix's column order (a small copy)."""
        return self.W.transpose(0, 2, 3, 1).reshape(self.out_channels, -1)

    def backward(self, dout: Array) -> Array:
        """``dout: (N, F, H_out, W_out) -> dx: (N, C, H, W)``; fills ``dW``, ``db``.

        ``dW = doutᵀ · cols`` and ``dcols = dout · W`` are BLAS products; ``dcols`` goes back to
        the pixels with one strided add per kernel offset (``k²`` of them, never a loop over
        pixels or examples), into a channels-last buffer like the forward output.
        """
        cols = _cached(self._cols, self)
        assert self._x_shape is not None
        f, k = self.out_channels, self.kernel
        n, ho, wo = dout.shape[0], dout.shape[2], dout.shape[3]
        _, c, h, w = self._x_shape
        flat = dout.transpose(0, 2, 3, 1).reshape(n * ho * wo, f)  # free when channels-last
        grad_rows = flat.T @ cols  # (F, k·k·C)
        np.copyto(self.dW, grad_rows.reshape(f, k, k, c).transpose(0, 3, 1, 2))
        if self.db is not None:
            np.copyto(self.db, column_sums(flat))
        if not self.input_grad:
            return NO_INPUT_GRAD
        if self.stride == 1 and self.padding < k:
            return self._input_gradient_as_convolution(dout, (n, c, h, w))
        p, s = self.padding, self.stride
        dcols = (flat @ self._kernel_rows()).reshape(n, ho, wo, k, k, c)
        dxp = np.zeros((n, h + 2 * p, w + 2 * p, c), dout.dtype)
        for i in range(k):
            for j in range(k):
                dxp[:, i : i + s * ho : s, j : j + s * wo : s, :] += dcols[:, :, :, i, j, :]
        return dxp[:, p : p + h, p : p + w, :].transpose(0, 3, 1, 2)

    def _input_gradient_as_convolution(self, dout: Array, shape: tuple[int, ...]) -> Array:
        """``dx`` of a stride-1 convolution as one more convolution: ``dout`` padded by
        ``k − 1 − p`` and convolved with ``W`` flipped in space and with ``F`` and ``C`` swapped
        (im2col + one BLAS product, no scatter)."""
        n, c, h, w = shape
        k, f = self.kernel, self.out_channels
        q = k - 1 - self.padding
        ho, wo = dout.shape[2], dout.shape[3]
        grads = dout.transpose(0, 2, 3, 1)  # (N, Ho, Wo, F)
        if q:
            padded = self._buffers.get(
                "dpadded", (n, ho + 2 * q, wo + 2 * q, f), dout.dtype, zero=True
            )
            padded[:, q : q + ho, q : q + wo, :] = grads
            grads = padded
        windows = sliding_window_view(grads, (k, k), axis=(1, 2))  # (N, H, W, F, k, k)
        cols = self._buffers.get("dcols", (n, h, w, k, k, f), dout.dtype)
        np.copyto(cols, windows.transpose(0, 1, 2, 4, 5, 3))
        flipped = self.W[:, :, ::-1, ::-1].transpose(2, 3, 0, 1).reshape(k * k * f, c)
        dx = cols.reshape(n * h * w, k * k * f) @ flipped  # (N·H·W, C)
        return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2)

    def __repr__(self) -> str:
        return (
            f"Conv2D({self.in_channels}, {self.out_channels}, {self.kernel}, stride={self.stride}, "
            f"padding={self.padding}, bias={self.b is not None}, dtype={self.dtype.name})"
        )


class MaxPool2D(Layer):
    """Max over ``k × k`` windows every ``stride`` pixels; ties send the gradient to the first
    (in row-major order within the window, as ``argmax`` and PyTorch do)."""

    def __init__(self, kernel: int, stride: int | None = None) -> None:
        self.kernel = check_positive_int("kernel", kernel)
        self.stride = check_positive_int("stride", kernel if stride is None else stride)
        self._x: Array | None = None
        self._out: Array | None = None

    def _offsets(self, x: Array, ho: int, wo: int) -> list[tuple[int, int, Array]]:
        """``(i, j, x[:, :, i + s·r, j + s·q])`` for each window offset ``(i, j)``: strided views
        ``(N, C, Ho, Wo)``, no copies."""
        k, s = self.kernel, self.stride
        return [
            (i, j, x[:, :, i : i + s * (ho - 1) + 1 : s, j : j + s * (wo - 1) + 1 : s])
            for i in range(k)
            for j in range(k)
        ]

    def forward(self, x: Array) -> Array:
        """``x: (N, C, H, W) -> (N, C, H_out, W_out)``: the elementwise maximum of the ``k²``
        offset views (no window array is built)."""
        k, s = self.kernel, self.stride
        ho, wo = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
        views = self._offsets(x, ho, wo)
        out = views[0][2].copy(order="K")  # the input's memory order (channels-last)
        for _, _, view in views[1:]:
            np.maximum(out, view, out=out)
        self._x, self._out = x, out
        return out

    def backward(self, dout: Array) -> Array:
        """``dout: (N, C, H_out, W_out) -> dx: (N, C, H, W)``: each window's gradient goes to the
        first offset that holds its maximum."""
        x, out = _cached(self._x, self), _cached(self._out, self)
        k, s = self.kernel, self.stride
        ho, wo = out.shape[2], out.shape[3]
        dx = np.zeros_like(x, dtype=dout.dtype)  # in x's memory order, as the views are
        if dout.strides != out.strides:  # (a Flatten's gradient is NCHW): one small copy, so
            dout = _in_layout_of(out, dout)  # the passes below all walk memory in one order
        offsets = self._offsets(x, ho, wo)
        hit = np.empty_like(out, dtype=bool)
        unclaimed = np.ones_like(out, dtype=bool)
        for number, (i, j, view) in enumerate(offsets):
            np.equal(view, out, out=hit)
            if number:  # every window is unclaimed at the first offset
                hit &= unclaimed
            if number < len(offsets) - 1:
                np.logical_xor(unclaimed, hit, out=unclaimed)  # hit ⊆ unclaimed: removes it
            target = dx[:, :, i : i + s * (ho - 1) + 1 : s, j : j + s * (wo - 1) + 1 : s]
            if s >= k:  # windows do not overlap: each pixel is written once
                np.multiply(dout, hit, out=target)  # ~3x faster than copyto(where=hit)
            else:
                target += dout * hit
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
