"""What a trial prints in a pool worker: caught, so the live view stays clean, and kept with it.

While a trial runs, file descriptors 1 and 2 (so C extensions and subprocesses are caught too) and
``sys.stdout``/``sys.stderr`` all write to one file of the worker, in the order written. At the
trial's end its last ``OUTPUT_LIMIT`` bytes go to the coordinator with the outcome and are stored
with the trial. The coordinator knows the file's path, so a worker that dies mid-trial still leaves
its tail to its trial. Sequential runs (``workers=1``) capture nothing: they run in the user's own
process, where a notebook user expects to see their prints.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress

__all__ = ["OUTPUT_LIMIT", "OutputCapture", "read_tail", "remove_quietly"]

OUTPUT_LIMIT = 8192
"""Bytes of a trial's output kept: the tail, where the error or the last progress line is."""


class OutputCapture:
    """A worker's capture file, reused trial after trial (emptied when each one starts)."""

    def __init__(self) -> None:
        descriptor, self.path = tempfile.mkstemp(prefix="tunery-output-", suffix=".txt")
        os.close(descriptor)
        # O_APPEND: fds 1 and 2 share the file and every write lands at its end, even after a
        # truncation, whatever offset a descriptor had.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    @contextmanager
    def trial(self) -> Iterator[None]:
        """Send fds 1, 2 and the Python streams to the file for as long as the block runs."""
        os.ftruncate(self._fd, 0)
        _flush_streams()
        saved = os.dup(1), os.dup(2)
        streams = sys.stdout, sys.stderr
        # Unbuffered text: Python prints and os.write(1, ...) keep their order in the file.
        text = io.TextIOWrapper(
            io.FileIO(self._fd, "w", closefd=False),
            encoding="utf-8",
            errors="backslashreplace",
            write_through=True,
        )
        os.dup2(self._fd, 1)
        os.dup2(self._fd, 2)
        sys.stdout = sys.stderr = text
        try:
            yield
        finally:
            sys.stdout, sys.stderr = streams
            with suppress(ValueError, OSError):  # the objective may have closed it
                text.flush()
            _flush_streams()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])

    def tail(self) -> str | None:
        return read_tail(self.path)

    def close(self) -> None:
        os.close(self._fd)
        remove_quietly(self.path)


def read_tail(path: str, limit: int = OUTPUT_LIMIT) -> str | None:
    """The last ``limit`` bytes of the file as text (whole lines when cut), ``None`` if empty."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - limit))
            data = file.read()
    except OSError:
        return None
    if not data:
        return None
    cut = size - len(data)
    if cut:
        newline = data.find(b"\n")
        if 0 <= newline < len(data) - 1:
            cut, data = cut + newline + 1, data[newline + 1 :]
        return f"[… {cut} earlier bytes not kept]\n" + data.decode("utf-8", "replace")
    return data.decode("utf-8", "replace")


def remove_quietly(path: str) -> None:
    with suppress(OSError):
        os.unlink(path)


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with suppress(AttributeError, ValueError, OSError):  # None, or closed, under some hosts
            stream.flush()
