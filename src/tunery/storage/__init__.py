"""Study stores: in memory, or in an SQLite file shared by processes; ``get_storage(url)`` picks.

URLs:

- ``"sqlite:///runs/tunery.db"`` (relative path), ``"sqlite:////abs/path/tunery.db"`` (absolute);
  query options ``?durable=1`` (fsync every commit: survives power loss) and ``?timeout=60``
  (seconds to wait for another process's write lock);
- ``"memory"``, ``":memory:"`` or ``"sqlite:///:memory:"``: a new, private in-memory store;
- a ``pathlib.Path``: that SQLite file; a ``BaseStorage``: itself.

The records a store keeps (``FrozenTrial``, ``TrialState``, ``Event``, ...) are in
``tunery.records``, which every floor can read without importing a store.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from tunery._exceptions import ConfigError
from tunery.storage._base import BaseStorage
from tunery.storage._memory import MemoryStorage
from tunery.storage._sqlite import SCHEMA_VERSION, SqliteStorage

__all__ = [
    "SCHEMA_VERSION",
    "BaseStorage",
    "MemoryStorage",
    "SqliteStorage",
    "get_storage",
    "parse_storage_url",
]

_MEMORY_URLS = frozenset({"memory", ":memory:", "sqlite:///:memory:", "sqlite://"})
_SQLITE_PREFIX = "sqlite:///"
_EXPECTED_URL = (
    "'sqlite:///path.db' (optionally '?durable=1&timeout=30'), ':memory:' or a BaseStorage"
)


def get_storage(
    url: str | PathLike[str] | BaseStorage, *, create: bool = True, field: str = "storage"
) -> BaseStorage:
    """The store named by ``url`` (see the module docstring). A bad URL raises ``ConfigError``.

    With ``create=False`` an SQLite file that is not there, or empty, is an error (naming
    ``field``), never created; a file that is not a tunery store is a ``StorageError``. Either way
    the file is left as it was: commands that only read or steer a study must not leave empty
    stores behind, nor turn another program's file into one.
    """
    if isinstance(url, BaseStorage):
        return url
    path: Path | None
    options: dict[str, Any]
    if isinstance(url, PathLike):
        path, options = Path(url), {}
    else:
        path, options = parse_storage_url(url, field=field)
    if path is None:
        return MemoryStorage()
    if not create and not path.is_file():
        raise ConfigError(field, url, f"an existing study store (there is no {path})")
    if not create and path.stat().st_size == 0:
        raise ConfigError(field, url, f"an existing study store ({path} is an empty file)")
    return SqliteStorage(path, create=create, **options)


def parse_storage_url(url: object, *, field: str = "storage") -> tuple[Path | None, dict[str, Any]]:
    """Check a store URL without opening anything: its SQLite path (``None``: memory), options."""
    if not isinstance(url, str):
        raise ConfigError(field, url, _EXPECTED_URL)
    if url in _MEMORY_URLS:
        return None, {}
    path, _, query = url.removeprefix(_SQLITE_PREFIX).partition("?")
    if not url.startswith(_SQLITE_PREFIX) or not path:
        raise ConfigError(field, url, _EXPECTED_URL)
    if path == ":memory:":
        return None, {}
    return Path(path), _sqlite_options(url, query)


def _sqlite_options(url: str, query: str) -> dict[str, Any]:
    """``durable`` and ``timeout`` from the URL's query string."""
    options: dict[str, Any] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigError("storage", url, _EXPECTED_URL) from None
    for key, value in pairs:
        if key == "durable" and value.lower() in {"1", "0", "true", "false", "yes", "no"}:
            options["durable"] = value.lower() in {"1", "true", "yes"}
        elif key == "timeout":
            options["timeout"] = _seconds(url, value)
        else:
            raise ConfigError(f"storage option {key!r}", value, "durable=0|1 or timeout=<seconds>")
    return options


def _seconds(url: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError("storage option 'timeout'", text, "a number of seconds") from None
