"""What an executor needs of a study, and nothing more: ask for a trial, tell how it ended.

``tunery.study.Study`` satisfies it; so can anything else that hands out trials (a population of
PBT members, a test's fake). Executors import this protocol, never the study, so the study can
import them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tunery.pruners import Pruner
from tunery.records import FrozenTrial, TrialState
from tunery.trial import Trial

__all__ = ["AskTell", "OnFinished", "Run"]

OnFinished = Callable[[FrozenTrial], Any]
"""Called in the coordinating process with the record of each trial once it is stored."""


class AskTell(Protocol):
    """The study as executors see it. ``ask`` stores a RUNNING trial; ``tell`` commits its end."""

    @property
    def metric(self) -> str: ...

    @property
    def direction(self) -> str: ...

    @property
    def pruner(self) -> Pruner | None:
        """What ``trial.should_prune()`` asks; ``None``: never prune (a Ray task need not ask)."""
        ...

    def ask(self) -> Trial: ...

    def tell(
        self,
        trial: Trial,
        value: float | None = None,
        state: TrialState | None = None,
        error: str | None = None,
        *,
        interrupted: bool = False,
        output: str | None = None,
    ) -> FrozenTrial: ...

    def count_done(self) -> int:
        """Finished trials that count toward the target (interrupted ones do not)."""
        ...

    def current_best(self) -> FrozenTrial | None:
        """The best COMPLETE trial so far, or ``None``."""
        ...


@dataclass(frozen=True, slots=True)
class Run:
    """One call to an executor: trials of ``study`` by ``objective`` until ``target`` finished.

    ``on_finished(frozen_trial)`` is called in the calling process once each trial is stored;
    ``live`` shows the live view (``None``: when the console is a terminal).
    """

    study: AskTell
    objective: Callable[[Trial], Any]
    target: int
    on_finished: OnFinished | None = None
    live: bool | None = None

    def finished(self, frozen: FrozenTrial) -> None:
        """Pass a stored trial's record to ``on_finished``, if there is one."""
        if self.on_finished is not None:
            self.on_finished(frozen)
