"""The ``store`` fixture: each conformance test runs over the memory store and the SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tunery.storage import BaseStorage, MemoryStorage, SqliteStorage


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStorage]:
    storage: BaseStorage = (
        MemoryStorage() if request.param == "memory" else SqliteStorage(tmp_path / "t.db")
    )
    yield storage
    storage.close()
