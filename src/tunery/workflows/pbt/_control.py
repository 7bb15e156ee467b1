"""Nudging a PBT member by hand: ``tunery nudge STUDY --member 3 lr=1e-3``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunery._exceptions import ConfigError
from tunery.records import Event, FrozenTrial
from tunery.report import final_segments, is_segment, segment_info
from tunery.workflows.panda._nudges import check_stored_nudge

if TYPE_CHECKING:
    from tunery.study import Study


def is_population(study: Study) -> bool:
    """Whether ``study`` holds PBT segments."""
    return any(is_segment(t) for t in study.trials)


class PopulationControl:
    """Queues a person's nudges for members of ``study``'s population, validated first.

    A nudge is applied at the member's next interval boundary (its next segment starts with it),
    on top of what PBT chose there, and logged on that segment as made by hand.
    """

    def __init__(self, study: Study) -> None:
        self.study = study

    def latest(self, member: Any) -> FrozenTrial:
        """The member's latest segment (``ConfigError`` for a member the study does not have)."""
        members = {int(segment_info(t)["member"]): t for t in final_segments(self.study.trials)}
        if isinstance(member, bool) or not isinstance(member, int) or member not in members:
            known = f"0..{max(members)}" if members else "none: start one with `tunery pbt`"
            raise ConfigError("member", member, f"a member of study {self.study.name!r} ({known})")
        return members[member]

    def nudge(self, member: int, **changes: Any) -> Event:
        """Queue new values for ``member``'s hyperparameters: ``control.nudge(2, lr=3e-4)``."""
        latest = self.latest(member)
        clean = check_stored_nudge(segment_info(latest), changes)
        storage = self.study.storage
        return storage.add_event(self.study.study_id, "nudge", clean, trial_number=latest.number)
