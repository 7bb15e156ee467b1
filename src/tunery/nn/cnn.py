"""The convolutional classifier: ``[Conv2D → BatchNorm2d (or a bias) → ReLU → MaxPool2D] × B``,
then ``Flatten`` and a dense head ``[Dense → BatchNorm → ReLU] × L → Dense`` into the logits,
optionally after an ``InstanceNorm2d`` of the input photos.

Rows are examples, as everywhere in the engine: ``x: (N, H·W·C)`` rows flattened channels-last,
the layout ``tunery.data`` gives (``Dataset.image_shape`` is ``(H, W, C)`` for photos, ``(H, W)``
for the 8×8 digits), or ready images ``(N, C, H, W)``. The model turns rows into ``(N, C, H, W)``
images (PyTorch's layout, the one ``Conv2D`` computes in) before the first convolution, so the
trainer, the optimizers, checkpoints and run folders handle a CNN exactly like an ``MLP``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from tunery._exceptions import ConfigError
from tunery._validation import check_int
from tunery.nn._base import Array, Layer, as_dtype, check_positive_int
from tunery.nn._network import Network
from tunery.nn.batchnorm import BatchNorm, BatchNorm2d, InstanceNorm2d
from tunery.nn.conv import Conv2D, Flatten, MaxPool2D
from tunery.nn.layers import Dense, ReLU
from tunery.nn.model import MLP

__all__ = ["CNN", "EVAL_CHUNK", "Block", "feature_shape", "model_from_config"]

EVAL_CHUNK = 256
"""Rows per eval-mode forward pass in ``predict`` and ``predict_proba``."""

Block = tuple[int, int]
"""One convolutional block: ``(filters, kernel)``."""

_CONFIG_KEYS = (
    *("kind", "image_shape", "num_classes", "conv", "dense", "batchnorm", "pool", "seed"),
    *("dtype", "instance_norm"),
)


class CNN(Network):
    """A convolutional classifier of ``image_shape`` images into ``num_classes`` classes.

    ``conv`` lists the blocks ``(filters, kernel)``; each convolution has stride 1 and padding
    ``(kernel − 1) // 2`` (odd kernels keep the image's size), and each block ends with a
    ``pool × pool`` max-pooling of stride ``pool`` (none when ``pool == 1``). ``dense`` lists the
    hidden widths of the head. With ``batchnorm`` every convolution and hidden Dense layer is
    followed by batch norm (and has no bias: β replaces it). With ``instance_norm`` each photo is
    first standardized per colour channel by its own mean and standard deviation
    (``InstanceNorm2d``): a global colour cast, exposure or contrast of the light cancels out, at
    the price of the photo's absolute colours. Weights are drawn from
    ``np.random.default_rng(seed)``, so a model is a pure function of its config.

    ``sizes`` is ``(H·W·C, num_classes)``: the width of an input row and of the logits, what
    ``Trainer`` checks data against. Keys are ``"{layer_index}.{name}"`` as in ``MLP``.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        num_classes: int,
        *,
        conv: Sequence[Sequence[int]] = ((16, 3), (32, 3)),
        dense: Sequence[int] = (),
        batchnorm: bool = True,
        pool: int = 2,
        seed: int = 0,
        dtype: Any = np.float32,
        instance_norm: bool = False,
    ) -> None:
        self.image_shape: tuple[int, ...] = _check_image_shape(image_shape)
        height, width = self.image_shape[:2]
        self.channels = self.image_shape[2] if len(self.image_shape) == 3 else 1
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.conv: tuple[Block, ...] = _check_blocks(conv)
        self.dense: tuple[int, ...] = tuple(
            check_positive_int(f"dense[{i}]", units) for i, units in enumerate(_sequence(dense))
        )
        if not isinstance(batchnorm, bool | np.bool_):
            raise ConfigError("batchnorm", batchnorm, "true or false")
        self.batchnorm = bool(batchnorm)
        if not isinstance(instance_norm, bool | np.bool_):
            raise ConfigError("instance_norm", instance_norm, "true or false")
        self.instance_norm = bool(instance_norm)
        self.pool = check_positive_int("pool", pool)
        self.seed = check_int("seed", seed, 0)
        self.dtype = as_dtype(dtype)
        self.sizes: tuple[int, int] = (height * width * self.channels, self.num_classes)
        self.rng = np.random.default_rng(self.seed)
        self.feature_shape = feature_shape(self.conv, self.pool, (height, width))
        self.layers: list[Layer] = [*self._conv_layers(), Flatten(), *self._dense_layers()]

    def _conv_layers(self) -> list[Layer]:
        channels = self.channels
        layers: list[Layer] = [InstanceNorm2d(channels)] if self.instance_norm else []
        for index, (filters, kernel) in enumerate(self.conv):
            conv = Conv2D(
                channels,
                filters,
                kernel,
                padding=(kernel - 1) // 2,
                bias=not self.batchnorm,
                rng=self.rng,
                dtype=self.dtype,
                input_grad=index > 0,  # nobody needs d(loss)/d(pixels)
            )
            layers.append(conv)
            if self.batchnorm:
                layers.append(BatchNorm2d(filters, dtype=self.dtype))
            layers.append(ReLU())
            if self.pool > 1:
                layers.append(MaxPool2D(self.pool))
            channels = filters
        return layers

    def _dense_layers(self) -> list[Layer]:
        height, width = self.feature_shape
        fan_in = self.conv[-1][0] * height * width
        layers: list[Layer] = []
        for units in self.dense:
            layers.append(
                Dense(fan_in, units, bias=not self.batchnorm, rng=self.rng, dtype=self.dtype)
            )
            if self.batchnorm:
                layers.append(BatchNorm(units, dtype=self.dtype))
            layers.append(ReLU())
            fan_in = units
        layers.append(Dense(fan_in, self.num_classes, rng=self.rng, dtype=self.dtype))
        return layers

    def prepare_input(self, x: ArrayLike) -> Array:
        """Rows ``(N, H·W·C)`` (channels-last) or images ``(N, C, H, W)`` → ``(N, C, H, W)`` in
        the model's dtype (a view of the rows when they already have it)."""
        out = np.asarray(x, dtype=self.dtype)
        height, width = self.image_shape[:2]
        if out.ndim == 2 and out.shape[1] == self.sizes[0]:
            return out.reshape(len(out), height, width, self.channels).transpose(0, 3, 1, 2)
        if out.ndim == 4 and out.shape[1:] == (self.channels, height, width):
            return out
        expected = f"rows (N, {self.sizes[0]}) or images (N, {self.channels}, {height}, {width})"
        raise ConfigError("x", out.shape, expected)

    def _eval_forward(self, x: ArrayLike) -> Array:
        """Eval-mode logits, ``EVAL_CHUNK`` rows at a time: a whole dataset's im2col matrices at
        once would take gigabytes (every pixel copied ``k²`` times)."""
        rows = np.asarray(x)
        forward = super()._eval_forward
        if len(rows) <= EVAL_CHUNK:
            return forward(rows)
        starts = range(0, len(rows), EVAL_CHUNK)
        return np.concatenate([forward(rows[i : i + EVAL_CHUNK]) for i in starts])

    def config(self) -> dict[str, Any]:
        """Plain JSON-able settings; ``CNN.from_config(model.config())`` rebuilds the same model."""
        return {
            "kind": "cnn",
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "conv": [list(block) for block in self.conv],
            "dense": list(self.dense),
            "batchnorm": self.batchnorm,
            "pool": self.pool,
            "seed": self.seed,
            "dtype": self.dtype.name,
            "instance_norm": self.instance_norm,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CNN:
        """A model from ``config()``'s dictionary, freshly initialized (load weights after)."""
        unknown = sorted(set(config) - set(_CONFIG_KEYS))
        if unknown:
            raise ConfigError("config", unknown, f"keys among {list(_CONFIG_KEYS)}")
        missing = [key for key in ("image_shape", "num_classes") if key not in config]
        if missing:
            raise ConfigError("config", sorted(config), f"the keys {missing}")
        settings = {key: value for key, value in config.items() if key != "kind"}
        return cls(settings.pop("image_shape"), settings.pop("num_classes"), **settings)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "kind")
        return f"CNN({settings})"


def model_from_config(config: Mapping[str, Any]) -> MLP | CNN:
    """The model a ``config()`` describes: a ``CNN`` when its ``kind`` is ``"cnn"``, else an
    ``MLP`` (whose config has no ``kind``)."""
    kind = config.get("kind", "mlp")
    if kind == "cnn":
        return CNN.from_config(config)
    if kind != "mlp":
        raise ConfigError("config.kind", kind, "'mlp' or 'cnn'")
    return MLP.from_config({key: value for key, value in config.items() if key != "kind"})


def _sequence(value: object) -> Sequence[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ConfigError("dense", value, "a list of hidden widths (possibly empty)")
    return value


def _check_image_shape(shape: object) -> tuple[int, ...]:
    if (
        isinstance(shape, str | bytes)
        or not isinstance(shape, Sequence)
        or len(shape) not in (2, 3)
    ):
        raise ConfigError("image_shape", shape, "(height, width) or (height, width, channels)")
    return tuple(check_positive_int(f"image_shape[{i}]", side) for i, side in enumerate(shape))


def _check_blocks(blocks: object) -> tuple[Block, ...]:
    expected = "a non-empty list of [filters, kernel] pairs of integers >= 1"
    if isinstance(blocks, str | bytes) or not isinstance(blocks, Sequence) or not blocks:
        raise ConfigError("conv", blocks, expected)
    checked = []
    for index, block in enumerate(blocks):
        if isinstance(block, str | bytes) or not isinstance(block, Sequence) or len(block) != 2:
            raise ConfigError(f"conv[{index}]", block, "a [filters, kernel] pair")
        filters = check_positive_int(f"conv[{index}].filters", block[0])
        kernel = check_positive_int(f"conv[{index}].kernel", block[1])
        checked.append((filters, kernel))
    return tuple(checked)


def feature_shape(blocks: Sequence[Block], pool: int, size: tuple[int, int]) -> tuple[int, int]:
    """The ``(height, width)`` the last block leaves; a ConfigError when a block gets below one
    pixel (too many blocks, a kernel wider than its input, or too much pooling)."""
    height, width = size
    for index, (_, kernel) in enumerate(blocks):
        padding = (kernel - 1) // 2
        height = (height + 2 * padding - kernel + 1) // pool
        width = (width + 2 * padding - kernel + 1) // pool
        if height < 1 or width < 1:
            expected = (
                f"blocks that leave at least 1×1 pixels of the {size[0]}×{size[1]} input "
                f"(block {index} leaves {max(height, 0)}×{max(width, 0)} after {pool}×{pool} "
                "pooling): fewer blocks, smaller kernels or less pooling"
            )
            raise ConfigError("conv", [list(block) for block in blocks], expected)
    return height, width
