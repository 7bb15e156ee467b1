"""Step engines: the numeric half of training, behind ``Trainer``'s bookkeeping.

``Trainer`` (``tunery.nn.train``) owns what a run is: the epochs, the seeded batch order, the
history, callbacks, divergence, the schedule and checkpoints. An ``Engine`` owns how one model
computes: one mini-batch step, predictions, the optimizer's hyperparameters and the arrays a
checkpoint saves. ``NumpyEngine`` is the course's NumPy code; ``tunery.nn.torch.TorchEngine`` runs
the same network in PyTorch. The protocol names no layer type, so that other models (a CNN) can
bring their own engine.

An engine's ``state_dict()`` uses one layout whatever computes it (NumPy arrays, ``W`` as
``(in, out)``, the optimizer state as ``Optimizer.state_dict()``), which is what lets a run
saved by one engine resume in another.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from tunery._exceptions import ConfigError
from tunery.nn._base import Array, Layer
from tunery.nn.losses import softmax_cross_entropy
from tunery.nn.optimizers import Optimizer, _axpy

__all__ = ["Engine", "EngineFactory", "NumpyEngine", "TrainableModel"]


class TrainableModel(Protocol):
    """What ``NumpyEngine`` needs from a model (``tunery.nn.MLP`` has it all)."""

    layers: list[Layer]

    def forward(self, x: Array) -> Array: ...
    def backward(self, dlogits: Array) -> Array: ...
    def predict(self, x: Any) -> Array: ...
    def parameters(self) -> dict[str, Array]: ...
    def gradients(self) -> dict[str, Array]: ...
    def buffers(self) -> dict[str, Array]: ...
    def weight_keys(self) -> list[str]: ...
    def l2_penalty(self) -> float: ...
    def train(self) -> Any: ...
    def eval(self) -> Any: ...


class Engine(Protocol):
    """The numeric work of training one model; ``Trainer`` calls it in this order per epoch:
    ``set_hyperparameters(lr=...)``, ``start_epoch()``, ``train_batch`` per batch, ``end_epoch()``,
    then ``accuracy`` on the training (and validation) set."""

    @property
    def model(self) -> Any:
        """The model as the user holds it (trained weights are in it after ``end_epoch``)."""

    @property
    def optimizer(self) -> Optimizer:
        """The NumPy optimizer: its name, validated hyperparameters and state layout."""

    def load_data(self, X: Array, y: Array) -> None:
        """The training set ``X: (N, D)``, ``y: (N,)`` (validated) that batches index into."""

    def start_epoch(self) -> None:
        """Training mode, hyperparameters in effect: the next ``train_batch`` calls may run."""

    def train_batch(self, index: Array, l2: float) -> float:
        """Forward, cost (+ ``l2/(2m)·Σ‖W‖²``), backward and one step on the rows ``index: (m,)``;
        the cost. A NaN or inf cost takes no step."""

    def end_epoch(self) -> None:
        """The epoch's training is over: make ``model`` hold the trained weights."""

    def accuracy(self, X: Array, y: Array) -> float:
        """Share of ``X: (N, D)`` the model labels ``y: (N,)`` in eval mode."""

    def set_hyperparameters(self, **hyperparameters: float) -> None:
        """The optimizer's hyperparameters (validated, all or nothing)."""

    def hyperparameters(self) -> dict[str, float]:
        """The optimizer's current hyperparameters."""

    def state_dict(self) -> dict[str, Any]:
        """Copies of ``{"parameters", "buffers", "optimizer"}`` in the NumPy layout."""

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put back what ``state_dict()`` gave (keys and shapes checked)."""

    def generators(self) -> dict[str, np.random.Generator]:
        """The model's random generators (dropout...), by a stable name, for checkpoints."""


EngineFactory = Callable[[Any, Optimizer], Engine]
"""``factory(model, optimizer) -> Engine``: how ``Trainer`` gets its engine (the engine classes
are factories themselves; ``functools.partial`` adds options such as a device)."""


class NumpyEngine:
    """The NumPy engine: ``model`` (an ``MLP`` or any ``TrainableModel``) stepped by ``optimizer``.

    Kept fast: each batch is gathered by index into one reused buffer (the dataset is never
    copied), the first layer computes no input gradient (the model's own choice), and the L2 term
    and the optimizer update the live arrays in place (BLAS ``axpy``, chunked passes).
    """

    def __init__(self, model: TrainableModel, optimizer: Optimizer) -> None:
        self._model = model
        self._optimizer = optimizer
        self._X = np.empty((0, 0))
        self._y = np.empty(0, dtype=np.int64)
        self._batch_buffer = np.empty((0, 0))

    @property
    def model(self) -> TrainableModel:
        return self._model

    @property
    def optimizer(self) -> Optimizer:
        return self._optimizer

    def load_data(self, X: Array, y: Array) -> None:
        self._X, self._y = X, y
        self._batch_buffer = np.empty((0, X.shape[1]), dtype=X.dtype)

    def start_epoch(self) -> None:
        self._model.train()

    def train_batch(self, index: Array, l2: float) -> float:
        x = self._gather(index)
        logits = self._model.forward(x)
        cost, dlogits = softmax_cross_entropy(logits, self._y[index])
        if not math.isfinite(cost):
            return cost
        self._model.backward(dlogits)
        grads = self._model.gradients()
        params = self._model.parameters()
        if l2 > 0:
            m = len(index)
            cost += l2 / (2 * m) * self._model.l2_penalty()
            for key in self._model.weight_keys():
                _add_scaled(params[key], grads[key], l2 / m)
        if math.isfinite(cost):
            self._optimizer.step(params, grads)
        return cost

    def _gather(self, index: Array) -> Array:
        """The rows ``index`` of ``X`` copied into one reused buffer ``(len(index), D)``."""
        if len(self._batch_buffer) < len(index):
            self._batch_buffer = np.empty((len(index), self._X.shape[1]), dtype=self._X.dtype)
        out = self._batch_buffer[: len(index)]
        # mode="clip" lets take write straight into out (the indices are valid by construction).
        np.take(self._X, index, axis=0, out=out, mode="clip")
        return out

    def end_epoch(self) -> None:
        """Nothing to do: the NumPy model is the one trained."""

    def accuracy(self, X: Array, y: Array) -> float:
        return float(np.mean(self._model.predict(X) == y))

    def set_hyperparameters(self, **hyperparameters: float) -> None:
        self._optimizer.set(**hyperparameters)

    def hyperparameters(self) -> dict[str, float]:
        return self._optimizer.hyperparameters()

    def state_dict(self) -> dict[str, Any]:
        return {
            "parameters": {k: v.copy() for k, v in self._model.parameters().items()},
            "buffers": {k: v.copy() for k, v in self._model.buffers().items()},
            "optimizer": self._optimizer.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        copy_into(self._model.parameters(), state["parameters"], "parameters")
        copy_into(self._model.buffers(), state["buffers"], "buffers")
        self._optimizer.load_state_dict(state["optimizer"])

    def generators(self) -> dict[str, np.random.Generator]:
        return model_generators(self._model)


def model_generators(model: Any) -> dict[str, np.random.Generator]:
    """The generators a model draws from: its own (``"model"``) and each layer's
    (``"layers.<i>"``); the names checkpoints store them under."""
    found: dict[str, np.random.Generator] = {}
    model_rng = getattr(model, "rng", None)
    if isinstance(model_rng, np.random.Generator):
        found["model"] = model_rng
    for index, layer in enumerate(getattr(model, "layers", ())):
        layer_rng = getattr(layer, "rng", None)
        if isinstance(layer_rng, np.random.Generator):
            found[f"layers.{index}"] = layer_rng
    return found


def copy_into(live: Mapping[str, Array], saved: Mapping[str, Any], what: str) -> None:
    """Copy saved arrays into the model's live ones (keys and shapes must match, all checked
    before any array changes)."""
    if set(live) != set(saved):
        raise ConfigError(f"checkpoint {what}", sorted(saved), f"the model's keys {sorted(live)}")
    for key, target in live.items():
        source = np.asarray(saved[key])
        if source.shape != target.shape:
            raise ConfigError(f"checkpoint {what}[{key!r}]", source.shape, f"shape {target.shape}")
    for key, target in live.items():
        np.copyto(target, saved[key])


def _add_scaled(x: Array, y: Array, a: float) -> None:
    """``y += a·x`` in place: one BLAS pass when both are contiguous float arrays of one dtype."""
    alike = x.dtype == y.dtype and y.dtype in (np.float32, np.float64)
    if alike and x.flags.c_contiguous and y.flags.c_contiguous:
        _axpy(x.reshape(-1), y.reshape(-1), a)
    else:
        y += a * x
