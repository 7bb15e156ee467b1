"""The decoded-image cache: a second load does not decode; changed content is decoded again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from tunery.data import CACHE_ENV, Dataset, cache_root, load_dataset
from tunery.data import _images as images_module
from tunery.data._cache import content_key

from .helpers import make_image_folder, write_image


class DecodeCounter:
    """Wraps the real decoder and counts the files it decodes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._real = images_module.decode_image
        monkeypatch.setattr(images_module, "decode_image", self)

    def __call__(self, path: Path, size: int) -> NDArray[np.uint8]:
        self.calls += 1
        return self._real(path, size)


def load(root: Path, cache: Path | None) -> Dataset:
    return load_dataset(root, image_size=4, normalize="scale", cache_dir=cache)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    make_image_folder(tmp_path / "imgs", {"0": 6, "1": 6})
    return tmp_path / "imgs"


def test_second_load_does_not_decode(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = DecodeCounter(monkeypatch)
    first = load(folder, tmp_path / "cache")
    assert counter.calls == 12
    assert len(list((tmp_path / "cache").glob("images-*.npz"))) == 1
    second = load(folder, tmp_path / "cache")
    assert counter.calls == 12
    np.testing.assert_array_equal(second.X_train, first.X_train)
    np.testing.assert_array_equal(second.y_test, first.y_test)


def test_cached_load_works_with_the_decoder_broken(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(folder, tmp_path / "cache")

    def refuse(path: Path, size: int) -> NDArray[np.uint8]:
        raise AssertionError(f"decoded {path} although it was cached")

    monkeypatch.setattr(images_module, "decode_image", refuse)
    assert load(folder, tmp_path / "cache").num_classes == 2


def test_changed_file_is_decoded_again(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load(folder, tmp_path / "cache")
    counter = DecodeCounter(monkeypatch)
    write_image(folder / "0" / "img0.png", (255, 255, 255))
    second = load(folder, tmp_path / "cache")
    assert counter.calls == 12
    assert len(list((tmp_path / "cache").glob("images-*.npz"))) == 2
    # The new white image is in the data now, and was not before.
    assert not has_white_row(first)
    assert has_white_row(second)


def has_white_row(data: Dataset) -> bool:
    rows = np.concatenate([data.X_train, data.X_val, data.X_test])
    return bool(np.any(np.all(rows == 1.0, axis=1)))


def test_key_follows_content_path_and_size(tmp_path: Path) -> None:
    files = make_image_folder(tmp_path / "a", {"0": 2, "1": 2})
    paths = [path for group in files.values() for path in group]
    key = content_key(tmp_path / "a", paths, 64)
    # The same bytes under another root: same key (moving the folder keeps the cache).
    make_image_folder(tmp_path / "b", {"0": 2, "1": 2})
    moved = [tmp_path / "b" / path.relative_to(tmp_path / "a") for path in paths]
    assert content_key(tmp_path / "b", moved, 64) == key
    assert content_key(tmp_path / "a", paths, 32) != key
    renamed = paths[0].rename(paths[0].with_name("other.png"))
    renamed_key = content_key(tmp_path / "a", [renamed, *paths[1:]], 64)
    assert renamed_key != key
    write_image(renamed, (0, 0, 1))
    assert content_key(tmp_path / "a", [renamed, *paths[1:]], 64) != renamed_key


def test_broken_cache_file_is_a_miss(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load(folder, tmp_path / "cache")
    (cached,) = (tmp_path / "cache").glob("images-*.npz")
    cached.write_bytes(b"PK\x03\x04 not really a zip")
    counter = DecodeCounter(monkeypatch)
    second = load(folder, tmp_path / "cache")
    assert counter.calls == 12
    np.testing.assert_array_equal(second.X_train, first.X_train)


def test_unwritable_cache_still_loads(folder: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("a cache dir cannot live under a file")
    assert load(folder, blocker / "cache").num_classes == 2


def test_cache_dir_from_environment(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env-cache"))
    assert cache_root() == tmp_path / "env-cache"
    assert cache_root(tmp_path / "explicit") == tmp_path / "explicit"
    load(folder, None)
    assert len(list((tmp_path / "env-cache").glob("images-*.npz"))) == 1


def test_default_cache_dir_is_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / ".cache" / "tunery"
