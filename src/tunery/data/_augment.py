"""Random augmentation of training images: rotation, zoom, mirror, brightness, contrast, colour.

``AugmentSettings`` holds the amounts (``[data.augment]`` in a config, ``--augment-*`` flags of
``tunery train``); every amount 0 (or ``flip = false``) turns its transform off:

- ``rotation``: rotate by an angle drawn uniformly from ``[-rotation, rotation]`` degrees;
- ``scale``: zoom by a factor drawn uniformly from ``[1 - scale, 1 + scale]`` (a factor above 1
  crops into the photo, below 1 shows more border, filled by repeating the edge pixels);
- ``flip``: mirror left-right with probability 1/2 (safe for hand signs: a sign shown with the
  left hand is the mirror image of the same sign shown with the right hand, and means the same);
- ``brightness``: multiply by a factor drawn from ``[1 - brightness, 1 + brightness]``;
- ``contrast``: scale the distance from the image's mean grey by a factor from
  ``[1 - contrast, 1 + contrast]``;
- ``hue``: rotate every colour about the grey axis by a share of the colour circle drawn from
  ``[-hue, hue]`` (0.05 = ±18°; torchvision's ``ColorJitter(hue=...)`` has the same range);
- ``temperature``: warmer or cooler light: red × ``(1 + t)`` and blue × ``(1 - t)`` with ``t``
  drawn from ``[-temperature, temperature]``;
- ``mix``: mix the colour channels: each becomes a random signed mixture of the three, the rows of
  ``I + U(-mix, mix)^{3×3}`` each scaled so that their absolute values sum to 1 (applied last;
  no camera does this: it keeps a network from leaning on which channel shows the hand).

``Augmenter`` applies them to a batch, with a generator the caller owns (so that a seeded run
repeats bit for bit and a checkpoint can store the generator's state). It takes the model's rows
``(N, H·W·C)`` (normalized: it undoes the normalization, works on pixels in [0, 1] and redoes it)
or images ``(N, C, H, W)``. Each image gets its own draw; the geometry is one bilinear resampling
per image (rotation, zoom and mirror in one affine map), the colour one 3 × 3 matrix per image.
The same number of random values is drawn whatever is turned on, so switching one transform on
does not change the draws of the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tunery._exceptions import ConfigError
from tunery._validation import Interval, check_scalar

__all__ = ["AUGMENT_AMOUNTS", "AugmentSettings", "Augmenter"]

Array = NDArray[Any]

_RULES: dict[str, Interval] = {
    "rotation": Interval(float, 0, 180),
    "scale": Interval(float, 0, 1, closed="left"),
    "brightness": Interval(float, 0, 1),
    "contrast": Interval(float, 0, 1),
    "hue": Interval(float, 0, 0.5),
    "temperature": Interval(float, 0, 1, closed="left"),
    "mix": Interval(float, 0, 1),
}
AUGMENT_AMOUNTS: tuple[str, ...] = tuple(_RULES)
"""The numeric amounts (``flip`` is the on/off one); each is searchable as ``augment.<name>``."""
_COLOUR = ("hue", "temperature", "mix")
# ITU-R BT.601 luma: the grey a contrast change pulls towards.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class AugmentSettings:
    """How much to augment (see the module docstring); the defaults augment nothing."""

    rotation: float = 0.0
    scale: float = 0.0
    flip: bool = False
    brightness: float = 0.0
    contrast: float = 0.0
    hue: float = 0.0
    temperature: float = 0.0
    mix: float = 0.0

    def __post_init__(self) -> None:
        for name, rule in _RULES.items():
            value = check_scalar(f"augment.{name}", getattr(self, name), rule)
            object.__setattr__(self, name, float(value))
        if not isinstance(self.flip, bool):
            raise ConfigError("augment.flip", self.flip, "true or false")

    @classmethod
    def from_mapping(cls, table: object, where: str = "augment") -> AugmentSettings:
        """From a ``[data.augment]`` table; unknown keys and bad values name ``{where}.<key>``."""
        if isinstance(table, AugmentSettings):
            return table
        if not isinstance(table, Mapping):
            raise ConfigError(where, table, "a table like { rotation = 15, flip = true }")
        known = [f.name for f in dataclasses.fields(cls)]
        for key, value in table.items():
            if key not in known:
                raise ConfigError(f"{where}.{key}", value, "one of " + ", ".join(known))
        try:
            return cls(**table)
        except ConfigError as error:
            field = where + error.field.removeprefix("augment")
            raise ConfigError(field, error.value, error.expected) from None

    @property
    def active(self) -> bool:
        """Whether any transform is on."""
        return self.flip or any(getattr(self, name) > 0 for name in AUGMENT_AMOUNTS)

    @property
    def geometric(self) -> bool:
        return self.flip or self.rotation > 0 or self.scale > 0

    @property
    def photometric(self) -> bool:
        return any(getattr(self, name) > 0 for name in ("brightness", "contrast", *_COLOUR))

    def to_dict(self) -> dict[str, float | bool]:
        return dataclasses.asdict(self)


class Augmenter:
    """Applies ``settings`` to batches of images of ``image_shape`` (``(H, W, C)`` or ``(H, W)``).

    ``mean`` and ``std`` are the normalizer's per-feature statistics (``(H·W·C,)``, in the rows'
    order): rows are mapped back to pixels in [0, 1] with them before the transforms, and forward
    again after. Without them rows are taken to be pixels in [0, 1] already.
    """

    def __init__(
        self,
        settings: AugmentSettings,
        image_shape: tuple[int, ...],
        *,
        mean: Array | None = None,
        std: Array | None = None,
    ) -> None:
        self.settings = AugmentSettings.from_mapping(settings)
        self.height, self.width, self.channels = _image_dims(image_shape)
        features = self.height * self.width * self.channels
        if self.channels != 3:
            for name in _COLOUR:
                if getattr(self.settings, name) > 0:
                    value = getattr(self.settings, name)
                    raise ConfigError(f"augment.{name}", value, "0 for images without 3 channels")
        self.mean = None if mean is None else _statistic("mean", mean, features)
        self.std = None if std is None else _statistic("std", std, features)
        self._grid = _centered_grid(self.height, self.width)

    @property
    def num_features(self) -> int:
        return self.height * self.width * self.channels

    def __call__(self, batch: Array, rng: np.random.Generator) -> Array:
        """A new, augmented copy of ``batch``: rows ``(N, H·W·C)`` or images ``(N, C, H, W)``."""
        if batch.ndim == 4 and batch.shape[1:] == (self.channels, self.height, self.width):
            rows = np.ascontiguousarray(batch.transpose(0, 2, 3, 1)).reshape(len(batch), -1)
            out = self.augment_pixels(self.pixels(rows), rng).astype(batch.dtype, copy=False)
            shape = (len(batch), self.height, self.width, self.channels)
            return np.ascontiguousarray(out.reshape(shape).transpose(0, 3, 1, 2))
        if batch.ndim == 2 and batch.shape[1] == self.num_features:
            return self.augment_pixels(self.pixels(batch), rng).astype(batch.dtype, copy=False)
        expected = (
            f"rows (N, {self.num_features}) or images (N, {self.channels}, {self.height}, "
            f"{self.width})"
        )
        raise ConfigError("batch", batch.shape, expected)

    def pixels(self, rows: Array) -> Array:
        """Normalized rows ``(N, H·W·C)`` back to float32 pixels in [0, 1] (a new array)."""
        pixels = np.array(rows, dtype=np.float32)
        if self.mean is not None and self.std is not None:
            pixels *= self.std
            pixels += self.mean
        return pixels

    def augment_pixels(self, pixels: Array, rng: np.random.Generator, *, chunk: int = 64) -> Array:
        """Pixel rows ``(N, H·W·C)`` in [0, 1] → augmented, normalized float32 rows (a new array).

        Works ``chunk`` images at a time, normalization included, so that a chunk's arrays stay in
        the cache between passes; the draws are the same for any ``chunk`` (they are made for the
        whole batch first), and so is the result.
        """
        draws = _Draws.of(self.settings, len(pixels), rng)
        out = np.empty((len(pixels), self.num_features), dtype=np.float32)
        for start in range(0, len(pixels), chunk):
            part = slice(start, start + chunk)
            rows = out[part]
            rows[...] = self._augment_chunk(pixels[part], draws.part(part))
            if self.mean is not None and self.std is not None:
                rows -= self.mean
                rows /= self.std
        return out

    def _augment_chunk(self, pixels: Array, draws: _Draws) -> Array:
        images = pixels.reshape(len(pixels), self.height * self.width, self.channels)
        if self.settings.geometric:
            images = _gather_pixels(images, self._source_index(draws))
        if self.settings.photometric:
            images = self._recolour(images, draws)
        return images.reshape(len(pixels), -1)

    def _source_index(self, draws: _Draws) -> Array:
        """The pixel each output pixel comes from, ``(n, H·W)`` into the chunk's flat pixels:
        rotation, zoom and mirror as one inverse affine map per image, nearest neighbour (as
        torchvision's ``RandomRotation`` by default), edge pixels repeated outside the photo."""
        n = len(draws.angle)
        angle = np.deg2rad(draws.angle)
        cos = (np.cos(angle) / draws.zoom).astype(np.float32)[:, None]
        sin = (np.sin(angle) / draws.zoom).astype(np.float32)[:, None]
        mirror = np.where(draws.mirror, -1, 1).astype(np.float32)[:, None]
        gy, gx = self._grid  # (1, H·W) each, centred on the image
        x_mirrored = gx * mirror
        rows = _nearest(cos * gy - sin * x_mirrored, self.height)
        cols = _nearest(sin * gy + cos * x_mirrored, self.width)
        rows *= self.width
        rows += cols
        rows += (np.arange(n, dtype=np.int32) * (self.height * self.width))[:, None]
        return rows

    def _recolour(self, images: Array, draws: _Draws) -> Array:
        """Temperature, hue, brightness and contrast as one affine map of colours per image
        (a 3 × 3 matrix and an offset), clipped back to [0, 1]."""
        n = len(images)
        contrast = draws.contrast[:, None, None]
        if self.channels == 3:
            # Temperature first, then the hue turn, then brightness: one matrix.
            lit = _hue_matrices(draws.hue) * _temperature_gains(draws.temperature)[:, None, :]
            lit *= draws.bright[:, None, None]
            # Contrast pulls towards the mean grey of the image those changes give.
            mean_colour = _mean_colour(images)
            grey = np.einsum("c,ncd,nd->n", _LUMA, lit, mean_colour)
            # The channel mix comes last: it maps the contrast's grey offset too.
            offset = ((1 - draws.contrast) * grey)[:, None, None] * draws.mix.sum(axis=2)[:, None]
            matrix = (draws.mix @ (lit * contrast)).transpose(0, 2, 1).astype(np.float32)
            out = np.matmul(images, matrix)
        else:
            factor = (draws.bright * draws.contrast)[:, None, None]
            grey = draws.bright * _mean_colour(images)[:, 0]
            offset = ((1 - draws.contrast) * grey)[:, None, None]
            out = images * factor.astype(np.float32)
        out += offset.astype(np.float32)
        np.clip(out, 0.0, 1.0, out=out)
        return np.asarray(out).reshape(n, -1, self.channels)


@dataclass(frozen=True)
class _Draws:
    """One batch's random values, drawn in a fixed order whatever is switched on."""

    angle: Array
    zoom: Array
    mirror: Array
    bright: Array
    contrast: Array
    hue: Array
    temperature: Array
    mix: Array

    @classmethod
    def of(cls, settings: AugmentSettings, n: int, rng: np.random.Generator) -> _Draws:
        def around(centre: float, amount: float) -> Array:
            return centre + amount * rng.uniform(-1.0, 1.0, n)

        return cls(
            angle=around(0.0, settings.rotation),
            zoom=around(1.0, settings.scale),
            mirror=(rng.random(n) < 0.5) & settings.flip,
            bright=around(1.0, settings.brightness),
            contrast=around(1.0, settings.contrast),
            hue=around(0.0, settings.hue),
            temperature=around(0.0, settings.temperature),
            mix=_mixing_matrices(settings.mix * rng.uniform(-1.0, 1.0, (n, 3, 3))),
        )

    def part(self, rows: slice) -> _Draws:
        """The draws of the images ``rows``."""
        return _Draws(*(getattr(self, f.name)[rows] for f in dataclasses.fields(self)))


def _image_dims(shape: tuple[int, ...]) -> tuple[int, int, int]:
    dims = tuple(int(d) for d in shape)
    if len(dims) == 2:
        dims = (*dims, 1)
    if len(dims) != 3 or min(dims) < 1:
        raise ConfigError("image_shape", shape, "(height, width) or (height, width, channels)")
    return dims[0], dims[1], dims[2]


def _statistic(name: str, value: Array, features: int) -> Array:
    array = np.asarray(value, dtype=np.float32).reshape(-1)
    if array.shape != (features,) or not np.all(np.isfinite(array)):
        raise ConfigError(name, np.shape(value), f"a finite array of shape ({features},)")
    return array


def _centered_grid(height: int, width: int) -> tuple[Array, Array]:
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    centred_y = (ys.ravel() - (height - 1) / 2).astype(np.float32)
    centred_x = (xs.ravel() - (width - 1) / 2).astype(np.float32)
    return centred_y[None, :], centred_x[None, :]


def _nearest(coordinate: Array, size: int) -> Array:
    """Centred source coordinates ``(n, H·W)`` → the nearest pixel index in ``[0, size)``."""
    coordinate += (size - 1) / 2
    np.rint(coordinate, out=coordinate)
    np.clip(coordinate, 0, size - 1, out=coordinate)
    return coordinate.astype(np.int32)


def _gather_pixels(images: Array, index: Array) -> Array:
    """``images (n, P, C)`` with pixel ``p`` of image ``i`` taken from flat pixel ``index[i, p]``.

    One ``take`` of whole pixels: the ``C`` floats of a pixel are viewed as one opaque item, which
    numpy copies much faster than rows of a 2-d array.
    """
    n, count, channels = images.shape
    item = np.dtype((np.void, images.dtype.itemsize * channels))
    flat = np.ascontiguousarray(images).reshape(-1, channels).view(item).reshape(-1)
    taken = flat.take(index.reshape(-1))
    return taken.view(images.dtype).reshape(n, count, channels)


def _mean_colour(images: Array) -> Array:
    """Mean colour per image ``(n, C)`` of ``images (n, P, C)``: a product with a vector of ones
    (``mean(axis=1)`` reduces along a strided axis, several times slower)."""
    ones = np.full((1, images.shape[1]), 1 / images.shape[1], dtype=images.dtype)
    return np.asarray(np.matmul(ones, images)[:, 0, :], dtype=np.float64)


def _hue_matrices(shift: Array) -> Array:
    """Rotations of RGB space about the grey axis by ``shift`` turns: ``(n, 3, 3)`` (Rodrigues)."""
    theta = 2 * np.pi * shift
    k = np.full(3, 1 / np.sqrt(3))
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    outer = np.outer(k, k)
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    eye = np.eye(3)[None]
    return np.asarray(cos * eye + sin * cross[None] + (1 - cos) * outer[None])


def _mixing_matrices(noise: Array) -> Array:
    """``I + noise`` ``(n, 3, 3)`` with each row scaled to absolute values summing to 1."""
    matrices = np.eye(3)[None] + noise
    return np.asarray(matrices / np.abs(matrices).sum(axis=2, keepdims=True))


def _temperature_gains(t: Array) -> Array:
    """Per-image RGB gains ``(n, 3)``: red up and blue down for a warmer light (``t > 0``)."""
    return np.stack([1 + t, np.ones_like(t), 1 - t], axis=1)
