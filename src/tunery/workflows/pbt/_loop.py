"""The population: plan each step's segments, run them on the caviar executor, step by step."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tunery._exceptions import ConfigError
from tunery.config import PBTSection, TuneConfig
from tunery.pruners import Pruner
from tunery.records import Event, FrozenTrial, TrialState
from tunery.report import PBT_ATTR, final_segments, is_segment, segment_info
from tunery.run import default_workers, execute
from tunery.samplers import sample_params
from tunery.trial import Trial
from tunery.workflows.objective import trial_settings
from tunery.workflows.panda import AppliedEvent, branch_events, check_model_nudge, nudgeable
from tunery.workflows.panda._events import write_log
from tunery.workflows.panda._recipes import describe_settings
from tunery.workflows.panda._signals import holding_ctrl_c
from tunery.workflows.pbt._explore import explore
from tunery.workflows.pbt._plans import (
    Exploit,
    Plan,
    kept_segments,
    member_rng,
    split,
    unfinished_segments,
)
from tunery.workflows.pbt._segment import SegmentObjective

if TYPE_CHECKING:
    from tunery.study import Study

OnSegment = Callable[[FrozenTrial], Any]


def pbt(
    study: Study,
    source: TuneConfig,
    *,
    population: int | None = None,
    perturbation_interval: int | None = None,
    quantile_fraction: float | None = None,
    resample_probability: float | None = None,
    perturbation_factors: tuple[float, float] | None = None,
    epochs: int | None = None,
    workers: int | None = None,
    executor: str | None = None,
    address: str | None = None,
    resources: Mapping[str, Any] | None = None,
    on_segment: OnSegment | None = None,
    live: bool | None = False,
) -> Population:
    """Population-based training of ``source``'s model in ``study`` (see ``tunery.workflows.pbt``).

    The options left out come from ``source``'s ``[pbt]`` (and ``epochs``, ``workers``,
    ``executor``, ``address``, ``resources`` from its ``[run]``). ``on_segment(frozen_trial)`` is
    called after each finished segment. Running it again on the same study resumes it. Returns
    the ``Population``, trained.
    """
    given: dict[str, Any] = {
        "population": population,
        "perturbation_interval": perturbation_interval,
        "quantile_fraction": quantile_fraction,
        "resample_probability": resample_probability,
        "perturbation_factors": perturbation_factors,
    }
    if not isinstance(source, TuneConfig):
        raise ConfigError("source", source, "a tunery.config.TuneConfig (load_config('tune.toml'))")
    options = dataclasses.replace(source.pbt, **{k: v for k, v in given.items() if v is not None})
    config = source.with_overrides(
        epochs=epochs, workers=workers, executor=executor, address=address
    )
    if resources is not None:
        config = config.with_overrides(resources=dict(resources))
    runner = Population(study, config, options, live=live)
    return runner.run(on_segment)


def check_pbt(config: TuneConfig, options: PBTSection | None = None) -> None:
    """What the config's sections cannot check alone: an interval shorter than the training."""
    interval = (options or config.pbt).perturbation_interval
    if interval >= config.epochs:
        expected = f"fewer epochs than the {config.epochs} each member trains (run.epochs)"
        raise ConfigError("pbt.perturbation_interval", interval, expected)


class Population:
    """A PBT population of ``study``: ``options.population`` members of ``config``'s model.

    Each member trains as a chain of segment trials, one per ``perturbation_interval`` epochs;
    ``run()`` trains the steps not yet done. ``members`` are the latest segments, by member.
    """

    def __init__(
        self, study: Study, config: TuneConfig, options: PBTSection, *, live: bool | None = False
    ) -> None:
        self.study = study
        self.config = config
        self.options = options
        self.live = live
        check_pbt(config, options)
        self.epochs = config.epochs
        self.interval = options.perturbation_interval
        self.steps = math.ceil(self.epochs / self.interval)
        self.space = dict(config.space)
        self.objective = SegmentObjective(config)
        study.storage.claim_study(study.study_id)  # one writer: a second run fails before writing
        self._check_study(study.trials)

    # -- state -----------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self.options.population

    @property
    def members(self) -> list[FrozenTrial]:
        """Each member's latest segment (after ``run``: its final one), by member."""
        return final_segments(self.study.trials)

    @property
    def best(self) -> FrozenTrial | None:
        """The final member with the best value of the study's metric."""
        done = [t for t in self.members if t.state is TrialState.COMPLETE and t.value is not None]
        if not done:
            return None
        sign = 1.0 if self.study.direction == "maximize" else -1.0
        return max(done, key=lambda t: (sign * float(t.value or 0.0), -t.number))

    def next_step(self) -> int:
        """The first step some member has not finished (``steps`` once all are done)."""
        kept = kept_segments(self.study.trials)
        for step in range(self.steps):
            if any((member, step) not in kept for member in range(self.size)):
                return step
        return self.steps

    def bounds(self, step: int) -> tuple[int, int]:
        """The epochs a step trains: from ``start`` (its checkpoint) to ``end``."""
        return step * self.interval, min((step + 1) * self.interval, self.epochs)

    # -- running ---------------------------------------------------------------------------------

    def run(self, on_segment: OnSegment | None = None) -> Population:
        """Train every step not yet done, one generation of segments at a time."""
        workers = self.config.run.workers or default_workers()
        run = self.config.run
        with self.study.beating():
            for step in range(self.next_step(), self.steps):
                plans = self.plan(step)
                if not plans:
                    continue
                execute(
                    _Generation(self, plans),
                    self.objective,
                    target=len(plans),
                    workers=min(workers, len(plans)),
                    on_finished=on_segment,
                    live=self.live,
                    executor=run.executor,
                    address=run.address,
                    resources=run.resources or None,
                    checkpoint_dir=self.study.checkpoint_dir,
                )
        return self

    def plan(self, step: int) -> list[Plan]:
        """The segments step ``step`` still needs, by member (see ``_plans``)."""
        trials = self.study.trials
        kept, unfinished = kept_segments(trials), unfinished_segments(trials)
        start, end = self.bounds(step)
        previous = {m: kept[(m, step - 1)] for m in range(self.size)} if step else {}
        maximize = self.study.direction == "maximize"
        fraction = self.options.quantile_fraction
        top, bottom = split(previous, maximize, fraction) if step else ([], [])
        nudges = self._pending_by_member(trials)
        plans = []
        for member in range(self.size):
            if (member, step) in kept:
                continue
            interrupted = unfinished.get((member, step))
            if interrupted is not None:  # re-run it as it was planned, with its log
                plan = Plan(member, step, start, end, dict(interrupted.params), interrupted.parent)
                plan.log = branch_events(interrupted)
            elif step == 0:
                params = sample_params(self.study.sampler, self.space, self.study.seed, member)
                plan = Plan(member, 0, start, end, params)
            else:
                plan = self._next_plan(member, step, previous, top, bottom)
            self._apply_nudges(plan, nudges.get(member, []))
            plans.append(plan)
        return plans

    def _next_plan(
        self,
        member: int,
        step: int,
        previous: Mapping[int, FrozenTrial],
        top: Sequence[int],
        bottom: Sequence[int],
    ) -> Plan:
        start, end = self.bounds(step)
        own = previous[member]
        if member not in bottom:
            return Plan(member, step, start, end, dict(own.params), (own.number, start))
        rng = member_rng(self.study.seed, member, step)
        source = top[int(rng.integers(len(top)))]
        copied = previous[source]
        params = dict(copied.params)
        settings = trial_settings(self.config, params)
        names = [name for name in nudgeable(settings) if name in self.space]
        options = self.options
        changes = explore(
            params,
            self.space,
            names,
            rng,
            factors=options.perturbation_factors,
            resample_probability=options.resample_probability,
        )
        clean = check_model_nudge(settings, changes) if changes else {}  # the panda's nudge check
        params.update(clean)
        exploit = Exploit(source, copied.number, start, clean)
        return Plan(member, step, start, end, params, (copied.number, start), exploit)

    def _pending_by_member(self, trials: Sequence[FrozenTrial]) -> dict[int, list[Event]]:
        """The queued events sent to a member (to any of its segments), oldest first."""
        members = {t.number: int(segment_info(t)["member"]) for t in trials if is_segment(t)}
        found: dict[int, list[Event]] = {}
        for event in self.study.storage.get_events(self.study.study_id, pending=True):
            member = members.get(event.trial_number) if event.trial_number is not None else None
            if member is not None:
                found.setdefault(member, []).append(event)
        return found

    def _apply_nudges(self, plan: Plan, events: Sequence[Event]) -> None:
        """A person's nudges, on top of what PBT chose; logged and marked once the segment is."""
        logged = {entry.event_id for entry in plan.log}
        for event in events:
            plan.marks.append(event.event_id)
            if event.event_id in logged:
                continue  # applied to the interrupted attempt this plan re-runs
            entry = AppliedEvent(event.event_id, event.kind, dict(event.payload), plan.start)
            try:
                if event.kind != "nudge":
                    raise ConfigError("event", event.kind, "a nudge (PBT members take no other)")
                settings = trial_settings(self.config, plan.params)
                clean = check_model_nudge(settings, event.payload)
                plan.params.update(clean)
                entry = dataclasses.replace(entry, payload=clean, by="hand")
            except ConfigError as error:
                entry = dataclasses.replace(entry, error=str(error), by="hand")
            plan.log.append(entry)

    def start_segment(self, plan: Plan) -> Trial:
        """Store the segment's trial, its record, its exploit event and its log, all or none."""
        storage, study_id = self.study.storage, self.study.study_id
        with holding_ctrl_c():
            trial = self.study.ask(self.space, params=plan.params, parent=plan.parent)
            described = describe_settings(trial_settings(self.config, plan.params))
            trial.set_user_attr(PBT_ATTR, plan.info(self.size, self.interval, described))
            entries = [dataclasses.replace(e, branch=trial.number) for e in plan.log]
            if plan.exploit is not None:
                payload = plan.exploit.payload(plan.member, plan.params)
                event = storage.add_event(study_id, "exploit", payload, trial_number=trial.number)
                storage.mark_event_applied(event.event_id)
                entries[:0] = _exploit_entries(event, plan, trial.number)
            write_log(trial, entries)
            for event_id in plan.marks:
                storage.mark_event_applied(event_id)
        plan.log, plan.exploit, plan.marks = entries, None, []
        return trial

    def _check_study(self, trials: Sequence[FrozenTrial]) -> None:
        others = [t.number for t in trials if not is_segment(t)]
        if others:
            expected = "a study for PBT alone (it holds trials PBT did not make)"
            raise ConfigError("study", self.study.name, expected)
        fixed = (("population", self.size), ("perturbation_interval", self.interval))
        for trial in trials:
            info = segment_info(trial)
            for key, wanted in fixed:
                stored = info.get(key)
                if stored is not None and stored != wanted:
                    expected = f"{stored}, as study {self.study.name!r} was started with"
                    raise ConfigError(f"pbt.{key}", wanted, expected)

    def __repr__(self) -> str:
        return (
            f"Population(study={self.study.name!r}, population={self.size}, "
            f"step {self.next_step()} of {self.steps})"
        )


def _exploit_entries(event: Event, plan: Plan, number: int) -> list[AppliedEvent]:
    exploit = event.payload
    edge = {key: exploit[key] for key in ("member", "trial", "epoch")}
    entries = [AppliedEvent(event.event_id, "exploit", edge, plan.start, number, by="pbt")]
    if exploit["perturbed"]:
        perturbed = dict(exploit["perturbed"])
        nudge = AppliedEvent(event.event_id, "nudge", perturbed, plan.start, number, by="pbt")
        entries.append(nudge)
    return entries


class _Generation:
    """One step's segments as the executor sees a study (``tunery.run.AskTell``)."""

    def __init__(self, population: Population, plans: Sequence[Plan]) -> None:
        self.population = population
        self.study = population.study
        self._queue = list(plans)
        self._running: dict[int, Plan] = {}
        self._done = 0
        self.metric: str = self.study.metric  # a study's metric and direction never change
        self.direction: str = self.study.direction

    @property
    def pruner(self) -> Pruner | None:
        return self.study.pruner

    def ask(self) -> Trial:
        plan = self._queue.pop(0)
        trial = self.population.start_segment(plan)
        self._running[trial.number] = plan
        return trial

    def tell(self, trial: Trial, *args: Any, **kwargs: Any) -> FrozenTrial:
        """``Study.tell``, then the plan's bookkeeping: an interrupted segment is queued again."""
        frozen = self.study.tell(trial, *args, **kwargs)
        plan = self._running.pop(frozen.number, None)
        if frozen.interrupted and plan is not None:
            self._queue.insert(0, plan)  # its re-run keeps the plan and the log
        elif not frozen.interrupted:
            self._done += 1
        return frozen

    def count_done(self) -> int:
        return self._done

    def current_best(self) -> FrozenTrial | None:
        return self.study.current_best()
