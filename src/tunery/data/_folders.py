"""Image folders: one subfolder per class, any image size and format Pillow reads.

``root/<class>/<image>``: the class names are the subfolder names, sorted (numerically when all are
integers). The files directly inside a class folder with a known image suffix are used, sorted by
name; hidden files and folders (a leading ``.``) and deeper subfolders are ignored. Only the
selected classes are hashed and decoded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tunery._exceptions import DataError
from tunery.data import _cache, _images
from tunery.data._classes import Labeled, resolve_classes, sort_class_names

__all__ = ["IMAGE_SUFFIXES", "find_class_folders", "list_images", "load_image_folder"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def find_class_folders(root: Path) -> dict[str, Path]:
    """Class name → class folder, in sorted class order. Raises ``DataError`` naming ``root``."""
    if not root.exists():
        raise DataError(f"data folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"not a folder of class subfolders: {root}")
    folders = {child.name: child for child in root.iterdir() if _is_visible_dir(child)}
    if not folders:
        raise DataError(
            f"{root} has no class subfolders: expected one subfolder per class, "
            "e.g. <folder>/0/*.jpg, <folder>/1/*.jpg"
        )
    return {name: folders[name] for name in sort_class_names(folders)}


def _is_visible_dir(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".")


def list_images(class_folder: Path) -> list[Path]:
    """The image files of one class, sorted by name. Raises ``DataError`` when there are none."""
    images = sorted(
        child
        for child in class_folder.iterdir()
        if child.suffix.lower() in IMAGE_SUFFIXES
        and not child.name.startswith(".")
        and child.is_file()
    )
    if not images:
        raise DataError(
            f"empty class folder {class_folder}: no image files "
            f"({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return images


def load_image_folder(
    root: Path, wanted: tuple[str, ...] | None, size: int, cache_dir: Path | None
) -> Labeled:
    """The selected classes of ``root`` as uint8 rows ``(N, size * size * 3)`` and labels ``(N,)``.

    Decoded rows are cached under ``cache_dir`` (see ``tunery.data._cache``), keyed by the files'
    content, so a second load of unchanged files does not decode.
    """
    folders = find_class_folders(root)
    chosen = resolve_classes(list(folders), wanted, root)
    per_class = [list_images(folders[name]) for name in chosen]
    files = [path for images in per_class for path in images]
    labels = np.repeat(np.arange(len(chosen), dtype=np.int64), [len(i) for i in per_class])
    rows = _decode_cached(root, files, size, _cache.cache_root(cache_dir))
    return Labeled(X=rows, y=labels, class_names=chosen, image_shape=(size, size, 3), scale=255.0)


def _decode_cached(root: Path, files: list[Path], size: int, directory: Path) -> NDArray[np.uint8]:
    key = _cache.content_key(root, files, size)
    cached = _cache.read_cached(directory, key, (len(files), _images.num_features(size)))
    if cached is not None:
        return cached
    rows = _images.decode_images(files, size)
    _cache.write_cached(directory, key, rows)
    return rows
