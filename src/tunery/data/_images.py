"""Decoding image files into rows of pixels.

Every image is turned upright (EXIF orientation), converted to RGB, resized to ``size × size`` with
Lanczos resampling (the aspect ratio is not kept: the whole picture is squeezed into the square, as
in the classic exercise), and flattened in ``(H, W, C)`` order, so one row is
``[r(0,0), g(0,0), b(0,0), r(0,1), ...]``: ``size * size * 3`` values (12,288 for 64 × 64).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from tunery._exceptions import DataError
from tunery._validation import check_int

__all__ = [
    "DECODER_VERSION",
    "check_size",
    "decode_image",
    "decode_images",
    "load_images",
    "num_features",
]

# Part of the cache key: bump it whenever decode_image's output changes for the same file.
DECODER_VERSION = "1"

_READ_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def num_features(size: int) -> int:
    """Length of one row for ``size × size`` RGB images."""
    return size * size * 3


def decode_image(path: Path, size: int) -> NDArray[np.uint8]:
    """One image file as a row of ``size * size * 3`` uint8 values in (H, W, C) order.

    Raises ``DataError`` naming the file when it is missing or cannot be decoded.
    """
    try:
        with Image.open(path) as opened:
            # Phones store the rotation in EXIF; without this a portrait shot lies on its side.
            upright = ImageOps.exif_transpose(opened)
            rgb = _to_rgb(upright)
            resized = rgb.resize((size, size), Image.Resampling.LANCZOS)
            pixels = np.asarray(resized, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise DataError(f"image not found: {path}") from exc
    except _READ_ERRORS as exc:
        raise DataError(f"cannot read image {path}: {exc}") from exc
    return pixels.reshape(-1)


def _to_rgb(image: Image.Image) -> Image.Image:
    # Going through RGBA first drops transparency explicitly instead of letting PIL warn about it.
    if image.mode in ("P", "PA", "LA") or "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def decode_images(paths: Sequence[Path], size: int) -> NDArray[np.uint8]:
    """Decode ``paths`` into ``(N, size * size * 3)`` uint8 rows, in the order given."""
    rows = np.empty((len(paths), num_features(size)), dtype=np.uint8)
    for index, path in enumerate(paths):
        rows[index] = decode_image(path, size)
    return rows


def load_images(paths: Sequence[Path | str], size: int = 64) -> NDArray[np.float32]:
    """Images for prediction: ``(N, size * size * 3)`` float32 in [0, 1] (pixels ÷ 255).

    The same decoding as training on an image folder; pass the result to the dataset's
    ``Normalizer.transform`` to get the model's inputs.
    """
    check_size(size)
    rows = decode_images([Path(path) for path in paths], size)
    return rows.astype(np.float32) / np.float32(255.0)


def check_size(size: object) -> int:
    """Validate an image side length: an int >= 1."""
    return check_int("image_size", size, 1)
