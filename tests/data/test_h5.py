"""The classic exercise's .h5 pair, found from a folder or the train file; layout errors named."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from tunery import DataError
from tunery.data import Dataset, load_dataset

from .helpers import balanced_labels, class_colour, colours_of, write_h5

TRAIN_LABELS = balanced_labels(10)  # 30 rows, classes 0..2
TEST_LABELS = balanced_labels(3)  # 9 rows


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A folder holding train_signs.h5 and test_signs.h5; returns it and the test images."""
    write_h5(tmp_path / "train_signs.h5", "train", TRAIN_LABELS, seed=1)
    test_images = write_h5(tmp_path / "test_signs.h5", "test", TEST_LABELS, seed=2)
    return tmp_path, test_images


def load(path: Path, **options: object) -> Dataset:
    options.setdefault("normalize", "scale")
    return load_dataset(path, **options)  # type: ignore[arg-type]


def test_folder_and_train_file_give_the_same_data(pair: tuple[Path, np.ndarray]) -> None:
    folder, _ = pair
    from_folder = load(folder)
    from_file = load(folder / "train_signs.h5")
    np.testing.assert_array_equal(from_folder.X_train, from_file.X_train)
    np.testing.assert_array_equal(from_folder.y_val, from_file.y_val)
    assert from_folder.class_names == ("0", "1", "2")
    assert from_folder.image_shape == (4, 4, 3)
    assert from_folder.num_features == 4 * 4 * 3


def test_test_file_is_the_test_set_and_val_comes_from_train(
    pair: tuple[Path, np.ndarray],
) -> None:
    folder, test_images = pair
    data = load(folder, val_fraction=0.2, test_fraction=0.5)
    np.testing.assert_array_equal(data.X_test * 255, test_images.reshape(len(TEST_LABELS), -1))
    np.testing.assert_array_equal(data.y_test, TEST_LABELS)
    assert len(data.y_val) == math.ceil(0.2 * len(TRAIN_LABELS))
    assert len(data.y_train) + len(data.y_val) == len(TRAIN_LABELS)
    assert np.bincount(data.y_val).tolist() == [2, 2, 2]
    for X, y in ((data.X_train, data.y_train), (data.X_val, data.y_val)):
        np.testing.assert_array_equal(colours_of(X), [class_colour(label) for label in y])


def test_standardized_with_train_statistics(pair: tuple[Path, np.ndarray]) -> None:
    folder, test_images = pair
    data = load_dataset(folder)
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-5)
    raw_test = test_images.reshape(len(TEST_LABELS), -1) / np.float32(255)
    np.testing.assert_allclose(data.X_test, data.normalizer.transform(raw_test), rtol=1e-6)


def test_class_subset_applies_to_both_files(pair: tuple[Path, np.ndarray]) -> None:
    folder, _ = pair
    data = load(folder, classes="0,2")
    assert data.class_names == ("0", "2")
    assert len(data.y_test) == 6
    np.testing.assert_array_equal(
        colours_of(data.X_test), [class_colour(2 * y) for y in data.y_test]
    )


def test_labels_as_a_row_vector_are_accepted(tmp_path: Path) -> None:
    write_h5(tmp_path / "train_x.h5", "train", TRAIN_LABELS)
    write_h5(tmp_path / "test_x.h5", "test", TEST_LABELS)
    with h5py.File(tmp_path / "train_x.h5", "a") as file:
        del file["train_set_y"]
        file["train_set_y"] = np.asarray([TRAIN_LABELS])
    assert len(load(tmp_path).y_train) + len(load(tmp_path).y_val) == len(TRAIN_LABELS)


def test_class_names_come_from_list_classes(tmp_path: Path) -> None:
    write_h5(tmp_path / "train_x.h5", "train", TRAIN_LABELS, list_classes=(3, 5, 9))
    write_h5(tmp_path / "test_x.h5", "test", TEST_LABELS, list_classes=(3, 5, 9))
    assert load(tmp_path).class_names == ("3", "5", "9")
    assert load(tmp_path, classes="5,9").class_names == ("5", "9")


def rewrite(path: Path, name: str, data: object) -> None:
    with h5py.File(path, "a") as file:
        if name in file:
            del file[name]
        if data is not None:
            file[name] = data


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("train_set_x", None, r"missing dataset 'train_set_x'"),
        ("train_set_y", None, r"missing dataset 'train_set_y'"),
        ("list_classes", None, r"missing dataset 'list_classes'"),
        ("train_set_x", np.zeros((30, 4, 4), np.uint8), r"'train_set_x' has shape \(30, 4, 4\)"),
        (
            "train_set_x",
            np.zeros((30, 4, 4, 3), np.float32),
            r"'train_set_x' must hold uint8 pixels 0-255, got float32",
        ),
        ("train_set_y", np.zeros(29, np.int64), r"'train_set_y' has shape \(29,\)"),
        ("train_set_y", np.full(30, 3, np.int64), r"'train_set_y' has labels outside 0..2"),
        ("list_classes", np.zeros((2, 2), np.int64), r"'list_classes' has shape"),
        ("list_classes", np.array([1, 1, 2]), r"'list_classes' repeats"),
    ],
)
def test_wrong_layout_names_file_and_dataset(
    pair: tuple[Path, np.ndarray], name: str, data: object, message: str
) -> None:
    folder, _ = pair
    rewrite(folder / "train_signs.h5", name, data)
    with pytest.raises(DataError, match=r"train_signs\.h5: .*" + message):
        load(folder)


def test_mismatched_classes_between_files(pair: tuple[Path, np.ndarray]) -> None:
    folder, _ = pair
    rewrite(folder / "test_signs.h5", "list_classes", np.array([0, 1, 7]))
    with pytest.raises(DataError, match=r"test_signs\.h5: list_classes"):
        load(folder)


def test_missing_test_file_is_named(pair: tuple[Path, np.ndarray]) -> None:
    folder, _ = pair
    (folder / "test_signs.h5").unlink()
    with pytest.raises(DataError, match=r"test file not found: .*test_signs\.h5"):
        load(folder)


def test_train_file_must_be_named_train(pair: tuple[Path, np.ndarray]) -> None:
    folder, _ = pair
    with pytest.raises(DataError, match=r"test_signs\.h5: expected the train file"):
        load(folder / "test_signs.h5")


def test_two_pairs_in_one_folder_are_ambiguous(pair: tuple[Path, np.ndarray]) -> None:
    folder, _ = pair
    write_h5(folder / "train_more.h5", "train", TRAIN_LABELS)
    with pytest.raises(DataError, match=r"exactly one train_\*\.h5 file, found train_more"):
        load(folder)


def test_not_an_hdf5_file(tmp_path: Path) -> None:
    (tmp_path / "train_bad.h5").write_bytes(b"plain text")
    (tmp_path / "test_bad.h5").write_bytes(b"plain text")
    with pytest.raises(DataError, match=r"cannot open .*train_bad\.h5 as an HDF5 file"):
        load(tmp_path)
