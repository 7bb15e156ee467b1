"""The classic SIGNS exercise's HDF5 files: ``train_<name>.h5`` with ``test_<name>.h5`` beside it.

Layout of ``train_signs.h5`` (``test_signs.h5`` is the same with ``test_`` prefixes):

    train_set_x   (N, H, W, 3) uint8   the photos (64 × 64 in the exercise)
    train_set_y   (N,) int             labels: indices into list_classes
    list_classes  (C,) int             the class of each label (its string form is the class name)

The test file is the test set; validation comes out of the train file. Rows are the photos flattened
in (H, W, C) order, as ``X_orig.reshape(N, -1)`` in the exercise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from tunery._exceptions import DataError
from tunery.data._classes import Labeled

__all__ = ["find_h5_pair", "has_h5_pair", "load_h5_pair", "read_h5_file"]

_TRAIN, _TEST = "train_", "test_"


def has_h5_pair(folder: Path) -> bool:
    """Whether ``folder`` holds a ``train_*.h5`` file (so it is meant as an .h5 pair)."""
    return any(folder.glob(f"{_TRAIN}*.h5"))


def find_h5_pair(path: Path) -> tuple[Path, Path]:
    """``(train_file, test_file)`` from a folder holding one pair, or from the train file itself."""
    train = _single_train_file(path) if path.is_dir() else path
    if not train.name.startswith(_TRAIN):
        raise DataError(
            f"{train}: expected the train file of a pair, named {_TRAIN}<name>.h5 "
            f"with {_TEST}<name>.h5 beside it"
        )
    test = train.with_name(_TEST + train.name.removeprefix(_TRAIN))
    if not test.is_file():
        raise DataError(f"test file not found: {test} (expected beside {train})")
    return train, test


def _single_train_file(folder: Path) -> Path:
    trains = sorted(folder.glob(f"{_TRAIN}*.h5"))
    if len(trains) != 1:
        names = ", ".join(path.name for path in trains) or "none"
        raise DataError(f"{folder}: expected exactly one {_TRAIN}*.h5 file, found {names}")
    return trains[0]


def load_h5_pair(path: Path) -> tuple[Labeled, Labeled]:
    """``(train, test)`` rows of the pair ``path`` names; both must agree on classes and shape."""
    train_file, test_file = find_h5_pair(path)
    train = read_h5_file(train_file, "train")
    test = read_h5_file(test_file, "test")
    if test.class_names != train.class_names:
        raise DataError(
            f"{test_file}: list_classes {list(test.class_names)} differs from "
            f"{list(train.class_names)} in {train_file}"
        )
    if test.image_shape != train.image_shape:
        raise DataError(
            f"{test_file}: images of shape {test.image_shape}, "
            f"but {train_file} has {train.image_shape}"
        )
    return train, test


def read_h5_file(path: Path, prefix: str) -> Labeled:
    """One file of the pair as uint8 rows ``(N, H * W * 3)``; ``prefix``: ``"train"``/``"test"``."""
    try:
        with h5py.File(path, "r") as file:
            images = _read(file, f"{prefix}_set_x", path)
            labels = _read(file, f"{prefix}_set_y", path)
            classes = _read(file, "list_classes", path)
    except OSError as exc:
        raise DataError(f"cannot open {path} as an HDF5 file: {exc}") from exc
    names = _class_names(classes, path)
    return Labeled(
        X=_check_images(images, f"{prefix}_set_x", path).reshape(len(images), -1),
        y=_check_labels(labels, len(images), len(names), f"{prefix}_set_y", path),
        class_names=names,
        image_shape=tuple(int(side) for side in images.shape[1:]),
        scale=255.0,
    )


def _read(file: h5py.File, name: str, path: Path) -> NDArray[Any]:
    if name not in file:
        raise DataError(f"{path}: missing dataset {name!r} (it has {', '.join(sorted(file))})")
    node = file[name]
    if not isinstance(node, h5py.Dataset):
        raise DataError(f"{path}: {name!r} is a group, expected a dataset")
    return np.asarray(node[()])


def _check_images(images: NDArray[Any], name: str, path: Path) -> NDArray[np.uint8]:
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise DataError(f"{path}: dataset {name!r} has shape {images.shape}, expected (N, H, W, 3)")
    if images.dtype.kind not in "ui" or images.min() < 0 or images.max() > 255:
        raise DataError(
            f"{path}: dataset {name!r} must hold uint8 pixels 0-255, got {images.dtype}"
        )
    return images.astype(np.uint8, copy=False)


def _check_labels(
    labels: NDArray[Any], count: int, num_classes: int, name: str, path: Path
) -> NDArray[np.int64]:
    # The exercise's own code reshapes y to (1, N); accept that form too.
    if labels.size != count or labels.ndim not in (1, 2) or labels.dtype.kind not in "ui":
        raise DataError(
            f"{path}: dataset {name!r} has shape {labels.shape} and dtype {labels.dtype}, "
            f"expected ({count},) integers"
        )
    flat = labels.reshape(-1).astype(np.int64)
    if flat.min() < 0 or flat.max() >= num_classes:
        raise DataError(
            f"{path}: dataset {name!r} has labels outside 0..{num_classes - 1} "
            "(indices into list_classes)"
        )
    return flat


def _class_names(classes: NDArray[Any], path: Path) -> tuple[str, ...]:
    if classes.ndim != 1 or len(classes) == 0:
        raise DataError(f"{path}: dataset 'list_classes' has shape {classes.shape}, expected (C,)")
    names = tuple(_name(value) for value in classes.tolist())
    if len(set(names)) != len(names):
        raise DataError(f"{path}: dataset 'list_classes' repeats a class: {list(names)}")
    return names


def _name(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
