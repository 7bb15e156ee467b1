"""The multi-layer perceptron the course builds: ``[Dense → BatchNorm → activation → Dropout] × L``.

Rows are examples: ``x: (N, sizes[0])`` goes in, ``logits: (N, sizes[-1])`` come out; the loss
(``softmax_cross_entropy``) stays outside the model so that training, evaluation and prediction
share one forward pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from tunery._exceptions import ConfigError
from tunery._validation import KEEP_PROB, check_int, check_scalar
from tunery.nn._base import Array, Layer, as_dtype, check_positive_int
from tunery.nn._network import Network
from tunery.nn.batchnorm import BatchNorm
from tunery.nn.layers import Dense, Dropout, Init, ReLU, Sigmoid, Tanh

__all__ = ["MLP", "Activation"]

Activation = Literal["relu", "tanh", "sigmoid"]

_ACTIVATIONS: dict[str, type[Layer]] = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}
# He for ReLU (half the units are off), Glorot for the saturating ones.
_INITS: dict[str, Init] = {"relu": "he", "tanh": "xavier", "sigmoid": "xavier"}
_CONFIG_KEYS = ("sizes", "batchnorm", "activation", "keep_prob", "seed", "dtype")


class MLP(Network):
    """A fully connected classifier; ``sizes = [D, h1, ..., C]``.

    Each hidden block is ``Dense → [BatchNorm] → activation → [Dropout]``. A Dense layer followed by
    batch norm has no bias (β replaces it); the final Dense has a bias and produces the logits
    ``(N, C)``. ``batchnorm`` is one flag for every hidden layer or one per hidden layer; dropout is
    added when ``keep_prob < 1``. Weights and dropout masks are drawn from ``self.rng``
    (``np.random.default_rng(seed)``), so a model is a pure function of its config.

    ``parameters()``, ``gradients()`` and ``buffers()`` use the keys ``"{layer_index}.{name}"``
    (``"0.W"``, ``"1.gamma"``, ...) and return the live arrays: an optimizer updates them in place.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        batchnorm: bool | Sequence[bool] = True,
        activation: Activation = "relu",
        keep_prob: float = 1.0,
        seed: int = 0,
        dtype: Any = np.float32,
    ) -> None:
        self.sizes: tuple[int, ...] = _check_sizes(sizes)
        self.batchnorm: tuple[bool, ...] = _check_batchnorm(batchnorm, len(self.sizes) - 2)
        if activation not in _ACTIVATIONS:
            raise ConfigError("activation", activation, " or ".join(map(repr, _ACTIVATIONS)))
        self.activation: Activation = activation
        self.keep_prob = check_scalar("keep_prob", keep_prob, KEEP_PROB)
        self.seed = check_int("seed", seed, 0)
        self.dtype = as_dtype(dtype)
        self.rng = np.random.default_rng(self.seed)
        self.layers: list[Layer] = self._build_layers()

    def _build_layers(self) -> list[Layer]:
        layers: list[Layer] = []
        last = len(self.sizes) - 2
        for index, (fan_in, fan_out) in enumerate(pairwise(self.sizes)):
            normalized = index < last and self.batchnorm[index]
            layers.append(
                Dense(
                    fan_in,
                    fan_out,
                    bias=not normalized,
                    init=_INITS[self.activation],
                    rng=self.rng,
                    dtype=self.dtype,
                    input_grad=index > 0,  # nobody needs d(loss)/d(pixels)
                )
            )
            if index == last:
                break
            if normalized:
                layers.append(BatchNorm(fan_out, dtype=self.dtype))
            layers.append(_ACTIVATIONS[self.activation]())
            if self.keep_prob < 1:
                layers.append(Dropout(self.keep_prob, self.rng))
        return layers

    def prepare_input(self, x: ArrayLike) -> Array:
        """``x: (N, sizes[0])`` cast to the model's dtype (ConfigError for another shape)."""
        out = np.asarray(x, dtype=self.dtype)
        if out.ndim != 2 or out.shape[1] != self.sizes[0]:
            raise ConfigError("x", out.shape, f"an array of shape (N, {self.sizes[0]})")
        return out

    def config(self) -> dict[str, Any]:
        """Plain JSON-able settings; ``MLP.from_config(model.config())`` rebuilds the same model."""
        return {
            "sizes": list(self.sizes),
            "batchnorm": list(self.batchnorm),
            "activation": self.activation,
            "keep_prob": self.keep_prob,
            "seed": self.seed,
            "dtype": self.dtype.name,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MLP:
        """A model from ``config()``'s dictionary, freshly initialized (load weights after)."""
        unknown = sorted(set(config) - set(_CONFIG_KEYS))
        if unknown:
            raise ConfigError("config", unknown, f"keys among {list(_CONFIG_KEYS)}")
        if "sizes" not in config:
            raise ConfigError("config", sorted(config), "a 'sizes' key")
        settings = dict(config)
        return cls(settings.pop("sizes"), **settings)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"MLP({settings})"


def _check_sizes(sizes: object) -> tuple[int, ...]:
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise ConfigError("sizes", sizes, "a sequence [D, h1, ..., C] of at least 2 layer widths")
    return tuple(check_positive_int(f"sizes[{i}]", size) for i, size in enumerate(sizes))


def _check_batchnorm(batchnorm: object, hidden: int) -> tuple[bool, ...]:
    if isinstance(batchnorm, bool):
        return (bool(batchnorm),) * hidden
    flags = tuple(batchnorm) if isinstance(batchnorm, Sequence) else None
    if flags is None or len(flags) != hidden or not all(isinstance(f, bool) for f in flags):
        expected = f"a bool or {hidden} bools (one per hidden layer)"
        raise ConfigError("batchnorm", batchnorm, expected)
    return tuple(bool(f) for f in flags)
