"""``get_storage`` turns a URL into a store, and names the field when the URL is bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunery import ConfigError
from tunery.storage import MemoryStorage, SqliteStorage, get_storage, parse_storage_url


@pytest.mark.parametrize("url", ["memory", ":memory:", "sqlite:///:memory:"])
def test_memory_urls_give_a_fresh_memory_store(url: str) -> None:
    first, second = get_storage(url), get_storage(url)
    assert isinstance(first, MemoryStorage)
    assert first is not second


def test_sqlite_url_with_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = get_storage("sqlite:///runs/t.db?durable=1&timeout=7.5")
    assert isinstance(store, SqliteStorage)
    assert (store.path, store.durable, store.timeout) == (Path("runs/t.db"), True, 7.5)
    assert (tmp_path / "runs" / "t.db").is_file()
    absolute = get_storage(f"sqlite:///{tmp_path / 'abs.db'}")
    assert isinstance(absolute, SqliteStorage)
    assert absolute.path == tmp_path / "abs.db"
    assert not absolute.durable


def test_a_path_or_a_store_is_accepted(tmp_path: Path) -> None:
    store = get_storage(tmp_path / "p.db")
    assert isinstance(store, SqliteStorage)
    assert get_storage(store) is store


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("postgres://host/db", "storage"),
        ("tunery.db", "storage"),
        ("sqlite:///", "storage"),
        (42, "storage"),
        ("sqlite:///t.db?durable=maybe", "storage option 'durable'"),
        ("sqlite:///t.db?timeout=soon", "storage option 'timeout'"),
        ("sqlite:///t.db?timeout=-1", "timeout"),
        ("sqlite:///t.db?colour=red", "storage option 'colour'"),
    ],
)
def test_bad_urls_name_the_field(
    url: object, field: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        get_storage(url)  # type: ignore[arg-type]
    assert info.value.field == field
    assert not (tmp_path / "t.db").exists()


def test_create_false_refuses_a_missing_file_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(ConfigError) as info:
        get_storage(f"sqlite:///{missing}", create=False, field="--storage")
    assert info.value.field == "--storage"
    assert str(missing) in info.value.expected
    assert not missing.exists()
    get_storage(f"sqlite:///{missing}").close()  # created by default
    get_storage(f"sqlite:///{missing}", create=False).close()  # now it exists


@pytest.mark.parametrize(
    "url", ["postgres://x", "sqlite:///", "sqlite:///a.db?durable=2", "sqlite:///a.db?x=1", 3]
)
def test_parse_storage_url_checks_without_opening(url: object, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        parse_storage_url(url)
    assert list(tmp_path.iterdir()) == []
