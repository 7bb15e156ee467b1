"""``Dataset`` and ``load_dataset``: from a source name or path to normalized train/val/test."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from tunery._exceptions import ConfigError, DataError
from tunery.data import _folders, _h5
from tunery.data._augment import Augmenter, AugmentSettings
from tunery.data._classes import ClassSpec, Labeled, parse_classes, resolve_classes
from tunery.data._digits import DIGITS, load_bundled_digits
from tunery.data._images import check_size
from tunery.data._normalize import NormalizeKind, Normalizer, check_normalize
from tunery.data._splits import (
    DEFAULT_TEST_FRACTION,
    DEFAULT_VAL_FRACTION,
    Part,
    check_fractions,
    check_seed,
    split_off,
    split_seeds,
    split_three,
)

__all__ = ["Dataset", "load_dataset", "resizes_images"]

_H5_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Normalized splits, ready to train on.

    ``X_*: (N, D)`` float32 (or float64 after ``astype``), ``y_*: (N,)`` int64 labels in
    ``0..num_classes-1``; label ``k`` is the class ``class_names[k]``. ``normalizer`` was fitted on
    ``X_train`` and maps new rows in [0, 1] the same way. ``image_shape`` is the shape one row came
    from (``(64, 64, 3)`` for photos, ``(8, 8)`` for the digits).
    """

    X_train: NDArray[np.floating[Any]]
    y_train: NDArray[np.int64]
    X_val: NDArray[np.floating[Any]]
    y_val: NDArray[np.int64]
    X_test: NDArray[np.floating[Any]]
    y_test: NDArray[np.int64]
    class_names: tuple[str, ...]
    source: str
    normalizer: Normalizer
    image_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            X, y = getattr(self, f"X_{name}"), getattr(self, f"y_{name}")
            if X.ndim != 2 or y.shape != (len(X),) or X.shape[1] != self.X_train.shape[1]:
                raise ConfigError(
                    f"X_{name}, y_{name}", (X.shape, y.shape), "shapes (N, D) and (N,)"
                )

    @property
    def num_features(self) -> int:
        """``D``, the length of one row."""
        return int(self.X_train.shape[1])

    @property
    def num_classes(self) -> int:
        """``C``, the number of classes."""
        return len(self.class_names)

    def astype(self, dtype: DTypeLike) -> Dataset:
        """The same data with the ``X_*`` arrays as ``dtype`` (float32 or float64)."""
        resolved = np.dtype(dtype)
        if resolved not in (np.float32, np.float64):
            raise ConfigError("dtype", dtype, "float32 or float64")
        return dataclasses.replace(
            self,
            X_train=self.X_train.astype(resolved),
            X_val=self.X_val.astype(resolved),
            X_test=self.X_test.astype(resolved),
        )

    def with_changed_validation(self, settings: AugmentSettings, copies: int, seed: int) -> Dataset:
        """This data set with the validation split followed by ``copies`` changed copies of it:
        each copy's photos changed once by ``settings`` (``Augmenter``), with a generator seeded by
        ``seed`` alone, so every trial of a study is judged on the same photos. Train and test stay.

        For selecting on photos that differ from the collection the way new ones will (a new hand,
        a tilt, another light): a model is then scored on the clean photos and on the changed ones.
        """
        if self.image_shape is None:
            raise ConfigError("data.validation_augment", settings.to_dict(), "a data set of images")
        if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
            raise ConfigError("data.validation_copies", copies, "an integer >= 1")
        try:
            augmenter = Augmenter(
                settings, self.image_shape, mean=self.normalizer.mean, std=self.normalizer.std
            )
        except ConfigError as error:  # "augment.hue" is the config's "data.validation_augment.hue"
            field = f"data.validation_{error.field}"
            raise ConfigError(field, error.value, error.expected) from None
        rng = np.random.default_rng(seed)
        changed = [augmenter(self.X_val, rng).astype(self.X_val.dtype) for _ in range(copies)]
        return dataclasses.replace(
            self,
            X_val=np.concatenate([self.X_val, *changed]),
            y_val=np.tile(self.y_val, copies + 1),
        )

    def __repr__(self) -> str:
        return (
            f"Dataset(source={self.source!r}, classes={list(self.class_names)}, "
            f"features={self.num_features}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, normalize={self.normalizer.kind!r})"
        )


def load_dataset(
    source: str | Path = DIGITS,
    *,
    classes: ClassSpec = None,
    normalize: NormalizeKind = "standardize",
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    cache_dir: Path | None = None,
    image_size: int = 64,
) -> Dataset:
    """Load, select classes, split (stratified, seeded) and normalize a data set.

    ``source`` is ``"digits"`` (the bundled 8 × 8 digits; a ``Path`` is never taken as that name), a
    folder with one subfolder of images per class, a ``train_<name>.h5`` file with
    ``test_<name>.h5`` beside it, or a folder holding such a pair. Photos are resized to
    ``image_size × image_size`` RGB: ``D = image_size² · 3`` (12,288 for 64); .h5 images keep
    their size.

    Splits: ``test_fraction`` and ``val_fraction`` of all rows go to the test and validation sets
    (default 0.70 / 0.15 / 0.15). For an .h5 pair the test file is the test set, ``val_fraction`` is
    a share of the train file, and ``test_fraction`` is not used.
    """
    kind = check_normalize(normalize)
    val_share, test_share = check_fractions(val_fraction, test_fraction)
    seed = check_seed(seed)
    wanted = parse_classes(classes)
    check_size(image_size)
    if isinstance(source, str) and source == DIGITS:
        labeled = _select(load_bundled_digits(), wanted, DIGITS)
        return _from_one(labeled, DIGITS, kind, val_share, test_share, seed)
    path = _existing(Path(source).expanduser())
    if path.is_file() or _h5.has_h5_pair(path):
        train, test = _h5.load_h5_pair(path)
        train, test = _select(train, wanted, path), _select(test, wanted, path)
        return _from_pair(train, test, str(path), kind, val_share, seed)
    labeled = _folders.load_image_folder(path, wanted, image_size, cache_dir)
    return _from_one(labeled, str(path), kind, val_share, test_share, seed)


def resizes_images(source: str | Path) -> bool:
    """Whether ``load_dataset(source, image_size=...)`` resizes: true for a folder of photos only
    (the bundled digits and .h5 images keep their size). The source must exist."""
    if isinstance(source, str) and source == DIGITS:
        return False
    path = _existing(Path(source).expanduser())
    return not (path.is_file() or _h5.has_h5_pair(path))


def _existing(path: Path) -> Path:
    """``path`` if it can be a source: an existing folder, or an .h5 file."""
    if not path.exists():
        raise DataError(
            f"data not found: {path} (expected a folder of class subfolders, a train_*.h5 file, "
            f"a folder holding train_*.h5 and test_*.h5, or {DIGITS!r})"
        )
    if path.is_file() and path.suffix.lower() not in _H5_SUFFIXES:
        raise DataError(f"{path}: expected a folder of class subfolders or a train_*.h5 file")
    return path


def _select(labeled: Labeled, wanted: tuple[str, ...] | None, source: object) -> Labeled:
    names = resolve_classes(labeled.class_names, wanted, source)
    return labeled if names == labeled.class_names else labeled.select(names)


def _from_one(
    labeled: Labeled, source: str, kind: NormalizeKind, val: float, test: float, seed: int
) -> Dataset:
    train, validation, testing = split_three(Part(labeled.X, labeled.y), val, test, seed, source)
    return _normalized(labeled, train, validation, testing, source, kind)


def _from_pair(
    train_file: Labeled, test_file: Labeled, source: str, kind: NormalizeKind, val: float, seed: int
) -> Dataset:
    _, val_seed = split_seeds(seed)
    train, validation = split_off(Part(train_file.X, train_file.y), val, val_seed, source)
    return _normalized(train_file, train, validation, Part(test_file.X, test_file.y), source, kind)


def _normalized(
    labeled: Labeled,
    train: Part,
    validation: Part,
    testing: Part,
    source: str,
    kind: NormalizeKind,
) -> Dataset:
    def unit(part: Part) -> NDArray[np.float32]:
        return np.asarray(part.X, dtype=np.float32) / np.float32(labeled.scale)

    train_rows = unit(train)
    normalizer = Normalizer.fit(train_rows, kind)
    return Dataset(
        X_train=normalizer.transform(train_rows),
        y_train=train.y,
        X_val=normalizer.transform(unit(validation)),
        y_val=validation.y,
        X_test=normalizer.transform(unit(testing)),
        y_test=testing.y,
        class_names=labeled.class_names,
        source=source,
        normalizer=normalizer,
        image_shape=labeled.image_shape,
    )
