"""The panda controls: the same ``PandaControl`` calls as ``tunery nudge / pause / resume /
rollback`` (``tunery.cli._panda``), so the page and the CLI write the very same events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunery._exceptions import ConfigError
from tunery.records import Event
from tunery.storage import BaseStorage
from tunery.study import load_study
from tunery.workflows.panda import PandaControl

__all__ = ["event_json", "send"]

KINDS = ("nudge", "pause", "resume", "rollback")


def send(storage: BaseStorage, study: str, kind: str, body: Mapping[str, Any]) -> Event:
    """Validate and queue one event; ``ConfigError`` (nothing written) if anything is wrong."""
    # Not ``with``: closing the study would close the dashboard's store.
    control = PandaControl(load_study(study, storage))
    if kind == "nudge":
        changes = body.get("changes")
        if not isinstance(changes, dict):
            raise ConfigError("changes", changes, 'an object of new values, e.g. {"lr": 3e-4}')
        return control.nudge(**{str(name): value for name, value in changes.items()})
    if kind == "rollback":
        epoch: Any = body.get("epoch")  # resolve() checks both, as for the CLI's
        return control.rollback(epoch, body.get("trial"))
    return control.pause() if kind == "pause" else control.resume()


def event_json(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "kind": event.kind,
        "payload": event.payload,
        "trial_number": event.trial_number,
        "created": event.created,
    }
