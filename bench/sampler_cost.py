"""Time per draw of a model-guided sampler as the history grows: tunery's GuidedSampler (GP and
TPE) against Optuna's TPESampler, side by side in one run.

    python bench/sampler_cost.py              # 100, 1,000 and 10,000 trials of history
    python bench/sampler_cost.py --quick      # 30 and 100 trials, one repeat (seconds)

Both get the same six-parameter space (``bench/_objectives.SYNTHETIC_SPACE``: log, one-minus-log,
linear, integer and categorical parameters) and the same history: ``n`` uniform random points
scored by the ``synthetic-lr-beta`` function. A draw is timed where a user meets it, through each
library's ask, with the history in memory:

- tunery: a :memory: study holding the ``n`` trials in round 1, zoomed into a guided round 2
  (``guided=GuidedSampler(model, batch)``); ``study.ask()`` ``batch`` times. The first ask of a
  batch fits the model on the history, the others reuse it, so the time per draw is the batch's
  time over ``batch`` (``--batch``, default 8, the ``[run] guided_batch`` default); the ``first
  draw`` rows are the first ask alone (fit and draw): the time per draw of ``guided_batch = 1``.
- Optuna: an in-memory study holding the same ``n`` trials (``add_trials``), ``TPESampler(seed=0)``
  with its defaults; ``study.ask(distributions)`` ``batch`` times (each ask samples every
  parameter from a model of the trials so far).

Each measurement is repeated (``--repeat``, default 3, a fresh study each time) and the fastest is
kept, as ``timeit`` does: on a shared machine the slower runs measure the neighbours. Optuna's TPE
slowing as its history grows is optuna#2172; tunery's GP fits on at most ``MAX_FIT`` (300) trials.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _objectives import SYNTHETIC_SPACE, make_objective

from tunery.samplers import GuidedSampler
from tunery.space import Choice, Float, Int
from tunery.study import Study

SIZES = (100, 1_000, 10_000)
QUICK_SIZES = (30, 100)
History = list[tuple[dict[str, Any], float]]


def history_of(n: int, seed: int = 0) -> History:
    """``n`` uniform points of the space (each parameter on its own scale) and their values."""
    evaluate = make_objective("synthetic-lr-beta").evaluate
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(n):
        params = {k: d.from_unit(float(rng.random())) for k, d in SYNTHETIC_SPACE.items()}
        points.append((params, float(evaluate(params))))
    return points


Timing = Callable[[], list[tuple[float, float]]]  # (wall, CPU) seconds of each of a batch's asks


def tunery_draws(history: History, model: str, batch: int) -> Timing:
    """The seconds of each of ``batch`` asks of a guided round 2 over ``history``."""
    study = Study("cost", ":memory:", seed=0)
    for params, value in history:
        trial = study.ask(SYNTHETIC_SPACE, params=params)
        study.tell(trial, value)
    study.zoom(top=0.1, guided=GuidedSampler(model, batch=batch))

    def run() -> list[tuple[float, float]]:
        return [_timed(study.ask) for _ in range(batch)]  # never told: one model, one history

    return run


def _timed(call: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def _optuna_distributions() -> dict[str, Any]:
    import optuna.distributions as od

    out: dict[str, Any] = {}
    for name, dist in SYNTHETIC_SPACE.items():
        if isinstance(dist, Choice):
            out[name] = od.CategoricalDistribution(list(dist.options))
        elif isinstance(dist, Int):
            out[name] = od.IntDistribution(dist.low, dist.high, log=dist.scale == "log")
        elif isinstance(dist, Float) and dist.scale == "one_minus_log":
            out[f"one_minus_{name}"] = od.FloatDistribution(1 - dist.high, 1 - dist.low, log=True)
        elif isinstance(dist, Float):
            out[name] = od.FloatDistribution(dist.low, dist.high, log=dist.scale == "log")
    return out


def _optuna_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``beta`` as ``one_minus_beta`` on a log scale: Optuna has no one-minus-log scale."""
    out = dict(params)
    for name, dist in SYNTHETIC_SPACE.items():
        if isinstance(dist, Float) and dist.scale == "one_minus_log":
            out[f"one_minus_{name}"] = 1.0 - out.pop(name)
    return out


def optuna_draws(history: History, batch: int) -> Timing:
    """The seconds of each of ``batch`` asks of Optuna's TPESampler over ``history``."""
    import optuna

    distributions = _optuna_distributions()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.add_trials(
        [
            optuna.trial.create_trial(
                params=_optuna_params(params), distributions=distributions, value=value
            )
            for params, value in history
        ]
    )

    def run() -> list[tuple[float, float]]:
        return [_timed(lambda: study.ask(distributions)) for _ in range(batch)]

    return run


Cost = tuple[float, float]  # (wall, CPU) milliseconds


def fastest(make: Callable[[], Timing], repeat: int) -> tuple[Cost, Cost]:
    """Milliseconds per draw and of the first draw, each the fastest of ``repeat`` runs on a
    fresh study (building it is not timed)."""
    runs = [make()() for _ in range(max(1, repeat))]
    per_draw = min(
        (1000 * sum(w for w, _ in r) / len(r), 1000 * sum(c for _, c in r) / len(r)) for r in runs
    )
    first = min((1000 * r[0][0], 1000 * r[0][1]) for r in runs)
    return per_draw, first


def silence_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="optuna")


def measure(sizes: Sequence[int], batch: int, repeat: int) -> dict[str, dict[int, Cost]]:
    """Milliseconds per draw: ``{method: {history size: (wall, CPU)}}``."""
    rows: dict[str, dict[int, Cost]] = {}
    warm = history_of(10)
    for warm_up in (
        tunery_draws(warm, "gp", 2),
        tunery_draws(warm, "tpe", 2),
        optuna_draws(warm, 2),
    ):
        warm_up()  # imports and first calls (scikit-learn, Optuna) are not what is measured
    for n in sizes:
        history = history_of(n)
        runs: dict[str, Callable[[], Timing]] = {
            "tunery GP": partial(tunery_draws, history, "gp", batch),
            "tunery TPE": partial(tunery_draws, history, "tpe", batch),
            "Optuna TPESampler": partial(optuna_draws, history, batch),
        }
        for name, make in runs.items():
            per_draw, first = fastest(make, repeat)
            rows.setdefault(f"{name}, per draw", {})[n] = per_draw
            rows.setdefault(f"{name}, first draw", {})[n] = first
            print(f"  {name} at {n}: {per_draw} ms/draw", file=sys.stderr, flush=True)
    return rows


def table(rows: Mapping[str, Mapping[int, Cost]], sizes: Sequence[int]) -> str:
    """Wall and CPU milliseconds; the ratio is of CPU times (the neighbours' load is not in it)."""
    optuna_row = rows["Optuna TPESampler, per draw"]
    header = [f"{n:,} trials" for n in sizes]
    lines = [
        "| sampler | " + " | ".join(f"wall / CPU ms @ {h}" for h in header) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for name, by_size in rows.items():
        cells = []
        for n in sizes:
            (wall, cpu), optuna_cpu = by_size[n], optuna_row[n][1]
            ratio = "" if name.startswith("Optuna") else f" ({optuna_cpu / cpu:.2g}x)"
            cells.append(f"{wall:.1f} / {cpu:.1f}{ratio}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 and 100 trials, one repeat")
    parser.add_argument("--batch", type=int, default=8, help="draws per fitted model (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="fastest of this many runs")
    args = parser.parse_args()
    sizes = QUICK_SIZES if args.quick else SIZES
    repeat = 1 if args.quick else args.repeat
    silence_optuna()
    threadpool_limits(1)  # one BLAS thread each: CPU time is one core's, as for Optuna's NumPy
    load = os.getloadavg()
    rows = measure(sizes, args.batch, repeat)
    print(f"Milliseconds per draw, fastest of {repeat}, batches of {args.batch}; in brackets:")
    print("Optuna TPE's CPU time per draw over this row's (above 1: faster than Optuna).\n")
    print(table(rows, sizes))
    after = os.getloadavg()
    print(
        f"\nmachine: {platform.platform()}, {os.cpu_count()} CPUs; load average before "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after {after[0]:.2f} {after[1]:.2f} "
        f"{after[2]:.2f}; date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


if __name__ == "__main__":
    main()
