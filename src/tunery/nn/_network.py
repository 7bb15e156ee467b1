"""What every network of the engine shares: a list of layers run in order, with named access.

``MLP`` and ``CNN`` are ``Network``s: ``forward`` runs ``self.layers`` in order, ``backward`` runs
them in reverse, and ``parameters()``, ``gradients()`` and ``buffers()`` merge the layers' own
dictionaries under ``"{layer_index}.{name}"`` keys (``"0.W"``, ``"1.gamma"``), returning the live
arrays that an optimizer updates in place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike

from tunery._exceptions import ConfigError
from tunery.nn._base import Array, Layer
from tunery.nn.layers import Weighted
from tunery.nn.losses import softmax

__all__ = ["Network"]


class Network(Layer):
    """A classifier made of ``self.layers``; subclasses build them and shape the input."""

    layers: list[Layer]
    dtype: np.dtype[Any]

    def forward(self, x: ArrayLike) -> Array:
        out = self.prepare_input(x)
        for layer in self.layers:
            out = layer.forward(out)
        return out

    def prepare_input(self, x: ArrayLike) -> Array:
        """``x`` cast to the model's dtype and checked (and shaped) for the first layer."""
        raise NotImplementedError

    def backward(self, dlogits: Array) -> Array:
        """``dlogits: (N, C)``; fills every layer's gradients and returns the first layer's ``dx``
        (``NO_INPUT_GRAD`` when it computes none)."""
        grad = dlogits
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def predict_proba(self, x: ArrayLike) -> Array:
        """Class probabilities ``(N, C)`` in eval mode (running BN statistics, no dropout)."""
        return softmax(self._eval_forward(x))

    def predict(self, x: ArrayLike) -> Array:
        """Predicted class indices ``(N,)`` (int64), in eval mode."""
        labels: Array = np.argmax(self._eval_forward(x), axis=1)
        return labels

    def _eval_forward(self, x: ArrayLike) -> Array:
        was_training = self.training
        self.eval()
        try:
            return self.forward(x)
        finally:
            if was_training:
                self.train()

    def train(self) -> Self:
        self.training = True
        for layer in self.layers:
            layer.train()
        return self

    def eval(self) -> Self:
        self.training = False
        for layer in self.layers:
            layer.eval()
        return self

    def parameters(self) -> dict[str, Array]:
        return self._collect(lambda layer: layer.parameters())

    def gradients(self) -> dict[str, Array]:
        return self._collect(lambda layer: layer.gradients())

    def buffers(self) -> dict[str, Array]:
        return self._collect(lambda layer: layer.buffers())

    def _collect(self, part: Callable[[Layer], dict[str, Array]]) -> dict[str, Array]:
        """One layer-level dictionary per layer, merged under ``"{layer_index}.{name}"`` keys."""
        return {f"{i}.{k}": v for i, lay in enumerate(self.layers) for k, v in part(lay).items()}

    def weight_keys(self) -> list[str]:
        """Keys of the weights (Dense and Conv2D ``W``), the only parameters L2 applies to."""
        return [f"{i}.W" for i, layer in enumerate(self.layers) if isinstance(layer, Weighted)]

    def l2_penalty(self) -> float:
        """``Σ ‖W‖²`` over the weights (not biases, γ, β); a cost adds ``λ/(2N)`` times it."""
        params = self.parameters()
        return sum(float(np.vdot(params[key], params[key])) for key in self.weight_keys())

    def state_dict(self) -> dict[str, Array]:
        """Copies of every parameter and buffer, under their keys (for checkpoints)."""
        return {key: array.copy() for key, array in {**self.parameters(), **self.buffers()}.items()}

    def load_state_dict(self, state: Mapping[str, ArrayLike]) -> None:
        """Copy ``state`` (from ``state_dict()``) into the live arrays; keys, shapes must match."""
        live = {**self.parameters(), **self.buffers()}
        if set(state) != set(live):
            found = sorted(set(state) ^ set(live))
            expected = f"exactly the keys {sorted(live)}"
            raise ConfigError("state", f"mismatched keys {found}", expected)
        for key, target in live.items():
            source = np.asarray(state[key])
            if source.shape != target.shape:
                raise ConfigError(f"state[{key!r}]", source.shape, f"shape {target.shape}")
            np.copyto(target, source)
