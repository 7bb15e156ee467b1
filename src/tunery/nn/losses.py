"""Softmax and the fused softmax cross-entropy loss.

``logits: (N, C)`` are unnormalized scores, rows are examples; ``y: (N,)`` are integer class
labels in ``[0, C)``. The loss is the mean over the batch, so ``dlogits = (Ŷ − Y) / N``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special

from tunery._exceptions import ConfigError
from tunery.nn._base import Array, as_dtype, check_positive_int

__all__ = ["one_hot", "softmax", "softmax_cross_entropy"]


def softmax(z: Array) -> Array:
    """Row-wise softmax of ``z: (N, C)``, shifted by the row maximum so it never overflows.

    Returns ``(N, C)``: non-negative rows that sum to 1, in the dtype of ``z``.
    """
    return scipy.special.softmax(z, axis=-1)  # type: ignore[no-any-return]


def one_hot(y: Array, num_classes: int, *, dtype: Any = np.float32) -> Array:
    """Labels ``y: (N,)`` in ``[0, num_classes)`` as a one-hot matrix ``(N, num_classes)``."""
    num_classes = check_positive_int("num_classes", num_classes)
    labels = _check_labels(np.asarray(y), None, num_classes)
    return np.eye(num_classes, dtype=as_dtype(dtype))[labels]


def softmax_cross_entropy(logits: Array, y: Array) -> tuple[float, Array]:
    """Mean cross-entropy of ``softmax(logits)`` against the integer labels ``y``, and its gradient.

    ``logits: (N, C)``, ``y: (N,)`` integers in ``[0, C)``. Returns ``(loss, dlogits)`` where
    ``loss = −mean(log Ŷ[i, y_i])`` and ``dlogits: (N, C) = (Ŷ − Y) / N`` in the dtype of
    ``logits``. Log-softmax (log-sum-exp) keeps both finite for any finite logits, however large.
    """
    if logits.ndim != 2:
        raise ConfigError("logits", logits.shape, "a 2-D array (N, C)")
    n, num_classes = logits.shape
    labels = _check_labels(np.asarray(y), n, num_classes)
    rows = np.arange(n)
    log_probs = scipy.special.log_softmax(logits, axis=1)
    loss = -float(log_probs[rows, labels].mean())
    # Reuse the log-probabilities' buffer: Ŷ = exp(log Ŷ), then subtract Y and divide by N in place.
    dlogits = np.exp(log_probs, out=log_probs)
    dlogits[rows, labels] -= 1
    dlogits /= n
    return loss, dlogits


def _check_labels(y: Array, n: int | None, num_classes: int) -> Array:
    """``y``: integers of shape ``(n,)`` in ``[0, num_classes)`` (negative labels would wrap)."""
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        found = f"{y.dtype} array of shape {y.shape}"
        raise ConfigError("y", found, "integer labels of shape (N,)")
    if n is not None and y.shape[0] != n:
        raise ConfigError("y", y.shape, f"one label per row of logits, shape ({n},)")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        found = f"labels in [{y.min()}, {y.max()}]"
        raise ConfigError("y", found, f"labels in [0, {num_classes - 1}]")
    return y
