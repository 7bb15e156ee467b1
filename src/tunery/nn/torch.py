"""The NumPy engine's networks in PyTorch: the same layers and update rules, weights both ways.

PyTorch is an optional extra (``pip install 'tunery[torch]'``); this module (with
``tunery.nn._torch_layers``, its layer twins) is the only part of tunery that imports it, and only
when it is imported itself.

- ``TorchMLP`` mirrors ``MLP`` layer for layer (``model.layers[i]`` is the twin of
  ``mlp.layers[i]``): ``Linear`` (no bias before ``BatchNorm1d``), ``BatchNorm1d`` (eps 1e-5,
  torch momentum 0.1 = our 0.9), ``ReLU`` / ``Tanh`` / ``Sigmoid``, inverted dropout, and a final
  ``Linear`` that returns the logits; the cost is ``nn.CrossEntropyLoss``. Built from the same
  config it starts from the same weights, so both engines train the same network.
- ``TorchCNN`` mirrors ``CNN`` the same way: ``Conv2d`` (the same ``(F, C, k, k)`` weights),
  ``BatchNorm2d``, ``ReLU``, ``MaxPool2d``, ``Flatten`` and the ``Linear`` head; it takes the
  same channels-last rows (or ``(N, C, H, W)`` images).
- ``to_torch(mlp)``, ``from_torch(model, mlp)`` and ``copy_weights(source, target)`` copy
  parameters and batch-norm running statistics exactly. Our ``W`` is ``(in, out)``
  (``x @ W``), torch's ``Linear.weight`` is ``(out, in)`` (``x @ weight.T``): one is the other
  transposed. The torch model takes the NumPy model's dtype.
- ``make_torch_optimizer`` builds the ``torch.optim`` optimizer that takes the same steps as
  ``make_optimizer`` with the same hyperparameters.
- ``TorchEngine`` is the step engine (``tunery.nn.engine``) that trains the twin behind the one
  ``Trainer``: the same batches, cost, per-epoch metrics and checkpoints; the trained weights land
  in the NumPy model. ``TorchTrainer`` and ``fit_torch`` are ``Trainer`` and ``fit`` with it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

try:
    import torch
    from torch import nn
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "tunery.nn.torch needs PyTorch, an optional extra: pip install 'tunery[torch]'"
    ) from error

from tunery._exceptions import ConfigError
from tunery.nn._base import Array
from tunery.nn._network import Network
from tunery.nn._torch_layers import (
    TorchDropout,
    copy_parameters,
    numpy_layout,
    torch_dtype,
    torch_layout,
    torch_tensors,
    twin_of,
)
from tunery.nn.cnn import CNN
from tunery.nn.engine import EngineFactory, NumpyEngine, model_generators
from tunery.nn.layers import Dropout
from tunery.nn.model import MLP, Activation
from tunery.nn.optimizers import Optimizer, make_optimizer
from tunery.nn.train import History, Trainer, fit

__all__ = [
    "TorchCNN",
    "TorchDropout",
    "TorchEngine",
    "TorchMLP",
    "TorchTrainer",
    "copy_weights",
    "fit_torch",
    "from_torch",
    "make_torch_optimizer",
    "set_torch_hyperparameters",
    "to_torch",
    "torch_dtype",
    "torch_engine",
]


class TorchMLP(nn.Module):
    """``MLP(sizes, batchnorm=..., activation=..., keep_prob=..., seed=..., dtype=...)`` in PyTorch.

    ``forward(x: (N, sizes[0])) -> logits: (N, sizes[-1])``. ``self.layers`` is an
    ``nn.Sequential`` whose ``i``-th module is the twin of ``MLP.layers[i]``; the initial weights
    are the NumPy model's for the same seed. ``self.criterion`` is ``nn.CrossEntropyLoss()``
    (mean over the batch, like ``softmax_cross_entropy``).
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
        super().__init__()
        # The NumPy model validates the config and draws the initial weights.
        twin = MLP(
            sizes,
            batchnorm=batchnorm,
            activation=activation,
            keep_prob=keep_prob,
            seed=seed,
            dtype=dtype,
        )
        self.sizes = twin.sizes
        self.dtype = torch_dtype(twin.dtype)
        self.settings: dict[str, Any] = twin.config()
        self.layers = nn.Sequential(*(twin_of(layer, self.dtype) for layer in twin.layers))
        self.criterion = nn.CrossEntropyLoss()
        copy_weights(twin, self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (N, sizes[0]) -> logits: (N, sizes[-1])``."""
        out: torch.Tensor = self.layers(x)
        return out

    def config(self) -> dict[str, Any]:
        """The ``MLP.config()`` this model mirrors (``TorchMLP(**config)`` rebuilds it)."""
        return dict(self.settings)


class TorchCNN(nn.Module):
    """``CNN(image_shape, num_classes, conv=..., dense=..., batchnorm=..., pool=..., seed=...,
    dtype=...)`` in PyTorch: ``Conv2d`` → ``BatchNorm2d`` → ``ReLU`` → ``MaxPool2d`` blocks, then
    ``Flatten`` and the ``Linear`` head.

    ``forward`` takes rows ``(N, H·W·C)`` flattened channels-last (as ``tunery.data`` gives them)
    or images ``(N, C, H, W)``, like ``CNN.forward``. ``self.layers[i]`` is the twin of
    ``CNN.layers[i]``; the initial weights are the NumPy model's for the same seed.
    """

    def __init__(self, image_shape: Sequence[int], num_classes: int, **settings: Any) -> None:
        super().__init__()
        twin = CNN(image_shape, num_classes, **settings)
        self.sizes = twin.sizes
        self.image_shape = twin.image_shape
        self.channels = twin.channels
        self.dtype = torch_dtype(twin.dtype)
        self.settings: dict[str, Any] = twin.config()
        self.layers = nn.Sequential(*(twin_of(layer, self.dtype) for layer in twin.layers))
        self.criterion = nn.CrossEntropyLoss()
        copy_parameters(twin, self.layers, to_numpy=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rows ``(N, H·W·C)`` or images ``(N, C, H, W)`` → logits ``(N, num_classes)``."""
        if x.ndim == 2:
            height, width = self.image_shape[:2]
            x = x.reshape(len(x), height, width, self.channels).permute(0, 3, 1, 2)
        out: torch.Tensor = self.layers(x)
        return out

    def config(self) -> dict[str, Any]:
        """The ``CNN.config()`` this model mirrors."""
        return dict(self.settings)


TorchNetwork = TorchMLP | TorchCNN


# -- copying weights ------------------------------------------------------------------------------


def to_torch(network: MLP | CNN) -> TorchMLP | TorchCNN:
    """The twin (``TorchMLP`` or ``TorchCNN``) with ``network``'s config, weights, running
    statistics and dtype.

    Its dropout layers draw their masks from the network's own generator (shared, not copied):
    from the same generator state, either model drops the same units.
    """
    if isinstance(network, CNN):
        model: TorchNetwork = TorchCNN(
            network.image_shape, network.num_classes, **_cnn_settings(network)
        )
    else:
        model = TorchMLP(**network.config())
    copy_weights(network, model)
    for layer, module in zip(network.layers, model.layers, strict=True):
        if isinstance(layer, Dropout) and isinstance(module, TorchDropout):
            module.rng = layer.rng
    return model


def _cnn_settings(network: CNN) -> dict[str, Any]:
    config = network.config()
    return {k: v for k, v in config.items() if k not in ("kind", "image_shape", "num_classes")}


def from_torch(model: TorchMLP | TorchCNN, network: MLP | CNN) -> MLP | CNN:
    """Copy ``model``'s weights and running statistics into ``network`` (in place); returns it.

    Values are cast to ``network``'s dtype.
    """
    copy_weights(model, network)
    return network


def copy_weights(source: MLP | CNN | TorchNetwork, target: MLP | CNN | TorchNetwork) -> None:
    """Copy every parameter and batch-norm buffer from ``source`` to ``target``, either way
    (NumPy network → its twin, or twin → network).

    The two must have the same architecture (``ConfigError`` otherwise). ``W (in, out)`` goes to
    ``weight (out, in)`` transposed, and back (convolution weights keep their layout); batch-norm
    ``eps`` and ``momentum`` follow too.
    """
    if isinstance(source, Network) and isinstance(target, TorchNetwork):
        copy_parameters(source, target.layers, to_numpy=False)
    elif isinstance(source, TorchNetwork) and isinstance(target, Network):
        copy_parameters(target, source.layers, to_numpy=True)
    else:
        found = f"{type(source).__name__} → {type(target).__name__}"
        raise ConfigError("copy_weights", found, "a network → its torch twin, or back")


# -- optimizers -----------------------------------------------------------------------------------


def make_torch_optimizer(
    name: str, params: Iterable[torch.Tensor], **hyperparameters: float
) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimizer that steps like ``make_optimizer(name, **hyperparameters)``.

    Same names ("gd", "momentum", "rmsprop", "adam"), hyperparameters (``lr``, ``beta``,
    ``beta1``, ``beta2``, ``eps``), defaults and validation as the NumPy optimizers:

    - ``gd``: ``SGD(lr)``.
    - ``momentum``: ``SGD(lr=lr·(1 − β), momentum=β)``. The course averages the gradients,
      ``v = β·v + (1 − β)·g``, ``W -= lr·v``; torch sums them, ``b = β·b + g``,
      ``W -= lr'·b``. Both start at zero, so by induction ``b = v / (1 − β)`` at every step
      (``v/(1 − β) = β·v_prev/(1 − β) + g``), and the steps agree exactly when
      ``lr' = lr·(1 − β)``: torch's form folds the ``(1 − β)`` into the learning rate.
    - ``rmsprop``: ``RMSprop(lr, alpha=β, eps)`` (torch too adds ε outside the square root).
    - ``adam``: ``Adam(lr, betas=(β1, β2), eps)``, fused into one kernel per step where the
      device and dtype support it (``fused=True``), else torch's default implementation.
    """
    checked = make_optimizer(name, **hyperparameters)  # validates and fills in the defaults
    settings = _torch_settings(checked.name, checked.hyperparameters())
    group = list(params)
    if checked.name == "adam":
        try:
            return torch.optim.Adam(group, **settings, fused=True)
        except RuntimeError:  # no fused kernel for this device or dtype
            pass
    return _TORCH_OPTIMIZERS[checked.name](group, **settings)


def set_torch_hyperparameters(
    optimizer: torch.optim.Optimizer, name: str, **hyperparameters: float
) -> None:
    """Give a ``make_torch_optimizer(name, ...)`` optimizer new hyperparameters between steps (a
    schedule's ``lr``), through the same mapping and validation. As in ``make_optimizer``, those
    not given take their defaults, so pass them all.

    A new momentum β' rescales torch's sum ``b = v / (1 − β)`` to ``v / (1 − β')``, so the
    course's average ``v`` carries over unchanged, as it does in ``Momentum``.
    """
    checked = make_optimizer(name, **hyperparameters)
    settings = _torch_settings(checked.name, checked.hyperparameters())
    for group in optimizer.param_groups:
        if checked.name == "momentum" and group["momentum"] != settings["momentum"]:
            rescale = (1.0 - group["momentum"]) / (1.0 - settings["momentum"])
            for param in group["params"]:
                buffer = optimizer.state.get(param, {}).get("momentum_buffer")
                if buffer is not None:
                    buffer.mul_(rescale)
        group.update(settings)


_TORCH_OPTIMIZERS: Mapping[str, type[torch.optim.Optimizer]] = {
    "gd": torch.optim.SGD,
    "momentum": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
}


def _torch_settings(kind: str, hp: Mapping[str, float]) -> dict[str, Any]:
    """Torch's keyword arguments for our optimizer ``kind`` with the hyperparameters ``hp``."""
    if kind == "momentum":
        return {"lr": hp["lr"] * (1.0 - hp["beta"]), "momentum": hp["beta"]}
    if kind == "rmsprop":
        return {"lr": hp["lr"], "alpha": hp["beta"], "eps": hp["eps"]}
    if kind == "adam":
        return {"lr": hp["lr"], "betas": (hp["beta1"], hp["beta2"]), "eps": hp["eps"]}
    return {"lr": hp["lr"]}


# -- training -------------------------------------------------------------------------------------


class TorchEngine:
    """The PyTorch engine for ``Trainer``: ``model`` (the NumPy ``MLP`` or ``CNN``) trained as its
    twin.

    The twin ``self.torch_model`` (``to_torch(model)``, on ``device``) takes the steps, through
    ``make_torch_optimizer``'s ``self.torch_optimizer``; ``optimizer`` is the NumPy ``Optimizer``,
    kept for its name and its (mutable, validated) hyperparameters, which reach the torch optimizer
    as soon as they change. After every epoch the weights and running statistics are copied back
    into ``model``, so callbacks, ``model.predict`` and saving see the trained network. The
    training set is moved to ``device`` once. ``state_dict()`` is the NumPy engine's layout (the
    optimizer state converted to the course's averages), so either engine resumes the other's run.
    """

    def __init__(
        self, model: MLP | CNN, optimizer: Optimizer, *, device: str | torch.device = "cpu"
    ) -> None:
        if not isinstance(model, MLP | CNN):
            raise ConfigError("model", model, "a tunery.nn.MLP or CNN (its twin is built from it)")
        self._model = model
        self._optimizer = optimizer
        self.device = torch.device(device)
        self.torch_model = to_torch(model).to(self.device)
        self.torch_optimizer = make_torch_optimizer(
            optimizer.name, self.torch_model.parameters(), **optimizer.hyperparameters()
        )
        tensors = torch_tensors(self.torch_model.layers)
        self._weights = [tensors[key] for key in model.weight_keys()]  # what L2 applies to
        self._steps = 0  # optimizer steps taken (torch's SGD does not count them)
        self._source: Array | None = None  # the NumPy training set, to recognise it
        self._X = torch.empty(0)
        self._y = torch.empty(0)

    @property
    def model(self) -> MLP | CNN:
        return self._model

    @property
    def optimizer(self) -> Optimizer:
        return self._optimizer

    def load_data(self, X: Array, y: Array) -> None:
        self._source = X
        self._X = torch.from_numpy(X).to(self.device)
        self._y = torch.from_numpy(y).long().to(self.device)

    def start_epoch(self) -> None:
        self.torch_model.train()

    def train_batch(self, index: Array, l2: float) -> float:
        rows = torch.from_numpy(index).to(self.device)
        logits = self.torch_model(self._X[rows])
        cost = self.torch_model.criterion(logits, self._y[rows])
        if l2 > 0:
            penalty = torch.stack([weight.square().sum() for weight in self._weights]).sum()
            cost = cost + l2 / (2 * len(index)) * penalty
        value = float(cost.item())
        if math.isfinite(value):
            self.torch_optimizer.zero_grad()
            cost.backward()
            self.torch_optimizer.step()
            self._steps += 1
        return value

    def end_epoch(self) -> None:
        copy_weights(self.torch_model, self._model)

    def accuracy(self, X: Array, y: Array) -> float:
        """Share of ``X: (N, D)`` labelled ``y: (N,)`` by the twin in eval mode (the training set
        is already on the device; another set is moved there for the call)."""
        if X is self._source:
            features, labels = self._X, self._y
        else:
            features, labels = torch.from_numpy(X).to(self.device), torch.from_numpy(y)
        self.torch_model.eval()
        try:
            with torch.no_grad():
                predicted = self.torch_model(features).argmax(dim=1)
            return float((predicted == labels.to(self.device)).double().mean().item())
        finally:
            self.torch_model.train()

    def set_hyperparameters(self, **hyperparameters: float) -> None:
        self._optimizer.set(**hyperparameters)
        hp = self._optimizer.hyperparameters()
        set_torch_hyperparameters(self.torch_optimizer, self._optimizer.name, **hp)

    def hyperparameters(self) -> dict[str, float]:
        return self._optimizer.hyperparameters()

    def generators(self) -> dict[str, np.random.Generator]:
        # The twin's dropout layers share these generators (to_torch).
        return model_generators(self._model)

    # checkpoints: the NumPy layout, so either engine resumes the other's run --------------------

    def state_dict(self) -> dict[str, Any]:
        """Weights, buffers and optimizer state (converted to the course's averages), as
        ``NumpyEngine.state_dict()`` gives them."""
        copy_weights(self.torch_model, self._model)
        self._optimizer.load_state_dict(self._numpy_optimizer_state())
        return NumpyEngine(self._model, self._optimizer).state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put both models and both optimizers in the state ``state_dict()`` saw."""
        NumpyEngine(self._model, self._optimizer).load_state_dict(state)
        copy_weights(self._model, self.torch_model)
        self.set_hyperparameters()
        self._load_torch_optimizer_state(self._optimizer.state_dict())

    def _trained_tensors(self) -> dict[str, torch.Tensor]:
        """The twin's parameters under our keys."""
        tensors = torch_tensors(self.torch_model.layers)
        return {key: tensors[key] for key in self._model.parameters()}

    def _numpy_optimizer_state(self) -> dict[str, Any]:
        """The torch optimizer's state as ``Optimizer.state_dict()`` of the NumPy optimizer."""
        name, hp = self._optimizer.name, self._optimizer.hyperparameters()
        steps: dict[str, int] = {}
        scales: dict[str, float] = {}
        arrays: dict[str, Array] = {}
        for key, tensor in self._trained_tensors().items():
            state = self.torch_optimizer.state.get(tensor)
            if not state:  # not stepped yet
                continue
            steps[key] = self._steps
            for ours, theirs, factor in _state_names(name, hp):
                average = numpy_layout(key, state[theirs]) * factor
                arrays[f"{key}/{ours}"] = np.ascontiguousarray(average).reshape(-1)
                scales[f"{key}/{ours}"] = 1.0
        return {
            "name": name,
            "hyperparameters": hp,
            "steps": steps,
            "scales": scales,
            "arrays": arrays,
        }

    def _load_torch_optimizer_state(self, state: Mapping[str, Any]) -> None:
        """Give the torch optimizer the NumPy optimizer's ``state_dict()``."""
        name, hp = self._optimizer.name, self._optimizer.hyperparameters()
        tensors = self._trained_tensors()
        params = self._model.parameters()
        order = {id(p): i for i, p in enumerate(self.torch_optimizer.param_groups[0]["params"])}
        torch_state: dict[int, dict[str, torch.Tensor]] = {}
        for key, steps in state["steps"].items():
            entry = {"step": torch.tensor(float(steps))} if name in ("rmsprop", "adam") else {}
            for ours, theirs, factor in _state_names(name, hp):
                label = f"{key}/{ours}"
                average = (state["scales"][label] / factor) * state["arrays"][label]
                layout = torch_layout(key, average.reshape(params[key].shape))
                entry[theirs] = torch.from_numpy(np.ascontiguousarray(layout))
            torch_state[order[id(tensors[key])]] = entry
        template = self.torch_optimizer.state_dict()
        self.torch_optimizer.load_state_dict({**template, "state": torch_state})
        self._steps = max(state["steps"].values(), default=0)


def _state_names(name: str, hp: Mapping[str, float]) -> list[tuple[str, str, float]]:
    """Our moving averages and torch's names for them: ``(ours, theirs, f)`` with
    ``ours = f · theirs`` (torch's momentum buffer sums the gradients: ``v = (1 − β)·b``)."""
    if name == "momentum":
        return [("v", "momentum_buffer", 1.0 - hp["beta"])]
    if name == "rmsprop":
        return [("s", "square_avg", 1.0)]
    if name == "adam":
        return [("m", "exp_avg", 1.0), ("v", "exp_avg_sq", 1.0)]
    return []


class TorchTrainer(Trainer):
    """``Trainer(model, optimizer, X, y, ..., engine=TorchEngine)`` on ``device``: the same
    arguments, batches, metrics and checkpoints, the arithmetic done by PyTorch."""

    engine: TorchEngine

    def __init__(
        self,
        model: MLP | CNN,
        optimizer: Optimizer,
        X: ArrayLike,
        y: ArrayLike,
        *,
        device: str | torch.device = "cpu",
        **options: Any,
    ) -> None:
        super().__init__(model, optimizer, X, y, engine=torch_engine(device), **options)


def torch_engine(device: str | torch.device = "cpu") -> EngineFactory:
    """The ``Trainer(engine=...)`` factory of ``TorchEngine``s on ``device``."""
    return functools.partial(TorchEngine, device=device)


def fit_torch(
    model: MLP | CNN,
    X: ArrayLike,
    y: ArrayLike,
    *,
    device: str | torch.device = "cpu",
    **options: Any,
) -> History:
    """``fit(..., engine=TorchEngine)`` on ``device``: same arguments (plus ``device``), same
    ``History``; the trained weights end up in ``model``."""
    return fit(model, X, y, engine=torch_engine(device), **options)
