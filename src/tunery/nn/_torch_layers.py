"""Layer by layer twins of the NumPy engine in PyTorch, and copying between a network and its twin.

Every NumPy layer has one torch module that computes the same function: ``Dense`` → ``Linear``
(our ``W (in, out)`` is its ``weight (out, in)`` transposed), ``Conv2D`` → ``Conv2d`` (the same
``(F, C, k, k)`` weights), ``BatchNorm`` → ``BatchNorm1d``, ``BatchNorm2d`` → ``BatchNorm2d``
(torch's ``momentum`` weighs the new batch, ours the running value: ``1 − m``),
``InstanceNorm2d`` → ``InstanceNorm2d``, ``MaxPool2D`` → ``MaxPool2d``, ``Flatten`` →
``Flatten``, the activations, and ``Dropout`` → ``TorchDropout``, which draws the NumPy layer's
masks from the NumPy layer's own generator. A twin network is an ``nn.Module`` whose ``layers``
(an ``nn.Sequential``) mirror ``network.layers`` index by index, so the parameters of both go by
the same keys (``"0.W"``, ``"1.gamma"``...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

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
from tunery.nn._network import Network
from tunery.nn.batchnorm import BatchNorm, BatchNorm2d, InstanceNorm2d
from tunery.nn.conv import Conv2D, Flatten, MaxPool2D
from tunery.nn.layers import Dense, Dropout, ReLU, Sigmoid, Tanh

__all__ = [
    "TorchDropout",
    "copy_parameters",
    "numpy_layout",
    "torch_dtype",
    "torch_layout",
    "torch_tensors",
    "twin_of",
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


_ACTIVATION_TWINS: Mapping[type[Layer], type[nn.Module]] = {
    ReLU: nn.ReLU,
    Tanh: nn.Tanh,
    Sigmoid: nn.Sigmoid,
}
_KNOWN = (
    "Dense, Conv2D, BatchNorm, BatchNorm2d, InstanceNorm2d, MaxPool2D, Flatten, ReLU, Tanh, "
    "Sigmoid or Dropout"
)


def twin_of(layer: Layer, dtype: torch.dtype) -> nn.Module:
    """The torch module that computes what the NumPy ``layer`` computes (a dropout layer shares
    the layer's generator); its parameters are fresh, ``copy_parameters`` fills them."""
    if isinstance(layer, Dense):
        bias = layer.b is not None
        return nn.Linear(layer.in_features, layer.out_features, bias=bias, dtype=dtype)
    if isinstance(layer, Conv2D):
        return nn.Conv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            bias=layer.b is not None,
            dtype=dtype,
        )
    if isinstance(layer, BatchNorm):
        norm = nn.BatchNorm2d if isinstance(layer, BatchNorm2d) else nn.BatchNorm1d
        return norm(layer.num_features, eps=layer.eps, momentum=1.0 - layer.momentum, dtype=dtype)
    if isinstance(layer, InstanceNorm2d):
        return nn.InstanceNorm2d(layer.num_channels, eps=layer.eps, dtype=dtype)
    if isinstance(layer, MaxPool2D):
        return nn.MaxPool2d(layer.kernel, stride=layer.stride)
    if isinstance(layer, Flatten):
        return nn.Flatten()
    if isinstance(layer, Dropout):
        return TorchDropout(layer.keep_prob, layer.rng)
    for kind, twin in _ACTIVATION_TWINS.items():
        if isinstance(layer, kind):
            return twin()
    raise ConfigError("layer", layer, _KNOWN)


def _signature(module: nn.Module) -> tuple[Any, ...]:
    """A module's type, its parameters' shapes and its window settings, to compare architectures."""
    shapes = tuple(tuple(p.shape) for p in module.parameters())
    window = tuple(getattr(module, name, None) for name in ("kernel_size", "stride", "padding"))
    return type(module).__name__, shapes, window


def torch_tensors(layers: nn.Sequential) -> dict[str, torch.Tensor]:
    """The parameters and buffers of a twin's ``layers`` under our keys (``"0.W"``, ...)."""
    tensors: dict[str, torch.Tensor] = {}
    for index, module in enumerate(layers):
        if isinstance(module, nn.Linear | nn.Conv2d):
            named: dict[str, torch.Tensor | None] = {"W": module.weight, "b": module.bias}
        elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            named = {
                "gamma": module.weight,
                "beta": module.bias,
                "running_mean": module.running_mean,
                "running_var": module.running_var,
            }
        else:
            continue
        tensors |= {f"{index}.{name}": t for name, t in named.items() if t is not None}
    return tensors


def torch_layout(key: str, array: Array) -> Array:
    """Our array as torch holds it: a Dense ``W (in, out)`` transposed (a Conv2D's is alike)."""
    return array.T if key.endswith(".W") and array.ndim == 2 else array


def numpy_layout(key: str, tensor: torch.Tensor) -> Array:
    """A torch tensor in our layout (``torch_layout`` undone), as a NumPy array."""
    values: Array = tensor.detach().cpu().numpy()
    return values.T if key.endswith(".W") and values.ndim == 2 else values


def copy_parameters(network: Network, layers: nn.Sequential, *, to_numpy: bool) -> None:
    """Copy every parameter, batch-norm buffer and batch-norm setting (eps, momentum) between
    ``network`` and its twin's ``layers``: into the NumPy arrays when ``to_numpy``, else into the
    tensors. A twin of another architecture is a ConfigError (nothing is copied)."""
    dtype = torch_dtype(network.dtype)
    ours = [_signature(twin_of(layer, dtype)) for layer in network.layers]
    theirs = [_signature(module) for module in layers]
    if ours != theirs:
        raise ConfigError("model", [s[0] for s in theirs], f"a twin of {network!r}")
    tensors = torch_tensors(layers)
    with torch.no_grad():
        for key, array in {**network.parameters(), **network.buffers()}.items():
            if to_numpy:
                np.copyto(array, numpy_layout(key, tensors[key]))
            else:
                tensors[key].copy_(torch.from_numpy(torch_layout(key, array)))
    for layer, module in zip(network.layers, layers, strict=True):
        if isinstance(layer, BatchNorm) and isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            if to_numpy:
                layer.eps, layer.momentum = module.eps, 1.0 - float(module.momentum or 0.0)
            else:
                module.eps, module.momentum = layer.eps, 1.0 - layer.momentum
