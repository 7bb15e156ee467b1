"""The writer lock of a study in an SQLite store: an ``flock`` on a file in a hidden folder.

The lock of study ``N`` of ``runs/tunery.db`` is ``runs/.tunery.db.locks/study<N>.lock``: beside
the database, so every process that can open the database finds it (also across containers sharing
the folder), yet out of sight. ``flock`` is released by the kernel when the holder ends, even by
SIGKILL, so a crashed writer never blocks its study. Nothing is written until a process claims a
study: readers never create the folder.

Why not a lock on the database file itself: SQLite holds POSIX record locks on it, and closing any
other descriptor of that file in the process would silently drop them.
"""

from __future__ import annotations

import os
from pathlib import Path

from tunery._exceptions import StorageError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so no guard against a second writer
    fcntl = None  # type: ignore[assignment]

__all__ = ["lock_folder", "lock_study", "unlock"]


def lock_folder(database: Path) -> Path:
    """The hidden folder that holds the writer locks of ``database``'s studies."""
    return database.with_name(f".{database.name}.locks")


def lock_study(database: Path, study_id: int) -> int | None:
    """Take study ``study_id``'s writer lock; its descriptor (``None`` where there is no flock).

    ``StorageError`` if another live process holds it.
    """
    if fcntl is None:
        return None  # type: ignore[unreachable]  # (mypy checks as on POSIX)
    folder = lock_folder(database)
    folder.mkdir(exist_ok=True)
    path = folder / f"study{study_id}.lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise StorageError(
            f"{database}: another process is running study id {study_id} (it holds "
            f"{path}). One process runs a study; use workers=N for parallel trials."
        ) from None
    return descriptor


def unlock(descriptor: int) -> None:
    os.close(descriptor)  # closing the descriptor drops its flock
