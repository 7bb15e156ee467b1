"""Explore: new values for a member's nudgeable hyperparameters, each on its own scale.

Per parameter, with probability ``resample_probability`` the value is drawn afresh from the
space (its distribution, so on its scale); otherwise it is perturbed by one of the two
``perturbation_factors``, picked at random, in the coordinate where its scale is even:

- ``Float`` on the log scale: ``x · f`` (a step of ``log f`` in log space: lr ×0.8 or ×1.25);
- ``Float`` on the one-minus-log scale: ``1 − (1 − x) · f`` (β moves through ``1 − β`` in log
  space, so 0.99 goes to 0.992 or 0.9875, never past 1);
- ``Float`` on the linear scale: ``x · f`` (Ray Tune's rule for every float);
- ``Int``: ``round(x · f)``, moved at least one step in the factor's direction;
- ``Choice``: the option next to the current one, either side (Ray Tune's rule for a list).

Every value is clipped to the space's bounds. ``rng`` is the caller's: PBT seeds it from the
study seed, the member and the step, so a re-run perturbs alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tunery.space import Choice, Distribution, Float, Int


def explore(
    params: Mapping[str, Any],
    space: Mapping[str, Distribution],
    names: Sequence[str],
    rng: np.random.Generator,
    *,
    factors: tuple[float, float],
    resample_probability: float,
) -> dict[str, Any]:
    """New values for ``names`` (in space order) of ``params``: the explore step's changes."""
    changes: dict[str, Any] = {}
    for name in [n for n in space if n in names]:
        distribution = space[name]
        if rng.random() < resample_probability:
            changes[name] = distribution.from_unit(float(rng.random()))
        else:
            changes[name] = perturb(distribution, params[name], rng, factors)
    return changes


def perturb(
    distribution: Distribution, value: Any, rng: np.random.Generator, factors: tuple[float, float]
) -> Any:
    """``value`` moved one step on ``distribution``'s scale (see the module docstring)."""
    if isinstance(distribution, Choice):
        options = distribution.options
        index = distribution.index(value) if distribution.contains(value) else 0
        step = -1 if rng.random() < 0.5 else 1
        return options[min(max(index + step, 0), len(options) - 1)]
    factor = factors[int(rng.integers(2))]
    if isinstance(distribution, Int):
        moved = round(value * factor)
        if moved == value:  # a small int would never move: step it at least by one
            moved = value + (1 if factor > 1 else -1)
        return int(min(max(moved, distribution.low), distribution.high))
    assert isinstance(distribution, Float)  # the only other kind a space holds
    if distribution.scale == "one_minus_log":
        moved_float = 1.0 - (1.0 - float(value)) * factor
    else:
        moved_float = float(value) * factor
    clipped = min(max(moved_float, distribution.low), distribution.high)
    return clipped if math.isfinite(clipped) else float(value)
