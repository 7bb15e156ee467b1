"""The in-process executor: one trial at a time, in the coordinating process.

``call_objective`` turns whatever the objective did into an ``Outcome``; the process pool uses the
same function in its workers, so both executors classify trials alike.
"""

from __future__ import annotations

import math
import numbers
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tunery._exceptions import Diverged, Pruned
from tunery.records import TrialState
from tunery.run._protocol import AskTell, OnFinished
from tunery.trial import Trial

__all__ = ["Outcome", "call_objective", "run_sequential"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a trial ended: the state, value and error text to hand to ``Study.tell``.

    A PRUNED outcome has ``value=None``: ``tell`` takes the last reported metric. ``output`` is
    the tail of what the trial printed, where an executor captured it (the process pool).
    """

    state: TrialState
    value: float | None = None
    error: str | None = None
    output: str | None = None


def call_objective(objective: Callable[[Trial], Any], trial: Trial) -> Outcome:
    """Run ``objective(trial)`` and classify the result. ``KeyboardInterrupt`` passes through."""
    try:
        result = objective(trial)
    except Pruned:
        return Outcome(TrialState.PRUNED)
    except Diverged as exc:
        return Outcome(TrialState.DIVERGED, None, str(exc))
    except Exception:
        return Outcome(TrialState.FAILED, None, traceback.format_exc())
    return outcome_of(result)


def outcome_of(result: Any) -> Outcome:
    """A returned value: finite is COMPLETE, NaN or inf DIVERGED, anything else FAILED."""
    if isinstance(result, bool) or not isinstance(result, numbers.Real):
        return Outcome(
            TrialState.FAILED,
            None,
            f"the objective returned {result!r}; it must return a number (the study's metric)",
        )
    value = float(result)
    if math.isfinite(value):
        return Outcome(TrialState.COMPLETE, value)
    return Outcome(TrialState.DIVERGED, value, f"the objective returned {value}")


def run_sequential(
    study: AskTell,
    objective: Callable[[Trial], Any],
    *,
    target: int,
    on_finished: OnFinished | None = None,
) -> None:
    """Ask, run and tell trials until ``study.count_done()`` reaches ``target``.

    A ``KeyboardInterrupt`` (or ``SystemExit``) in the objective marks the trial FAILED and
    interrupted, so that re-running the study runs the same draw again, then propagates.
    """
    done = study.count_done()
    while done < target:
        trial = study.ask()
        try:
            outcome = call_objective(objective, trial)
        except BaseException as exc:
            study.tell(trial, state=TrialState.FAILED, error=_interruption(exc), interrupted=True)
            raise
        frozen = study.tell(trial, outcome.value, outcome.state, outcome.error)
        done += not frozen.interrupted  # a trial taken back as stale does not count
        if on_finished is not None:
            on_finished(frozen)


def _interruption(exc: BaseException) -> str:
    return f"interrupted by {type(exc).__name__}: {exc}".rstrip(": ")
