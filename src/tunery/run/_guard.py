"""Holding Ctrl-C back while the pool's coordinator writes a trial and updates its books."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Self

__all__ = ["InterruptGuard"]


class InterruptGuard:
    """Holds Ctrl-C back while the coordinator writes a trial and updates its own books.

    Without it, a Ctrl-C between ``study.ask()`` and noting who runs the trial would leave it
    RUNNING; between ``tell`` and its bookkeeping, it would be told twice. A Ctrl-C held back
    is raised as soon as the block ends. Only takes effect in the main thread, with Python's
    default SIGINT handler in place (the handler always runs in the main thread).
    """

    def __init__(self) -> None:
        self._depth = 0
        self._pending = False
        self._installed = False

    def __enter__(self) -> Self:
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._installed = False

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._depth:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextmanager
    def held(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._pending:
                self._pending = False
                raise KeyboardInterrupt
