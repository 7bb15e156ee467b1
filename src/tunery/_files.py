"""Writing files so that a crash or a full disk never leaves a half-written one behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(target: Path, data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to ``target`` through a temporary file in its folder and a rename.

    A reader sees the old file or the whole new one. With ``durable`` the bytes are flushed to the
    disk before the rename and the rename itself after it, so a power cut cannot leave an empty
    file in place of a checkpoint (the rename alone is atomic, but not ordered after the data
    without the fsync). On failure the temporary file is removed and the ``OSError`` raised.
    """
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if durable:
        _sync_folder(target.parent)
    return target


def _sync_folder(folder: Path) -> None:
    """fsync a folder so that a rename in it is on disk (not possible on every platform)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename is still atomic
    finally:
        os.close(descriptor)
