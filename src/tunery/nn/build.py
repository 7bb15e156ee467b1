"""The network a config's ``[model]`` or ``tunery train`` asks for: an MLP, or a CNN of images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tunery._exceptions import ConfigError
from tunery.nn.cnn import CNN
from tunery.nn.model import MLP, Activation
from tunery.nn.spec import renamed

__all__ = ["NetworkSettings", "build_network"]


class NetworkSettings(Protocol):
    """What a network is built from (``[model]``'s section and ``tunery train``'s settings)."""

    @property
    def kind(self) -> str: ...
    @property
    def layers(self) -> Sequence[int]: ...
    @property
    def conv(self) -> Sequence[tuple[int, int]]: ...
    @property
    def pool(self) -> int: ...
    @property
    def batchnorm(self) -> bool: ...
    @property
    def instance_norm(self) -> bool: ...
    @property
    def activation(self) -> Activation: ...
    @property
    def keep_prob(self) -> float: ...
    @property
    def seed(self) -> int: ...


def build_network(
    settings: NetworkSettings,
    shape: tuple[int, tuple[int, ...] | None, int],
    *,
    prefix: str = "model.",
) -> MLP | CNN:
    """``MLP([D, *layers, C])``, or with ``kind == "cnn"`` a ``CNN`` of ``conv`` blocks and
    ``layers`` as its dense head. ``shape`` is the data's ``(D, image shape or None, C)``; errors
    name the setting with ``prefix`` (``"model."`` for a config, ``"--"`` for the CLI)."""
    num_features, image_shape, num_classes = shape
    seed, batchnorm = settings.seed, settings.batchnorm
    if settings.kind != "cnn":
        sizes = [num_features, *settings.layers, num_classes]
        activation, keep_prob = settings.activation, settings.keep_prob
        return MLP(
            sizes, batchnorm=batchnorm, activation=activation, keep_prob=keep_prob, seed=seed
        )
    if image_shape is None:
        field = "--model" if prefix == "--" else f"{prefix}kind"
        expected = "data of images (a photo folder, .h5 files or the digits)"
        raise ConfigError(field, settings.kind, expected)
    try:
        return CNN(
            image_shape, num_classes, conv=settings.conv, dense=settings.layers,
            batchnorm=batchnorm, pool=settings.pool, seed=seed,
            instance_norm=settings.instance_norm,
        )  # fmt: skip
    except ConfigError as error:
        raise renamed(error, prefix) from None
