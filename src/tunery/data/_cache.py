"""A cache of decoded image arrays, keyed by the content of the files they came from.

The key hashes the bytes of every image file with its path relative to the folder (the class is
part of the path), the resize size, the decoder version and Pillow's version. A changed, added,
removed or renamed file gives a new key; moving the whole folder keeps it. The cache is an
optimisation only: a cache file that cannot be read or written is treated as a miss.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import PIL
from numpy.typing import NDArray

from tunery._exceptions import DataError
from tunery._files import write_atomic
from tunery.data._images import DECODER_VERSION

__all__ = ["CACHE_ENV", "cache_root", "content_key", "read_cached", "write_cached"]

CACHE_ENV = "TUNERY_CACHE_DIR"

_CHUNK = 1 << 20


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """``cache_dir`` if given, else ``$TUNERY_CACHE_DIR``, else ``~/.cache/tunery``."""
    if cache_dir is not None:
        return Path(cache_dir)
    from_env = os.environ.get(CACHE_ENV)
    if from_env:
        return Path(from_env)
    return Path.home() / ".cache" / "tunery"


def content_key(root: Path, files: Sequence[Path], size: int) -> str:
    """Hex digest over the decoder version, ``size`` and every file's relative path and bytes."""
    digest = hashlib.sha256()
    digest.update(f"tunery-images decoder={DECODER_VERSION} pillow={PIL.__version__}".encode())
    digest.update(f" size={size} files={len(files)}\n".encode())
    for path in files:
        relative = path.relative_to(root).as_posix().encode()
        # Length prefixes keep "a" + "bc" apart from "ab" + "c".
        digest.update(len(relative).to_bytes(8, "little") + relative)
        try:
            _hash_file(digest, path)
        except OSError as exc:
            raise DataError(f"cannot read image {path}: {exc}") from exc
    return digest.hexdigest()


def _hash_file(digest: hashlib._Hash, path: Path) -> None:
    digest.update(path.stat().st_size.to_bytes(8, "little"))
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)


def _cache_file(directory: Path, key: str) -> Path:
    return directory / f"images-{key}.npz"


def read_cached(directory: Path, key: str, shape: tuple[int, int]) -> NDArray[np.uint8] | None:
    """The cached ``(N, D)`` uint8 rows for ``key``; ``None`` when absent, broken or mis-shaped."""
    path = _cache_file(directory, key)
    try:
        # Opening the file ourselves closes it even when numpy rejects a broken archive.
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as stored:
            rows: NDArray[np.uint8] = stored["X"]
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return None
    if rows.shape != shape or rows.dtype != np.uint8:
        return None
    return rows


def write_cached(directory: Path, key: str, rows: NDArray[np.uint8]) -> Path | None:
    """Store ``rows`` under ``key``; returns the file, or ``None`` when the cache is not writable.

    Writes to a temporary file and renames it, so a reader never sees half a file.
    """
    buffer = io.BytesIO()
    np.savez(buffer, X=rows)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # Not durable: a cache lost in a power cut is rebuilt from the photos.
        return write_atomic(_cache_file(directory, key), buffer.getvalue(), durable=False)
    except OSError:
        return None
