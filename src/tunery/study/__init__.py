"""A study: the trials of one tuning run, kept in a store that survives crashes.

    study = tunery.Study("mlp", "sqlite:///runs/tunery.db", direction="maximize", seed=0)
    study.caviar(objective, space, n_trials=60, rounds=3)   # 3 rounds of 20, zooming between
    study.best_trial.params

``objective(trial)`` reads ``trial.params``, may call ``trial.report(epoch, loss=..., ...)``,
``trial.should_prune()``, ``trial.checkpoint(blob)`` and ``trial.restore()``, and returns the value
of the study's metric (``val_accuracy`` by default). It may raise ``tunery.Pruned`` (the trial is
PRUNED, its value is the last reported metric) or ``tunery.Diverged`` (DIVERGED; so is a NaN or inf
return value). Any other exception marks it FAILED with the traceback, and the study goes on.

Resuming: running the same study again continues it. ``n_trials`` is the total to reach: finished
trials (COMPLETE, PRUNED, DIVERGED, or FAILED by an exception) count and are never re-run. Trials a
crash left RUNNING become FAILED and ``interrupted`` when the study is next run, do not count, and
their draws are re-queued first, with the same params. Draws are a pure function of
``(study seed, round, sample_id)``, so the resumed study samples exactly what the uninterrupted one
would have.

Heartbeats: a RUNNING trial with no sign of life for ``heartbeat_timeout`` seconds (10 minutes by
default) is stale and taken back, FAILED and its draw re-queued (see ``tunery.study._heartbeats``).

Rounds: round 1 holds the space the study started with. ``study.zoom()`` adds a round narrowed
around the best COMPLETE trials of ALL rounds so far (every trial is a measurement of the same
objective; trials whose params fall outside the base space are left out). Passing a different space
to ``ask`` or ``caviar`` starts a new round with it, unzoomed: the manual way to narrow, or widen, a
study mid-way; zooms after it are computed relative to it.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from os import PathLike
from typing import Any

from tunery._exceptions import ConfigError, TuneryWarning
from tunery._files import check_checkpoint_dir, read_checkpoint
from tunery._validation import POSITIVE, check_int, check_scalar
from tunery.pruners import Pruner
from tunery.records import FrozenTrial, StudySummary, TrialState, check_direction, clean_value
from tunery.run import default_workers, execute
from tunery.samplers import GuidedSampler, Sampler, sample_params
from tunery.space import Box, Space, space_to_dict, validate_space, zoom
from tunery.storage import BaseStorage, get_storage
from tunery.study._backend import LocalBackend
from tunery.study._guided import GuidedDraws, batch_stop
from tunery.study._heartbeats import DEFAULT_HEARTBEAT_TIMEOUT, Heartbeats
from tunery.study._helpers import (
    Round,
    _bound,
    _check_callbacks,
    _check_guided,
    _check_guided_rounds,
    _check_params,
    _check_parent,
    _check_pruner,
    _check_sampler,
    _fits,
    _Pending,
    _resolve,
    _round_targets,
    _sampler_from_spec,
    _sampler_spec,
    round_seed,
)
from tunery.study._reading import StudyReader
from tunery.trial import Trial, TrialBackend

__all__ = [
    "DEFAULT_HEARTBEAT_TIMEOUT",
    "FrozenTrial",
    "Pruner",
    "Round",
    "Study",
    "Trial",
    "TrialBackend",
    "TrialState",
    "list_studies",
    "load_study",
]

Callback = Callable[["Study", FrozenTrial], Any]
"""Called as ``callback(study, frozen_trial)`` after each finished trial."""

DEFAULT_STORAGE = "sqlite:///tunery.db"
INTERRUPTED = (
    "interrupted: the process running the study stopped (crash, kill or Ctrl-C) before this trial "
    "finished; its draw is re-run"
)
STALE = (
    "interrupted: stale, no heartbeat for longer than heartbeat_timeout (asked, then never told or "
    "run by an executor); its draw is re-run"
)


class Study(StudyReader):
    """The trials of one tuning run, in a store. Same ``name`` and ``storage`` reopens it.

    Args:
        name: unique within the store.
        storage: a URL (``"sqlite:///tunery.db"``, ``":memory:"``), a path or a ``BaseStorage``.
        direction: ``"maximize"`` (default for a new study) or ``"minimize"``.
        seed: the seed of every draw (default 0 for a new study).
        metric: the metric the objective returns and pruners watch (default ``"val_accuracy"``).
        sampler: ``"random"``, ``"grid"``, ``"sobol"`` or a ``Sampler``; used for new rounds.
        pruner: an object with ``should_prune(study_trials, trial, epoch)``; ``None`` never prunes.
        heartbeat_timeout: seconds without a heartbeat after which a RUNNING trial is stale and
            taken back (see the module docstring); 600 by default.
        clock: the time in Unix seconds, for heartbeats (``time.time``; tests pass a fake one).
        checkpoint_dir: where checkpoints go (a folder, or an fsspec URL such as
            ``s3://bucket/run``), the store keeping only where each one is; ``None`` (default):
            in the store. On a cluster, a place every node reaches (docs/cluster.md).

    ``direction``, ``seed`` and ``metric`` are fixed when the study is created; reopening it with a
    different value raises ``ConfigError`` (leave them out to take the stored ones).
    """

    def __init__(
        self,
        name: str,
        storage: str | PathLike[str] | BaseStorage = DEFAULT_STORAGE,
        direction: str | None = None,
        seed: int | None = None,
        *,
        metric: str | None = None,
        sampler: str | Sampler = "random",
        pruner: Pruner | None = None,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        checkpoint_dir: str | PathLike[str] | None = None,
    ) -> None:
        self.checkpoint_dir = (
            None if checkpoint_dir is None else check_checkpoint_dir(checkpoint_dir)
        )
        self.heartbeat_timeout = check_scalar("heartbeat_timeout", heartbeat_timeout, POSITIVE)
        self.storage = get_storage(storage)
        if direction is not None:
            check_direction(direction)
        info = self.storage.open_study(
            name,
            direction=direction or "maximize",
            seed=0 if seed is None else seed,
            metric=metric or "val_accuracy",
        )
        for field, given, stored in (
            ("direction", direction, info.direction),
            ("seed", seed, info.seed),
            ("metric", metric, info.metric),
        ):
            if given is not None and given != stored:
                raise ConfigError(field, given, f"{stored!r}, as study {name!r} was created with")
        self.name = name
        self.study_id = info.study_id
        self.direction = info.direction
        self.seed = info.seed
        self.metric = info.metric
        self.sampler = _check_sampler(sampler)
        self.pruner = _bound(_check_pruner(pruner), self.metric, self.direction)
        self._backend = LocalBackend(self)
        self._lock = threading.RLock()
        self._rounds = [Round.from_record(r) for r in self.storage.get_rounds(self.study_id)]
        self._samplers: dict[int, Sampler] = {}
        self._guided = GuidedDraws(name, maximize=self.direction == "maximize")
        self._running = False  # set by the first ask: this process is now the study's writer
        self._pending: dict[int, _Pending] = {}
        self._next_sample = 0
        self._live: dict[int, Trial] = {}
        self._heartbeats = Heartbeats(self.storage, self.heartbeat_timeout, clock, self._lock)
        self._taken_back: dict[int, FrozenTrial] = {}  # number -> record of a stale trial

    # -- ask and tell ----------------------------------------------------------------------------

    def ask(
        self,
        space: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        parent: tuple[int, int] | None = None,
    ) -> Trial:
        """Start the next trial (RUNNING, stored) and return its live handle.

        Re-queued draws of interrupted trials come first, then the next draw of the round's
        sampler. ``space`` different from the study's starts a new round with it. ``params`` runs
        given params instead of a draw (``sample_id`` None), e.g. a branch of trial ``parent =
        (number, epoch)``.
        """
        with self._lock:
            self._prepare(space)
            self._sweep(force=False)
            current = self._rounds[-1]
            resumes: Sequence[int] = ()
            if params is not None:
                sample_id, values = None, _check_params(params)
            elif self._pending:
                sample_id = min(self._pending)
                entry = self._pending[sample_id]
                values, resumes = entry.params, entry.resumes
            else:
                sample_id = self._next_sample
                values = self._draw(current, sample_id)
            record = self.storage.create_trial(
                self.study_id,
                round=current.index,
                sample_id=sample_id,
                params=values,
                parent=_check_parent(parent),
            )
            # Only now is the draw taken: if the store refused the trial, it is still next.
            if params is None and sample_id in self._pending:
                del self._pending[sample_id]
            elif params is None:
                self._next_sample += 1
            trial = Trial(record, self._backend, metric=self.metric, resumes=resumes)
            self._live[trial.number] = trial
            self._heartbeats.hold(trial.trial_id)
            return trial

    def tell(
        self,
        trial: Trial | int,
        value: float | None = None,
        state: TrialState | None = None,
        error: str | None = None,
        *,
        interrupted: bool = False,
        output: str | None = None,
    ) -> FrozenTrial:
        """Finish a trial; it is committed to the store when this returns.

        ``output`` is stored with it: the tail of what it printed (the process pool passes it).

        Without ``state``: a finite ``value`` is COMPLETE, NaN or inf DIVERGED. A PRUNED trial
        without ``value`` takes the last reported value of the study's metric. ``interrupted``
        marks a trial stopped from outside (Ctrl-C): FAILED, not counted, its draw re-queued.
        """
        with self._lock:
            late = self._late_tell(trial)
            if late is not None:
                return late
            live = self._live_trial(trial)
            if interrupted and state not in (None, TrialState.FAILED):
                raise ConfigError("state", state, "FAILED (or None) for an interrupted trial")
            final_state, final_value = (
                (TrialState.FAILED, None) if interrupted else _resolve(live, value, state)
            )
            finished = self.storage.finish_trial(
                live.trial_id,
                state=final_state,
                value=final_value,
                error=error,
                interrupted=interrupted,
                output=output,
            )
            del self._live[live.number]
            self._heartbeats.forget(live.trial_id)
            live._close()
            if interrupted:
                self._requeue(live.freeze(), live.resumes)
            return live.freeze(
                final_state,
                clean_value(final_value),
                error=error,
                interrupted=interrupted,
                finished=finished,
                output=output,
            )

    # -- rounds ----------------------------------------------------------------------------------

    def zoom(
        self,
        top: float | int = 0.1,
        min_top: int = 3,
        margin: float = 0.1,
        *,
        guided: str | GuidedSampler | None = None,
    ) -> Round:
        """Add the next round: the current space narrowed around the best COMPLETE trials.

        Uses the trials of ALL rounds whose params lie in the base space (the latest space the
        user gave); see ``tunery.space.zoom`` for ``top``, ``min_top`` and ``margin``. ``guided``
        (``"gp"``, ``"tpe"`` or a ``GuidedSampler``) makes the new round draw inside its box from
        a model of the trials so far instead of the study's sampler (``tunery.samplers``).
        """
        guide = _check_guided(guided)
        with self._lock:
            if not self._rounds:
                self._rounds = self.rounds
            if not self._rounds:
                raise ConfigError(
                    "space", None, f"a search space (study {self.name!r} has none yet)"
                )
            base = next(r for r in reversed(self._rounds) if not r.zoomed)
            scored = [
                (t.params, t.value)
                for t in self.get_trials([TrialState.COMPLETE])
                if _fits(base.space, t.params)
            ]
            narrowed, box = zoom(
                self._rounds[-1].space,
                scored,
                maximize=self.direction == "maximize",
                top=top,
                min_top=min_top,
                margin=margin,
                base=base.space,
            )
            return self._add_round(narrowed, box, guide)

    def _add_round(self, space: Space, box: Box | None, sampler: Sampler | None = None) -> Round:
        record = self.storage.add_round(
            self.study_id,
            space=space_to_dict(space),
            box=None if box is None else box.to_dict(),
            sampler=_sampler_spec(sampler or self.sampler),
        )
        self._rounds.append(Round.from_record(record))
        # A new round starts its own sequence of draws; interrupted draws of older rounds are
        # not re-run (their space is gone), so fresh trials make up for them.
        self._pending, self._next_sample = {}, 0
        return self._rounds[-1]

    # -- running ---------------------------------------------------------------------------------

    def caviar(
        self,
        objective: Callable[[Trial], Any],
        space: Mapping[str, Any] | None = None,
        n_trials: int | None = None,
        workers: int | None = None,
        rounds: int = 1,
        trials_per_round: int | None = None,
        callbacks: Sequence[Callback] = (),
        *,
        top: float | int = 0.1,
        min_top: int = 3,
        margin: float = 0.1,
        guided: str | GuidedSampler | None = None,
        live: bool | None = None,
        executor: str = "local",
        address: str | None = None,
        resources: Mapping[str, Any] | None = None,
    ) -> Study:
        """Run trials until the study holds ``n_trials`` finished ones (see the module docstring).

        ``workers`` processes run the trials (default: the number of cores; the objective must then
        be picklable: a module-level function or an object of a module-level class). ``workers=1``
        runs them in this process. ``live`` shows the pool's live view (default: in a terminal).
        With ``rounds > 1`` the study zooms after every ``trials_per_round`` (default
        ``n_trials // rounds``) finished trials, with ``top``, ``min_top`` and ``margin`` passed to
        :meth:`zoom`; ``guided`` (``"gp"`` or ``"tpe"``) makes the zoomed rounds draw from a model
        of the trials so far, batch by batch (``tunery.samplers.GuidedSampler``; a round keeps the
        sampler it was created with when the study is resumed). ``callbacks`` are called as
        ``callback(study, frozen_trial)`` after each trial. ``executor="ray"`` runs the trials as
        Ray tasks on the cluster at ``address``
        (``"auto"``, ``HOST:PORT``, ``ray://HOST:PORT``), each holding ``resources``
        (``{"cpu": 1, "gpu": 0.25}``); ``workers`` is then unused (docs/cluster.md). Returns the
        study.
        """
        if not callable(objective):
            raise ConfigError("objective", objective, "a function objective(trial) -> float")
        workers = default_workers() if workers is None else workers
        workers = check_int("workers", workers, 1)
        targets = _round_targets(n_trials, rounds, trials_per_round)
        if len(targets) > 1 and targets[0] < min_top:
            # Refuse now rather than after round 1: a zoom needs min_top finished trials.
            raise ConfigError(
                "trials_per_round", targets[0], f"at least min_top={min_top} trials to zoom from"
            )
        hooks = _check_callbacks(callbacks)
        guide = _check_guided(guided)
        _check_guided_rounds(guide, len(targets))
        with self._lock:
            self._prepare(space)
            self._sweep(force=True)
            stage = self._stage(len(targets))

        def on_finished(frozen: FrozenTrial) -> None:
            for hook in hooks:
                hook(self, frozen)

        for index in range(stage, len(targets)):
            stop = 0
            while stop < targets[index]:
                # A guided round runs batch by batch: its draws need the earlier batches finished.
                stop = self._next_stop(targets[index])
                with self.beating():
                    execute(
                        self,
                        objective,
                        target=stop,
                        workers=workers,
                        on_finished=on_finished,
                        live=live,
                        executor=executor,
                        address=address,
                        resources=resources,
                        checkpoint_dir=self.checkpoint_dir,
                    )
            if index + 1 < len(targets):
                self._zoom_if_possible(top=top, min_top=min_top, margin=margin, guided=guide)
        return self

    def _next_stop(self, target: int) -> int:
        """Where ``caviar`` may run to at once: ``target``, or the end of a guided batch."""
        with self._lock:
            current = self._rounds[-1]
            return batch_stop(self._round_sampler(current), current.index, self.trials, target)

    # -- heartbeats ------------------------------------------------------------------------------

    def beating(self) -> AbstractContextManager[None]:
        """Beat, from a background thread, the trials asked inside the block until they are told.

        For code that runs trials itself (``caviar`` and ``panda`` use it): their heartbeats stay
        fresh however long an epoch takes. Trials asked outside it beat only when they report.
        """
        return self._heartbeats.beating()

    def _sweep(self, *, force: bool) -> None:
        """Take back this process's stale trials: FAILED, interrupted, their draws re-queued."""
        cut = self._heartbeats.stale_before(force=force)
        if cut is None:
            return
        for record in self.storage.fail_running_trials(self.study_id, STALE, stale_before=cut):
            live = self._live.pop(record.number, None)
            self._heartbeats.forget(record.trial_id)
            if live is not None:
                live._close()
            self._taken_back[record.number] = record
            self._requeue(record, () if live is None else live.resumes)

    def _late_tell(self, trial: Trial | int) -> FrozenTrial | None:
        """The stored record of a trial taken back as stale (with a warning), else ``None``."""
        number = trial.number if isinstance(trial, Trial) else trial
        record = self._taken_back.get(number) if isinstance(number, int) else None
        if record is None or number in self._live:
            return None
        warnings.warn(
            f"study {self.name!r}: trial {number} was taken back as stale (no heartbeat for "
            f"{self.heartbeat_timeout:g} s) and its draw re-queued; this tell stores nothing",
            TuneryWarning,
            stacklevel=3,
        )
        return record

    def _zoom_if_possible(
        self, *, top: float | int, min_top: int, margin: float, guided: GuidedSampler | None
    ) -> None:
        """Zoom between caviar's rounds, or go on in the same round when it cannot.

        A zoom needs ``min_top`` COMPLETE trials. Pruned, failed and diverged trials do not count,
        so a study with a pruner can end a round short of them; raising would leave it stuck at the
        same boundary on every re-run, so it keeps sampling the current space and says so.
        """
        complete = len(self.get_trials([TrialState.COMPLETE]))
        if complete >= min_top:
            self.zoom(top=top, min_top=min_top, margin=margin, guided=guided)
            return
        warnings.warn(
            f"study {self.name!r}: only {complete} COMPLETE trial(s), fewer than min_top={min_top}"
            f"; round {self.rounds[-1].index} goes on without zooming",
            TuneryWarning,
            stacklevel=3,
        )

    def _stage(self, n_stages: int) -> int:
        """Which of ``caviar``'s rounds the study is in: zoomed rounds since the base round."""
        since_base = 0
        for round_ in reversed(self._rounds):
            if not round_.zoomed:
                break
            since_base += 1
        return min(since_base, n_stages - 1)

    def _prepare(self, space: Mapping[str, Any] | None) -> None:
        """Become the study's writer (once) and make sure the current round fits ``space``."""
        if not self._running:
            # One writer per study: once we hold the study, trials RUNNING belong to a dead process.
            self.storage.claim_study(self.study_id)
            self.storage.fail_running_trials(self.study_id, INTERRUPTED)
            self._rounds = self.rounds
            self._running = True
            self._scan_round()
        if space is not None:
            self._adopt(validate_space(space))
        if not self._rounds:
            raise ConfigError("space", None, f"a search space (study {self.name!r} has none yet)")

    def _adopt(self, space: Space) -> None:
        """Keep the current round if ``space`` is its space or its base's; else start a round."""
        if self._rounds:
            base = next(r for r in reversed(self._rounds) if not r.zoomed)
            if space in (self._rounds[-1].space, base.space):
                return
        self._add_round(space, None)

    def _scan_round(self) -> None:
        """Rebuild the queue of interrupted draws and the next fresh draw of the current round."""
        self._pending, self._next_sample = {}, 0
        if not self._rounds:
            return
        index = self._rounds[-1].index
        drawn = [t for t in self.trials if t.round == index and t.sample_id is not None]
        self._next_sample = max((t.sample_id or 0 for t in drawn), default=-1) + 1
        settled = {t.sample_id for t in drawn if not t.interrupted}
        for trial in drawn:
            if trial.interrupted and trial.sample_id not in settled:
                self._requeue(trial, ())

    def _requeue(self, trial: FrozenTrial, earlier: Sequence[int]) -> None:
        if trial.sample_id is None or not self._rounds or trial.round != self._rounds[-1].index:
            return
        entry = self._pending.setdefault(trial.sample_id, _Pending(dict(trial.params), []))
        entry.resumes[:0] = [trial.trial_id, *earlier]
        entry.resumes[:] = list(dict.fromkeys(entry.resumes))

    def _round_sampler(self, round_: Round) -> Sampler:
        sampler = self._samplers.get(round_.index)
        if sampler is None:
            same = round_.sampler_spec in (self.sampler.name, _sampler_spec(self.sampler))
            sampler = self.sampler if same else _sampler_from_spec(round_.sampler_spec)
            self._samplers[round_.index] = sampler
        return sampler

    def _draw(self, round_: Round, sample_id: int) -> dict[str, Any]:
        sampler = self._round_sampler(round_)
        seed = round_seed(self.seed, round_.index)
        if not isinstance(sampler, GuidedSampler):
            return sample_params(sampler, round_.space, seed, sample_id)
        return self._guided.draw(
            sampler, self._rounds, round_, sample_id, seed=seed, trials=lambda: self.trials
        )

    def _live_trial(self, trial: Trial | int) -> Trial:
        number = trial.number if isinstance(trial, Trial) else trial
        live = self._live.get(number) if isinstance(number, int) else None
        if live is None or (isinstance(trial, Trial) and live is not trial):
            raise ConfigError("trial", trial, "a RUNNING trial asked by this study")
        return live

    def restore_checkpoint(
        self, trial: Trial, epoch: int | None, *, read: bool = True
    ) -> bytes | None:
        """The checkpoint ``Trial.restore`` finds: its own, its interrupted runs', its parent's.
        ``read=False``: as the store keeps it (for a ``checkpoint_dir``, where the file is)."""
        found = self._find_checkpoint(trial, epoch)
        return found if found is None or not read else read_checkpoint(found)

    def _find_checkpoint(self, trial: Trial, epoch: int | None) -> bytes | None:
        own = self.storage.load_checkpoint(trial.trial_id, epoch)
        if own is not None:
            return own[1]
        for earlier in trial.resumes:
            found = self.storage.load_checkpoint(earlier, epoch)
            if found is not None:
                return found[1]
        if trial.parent is not None:
            number, at = trial.parent
            if epoch is None or epoch <= at:
                parent_id = self.storage.get_trial_id(self.study_id, number)
                found = self.storage.load_checkpoint(parent_id, at if epoch is None else epoch)
                if found is not None:
                    return found[1]
        return None


def load_study(
    name: str, storage: str | PathLike[str] | BaseStorage = DEFAULT_STORAGE, **options: Any
) -> Study:
    """Open an existing study (``ConfigError`` naming the studies there if it does not exist)."""
    store = get_storage(storage)
    if store.get_study(name) is None:
        names = [summary.study.name for summary in store.list_studies()]
        raise ConfigError("study", name, f"the name of a study in {store.url} (found {names})")
    return Study(name, store, **options)


def list_studies(
    storage: str | PathLike[str] | BaseStorage = DEFAULT_STORAGE,
) -> list[StudySummary]:
    """Every study in the store, with its trial counts by state and its best value."""
    return get_storage(storage).list_studies()
