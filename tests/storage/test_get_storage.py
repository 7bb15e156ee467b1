"""``get_storage`` turns a URL into a store, and names the field when the URL is bad."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tunery import ConfigError, StorageError
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


def test_create_false_refuses_an_empty_file_and_leaves_it_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(ConfigError) as info:
        get_storage(f"sqlite:///{empty}", create=False, field="--storage")
    assert info.value.field == "--storage"
    assert "empty" in info.value.expected
    with pytest.raises(StorageError, match="empty file"):
        SqliteStorage(empty, create=False)
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]  # no -wal, -shm, locks


def test_create_false_leaves_a_foreign_file_as_it_was(tmp_path: Path) -> None:
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE notes (text TEXT)")
        con.execute("INSERT INTO notes VALUES ('mine')")
    con.close()
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, " * 100, encoding="utf-8")
    for path, message in ((foreign, "another program"), (text, "not a tunery store")):
        before = path.read_bytes()
        with pytest.raises(StorageError, match=message):
            get_storage(f"sqlite:///{path}", create=False)
        assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "other.db"]


def test_create_false_opens_a_store_that_is_there(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with SqliteStorage(path) as store:
        store.open_study("s", direction="maximize", seed=0, metric="m")
    with get_storage(f"sqlite:///{path}", create=False) as again:
        assert [s.study.name for s in again.list_studies()] == ["s"]
        study_id = again.open_study("t", direction="minimize", seed=0, metric="m").study_id
        assert again.get_study("t") is not None
        assert study_id == 2
    with pytest.raises(StorageError, match="cannot be opened"):
        SqliteStorage(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
