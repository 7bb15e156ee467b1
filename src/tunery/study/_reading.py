"""What a study shows to anyone who reads it: trials, the best one, rounds, the space.

``Study`` runs a study; these read-only views of the store are its base so that the running
side (ask and tell, rounds, heartbeats) reads on its own in ``tunery.study``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Self

from tunery._exceptions import ConfigError
from tunery.records import FrozenTrial, TrialState
from tunery.space import Space
from tunery.storage import BaseStorage
from tunery.study._helpers import Round, _value

__all__ = ["StudyReader"]


class StudyReader:
    """The reading half of ``Study``: everything here is read from the store."""

    name: str
    storage: BaseStorage
    study_id: int
    direction: str
    _running: bool
    _rounds: list[Round]

    @property
    def trials(self) -> list[FrozenTrial]:
        """Every trial, in number order (read from the store: other processes see them too)."""
        return self.storage.get_all_trials(self.study_id)

    def get_trials(self, states: Iterable[TrialState] | None = None) -> list[FrozenTrial]:
        """The trials in ``states`` (all when None), in number order."""
        return self.storage.get_all_trials(self.study_id, states=states)

    @property
    def best_trial(self) -> FrozenTrial:
        """The best COMPLETE trial by the study's direction (the first one on a tie)."""
        best = self.current_best()
        if best is None:
            raise ConfigError(
                "best_trial", f"{len(self.trials)} trials, none COMPLETE", "a COMPLETE trial"
            )
        return best

    def current_best(self) -> FrozenTrial | None:
        """The best COMPLETE trial so far (the first one on a tie), or ``None``."""
        complete = self.get_trials([TrialState.COMPLETE])
        if not complete:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(complete, key=lambda trial: _value(trial))

    @property
    def best_value(self) -> float:
        return _value(self.best_trial)

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best_trial.params)

    @property
    def rounds(self) -> list[Round]:
        """The rounds so far, first to last (read from the store)."""
        return [Round.from_record(r) for r in self.storage.get_rounds(self.study_id)]

    @property
    def space(self) -> Space:
        """The current round's space (re-read from the store unless this process runs the study)."""
        if not self._running:
            self._rounds = self.rounds
        if not self._rounds:
            raise ConfigError("space", None, f"a search space (study {self.name!r} has none yet)")
        return dict(self._rounds[-1].space)

    def __repr__(self) -> str:
        return f"Study({self.name!r}, {self.storage.url!r}, direction={self.direction!r})"

    def close(self) -> None:
        """Close the store (and give up running the study); the study's data stays in it."""
        self.storage.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count_done(self) -> int:
        """Finished trials that count toward ``n_trials`` (all but the interrupted ones)."""
        return sum(1 for t in self.trials if t.state.is_finished() and not t.interrupted)
