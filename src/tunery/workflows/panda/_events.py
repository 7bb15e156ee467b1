"""Control events as panda applied them: the kinds, ``AppliedEvent``, and a branch's log."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, MutableSequence, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunery.study import Trial

BRANCH_ATTR = "panda"
"""User attribute of every panda branch: ``{"origin", "nudgeable", "settings"}`` (see ``Panda``)."""
LOG_ATTR = "panda.log"
"""User attribute of a panda branch: the events applied to it, oldest first."""
KINDS = ("nudge", "rollback", "pause", "resume")


@dataclass(frozen=True)
class AppliedEvent:
    """A control event as panda applied it.

    ``epoch`` is the trainer's epoch at that boundary (the change holds from ``epoch + 1``);
    ``branch`` the trial it applied to (``None`` while no branch existed yet: an event queued
    before panda started); ``new_branch`` the branch a rollback started; ``error`` why an event
    was skipped; ``by`` who made a nudge when it was no person's (``"pbt"``: a population-based
    training step, ``tunery.workflows.pbt``; ``None``: a person, by ``tunery nudge``).
    """

    event_id: int
    kind: str
    payload: dict[str, Any]
    epoch: int
    branch: int | None = None
    new_branch: int | None = None
    error: str | None = None
    by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The form kept in a branch's log (the branch is the trial that holds it)."""
        entry = {"event": self.event_id, "kind": self.kind, "payload": self.payload}
        entry["epoch"] = self.epoch
        if self.new_branch is not None:
            entry["new_branch"] = self.new_branch
        if self.error is not None:
            entry["error"] = self.error
        if self.by is not None:
            entry["by"] = self.by
        return entry

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any], branch: int | None) -> AppliedEvent:
        return cls(
            event_id=int(entry["event"]),
            kind=str(entry["kind"]),
            payload=dict(entry.get("payload", {})),
            epoch=int(entry["epoch"]),
            branch=branch,
            new_branch=entry.get("new_branch"),
            error=entry.get("error"),
            by=entry.get("by"),
        )

    def describe(self) -> str:
        """One line: ``"epoch 4: nudge lr=0.0003"``."""
        text = f"epoch {self.epoch}: {self.kind}"
        if self.kind == "nudge":
            text += " " + _assignments(self.payload)
        elif self.kind == "rollback":
            text += f" to trial {self.payload.get('trial')} @ epoch {self.payload.get('epoch')}"
            if self.new_branch is not None:
                text += f" → trial {self.new_branch}"
        elif self.kind == "exploit":
            text += f" member {self.payload.get('member')}: trial {self.payload.get('trial')}"
            text += f" @ epoch {self.payload.get('epoch')}"
        if self.by is not None:
            text += f" (by {self.by})"
        if self.error is not None:
            text += f" (skipped: {self.error})"
        return text


def write_log(trial: Trial, entries: Sequence[AppliedEvent]) -> None:
    """Append ``entries`` to the log of the branch ``trial``."""
    log = [*trial.user_attrs.get(LOG_ATTR, []), *(entry.to_dict() for entry in entries)]
    trial.set_user_attr(LOG_ATTR, log)


def settle_waiting(
    events: MutableSequence[AppliedEvent], waiting: Sequence[int], branch: int
) -> None:
    """Give the events applied while no branch existed (indices ``waiting``) the branch that
    starts now; the last good rollback among them is what started it."""
    rollbacks = [i for i in waiting if events[i].kind == "rollback"]
    starter = next((i for i in reversed(rollbacks) if events[i].error is None), None)
    for index in waiting:
        new_branch = branch if index == starter else events[index].new_branch
        events[index] = dataclasses.replace(events[index], branch=branch, new_branch=new_branch)


def supersede_nudges(
    events: MutableSequence[AppliedEvent], waiting: Sequence[int], event_id: int
) -> None:
    """Mark skipped the waiting nudges: the rollback ``event_id`` starts another branch."""
    for index in waiting:
        entry = events[index]
        if entry.kind == "nudge" and entry.error is None:
            error = f"superseded by the rollback of event {event_id}"
            events[index] = dataclasses.replace(entry, error=error)


def _assignments(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_value_text(v)}" for k, v in values.items())


def _value_text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
