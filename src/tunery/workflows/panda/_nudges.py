"""What a nudge may change, and the checks a nudge gets before anything is written."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from tunery._exceptions import ConfigError
from tunery.config import ModelSection, trial_model
from tunery.records import FrozenTrial
from tunery.workflows.panda._events import BRANCH_ATTR

_TRAINER_SETTINGS = ("l2", "batch_size")


def nudgeable(model: ModelSection) -> tuple[str, ...]:
    """What a nudge may change for ``model``: lr, what its optimizer uses, l2 and batch_size."""
    return (*model.train_spec().used_fields(), *_TRAINER_SETTINGS)


def check_model_nudge(model: ModelSection, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` validated against ``model`` (a config's settings); returns the clean values.

    An unknown name, a name the optimizer ignores, or a bad value raises ``ConfigError``.
    """
    allowed = nudgeable(model)
    check_changes(changes, allowed, f"a setting a nudge can change ({', '.join(allowed)})")
    try:
        changed = trial_model(model, changes)
    except ConfigError as error:
        raise ConfigError(error.field.removeprefix("model."), error.value, error.expected) from None
    return {name: getattr(changed, name) for name in changes}


def check_branch_nudge(branch: FrozenTrial, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a nudge from outside the panda process, with what the branch stored about itself."""
    return check_stored_nudge(branch.user_attrs.get(BRANCH_ATTR, {}), changes)


def check_stored_nudge(info: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a nudge with what a trial stored about itself: ``{"settings", "nudgeable"}``
    (a panda branch's, or a PBT member's)."""
    settings = info.get("settings")
    if isinstance(settings, dict):
        try:
            model = ModelSection(**settings)
        except TypeError:  # stored by another version of tunery: check what can be checked
            model = None
        if model is not None:
            return check_model_nudge(model, changes)
    names = [str(name) for name in info.get("nudgeable", [])]
    check_changes(changes, names, "a hyperparameter of the trainer: " + ", ".join(names))
    return dict(check_numbers(changes))


def check_changes(changes: Mapping[str, Any], allowed: Iterable[str], expected: str) -> None:
    """At least one change, and only names in ``allowed``."""
    if not changes:
        raise ConfigError("nudge", {}, "at least one NAME=VALUE, e.g. lr=3e-4")
    known = set(allowed)
    for name in changes:
        if name not in known:
            raise ConfigError("nudge", name, expected)


def check_numbers(changes: Mapping[str, Any]) -> dict[str, float | int]:
    """Finite real values (``batch_size`` an integer >= 1): the checks a factory nudge gets."""
    clean: dict[str, float | int] = {}
    for name, value in changes.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(name, value, "a finite number")
        if not math.isfinite(float(value)):
            raise ConfigError(name, value, "a finite number")
        if name == "batch_size":
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(name, value, "an integer >= 1")
            clean[name] = int(value)
            continue
        if name == "l2" and value < 0:
            raise ConfigError(name, value, "a finite number >= 0")
        clean[name] = float(value)
    return clean
