"""The live trial: what an objective gets, and the backend its calls go to.

``Trial`` is the handle an objective reads its params from and reports to; ``FrozenTrial``
(``tunery.records``) is the stored record. A ``TrialBackend`` decides where the calls go: the
study's store in the coordinating process, or a pipe (or a cluster's channel) to it from a
worker. This module knows neither the study nor any executor, so both can build trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from tunery._exceptions import ConfigError, StorageError
from tunery._files import read_checkpoint
from tunery._validation import ANY_REAL, check_int, check_scalar
from tunery.records import Curve, FrozenTrial, TrialState, decode_json, encode_json

__all__ = ["Trial", "TrialBackend"]


class TrialBackend(Protocol):
    """Where a live ``Trial`` sends what the objective tells it.

    In-process, ``LocalBackend`` writes to the study's store. A process pool gives its workers a
    backend that forwards each call to the coordinating process over a pipe (one writer per study).
    """

    def report(self, trial: Trial, epoch: int, metrics: dict[str, float]) -> None: ...

    def should_prune(self, trial: Trial, epoch: int) -> bool: ...

    def checkpoint(self, trial: Trial, epoch: int, state: bytes) -> None: ...

    def restore(self, trial: Trial, epoch: int | None) -> bytes | None:
        """What the store keeps for the checkpoint: the state, or where it is (``tunery._files``:
        a checkpoint in a ``checkpoint_dir``), read by the process that restores."""
        ...

    def set_user_attr(self, trial: Trial, key: str, value: Any) -> None: ...


class Trial:
    """The live handle an objective gets: params in, metrics, checkpoints and attributes out.

    ``resumes`` lists the trial ids of interrupted earlier runs of the same draw, newest first:
    ``restore()`` falls back to their checkpoints, so a re-run can go on where the crash left it.
    """

    def __init__(
        self,
        record: FrozenTrial,
        backend: TrialBackend,
        *,
        metric: str = "val_accuracy",
        resumes: Sequence[int] = (),
    ) -> None:
        self._record = record
        self._backend = backend
        self.metric = metric
        self.resumes = tuple(resumes)
        self.params: dict[str, Any] = dict(record.params)
        self._curve: Curve = {epoch: dict(row) for epoch, row in record.curve.items()}
        self._user_attrs: dict[str, Any] = dict(record.user_attrs)
        self._epoch = max(self._curve, default=0)
        self._finished = False

    @property
    def number(self) -> int:
        return self._record.number

    @property
    def trial_id(self) -> int:
        return self._record.trial_id

    @property
    def sample_id(self) -> int | None:
        return self._record.sample_id

    @property
    def round(self) -> int:
        return self._record.round

    @property
    def parent(self) -> tuple[int, int] | None:
        return self._record.parent

    @property
    def epoch(self) -> int:
        """The latest epoch reported (0 before the first report)."""
        return self._epoch

    @property
    def curve(self) -> Curve:
        """A copy of the metrics reported so far: ``epoch -> {metric: value}``."""
        return {epoch: dict(row) for epoch, row in self._curve.items()}

    @property
    def user_attrs(self) -> dict[str, Any]:
        return dict(self._user_attrs)

    def report(self, epoch: int, /, **metrics: float) -> None:
        """Record metrics at ``epoch``: ``trial.report(3, loss=0.4, val_accuracy=0.9)``."""
        self._check_running()
        check_int("epoch", epoch, 0)
        if not metrics:
            raise ConfigError("metrics", metrics, "at least one metric, e.g. loss=0.4")
        values = {
            name: check_scalar(f"metric {name!r}", v, ANY_REAL) for name, v in metrics.items()
        }
        self._backend.report(self, epoch, values)
        self._curve.setdefault(epoch, {}).update(values)
        self._epoch = max(self._epoch, epoch)

    def last(self, metric: str | None = None) -> float | None:
        """The latest reported value of ``metric`` (the study's metric by default), or ``None``."""
        name = self.metric if metric is None else metric
        epochs = [epoch for epoch, row in self._curve.items() if name in row]
        return self._curve[max(epochs)][name] if epochs else None

    def should_prune(self) -> bool:
        """Whether the study's pruner says to stop now (then raise ``tunery.Pruned``)."""
        self._check_running()
        if not self._curve:
            return False
        return bool(self._backend.should_prune(self, self._epoch))

    def checkpoint(self, state: bytes, epoch: int | None = None) -> None:
        """Keep ``state`` (bytes) as this trial's state after ``epoch`` (default: the latest)."""
        self._check_running()
        if not isinstance(state, bytes | bytearray | memoryview):
            raise ConfigError("checkpoint", type(state).__name__, "bytes (e.g. from pickle.dumps)")
        at = self._epoch if epoch is None else epoch
        check_int("epoch", at, 0)
        self._backend.checkpoint(self, at, bytes(state))

    def restore(self, epoch: int | None = None) -> bytes | None:
        """The state saved at ``epoch`` (default: the latest), or ``None``.

        Falls back to the interrupted runs of the same draw, then to the parent trial at its branch
        epoch, so a resumed or branched trial starts where its predecessor stopped.
        """
        stored = self.stored_checkpoint(epoch)
        return None if stored is None else read_checkpoint(stored)

    def stored_checkpoint(self, epoch: int | None = None) -> bytes | None:
        """What ``restore`` finds as the store keeps it: the state, or, for a checkpoint in a
        ``checkpoint_dir``, where it is. The Ray executor hands this on, so the task that restores
        reads the file itself (the local pool reads it in the coordinator: ``memory://`` too)."""
        if epoch is not None:
            check_int("epoch", epoch, 0)
        return self._backend.restore(self, epoch)

    def set_user_attr(self, key: str, value: Any) -> None:
        """Attach a JSON-able value to the trial (shown in reports and exports)."""
        self._check_running()
        if not isinstance(key, str) or not key:
            raise ConfigError("user attr key", key, "a non-empty string")
        stored = decode_json(encode_json(value, f"user attr {key!r}"))
        self._backend.set_user_attr(self, key, stored)
        self._user_attrs[key] = stored

    def freeze(
        self,
        state: TrialState = TrialState.RUNNING,
        value: float | None = None,
        *,
        error: str | None = None,
        interrupted: bool = False,
        finished: float | None = None,
        output: str | None = None,
    ) -> FrozenTrial:
        """This trial's record as it stands, or as it will be stored once finished as given."""
        record = self._record
        return FrozenTrial(
            number=record.number,
            trial_id=record.trial_id,
            sample_id=record.sample_id,
            round=record.round,
            params=dict(record.params),
            state=state,
            value=value,
            curve=self.curve,
            error=error,
            interrupted=interrupted,
            started=record.started,
            finished=finished,
            user_attrs=self.user_attrs,
            parent=record.parent,
            heartbeat=record.heartbeat if state is TrialState.RUNNING else None,
            output=output,
        )

    def _close(self) -> None:
        """Called by ``Study.tell``: the trial takes no more reports."""
        self._finished = True

    def _check_running(self) -> None:
        if self._finished:
            raise StorageError(f"trial {self.number} is finished: it takes no more reports")

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={self.params!r})"
