"""A study's model-guided rounds: which trials a batch's model is fitted on, and how far
``caviar`` may run before the next batch needs a refit.

A guided round (``tunery.samplers.GuidedSampler``) draws its sample ids in batches; sample ``s``
is fitted on the COMPLETE trials of the earlier rounds and those of its own round whose sample id
is below ``s - s % batch``. Those must all be finished when the draw is asked, or two runs of the
same study would fit different models: the draw refuses otherwise, and ``caviar`` stops its
executor at each batch's end (:func:`batch_stop`) so that they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tunery._exceptions import TuneryError
from tunery.records import FrozenTrial, TrialState
from tunery.samplers import Guide, GuidedSampler, Sampler
from tunery.space import Box
from tunery.study._helpers import Round, _fits

__all__ = ["GuidedDraws", "batch_stop"]


class GuidedDraws:
    """The fitted model of the batch being drawn (one at a time), refitted when a batch starts."""

    def __init__(self, study_name: str, *, maximize: bool) -> None:
        self._study_name = study_name
        self._maximize = maximize
        self._guide: tuple[tuple[int, int], Guide] | None = None  # (round, batch start), model

    def draw(
        self,
        sampler: GuidedSampler,
        rounds: Sequence[Round],
        round_: Round,
        sample_id: int,
        *,
        seed: int,
        trials: Callable[[], Sequence[FrozenTrial]],
    ) -> dict[str, Any]:
        """The params of ``sample_id`` of ``round_`` (``rounds``: the study's, in order)."""
        base = next(r for r in reversed(rounds[: round_.index]) if not r.zoomed)
        start = sampler.batch_start(sample_id)
        key = (round_.index, start)
        if self._guide is None or self._guide[0] != key:
            history = self._history(trials(), round_, base, start)
            box = round_.box or Box.full(base.space)
            fitted = sampler.fit(
                base.space, box, history, maximize=self._maximize, seed=seed, start=start
            )
            self._guide = (key, fitted)
        u = self._guide[1].propose(sample_id)
        return {name: base.space[name].from_unit(u[name]) for name in round_.space}

    def _history(
        self, trials: Sequence[FrozenTrial], round_: Round, base: Round, start: int
    ) -> list[tuple[dict[str, Any], float]]:
        """What batch ``start`` is fitted on, in trial order; refused while any of it may still
        change, so that every run fits the same."""
        running = [t.number for t in trials if t.round < round_.index and not t.state.is_finished()]
        settled = settled_samples(trials, round_.index)
        missing = [s for s in range(start) if s not in settled]
        if running or missing:
            raise TuneryError(
                f"study {self._study_name!r}: round {round_.index} draws from a model in batches; "
                f"its sample {start} and later need the trials before them finished (still open: "
                f"trials {running} of earlier rounds, samples {missing[:10]} of this round). "
                "Tell them first, or run the study with Study.caviar, which waits for each batch"
            )
        return [
            (dict(t.params), float(t.value))
            for t in trials
            if t.state is TrialState.COMPLETE
            and t.value is not None
            and _fits(base.space, t.params)
            and (
                t.round < round_.index
                or (t.round == round_.index and t.sample_id is not None and t.sample_id < start)
            )
        ]


def batch_stop(
    sampler: Sampler, round_index: int, trials: Sequence[FrozenTrial], target: int
) -> int:
    """How many finished trials ``caviar`` may run to at once: ``target``, or, in a guided round,
    fewer so that it stops at the end of the round's open batch."""
    if not isinstance(sampler, GuidedSampler):
        return target
    settled = len(settled_samples(trials, round_index))
    done = sum(1 for t in trials if t.state.is_finished() and not t.interrupted)
    batch_end = sampler.batch_start(settled) + sampler.batch
    return min(target, done + batch_end - settled)


def settled_samples(trials: Sequence[FrozenTrial], round_index: int) -> set[int]:
    """The sample ids of a round whose draw has run to an end that counts (not interrupted)."""
    return {
        t.sample_id
        for t in trials
        if t.round == round_index
        and t.sample_id is not None
        and t.state.is_finished()
        and not t.interrupted
    }
