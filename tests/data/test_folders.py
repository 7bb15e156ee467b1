"""Image folders through load_dataset: class discovery, subsets, labels, errors naming the path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tunery import DataError
from tunery.data import Dataset, load_dataset

from .helpers import class_colour, colours_of, make_image_folder, write_image

SIZE = 4


def load(root: Path, tmp_path: Path, **options: object) -> Dataset:
    """Small images, scale only (so the class colour can be read back), a private cache."""
    options.setdefault("normalize", "scale")
    return load_dataset(
        root,
        image_size=SIZE,
        cache_dir=tmp_path / "cache",
        **options,  # type: ignore[arg-type]
    )


def all_rows(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.concatenate([data.X_train, data.X_val, data.X_test]),
        np.concatenate([data.y_train, data.y_val, data.y_test]),
    )


def test_classes_are_sorted_numerically_and_rows_keep_their_class(tmp_path: Path) -> None:
    counts = {"10": 7, "2": 8, "1": 9}
    make_image_folder(tmp_path / "imgs", counts)
    data = load(tmp_path / "imgs", tmp_path)
    assert data.class_names == ("1", "2", "10")
    assert data.num_features == SIZE * SIZE * 3
    assert data.num_classes == 3
    assert data.image_shape == (SIZE, SIZE, 3)
    assert data.source == str(tmp_path / "imgs")
    X, y = all_rows(data)
    assert len(y) == sum(counts.values())
    assert np.bincount(y).tolist() == [counts[name] for name in data.class_names]
    # make_image_folder coloured classes in the mapping's order: "10" is colour 0, "2" 1, "1" 2.
    colour_index = {name: index for index, name in enumerate(counts)}
    expected = [class_colour(colour_index[data.class_names[label]]) for label in y]
    np.testing.assert_array_equal(colours_of(X), expected)


def test_subset_reindexes_labels_and_keeps_names(tmp_path: Path) -> None:
    counts = {"0": 6, "1": 6, "2": 6, "3": 6}
    make_image_folder(tmp_path / "imgs", counts)
    data = load(tmp_path / "imgs", tmp_path, classes="1,3")
    assert data.class_names == ("1", "3")
    X, y = all_rows(data)
    assert sorted(set(y.tolist())) == [0, 1]
    np.testing.assert_array_equal(colours_of(X), [class_colour(1 + 2 * label) for label in y])


def test_non_numeric_names_sort_as_strings(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "imgs", {"dog": 5, "cat": 5, "Ant": 5})
    assert load(tmp_path / "imgs", tmp_path).class_names == ("Ant", "cat", "dog")


def test_hidden_and_non_image_files_are_ignored(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "imgs", {"a": 5, "b": 5})
    write_image(tmp_path / "imgs" / "a" / ".hidden.png", (1, 2, 3))
    (tmp_path / "imgs" / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "imgs" / ".thumbs").mkdir()
    (tmp_path / "imgs" / "README.md").write_text("a file beside the class folders")
    data = load(tmp_path / "imgs", tmp_path)
    assert data.class_names == ("a", "b")
    assert len(all_rows(data)[1]) == 10


def test_standardized_by_default(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for name in ("0", "1"):
        for i in range(10):
            write_image(root / name / f"{i}.png", tuple(rng.integers(0, 256, 3).tolist()))
    data = load_dataset(root, image_size=SIZE, cache_dir=tmp_path / "cache")
    assert data.normalizer.kind == "standardize"
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1, atol=1e-4)


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not found: .*nowhere"):
        load(tmp_path / "nowhere", tmp_path)


def test_folder_without_class_subfolders(tmp_path: Path) -> None:
    write_image(tmp_path / "flat" / "a.png", (0, 0, 0))
    with pytest.raises(DataError, match=r"flat has no class subfolders"):
        load(tmp_path / "flat", tmp_path)


def test_a_plain_file_is_not_a_source(tmp_path: Path) -> None:
    image = write_image(tmp_path / "one.png", (0, 0, 0))
    with pytest.raises(DataError, match=r"one\.png"):
        load(image, tmp_path)


def test_empty_class_is_named(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "imgs", {"0": 5, "1": 5})
    (tmp_path / "imgs" / "2").mkdir()
    (tmp_path / "imgs" / "2" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"empty class folder .*imgs.2"):
        load(tmp_path / "imgs", tmp_path)
    # Leaving the empty class out of the selection is fine.
    assert load(tmp_path / "imgs", tmp_path, classes="0-1").num_classes == 2


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "imgs", {"0": 5, "1": 5})
    (tmp_path / "imgs" / "1" / "bad.jpg").write_bytes(b"\xff\xd8 garbage")
    with pytest.raises(DataError, match=r"cannot read image .*bad\.jpg"):
        load(tmp_path / "imgs", tmp_path)


def test_unknown_classes_are_named(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "imgs", {"0": 5, "1": 5})
    with pytest.raises(DataError, match=r"unknown classes \['7'\]"):
        load(tmp_path / "imgs", tmp_path, classes="0,1,7")


def test_too_few_images_to_split_names_the_folder(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "imgs", {"0": 1, "1": 5})
    with pytest.raises(DataError, match=r"imgs: cannot split"):
        load(tmp_path / "imgs", tmp_path)
