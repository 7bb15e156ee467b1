"""Small image folders and .h5 pairs written into tmp_path, with colours that identify the class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
from numpy.typing import NDArray
from PIL import Image


def class_colour(index: int) -> tuple[int, int, int]:
    """A solid colour per class index, far apart from the others' in the red channel."""
    return (10 + 40 * index, 200 - 30 * index, 90)


def write_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (6, 5)) -> Path:
    """A solid-colour PNG (lossless, so decoded pixels equal ``colour`` exactly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def make_image_folder(root: Path, counts: Mapping[str, int]) -> dict[str, list[Path]]:
    """``root/<class>/img<i>.png`` for each class; class ``k`` (in the mapping's order) has colour
    ``class_colour(k)``. Image sizes vary, to show that any size is accepted."""
    files: dict[str, list[Path]] = {}
    for index, (name, count) in enumerate(counts.items()):
        files[name] = [
            write_image(root / name / f"img{i}.png", class_colour(index), (5 + i % 3, 4 + i % 2))
            for i in range(count)
        ]
    return files


def colours_of(rows: NDArray[np.floating], channels: int = 3) -> NDArray[np.int64]:
    """The first pixel of each row in [0, 1] scale, as 0–255 ints: ``(N, 3)``."""
    colours: NDArray[np.int64] = np.rint(rows[:, :channels] * 255).astype(np.int64)
    return colours


def write_h5(
    path: Path,
    prefix: str,
    labels: Sequence[int],
    list_classes: Sequence[int] = (0, 1, 2),
    side: int = 4,
    seed: int = 0,
) -> NDArray[np.uint8]:
    """A file in the classic layout; pixels are random but the first pixel is the class colour.

    Returns the images ``(N, side, side, 3)`` it wrote.
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(len(labels), side, side, 3), dtype=np.uint8)
    for row, label in enumerate(labels):
        images[row, 0, 0] = class_colour(label)
    with h5py.File(path, "w") as file:
        file.create_dataset(f"{prefix}_set_x", data=images)
        file.create_dataset(f"{prefix}_set_y", data=np.asarray(labels, dtype=np.int64))
        file.create_dataset("list_classes", data=np.asarray(list_classes, dtype=np.int64))
    return images


def balanced_labels(per_class: int, num_classes: int = 3) -> list[int]:
    """``[0, 1, ..., C-1, 0, 1, ...]`` with ``per_class`` of each."""
    return [label for _ in range(per_class) for label in range(num_classes)]
