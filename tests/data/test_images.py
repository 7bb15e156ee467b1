"""Decoding image files: RGB, resizing, (H, W, C) order, errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tunery import ConfigError, DataError
from tunery.data import load_images
from tunery.data._images import decode_image, decode_images

from .helpers import write_image


def test_row_is_the_image_flattened_height_width_channel(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 3, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(pixels).save(path)
    row = decode_image(path, 3)
    assert row.dtype == np.uint8
    np.testing.assert_array_equal(row, pixels.reshape(-1))
    # Spelled out: the second triple is the pixel one step to the right, not down.
    np.testing.assert_array_equal(row[3:6], pixels[0, 1])
    np.testing.assert_array_equal(row[9:12], pixels[1, 0])


def test_any_size_is_resized_to_a_square(tmp_path: Path) -> None:
    path = write_image(tmp_path / "wide.png", (200, 10, 30), size=(17, 5))
    row = decode_image(path, 8)
    assert row.shape == (8 * 8 * 3,)
    np.testing.assert_array_equal(row.reshape(8, 8, 3), np.full((8, 8, 3), (200, 10, 30)))


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "I;16"])
def test_other_modes_become_three_channels(tmp_path: Path, mode: str) -> None:
    image = Image.new("RGB", (4, 4), (120, 120, 120)).convert(mode)
    if mode == "P":
        image.info["transparency"] = 0
    path = tmp_path / f"{mode.replace(';', '')}.png"
    image.save(path)
    row = decode_image(path, 4)
    assert row.shape == (48,)
    channels = row.reshape(-1, 3)
    assert np.all(channels == channels[:, :1])


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    pixels[:, :2] = (255, 0, 0)  # left half red, right half blue
    pixels[:, 2:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 3  # "rotate 180° to display"
    path = tmp_path / "rotated.png"
    Image.fromarray(pixels).save(path, exif=exif)
    upright = decode_image(path, 4).reshape(4, 4, 3)
    np.testing.assert_array_equal(upright[:, 0], np.tile([0, 0, 255], (4, 1)))


def test_load_images_gives_unit_floats(tmp_path: Path) -> None:
    paths = [
        write_image(tmp_path / "a.png", (255, 0, 51)),
        write_image(tmp_path / "b.jpg", (0, 0, 0)),
    ]
    rows = load_images(paths, size=5)
    assert rows.shape == (2, 75)
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows[0, :3], [1.0, 0.0, 0.2])
    np.testing.assert_array_equal(rows, decode_images(paths, 5) / np.float32(255))
    assert load_images([str(paths[0])], size=5).shape == (1, 75)


def test_missing_image_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jpg"
    with pytest.raises(DataError, match=r"not found.*nope\.jpg"):
        load_images([missing])


@pytest.mark.parametrize("content", [b"not an image at all", b""])
def test_unreadable_image_is_named(tmp_path: Path, content: bytes) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(content)
    with pytest.raises(DataError, match=r"cannot read image .*broken\.jpg"):
        load_images([broken])


def test_truncated_jpeg_is_named(tmp_path: Path) -> None:
    whole = tmp_path / "whole.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 3), np.uint8)).save(whole)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:300])
    with pytest.raises(DataError, match=r"cut\.jpg"):
        decode_image(cut, 8)


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "64"])
def test_bad_size_is_a_config_error(tmp_path: Path, size: object) -> None:
    with pytest.raises(ConfigError) as caught:
        load_images([], size=size)  # type: ignore[arg-type]
    assert caught.value.field == "image_size"
