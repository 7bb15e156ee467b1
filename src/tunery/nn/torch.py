"""The NumPy engine's MLP in PyTorch: the same layers, the same update rules, weights both ways.

PyTorch is an optional extra (``pip install 'tunery[torch]'``); this module is the only part of
tunery that imports it, and only when it is imported itself.

- ``TorchMLP`` mirrors ``MLP`` layer for layer (``model.layers[i]`` is the twin of
  ``mlp.layers[i]``): ``Linear`` (no bias before ``BatchNorm1d``), ``BatchNorm1d`` (eps 1e-5,
  torch momentum 0.1 = our 0.9), ``ReLU`` / ``Tanh`` / ``Sigmoid``, inverted dropout, and a final
  ``Linear`` that returns the logits; the cost is ``nn.CrossEntropyLoss``. Built from the same
  config it starts from the same weights, so both engines train the same network.
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
from tunery._validation import KEEP_PROB, check_scalar
from tunery.nn._base import Array, Layer, as_dtype
from tunery.nn.batchnorm import BatchNorm
from tunery.nn.engine import EngineFactory, NumpyEngine, model_generators
from tunery.nn.layers import Dense, Dropout, ReLU, Sigmoid, Tanh
from tunery.nn.model import MLP, Activation
from tunery.nn.optimizers import Optimizer, make_optimizer
from tunery.nn.train import History, Trainer, fit

__all__ = [
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

_DTYPES: Mapping[np.dtype[Any], torch.dtype] = {
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
}


def torch_dtype(dtype: Any) -> torch.dtype:
    """``torch.float32`` or ``torch.float64`` for a NumPy float dtype, else a ConfigError."""
    return _DTYPES[as_dtype(dtype)]


class TorchDropout(nn.Module):
    """Inverted dropout, ``nn.Dropout(p=1 − keep_prob)``, with masks drawn exactly as
    ``tunery.nn.Dropout`` draws them, from a NumPy generator ``rng``.

    ``x: (N, D) -> (N, D)``. Sharing the NumPy model's generator makes both engines drop the same
    units, keeps a run a pure function of its seed (torch's global generator is never used), and
    lets a checkpoint save the generator's state. Eval mode (or ``keep_prob == 1``) is the identity.
    """

    def __init__(self, keep_prob: float, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.keep_prob = check_scalar("keep_prob", keep_prob, KEEP_PROB)
        self.rng = np.random.default_rng(rng)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.keep_prob == 1.0:
            return x
        dtype = np.float64 if x.dtype == torch.float64 else np.float32
        # As in tunery.nn.Dropout: uniform draws → 0/1 keep mask → scaled by 1/keep_prob.
        mask = self.rng.random(tuple(x.shape), dtype=dtype)
        np.less(mask, self.keep_prob, out=mask)
        mask *= 1.0 / self.keep_prob
        return x * torch.from_numpy(mask).to(device=x.device, dtype=x.dtype)

    def extra_repr(self) -> str:
        return f"keep_prob={self.keep_prob}"


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
        self.layers = nn.Sequential(*(_twin_of(layer, self.dtype) for layer in twin.layers))
        self.criterion = nn.CrossEntropyLoss()
        copy_weights(twin, self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (N, sizes[0]) -> logits: (N, sizes[-1])``."""
        out: torch.Tensor = self.layers(x)
        return out

    def config(self) -> dict[str, Any]:
        """The ``MLP.config()`` this model mirrors (``TorchMLP(**config)`` rebuilds it)."""
        return dict(self.settings)


def _twin_of(layer: Layer, dtype: torch.dtype) -> nn.Module:
    """The torch module that computes what the NumPy ``layer`` computes (a dropout layer shares
    the layer's generator)."""
    if isinstance(layer, Dense):
        bias = layer.b is not None
        return nn.Linear(layer.in_features, layer.out_features, bias=bias, dtype=dtype)
    if isinstance(layer, BatchNorm):
        # Torch's momentum weighs the new batch; ours weighs the running value.
        momentum = 1.0 - layer.momentum
        return nn.BatchNorm1d(layer.num_features, eps=layer.eps, momentum=momentum, dtype=dtype)
    if isinstance(layer, Dropout):
        return TorchDropout(layer.keep_prob, layer.rng)
    return _ACTIVATION_TWINS[_activation_of(layer)]()


_ACTIVATION_TWINS: Mapping[type[Layer], type[nn.Module]] = {
    ReLU: nn.ReLU,
    Tanh: nn.Tanh,
    Sigmoid: nn.Sigmoid,
}


def _activation_of(layer: Layer) -> type[Layer]:
    for kind in _ACTIVATION_TWINS:
        if isinstance(layer, kind):
            return kind
    raise ConfigError("layer", layer, "Dense, BatchNorm, ReLU, Tanh, Sigmoid or Dropout")


def _expected_signature(layer: Layer) -> tuple[str, tuple[tuple[int, ...], ...]]:
    """What ``_signature`` gives for the twin of ``layer``, without building it."""
    if isinstance(layer, Dense):
        bias = ((layer.out_features,),) if layer.b is not None else ()
        return "Linear", ((layer.out_features, layer.in_features), *bias)
    if isinstance(layer, BatchNorm):
        return "BatchNorm1d", ((layer.num_features,), (layer.num_features,))
    if isinstance(layer, Dropout):
        return TorchDropout.__name__, ()
    return _ACTIVATION_TWINS[_activation_of(layer)].__name__, ()


def _signature(module: nn.Module) -> tuple[str, tuple[tuple[int, ...], ...]]:
    """A module's type and its parameters' shapes, for comparing architectures."""
    return type(module).__name__, tuple(tuple(p.shape) for p in module.parameters())


# -- copying weights ------------------------------------------------------------------------------


def to_torch(mlp: MLP) -> TorchMLP:
    """A ``TorchMLP`` with ``mlp``'s config, weights, running statistics and dtype.

    Its dropout layers draw their masks from ``mlp``'s own generator (shared, not copied): from
    the same generator state, either model drops the same units.
    """
    model = TorchMLP(**mlp.config())
    copy_weights(mlp, model)
    for layer, module in zip(mlp.layers, model.layers, strict=True):
        if isinstance(layer, Dropout) and isinstance(module, TorchDropout):
            module.rng = layer.rng
    return model


def from_torch(model: TorchMLP, mlp: MLP) -> MLP:
    """Copy ``model``'s weights and running statistics into ``mlp`` (in place); returns ``mlp``.

    Values are cast to ``mlp``'s dtype.
    """
    copy_weights(model, mlp)
    return mlp


def copy_weights(source: MLP | TorchMLP, target: MLP | TorchMLP) -> None:
    """Copy every parameter and batch-norm buffer from ``source`` to ``target``, either way.

    The two must have the same architecture (``ConfigError`` otherwise). ``W (in, out)`` goes to
    ``weight (out, in)`` transposed, and back; batch-norm ``eps`` and ``momentum`` follow too.
    """
    if isinstance(source, MLP) and isinstance(target, TorchMLP):
        mlp, model, to_numpy = source, target, False
    elif isinstance(source, TorchMLP) and isinstance(target, MLP):
        mlp, model, to_numpy = target, source, True
    else:
        found = f"{type(source).__name__} → {type(target).__name__}"
        raise ConfigError("copy_weights", found, "MLP → TorchMLP or TorchMLP → MLP")
    _check_same_architecture(mlp, model)
    tensors = _torch_tensors(model)
    with torch.no_grad():
        for key, array in {**mlp.parameters(), **mlp.buffers()}.items():
            tensor = tensors[key]
            if to_numpy:
                np.copyto(array, _numpy_layout(key, tensor))
            else:
                tensor.copy_(torch.from_numpy(_torch_layout(key, array)))
    _copy_batchnorm_settings(mlp, model, to_numpy)


def _torch_tensors(model: TorchMLP) -> dict[str, torch.Tensor]:
    """``model``'s parameters and buffers under our keys (``"0.W"``, ``"1.gamma"``, ...).

    A ``Linear``'s ``weight`` is our ``W`` (transposed), a ``BatchNorm1d``'s is our ``gamma``.
    """
    tensors: dict[str, torch.Tensor] = {}
    for index, module in enumerate(model.layers):
        if isinstance(module, nn.Linear):
            tensors[f"{index}.W"] = module.weight
            if module.bias is not None:
                tensors[f"{index}.b"] = module.bias
        elif isinstance(module, nn.BatchNorm1d):
            named: dict[str, torch.Tensor | None] = {
                "gamma": module.weight,
                "beta": module.bias,
                "running_mean": module.running_mean,
                "running_var": module.running_var,
            }
            tensors |= {f"{index}.{name}": t for name, t in named.items() if t is not None}
    return tensors


def _torch_layout(key: str, array: Array) -> Array:
    return array.T if key.endswith(".W") else array


def _numpy_layout(key: str, tensor: torch.Tensor) -> Array:
    values: Array = tensor.detach().cpu().numpy()
    return values.T if key.endswith(".W") else values


def _check_same_architecture(mlp: MLP, model: TorchMLP) -> None:
    ours = [_expected_signature(layer) for layer in mlp.layers]
    theirs = [_signature(module) for module in model.layers]
    if ours != theirs:
        raise ConfigError("model", model.config(), f"a TorchMLP with the architecture of {mlp!r}")


def _copy_batchnorm_settings(mlp: MLP, model: TorchMLP, to_numpy: bool) -> None:
    for layer, module in zip(mlp.layers, model.layers, strict=True):
        if isinstance(layer, BatchNorm) and isinstance(module, nn.BatchNorm1d):
            if to_numpy:
                layer.eps, layer.momentum = module.eps, 1.0 - float(module.momentum or 0.0)
            else:
                module.eps, module.momentum = layer.eps, 1.0 - layer.momentum


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
    """The PyTorch engine for ``Trainer``: ``model`` (the NumPy ``MLP``) trained as its twin.

    The twin ``self.torch_model`` (``to_torch(model)``, on ``device``) takes the steps, through
    ``make_torch_optimizer``'s ``self.torch_optimizer``; ``optimizer`` is the NumPy ``Optimizer``,
    kept for its name and its (mutable, validated) hyperparameters, which reach the torch optimizer
    as soon as they change. After every epoch the weights and running statistics are copied back
    into ``model``, so callbacks, ``model.predict`` and saving see the trained network. The
    training set is moved to ``device`` once. ``state_dict()`` is the NumPy engine's layout (the
    optimizer state converted to the course's averages), so either engine resumes the other's run.
    """

    def __init__(
        self, model: MLP, optimizer: Optimizer, *, device: str | torch.device = "cpu"
    ) -> None:
        if not isinstance(model, MLP):
            raise ConfigError("model", model, "a tunery.nn.MLP (its twin is built from it)")
        self._model = model
        self._optimizer = optimizer
        self.device = torch.device(device)
        self.torch_model = to_torch(model).to(self.device)
        self.torch_optimizer = make_torch_optimizer(
            optimizer.name, self.torch_model.parameters(), **optimizer.hyperparameters()
        )
        self._weights = [
            module.weight for module in self.torch_model.layers if isinstance(module, nn.Linear)
        ]
        self._steps = 0  # optimizer steps taken (torch's SGD does not count them)
        self._source: Array | None = None  # the NumPy training set, to recognise it
        self._X = torch.empty(0)
        self._y = torch.empty(0)

    @property
    def model(self) -> MLP:
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
        tensors = _torch_tensors(self.torch_model)
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
                average = _numpy_layout(key, state[theirs]) * factor
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
                layout = _torch_layout(key, average.reshape(params[key].shape))
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
        model: MLP,
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
    model: MLP, X: ArrayLike, y: ArrayLike, *, device: str | torch.device = "cpu", **options: Any
) -> History:
    """``fit(..., engine=TorchEngine)`` on ``device``: same arguments (plus ``device``), same
    ``History``; the trained weights end up in ``model``."""
    return fit(model, X, y, engine=torch_engine(device), **options)
