"""What ``Study`` checks and derives: its arguments, round seeds, sampler specs, and ``Round``.

Kept apart from ``tunery.study`` so that the study's module holds the study itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunery._exceptions import ConfigError
from tunery._validation import ANY_REAL, check_int, check_scalar
from tunery.pruners import Pruner
from tunery.records import FrozenTrial, RoundRecord, TrialState
from tunery.samplers import MODELS, GuidedSampler, Sampler, make_sampler
from tunery.space import Box, Space, space_from_dict
from tunery.trial import Trial


@dataclass(frozen=True)
class Round:
    """One round of a study: its space, where it came from, and its sampler.

    ``sampler`` is the sampler's name; ``sampler_spec`` its name and options as stored.
    ``box`` is ``None`` for a space the user gave (round 1, or a space passed later); a zoomed round
    has the ``Box`` it was cut from, in the unit coordinates of its base round's space.
    """

    index: int
    space: Space
    box: Box | None
    sampler: str
    created: float
    sampler_spec: str = ""

    @classmethod
    def from_record(cls, record: RoundRecord) -> Round:
        box = None if record.box is None else Box.from_dict(record.box)
        name = _sampler_from_spec(record.sampler).name
        space = space_from_dict(record.space)
        return cls(record.index, space, box, name, record.created, record.sampler)

    @property
    def zoomed(self) -> bool:
        return self.box is not None

    @property
    def sampler_text(self) -> str:
        """The sampler as ``tunery show`` and the report name it: ``guided by gp, batches of 8``."""
        return _sampler_from_spec(self.sampler_spec or self.sampler).describe()


@dataclass
class _Pending:
    """A draw to run again: params of its interrupted runs, and their trial ids (newest first)."""

    params: dict[str, Any]
    resumes: list[int]


def round_seed(seed: int, index: int) -> int:
    """The sampler seed of round ``index``: the study seed for round 1, a derived one after it.

    Without it every round would replay round 1's unit points, squeezed into the narrower box.
    """
    if index == 1:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _round_targets(n_trials: Any, rounds: Any, trials_per_round: Any) -> list[int]:
    """The cumulative number of finished trials at which each round of ``caviar`` ends."""
    check_int("rounds", rounds, 1)
    for field, value in (("n_trials", n_trials), ("trials_per_round", trials_per_round)):
        if value is not None:
            check_int(field, value, 1)
    if n_trials is None:
        if trials_per_round is None:
            raise ConfigError("n_trials", None, "an int >= 1 (or trials_per_round)")
        n_trials = rounds * trials_per_round
    per_round = trials_per_round or n_trials // rounds
    if per_round < 1:
        raise ConfigError("n_trials", n_trials, f"at least one trial per round ({rounds} rounds)")
    return [min(n_trials, per_round * (k + 1)) for k in range(rounds - 1)] + [n_trials]


def _sampler_spec(sampler: Sampler) -> str:
    """How a round stores its sampler: its name and options as JSON, so options survive a reload."""
    return json.dumps(sampler.to_dict(), sort_keys=True)


def _sampler_from_spec(spec: str) -> Sampler:
    # Plain names come from stores written before options were kept.
    if not spec.startswith("{"):
        return make_sampler(spec)
    return make_sampler(**json.loads(spec))


def _check_sampler(sampler: Any) -> Sampler:
    """The study's ``sampler``: it draws the rounds the user gives (round 1, a new space)."""
    checked = make_sampler(sampler) if isinstance(sampler, str) else sampler
    if not isinstance(checked, Sampler):
        expected = "a sampler name ('random', 'grid', 'sobol') or a Sampler"
        raise ConfigError("sampler", sampler, expected)
    if isinstance(checked, GuidedSampler):
        # A given round has no trials of its own to model: only zoomed rounds are guided.
        expected = "'random', 'grid' or 'sobol' (guided draws are for zoomed rounds: guided=)"
        raise ConfigError("sampler", sampler, expected)
    return checked


def _check_guided_rounds(guided: GuidedSampler | None, rounds: int) -> None:
    """``caviar(guided=...)`` needs a zoomed round to guide: ``rounds >= 2``."""
    if guided is not None and rounds < 2:
        expected = "None with rounds=1 (round 1 has no trials to model; guide rounds >= 2)"
        raise ConfigError("guided", guided.model, expected)


def _check_guided(guided: Any) -> GuidedSampler | None:
    """``guided=``: None, a model's name (``"gp"``, ``"tpe"``) or a ``GuidedSampler``."""
    if guided is None or isinstance(guided, GuidedSampler):
        return guided
    if isinstance(guided, str) and guided in MODELS:
        return GuidedSampler(model=guided)
    expected = "None, " + ", ".join(map(repr, MODELS)) + " or a GuidedSampler"
    raise ConfigError("guided", guided, expected)


def _bound(pruner: Pruner | None, metric: str, direction: str) -> Pruner | None:
    """A pruner that watches the study's metric and direction unless it was told otherwise."""
    bind = getattr(pruner, "bind", None)
    return pruner if bind is None else bind(metric=metric, direction=direction)


def _check_pruner(pruner: Any) -> Pruner | None:
    if pruner is not None and not callable(getattr(pruner, "should_prune", None)):
        raise ConfigError(
            "pruner", pruner, "None or an object with should_prune(trials, trial, epoch)"
        )
    return pruner  # type: ignore[no-any-return]


def _check_params(params: Any) -> dict[str, Any]:
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise ConfigError("params", params, "a mapping of parameter names to values")
    return dict(params)


def _check_parent(parent: Any) -> tuple[int, int] | None:
    if parent is None:
        return None
    if (
        not isinstance(parent, tuple)
        or len(parent) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in parent)
    ):
        raise ConfigError("parent", parent, "None or (trial number, epoch), both ints >= 0")
    return (parent[0], parent[1])


_FINISHED = frozenset(state for state in TrialState if state.is_finished())


def _resolve(trial: Trial, value: Any, state: Any) -> tuple[TrialState, float | None]:
    """The state and value to store, from what ``tell`` was given."""
    number = None if value is None else check_scalar("value", value, ANY_REAL)
    if state is None:
        if number is None:
            raise ConfigError("value", value, "a number (or a state such as TrialState.FAILED)")
        return (TrialState.COMPLETE if math.isfinite(number) else TrialState.DIVERGED), number
    if state not in _FINISHED:
        raise ConfigError(
            "state", state, "a finished TrialState (COMPLETE, PRUNED, FAILED, DIVERGED)"
        )
    final = TrialState(state)
    if final is TrialState.COMPLETE and (number is None or not math.isfinite(number)):
        raise ConfigError("value", value, "a finite number for a COMPLETE trial")
    if final is TrialState.PRUNED and number is None:
        number = trial.last()
    return final, number


def _value(trial: FrozenTrial) -> float:
    # COMPLETE trials always have a finite value (tell checks it).
    return float(trial.value if trial.value is not None else math.nan)


def _fits(space: Space, params: Mapping[str, Any]) -> bool:
    return set(params) == set(space) and all(space[n].contains(v) for n, v in params.items())


def _check_callbacks(callbacks: Any) -> tuple[Callable[..., Any], ...]:
    """``callbacks=``: functions ``callback(study, trial)``."""
    if not isinstance(callbacks, Iterable) or isinstance(callbacks, str):
        raise ConfigError("callbacks", callbacks, "a list of functions callback(study, trial)")
    hooks = tuple(callbacks)
    for hook in hooks:
        if not callable(hook):
            raise ConfigError("callbacks", hook, "functions callback(study, trial)")
    return hooks
