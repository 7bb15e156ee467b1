"""Batch normalization, one mean and variance per feature (``BatchNorm``, ``z: (N, D)``) or per
channel of an image batch (``BatchNorm2d``, ``z: (N, C, H, W)``); and ``InstanceNorm2d``, one
per channel of each image, which needs no batch and no running statistics.

Train mode normalizes with the mini-batch's mean and biased variance and folds them into running
averages; eval mode normalizes with the running averages, so it works on any batch, even of one.
With the defaults it matches ``torch.nn.BatchNorm1d(D, eps=1e-5, momentum=0.1)`` in both modes:
torch's ``momentum`` weighs the new batch, ours weighs the running value
(``running ← m·running + (1 − m)·batch``), and, like torch, the running variance averages the
unbiased batch variance. ``BatchNorm2d`` matches ``torch.nn.BatchNorm2d`` the same way: its
statistics run over the ``m = N·H·W`` values of each channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tunery._exceptions import ConfigError
from tunery._validation import POSITIVE, Interval, check_scalar
from tunery.nn._base import Array, Layer, as_dtype, check_positive_int, column_sums
from tunery.nn.layers import NO_INPUT_GRAD

__all__ = ["BatchNorm", "BatchNorm2d", "InstanceNorm2d"]


@dataclass(frozen=True, slots=True)
class _Cache:
    """What backward needs from forward."""

    x_norm: Array  # (N, D): (z − μ) / √(σ² + ε)
    inv_std: Array  # (D,): 1 / √(σ² + ε)
    batch_stats: bool  # True when μ, σ² came from the batch itself (train mode)


class BatchNorm(Layer):
    """``out = γ · (z − μ) / √(σ² + ε) + β`` per feature; ``z, out: (N, num_features)``.

    Parameters ``gamma`` (starts at 1) and ``beta`` (starts at 0), gradients ``dgamma`` and
    ``dbeta``, and buffers ``running_mean`` (starts at 0) and ``running_var`` (starts at 1), all of
    shape ``(num_features,)``. Train mode needs a batch of at least two examples.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.9,
        dtype: Any = np.float32,
    ) -> None:
        self.num_features = check_positive_int("num_features", num_features)
        self.eps = check_scalar("eps", eps, POSITIVE)
        self.momentum = check_scalar("momentum", momentum, Interval(float, 0, 1))
        self.dtype = as_dtype(dtype)
        self.gamma: Array = np.ones(self.num_features, self.dtype)
        self.beta: Array = np.zeros(self.num_features, self.dtype)
        self.dgamma: Array = np.zeros_like(self.gamma)
        self.dbeta: Array = np.zeros_like(self.beta)
        self.running_mean: Array = np.zeros(self.num_features, self.dtype)
        self.running_var: Array = np.ones(self.num_features, self.dtype)
        self._cache: _Cache | None = None

    def forward(self, x: Array) -> Array:
        """``z: (N, num_features) -> out: (N, num_features)``."""
        x_norm = self._normalize_batch(x) if self.training else self._normalize_running(x)
        out = x_norm * self.gamma
        out += self.beta
        return out

    def backward(self, dout: Array) -> Array:
        """``dout: (N, num_features) -> dz: (N, num_features)``; fills ``dgamma`` and ``dbeta``.

        In train mode μ and σ² depend on every row, so (closed form, with ``x̂`` the normalized
        input) ``dz = γ / (N·√(σ² + ε)) · (N·dout − Σ dout − x̂ · Σ(dout · x̂))``. In eval mode they
        are constants and ``dz = dout · γ / √(σ² + ε)``.
        """
        if self._cache is None:
            raise RuntimeError("BatchNorm.backward called before forward")
        x_norm, inv_std = self._cache.x_norm, self._cache.inv_std
        np.copyto(self.dbeta, column_sums(dout))
        np.einsum("ij,ij->j", dout, x_norm, out=self.dgamma)
        scale = self.gamma * inv_std
        if not self._cache.batch_stats:
            dz: Array = dout * scale
            return dz
        n = dout.shape[0]
        dx: Array = x_norm * (self.dgamma / n)
        dx += self.dbeta / n
        np.subtract(dout, dx, out=dx)
        dx *= scale
        return dx

    def _normalize_batch(self, x: Array) -> Array:
        """Normalize with the batch's own statistics and fold them into the running averages."""
        n = x.shape[0]
        if n < 2:
            raise ConfigError(
                "batch size",
                n,
                "at least 2 examples in train mode, where the batch variance is estimated "
                "(call .eval() to normalize a single example with the running statistics)",
            )
        mean = column_sums(x)
        mean /= n
        x_norm: Array = x - mean
        # Column sums of squares without an (N, D) temporary; biased variance for normalizing.
        var = np.einsum("ij,ij->j", x_norm, x_norm)
        var /= n
        inv_std = np.sqrt(var + self.eps)
        np.reciprocal(inv_std, out=inv_std)
        x_norm *= inv_std
        self._cache = _Cache(x_norm, inv_std, batch_stats=True)
        self._update_running(mean, var, n)
        return x_norm

    def _update_running(self, mean: Array, biased_var: Array, n: int) -> None:
        """``running ← m·running + (1 − m)·batch``, with the unbiased variance ``σ²·n/(n − 1)``
        (``n`` values went into each feature's statistics)."""
        weight = 1.0 - self.momentum
        self.running_mean *= self.momentum
        self.running_mean += weight * mean
        self.running_var *= self.momentum
        self.running_var += (weight * n / (n - 1)) * biased_var

    def _normalize_running(self, x: Array) -> Array:
        """Normalize with the running statistics (eval mode): an affine map of each feature."""
        inv_std = np.sqrt(self.running_var + self.eps)
        np.reciprocal(inv_std, out=inv_std)
        x_norm = x - self.running_mean
        x_norm *= inv_std
        self._cache = _Cache(x_norm, inv_std, batch_stats=False)
        return x_norm

    def parameters(self) -> dict[str, Array]:
        return {"gamma": self.gamma, "beta": self.beta}

    def gradients(self) -> dict[str, Array]:
        return {"gamma": self.dgamma, "beta": self.dbeta}

    def buffers(self) -> dict[str, Array]:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def __repr__(self) -> str:
        return (
            f"BatchNorm({self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"dtype={self.dtype.name})"
        )


class BatchNorm2d(BatchNorm):
    """``out = γ · (z − μ) / √(σ² + ε) + β`` per channel; ``z, out: (N, C, H, W)``, ``C`` =
    ``num_features``.

    A channel is one feature seen at every pixel: its μ and σ² are taken over its ``m = N·H·W``
    values. So this is ``BatchNorm`` on the ``(N·H·W, C)`` matrix of channels-last pixels, and its
    closed-form backward holds with ``m`` rows: ``dz = γ / (m·√(σ² + ε)) · (m·dout − Σ dout −
    x̂ · Σ(dout · x̂))``, the sums per channel over ``(N, H, W)``. The matrix is a free view of
    the channels-last memory a ``Conv2D`` output has (any other input is copied into it once).
    Parameters, buffers, momentum and eps are ``BatchNorm``'s, shaped ``(C,)``. Train mode needs
    ``m >= 2``.
    """

    def forward(self, x: Array) -> Array:
        """``z: (N, C, H, W) -> out: (N, C, H, W)`` (a view of channels-last memory)."""
        if x.ndim != 4 or x.shape[1] != self.num_features:
            expected = f"an array of shape (N, {self.num_features}, H, W)"
            raise ConfigError("x", x.shape, expected)
        n, c, h, w = x.shape
        if self.training and n * h * w < 2:
            raise ConfigError(
                "batch size",
                f"{n} example of {h}×{w}",
                "at least 2 values per channel in train mode (call .eval() to use the running "
                "statistics)",
            )
        out = super().forward(x.transpose(0, 2, 3, 1).reshape(n * h * w, c))
        return out.reshape(n, h, w, c).transpose(0, 3, 1, 2)

    def backward(self, dout: Array) -> Array:
        """``dout: (N, C, H, W) -> dz: (N, C, H, W)``; fills ``dgamma`` and ``dbeta``."""
        n, c, h, w = dout.shape
        dz = super().backward(dout.transpose(0, 2, 3, 1).reshape(n * h * w, c))
        return dz.reshape(n, h, w, c).transpose(0, 3, 1, 2)

    def __repr__(self) -> str:
        return "BatchNorm2d" + super().__repr__().removeprefix("BatchNorm")


class InstanceNorm2d(Layer):
    """``out = (x − μ) / √(σ² + ε)`` per channel of each image; ``x, out: (N, C, H, W)``.

    μ and σ² (biased) are taken over the ``H·W`` pixels of one channel of one image, in train and
    eval mode alike, so a photo is judged by its own colours: a colour cast of the light (a gain
    per channel), its exposure and its contrast cancel out. No parameters: it matches
    ``torch.nn.InstanceNorm2d(C, eps=eps)`` (``affine=False``, no running statistics). The
    backward is ``BatchNorm``'s closed form with ``H·W`` values per statistic and γ = 1:
    ``dx = (dout − mean(dout) − x̂ · mean(dout · x̂)) / √(σ² + ε)``, the means per image and
    channel.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        self.num_channels = check_positive_int("num_channels", num_channels)
        self.eps = check_scalar("eps", eps, POSITIVE)
        self._cache: tuple[Array, Array] | None = None

    def forward(self, x: Array) -> Array:
        """``x: (N, C, H, W) -> out: (N, C, H, W)``."""
        if x.ndim != 4 or x.shape[1] != self.num_channels:
            raise ConfigError("x", x.shape, f"an array of shape (N, {self.num_channels}, H, W)")
        centred: Array = x - x.mean(axis=(2, 3), keepdims=True)
        var = np.mean(centred * centred, axis=(2, 3), keepdims=True)
        inv_std: Array = 1.0 / np.sqrt(var + self.eps)
        centred *= inv_std
        self._cache = (centred, inv_std)
        return centred

    def backward(self, dout: Array) -> Array:
        """``dout: (N, C, H, W) -> dx: (N, C, H, W)``."""
        if self._cache is None:
            raise RuntimeError("InstanceNorm2d.backward called before forward")
        if dout is NO_INPUT_GRAD:  # the model's first layer: nobody needs d(loss)/d(pixels)
            return dout
        x_norm, inv_std = self._cache
        dx: Array = dout - dout.mean(axis=(2, 3), keepdims=True)
        dx -= x_norm * np.mean(dout * x_norm, axis=(2, 3), keepdims=True)
        dx *= inv_std
        return dx

    def __repr__(self) -> str:
        return f"InstanceNorm2d({self.num_channels}, eps={self.eps})"
