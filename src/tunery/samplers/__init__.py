"""Samplers: where the next trial goes, as a point of the unit cube.

A sampler returns ``u`` in ``[0, 1]`` per parameter; the space's distributions turn ``u`` into
values on their own scales (:func:`sample_params`). Every draw is a pure function of
``(study seed, trial number)`` (``random``, ``grid``, ``sobol``: see ``_unit.py``), or, for the
``guided`` sampler of zoomed rounds, of ``(seed, round, sample id)`` and the trials finished
before the draw's batch (``_guided.py``): a resumed study samples what the uninterrupted one would
have.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from tunery._exceptions import ConfigError
from tunery.samplers._guided import MODELS, Guide, GuidedSampler, min_history
from tunery.samplers._unit import (
    GridSampler,
    RandomSampler,
    Sampler,
    SobolSampler,
    sample_params,
)

__all__ = [
    "MODELS",
    "GridSampler",
    "Guide",
    "GuidedSampler",
    "RandomSampler",
    "Sampler",
    "SobolSampler",
    "make_sampler",
    "min_history",
    "sample_params",
]

_SAMPLERS: dict[str, type[Sampler]] = {
    "random": RandomSampler,
    "grid": GridSampler,
    "sobol": SobolSampler,
    "guided": GuidedSampler,
}


def make_sampler(name: str = "random", **options: Any) -> Sampler:
    """A sampler by name: ``"random"`` (default), ``"grid"``, ``"sobol"`` or ``"guided"``.

    ``make_sampler("grid", points_per_dim=5)``; ``make_sampler("sobol", scramble=False)``;
    ``make_sampler("guided", model="tpe", batch=4)``.
    """
    if name not in _SAMPLERS:
        raise ConfigError("sampler", name, "one of " + ", ".join(repr(n) for n in _SAMPLERS))
    cls = _SAMPLERS[name]
    allowed = [f.name for f in fields(cls)]
    for key in options:
        if key not in allowed:
            expected = f"one of the options {allowed}" if allowed else "no options"
            raise ConfigError(f"sampler.{name}", key, expected)
    return cls(**options)
