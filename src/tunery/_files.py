"""Writing files so that a crash or a full disk never leaves a half-written one behind; and
checkpoints kept in a ``checkpoint_dir`` (a local folder, or any URL fsspec opens) rather than in
the store, which then keeps only where each one is."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from tunery._exceptions import ConfigError, StorageError

__all__ = [
    "CHECKPOINT_FOLDER_HELP",
    "check_checkpoint_dir",
    "checkpoint_location",
    "read_checkpoint",
    "stored_location",
    "write_atomic",
    "write_checkpoint",
]


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


# -- checkpoints outside the store -----------------------------------------------------------------

CHECKPOINT_FOLDER_HELP = "a folder path, or a URL fsspec opens (file://, s3://, gs://, memory://)"
_REFERENCE = b"tunery-checkpoint-at:"
"""The head of what the store keeps for a checkpoint written to a ``checkpoint_dir``: its URL
follows. A trainer's checkpoint is a zip archive (``PK``), so the two are never confused."""


def check_checkpoint_dir(value: object, field: str = "checkpoint_dir") -> str:
    """``value`` as a folder every process can name: a local path made absolute (Ray workers
    run in other folders), or a URL whose protocol fsspec knows and whose library is installed
    (``s3://`` needs s3fs, ``gs://`` gcsfs). ``ConfigError`` naming ``field`` otherwise."""
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise ConfigError(field, value, CHECKPOINT_FOLDER_HELP)
    text = str(os.fspath(value))
    protocol = _protocol(text)
    if protocol is None:
        return str(Path(text).expanduser().resolve())
    fsspec = _fsspec(field, text)
    try:
        fsspec.get_filesystem_class(protocol)
    except (ImportError, ValueError) as exc:  # a library to install, or a protocol unknown
        raise ConfigError(field, value, f"{CHECKPOINT_FOLDER_HELP}: {exc}") from None
    return text.rstrip("/")


def checkpoint_location(folder: str, trial_id: int, epoch: int) -> str:
    """Where a checkpoint of ``trial_id`` at ``epoch`` goes in ``folder``: a fresh name each
    time, so that stores sharing a folder (or a re-run trial id) never overwrite each other."""
    return f"{folder}/trial-{trial_id}/epoch-{epoch}-{uuid.uuid4().hex[:12]}.ckpt"


def write_checkpoint(location: str, blob: bytes) -> bytes:
    """Write ``blob`` at ``location`` (local: atomically and durably); what the store keeps."""
    if _protocol(location) is None:
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, blob)
    else:
        files, path = _fsspec("checkpoint_dir", location).core.url_to_fs(location)
        files.makedirs(files._parent(path), exist_ok=True)
        files.pipe_file(path, blob)  # one PUT in an object store: whole or absent
    return _REFERENCE + location.encode()


def stored_location(blob: bytes) -> str | None:
    """The location a stored checkpoint points to, or ``None`` for one kept in the store."""
    return blob[len(_REFERENCE) :].decode() if blob.startswith(_REFERENCE) else None


def read_checkpoint(blob: bytes) -> bytes:
    """The checkpoint the store's ``blob`` is: itself, or the file it points to."""
    location = stored_location(blob)
    if location is None:
        return blob
    try:
        if _protocol(location) is None:
            return Path(location).read_bytes()
        files, path = _fsspec("checkpoint_dir", location).core.url_to_fs(location)
        return bytes(files.cat_file(path))
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read the checkpoint at {location}: {exc}") from exc


def _protocol(text: str) -> str | None:
    """``s3`` of ``s3://bucket/key``; ``None`` for a local path (``C:/x`` included)."""
    head, separator, _ = text.partition("://")
    return head if separator and head.isidentifier() else None


def _fsspec(field: str, value: str) -> Any:
    try:
        import fsspec
    except ImportError:
        expected = 'a local folder, or fsspec installed for URLs (pip install "tunery[ray]")'
        raise ConfigError(field, value, expected) from None
    return fsspec
