"""Exceptions raised by tunery.

    TuneryError                 root of everything tunery raises on purpose
    ├── ConfigError             a bad value in a config, space or argument (field, value, rule)
    ├── DataError               missing folder, empty class, unreadable image, wrong .h5 layout
    ├── StorageError            the store cannot be opened or is of an unknown schema version
    ├── Pruned                  raised by an objective when ``trial.should_prune()`` says so
    └── Diverged                a NaN or inf loss (the trial is recorded as DIVERGED, not FAILED)

``TuneryWarning`` (a ``UserWarning``) marks something that went on, but not as asked.

A user's mistake at the CLI becomes a one-line message and exit code 2, never a traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "Diverged",
    "Pruned",
    "StorageError",
    "TuneryError",
    "TuneryWarning",
]


class TuneryError(Exception):
    """Root of the exceptions tunery raises on purpose."""


class TuneryWarning(UserWarning):
    """Something worked, but not as asked (e.g. a round that could not zoom)."""


class ConfigError(TuneryError, ValueError):
    """A value broke a rule. The message names the field, the value and what was expected."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}: expected {expected}, got {value!r}")


class DataError(TuneryError):
    """Data could not be read. The message names the file or folder."""


class StorageError(TuneryError):
    """The study store cannot be used as asked."""


class Pruned(TuneryError):  # noqa: N818 - the name users raise, as in Optuna's TrialPruned
    """Raised inside an objective to stop a trial that the pruner judged hopeless."""


class Diverged(TuneryError):  # noqa: N818 - an outcome, named as the trial state
    """The loss became NaN or inf: the learning rate (or another setting) is too large."""

    def __init__(self, epoch: int, loss: float) -> None:
        self.epoch = epoch
        self.loss = loss
        super().__init__(f"training diverged at epoch {epoch}: loss is {loss}")
