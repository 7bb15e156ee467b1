"""How many trials each search method needs: grid, random (linear and right scale), Sobol,
coarse to fine, Optuna's random and TPE samplers, and scikit-learn's RandomizedSearchCV.

Every method gets the same trial budgets (8, 16, 32, 64) on the same objective and the same seeds;
the figures are the best value found so far, as the median and interquartile range over seeds.

    python bench/search_efficiency.py --quick                     # seconds: synthetic, 2 seeds
    python bench/search_efficiency.py --objectives synthetic --seeds 30
    nice -n 19 python bench/search_efficiency.py --objectives digits,signs --workers 2
    python bench/search_efficiency.py --objectives synthetic --seeds 30 --methods c2f-2,c2f-2-gp

``--methods`` reruns only the methods named (the grid too, unless the JSON has it for the same
seeds and budgets) and replaces only their rows in the JSON; each objective's record lists the
runs its rows come from.

Methods (all over the one space of ``bench/_objectives.py``):

- ``grid``: the fullest grid that fits the budget, with as even a number of points per parameter
  as possible (earlier parameters get more), points at the centres of equal cells on each
  parameter's own scale. It has no randomness: one run serves every seed.
- ``random-linear``: tunery's random sampler with every scale made linear (the mistake).
- ``random``: tunery's random sampler on the right scales; ``sobol``: its scrambled Sobol' points.
- ``c2f-2`` and ``c2f-3``: ``Study.caviar(objective, space, n_trials, rounds=2 or 3)``: random
  trials, narrowed around the best ones between rounds (tunery's default zoom).
- ``c2f-2-gp`` and ``c2f-2-tpe``: the same with ``guided="gp"`` or ``"tpe"``: round 2 draws inside
  its box from a model of the trials so far, in batches of 8 (``tunery.samplers.GuidedSampler``).
- ``optuna-random`` and ``optuna-tpe``: Optuna's ``RandomSampler`` and ``TPESampler`` (default
  settings) seeded with the same seed, on the same space: ``log=True`` where tunery's scale is
  ``log``; a ``one_minus_log`` parameter such as β is asked of Optuna as ``1 - β`` with
  ``log=True`` (Optuna has no such scale; this is the same distribution).
- ``sklearn-random`` (MLP objectives): ``RandomizedSearchCV`` over ``tunery.nn.MLPClassifier``
  with ``scipy.stats.loguniform`` (and ``1 - loguniform`` for β), on one fixed validation split
  (``PredefinedSplit``), so it scores exactly what the other methods score.

Each method's pick at the largest budget (its best trial by the value searched on) is scored
again where no search looked: an MLP's accuracy on the test split, a synthetic function's value
without its pseudo-noise (the searched value alone is optimistic: it is the maximum of many noisy
ones). ``sklearn-random`` runs its own fits, so its pick is not known here: ``n/a``.

Methods whose trials do not depend on the budget (all but ``grid`` and ``c2f-*``) run once with
the largest budget; the best of the first ``b`` trials is their result at budget ``b``. The
others run once per budget. Within one seed, a point already evaluated is not trained again (the
objectives are deterministic): coarse to fine's first round repeats the first trials of
``random`` with the same seed, so it costs nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import itertools
import json
import math
import os
import platform
import shlex
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _merge import merged, method_subset, parse_methods, source_lines
from _objectives import (
    OBJECTIVES,
    Objective,
    describe_distribution,
    linear_scale,
    make_objective,
)

from tunery import ConfigError, Study
from tunery.space import Choice, Distribution, Float, Int, Space

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "benchmarks"
BUDGETS = (8, 16, 32, 64)
QUICK_BUDGETS = (8, 16)
SYNTHETIC = ("synthetic-lr", "synthetic-lr-beta")
C2F = ("c2f-2", "c2f-3", "c2f-2-gp", "c2f-2-tpe")  # the claims are checked for these
MLP_OBJECTIVES = ("digits", "signs")

Values = list[float]  # one value per trial, in trial order; NaN for a failed or diverged trial
Evaluate = Callable[[Mapping[str, Any]], float]
Runner = Callable[["Objective", Evaluate, int, int], Values]  # (objective, evaluate, seed, budget)


# -- methods --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """A search method: ``run(objective, evaluate, seed, budget) -> values in trial order``.

    ``anytime``: its first ``b`` trials do not depend on the budget, so one run of the largest
    budget gives every smaller one. ``seeded``: False for the grid (one run serves every seed).
    """

    name: str
    run: Runner
    anytime: bool = True
    seeded: bool = True
    mlp_only: bool = False
    needs: str | None = None  # an optional package; without it the method is left out


def grid_counts(space: Space, budget: int) -> dict[str, int]:
    """Points per parameter: the largest product <= ``budget``; among those the most even; then
    the one that gives earlier parameters more. A Choice has at most its options, an Int at most
    its integers.
    """
    names = list(space)
    caps = [_axis_cap(space[name]) for name in names]

    def key(counts: tuple[int, ...]) -> tuple[int, int, int, tuple[int, ...]]:
        # For a given product, a smaller sum of squares is more even (integers: no float ties).
        return (math.prod(counts), -max(counts, default=1), -sum(c * c for c in counts), counts)

    best = max(_count_tuples(caps, budget), key=key)
    return dict(zip(names, best, strict=True))


def _count_tuples(caps: Sequence[int], budget: int) -> Iterator[tuple[int, ...]]:
    """Every tuple of counts ``1 <= c_i <= caps[i]`` whose product is at most ``budget``."""

    def extend(prefix: tuple[int, ...], product: int) -> Iterator[tuple[int, ...]]:
        if len(prefix) == len(caps):
            yield prefix
            return
        for count in range(1, min(caps[len(prefix)], budget // product) + 1):
            yield from extend((*prefix, count), product * count)

    yield from extend((), 1)


def _axis_cap(dist: Distribution) -> int:
    if isinstance(dist, Choice):
        return len(dist.options)
    if isinstance(dist, Int):
        return dist.high - dist.low + 1
    if isinstance(dist, Float) and dist.low == dist.high:
        return 1
    return 10**9


def grid_points(space: Space, budget: int) -> list[dict[str, Any]]:
    """The grid's params, the last parameter varying fastest: ``len <= budget``.

    Each axis holds the values at the centres of ``count`` equal cells of the unit interval (an
    Int on a log scale may map two centres to one integer: the axis keeps it once).
    """
    counts = grid_counts(space, budget)
    axes = [_axis(space[name], count) for name, count in counts.items()]
    return [dict(zip(counts, values, strict=True)) for values in itertools.product(*axes)]


def _axis(dist: Distribution, count: int) -> list[Any]:
    values = [dist.from_unit((i + 0.5) / count) for i in range(count)]
    # A Choice's cells hold distinct options (dedupe would merge True and 1); an Int's may not.
    return list(dict.fromkeys(values)) if isinstance(dist, Int) else values


def run_grid(objective: Objective, evaluate: Evaluate, seed: int, budget: int) -> Values:
    return [evaluate(params) for params in grid_points(objective.space, budget)]


def _study_values(study: Study) -> Values:
    return [math.nan if t.value is None else float(t.value) for t in study.trials]


def tunery_method(
    sampler: str, *, linear: bool = False, rounds: int = 1, guided: str | None = None
) -> Runner:
    """A method run through ``tunery.Study.caviar`` with an in-memory store."""

    def run(objective: Objective, evaluate: Evaluate, seed: int, budget: int) -> Values:
        space = linear_scale(objective.space) if linear else objective.space
        study = Study("bench", ":memory:", direction="maximize", seed=seed, sampler=sampler)
        try:
            study.caviar(
                lambda trial: evaluate(trial.params),
                space,
                n_trials=budget,
                rounds=rounds,
                workers=1,
                guided=guided,
            )
        except ConfigError:
            # Too few trials per round to zoom (zoom needs 3 finished ones): no result.
            return [math.nan] * budget
        return _study_values(study)

    return run


def optuna_method(kind: str) -> Runner:
    """Optuna's ``RandomSampler`` or ``TPESampler`` (defaults), seeded with the seed."""

    def run(objective: Objective, evaluate: Evaluate, seed: int, budget: int) -> Values:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        sampler = (
            optuna.samplers.TPESampler(seed=seed)
            if kind == "tpe"
            else optuna.samplers.RandomSampler(seed=seed)
        )
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(
            lambda trial: evaluate(_optuna_params(trial, objective.space)), n_trials=budget
        )
        complete = optuna.trial.TrialState.COMPLETE
        return [
            float(t.value) if t.state == complete and t.value is not None else math.nan
            for t in study.trials
        ]

    return run


def _optuna_params(trial: Any, space: Space) -> dict[str, Any]:
    """Ask Optuna for each parameter on the equivalent of its tunery scale."""
    params: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, Choice):
            params[name] = trial.suggest_categorical(name, list(dist.options))
        elif isinstance(dist, Int):
            params[name] = trial.suggest_int(name, dist.low, dist.high, log=dist.scale == "log")
        elif isinstance(dist, Float) and dist.scale == "one_minus_log":
            gap = trial.suggest_float(f"one_minus_{name}", 1 - dist.high, 1 - dist.low, log=True)
            params[name] = 1.0 - gap
        elif isinstance(dist, Float):
            params[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.scale == "log")
    return params


class _OneMinus:
    """``1 - X`` for a scipy distribution ``X``: scikit-learn only needs ``rvs``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def rvs(self, size: Any = None, random_state: Any = None) -> Any:
        return 1.0 - self.inner.rvs(size=size, random_state=random_state)


def _sklearn_distributions(space: Space) -> dict[str, Any]:
    from scipy.stats import loguniform, randint, uniform

    distributions: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, Choice):
            distributions[name] = list(dist.options)
        elif isinstance(dist, Int):
            distributions[name] = randint(dist.low, dist.high + 1)
        elif isinstance(dist, Float) and dist.scale == "log":
            distributions[name] = loguniform(dist.low, dist.high)
        elif isinstance(dist, Float) and dist.scale == "one_minus_log":
            distributions[name] = _OneMinus(loguniform(1 - dist.high, 1 - dist.low))
        elif isinstance(dist, Float):
            distributions[name] = uniform(dist.low, dist.high - dist.low)
    return distributions


def run_sklearn(objective: Objective, evaluate: Evaluate, seed: int, budget: int) -> Values:
    """``RandomizedSearchCV`` on the objective's estimator; its own fits, not ``evaluate``."""
    from sklearn.exceptions import FitFailedWarning
    from sklearn.model_selection import PredefinedSplit, RandomizedSearchCV

    if objective.sklearn is None:
        raise ConfigError("objective", objective.name, "an MLP objective for sklearn-random")
    problem = objective.sklearn()
    search = RandomizedSearchCV(
        problem.estimator,
        _sklearn_distributions(objective.space),
        n_iter=budget,
        cv=PredefinedSplit(problem.test_fold),
        refit=False,
        random_state=seed,
        error_score=math.nan,  # a diverged fit: NaN, as for the other methods
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        search.fit(problem.X, problem.y)
    return [float(v) for v in search.cv_results_["mean_test_score"]]


METHODS: tuple[Method, ...] = (
    Method("grid", run_grid, anytime=False, seeded=False),
    Method("random-linear", tunery_method("random", linear=True)),
    Method("random", tunery_method("random")),
    Method("sobol", tunery_method("sobol")),
    Method("c2f-2", tunery_method("random", rounds=2), anytime=False),
    Method("c2f-3", tunery_method("random", rounds=3), anytime=False),
    Method("c2f-2-gp", tunery_method("random", rounds=2, guided="gp"), anytime=False),
    Method("c2f-2-tpe", tunery_method("random", rounds=2, guided="tpe"), anytime=False),
    Method("optuna-random", optuna_method("random"), needs="optuna"),
    Method("optuna-tpe", optuna_method("tpe"), needs="optuna"),
    Method("sklearn-random", run_sklearn, mlp_only=True),
)
METHOD_BY_NAME = {m.name: m for m in METHODS}
LABELS = {
    "grid": "grid (right scale)",
    "random-linear": "random, linear scale",
    "random": "random, right scale",
    "sobol": "Sobol', right scale",
    "c2f-2": "coarse to fine, 2 rounds",
    "c2f-3": "coarse to fine, 3 rounds",
    "c2f-2-gp": "coarse to fine, 2 rounds, GP-guided",
    "c2f-2-tpe": "coarse to fine, 2 rounds, TPE-guided",
    "optuna-random": "Optuna RandomSampler",
    "optuna-tpe": "Optuna TPESampler",
    "sklearn-random": "sklearn RandomizedSearchCV",
}


def methods_for(objective_name: str) -> list[Method]:
    """The methods that apply to the objective and whose optional package is installed."""
    return [
        m
        for m in METHODS
        if (not m.mlp_only or objective_name in MLP_OBJECTIVES)
        and (m.needs is None or importlib.util.find_spec(m.needs) is not None)
    ]


# -- jobs -----------------------------------------------------------------------------------------


class Memo:
    """Evaluates each distinct point once; counts the evaluations that ran."""

    def __init__(self, evaluate: Evaluate) -> None:
        self.evaluate = evaluate
        self.cache: dict[tuple[tuple[str, Any], ...], float] = {}

    def __call__(self, params: Mapping[str, Any]) -> float:
        key = tuple(sorted(params.items()))
        if key not in self.cache:
            self.cache[key] = float(self.evaluate(params))
        return self.cache[key]


class Recorder:
    """Passes each call on to ``evaluate`` and keeps its params, in call order."""

    def __init__(self, evaluate: Evaluate) -> None:
        self.evaluate = evaluate
        self.params: list[dict[str, Any]] = []

    def __call__(self, params: Mapping[str, Any]) -> float:
        self.params.append(dict(params))
        return self.evaluate(params)


Pick = dict[str, Any]  # {"params": ..., "value": searched value, "test": value where none looked}


def pick_of(values: Values, params: Sequence[Mapping[str, Any]], test: Evaluate) -> Pick | None:
    """The best trial of a run and its test value; None when its params are unknown (sklearn)."""
    finite = [i for i, v in enumerate(values) if not math.isnan(v)]
    if len(params) != len(values) or not finite:
        return None
    best = max(finite, key=lambda i: values[i])  # the first of equals, as best_so_far keeps
    return {"params": dict(params[best]), "value": values[best], "test": test(params[best])}


@dataclass(frozen=True)
class Job:
    """The runs of one objective for one seed (``seed`` None: the seed-free grid)."""

    objective: str
    seed: int | None
    budgets: tuple[int, ...]
    methods: tuple[str, ...] | None = None  # None: every method that applies


Runs = dict[str, dict[int, Values]]  # method -> budget -> values
Picks = dict[str, Pick | None]  # method -> its pick at the largest budget


def run_job(job: Job) -> tuple[Job, Runs, Picks, float]:
    """``{method: {budget: values}}`` for the job, each method's pick, and its seconds."""
    start = time.perf_counter()
    objective = make_objective(job.objective)
    memo = Memo(objective.evaluate)
    test = Memo(objective.test or (lambda params: math.nan))
    runs: Runs = {}
    picks: Picks = {}
    top = max(job.budgets)
    for method in methods_for(job.objective):
        if job.methods is not None and method.name not in job.methods:
            continue
        if method.seeded != (job.seed is not None):
            continue
        seed = 0 if job.seed is None else job.seed
        budgets = (top,) if method.anytime else job.budgets
        recorders = {budget: Recorder(memo) for budget in budgets}
        runs[method.name] = {b: method.run(objective, r, seed, b) for b, r in recorders.items()}
        picks[method.name] = pick_of(runs[method.name][top], recorders[top].params, test)
    return job, runs, picks, time.perf_counter() - start


def _one_thread() -> None:
    """Each worker uses one BLAS thread: the pool, not BLAS, uses the cores."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


JobResult = tuple[Job, Runs, Picks]


def run_jobs(jobs: Sequence[Job], workers: int) -> list[JobResult]:
    results: list[JobResult] = []
    start = time.perf_counter()
    if workers == 1:
        _one_thread()
        finished: Iterator[tuple[Job, Runs, Picks, float]] = map(run_job, jobs)
        for job, runs, picks, seconds in finished:
            _progress(job, seconds, len(results) + 1, len(jobs), start)
            results.append((job, runs, picks))
        return results
    with ProcessPoolExecutor(max_workers=workers, initializer=_one_thread) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for future in as_completed(futures):
            job, runs, picks, seconds = future.result()
            _progress(job, seconds, len(results) + 1, len(jobs), start)
            results.append((job, runs, picks))
    return results


def _progress(job: Job, seconds: float, done: int, total: int, start: float) -> None:
    seed = "grid" if job.seed is None else f"seed {job.seed}"
    elapsed = time.perf_counter() - start
    print(
        f"[{done}/{total}] {job.objective} {seed}: {seconds:.1f} s (elapsed {elapsed:.0f} s)",
        file=sys.stderr,
        flush=True,
    )


# -- analysis -------------------------------------------------------------------------------------


def best_so_far(values: Values) -> list[float]:
    """Running maximum, NaN (failed trials) skipped; NaN until the first finite value."""
    out, best = [], -math.inf
    for value in values:
        if not math.isnan(value):
            best = max(best, value)
        out.append(best if best > -math.inf else math.nan)
    return out


def final_best(method: Method, runs: Mapping[int, Values], budget: int) -> float:
    """The best value a method found with ``budget`` trials (NaN: it could not run)."""
    values = runs[max(runs)][:budget] if method.anytime else runs[budget]
    curve = best_so_far(values)
    return curve[-1] if curve else math.nan


def trials_to_reach(method: Method, runs: Mapping[int, Values], target: float) -> float:
    """Trials a method needs to find a value >= ``target``; inf if it never does.

    Anytime methods: the first trial that does. Budgeted methods (grid, coarse to fine): the
    smallest budget whose run does (a run with fewer trials is a different run).
    """
    if method.anytime:
        curve = best_so_far(runs[max(runs)])
        hits = [i + 1 for i, best in enumerate(curve) if best >= target]
        return float(hits[0]) if hits else math.inf
    for budget in sorted(runs):
        if final_best(method, runs, budget) >= target:
            return float(budget)
    return math.inf


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """Median and the 25th and 75th percentiles, NaN ignored (NaN if nothing is left)."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan, math.nan
    q25, q50, q75 = np.percentile(finite, [25, 50, 75])
    return float(q50), float(q25), float(q75)


@dataclass
class Summary:
    """What the table and the plot show for one objective."""

    objective: str
    seeds: list[int]
    budgets: list[int]
    # method -> budget -> final best per seed
    finals: dict[str, dict[int, list[float]]]
    # method -> best-so-far curve per seed (anytime methods), trial 1..max budget
    curves: dict[str, list[list[float]]]
    grid_best: float
    grid_trials: int
    reach: dict[str, list[float]]  # method -> trials to reach grid_best, per seed
    tests: dict[str, list[float]]  # method -> test value of its pick, per seed (NaN: unknown)


def summarize(name: str, record: Mapping[str, Any]) -> Summary:
    budgets = [int(b) for b in record["budgets"]]
    seeds = [int(s) for s in record["seeds"]]
    methods = METHOD_BY_NAME
    per_method: dict[str, list[dict[int, Values]]] = {}
    for method_name, by_seed in record["runs"].items():
        runs = [{int(b): v for b, v in by_seed[str(seed)].items()} for seed in seeds]
        per_method[method_name] = runs
    grid_runs = per_method["grid"][0]
    grid_best = final_best(methods["grid"], grid_runs, max(budgets))
    finals = {
        m: {b: [final_best(methods[m], r, b) for r in runs] for b in budgets}
        for m, runs in per_method.items()
    }
    curves = {
        m: [best_so_far(r[max(r)]) for r in runs]
        for m, runs in per_method.items()
        if methods[m].anytime
    }
    reach = {
        m: [trials_to_reach(methods[m], r, grid_best) for r in runs]
        for m, runs in per_method.items()
    }
    picks = record.get("picks", {})  # absent from records written before picks were kept
    tests = {m: [_test_of(picks.get(m, {}).get(str(s))) for s in seeds] for m in per_method}
    return Summary(
        name,
        seeds,
        budgets,
        finals,
        curves,
        grid_best,
        len(grid_runs[max(budgets)]),
        reach,
        tests,
    )


def _test_of(pick: Pick | None) -> float:
    return math.nan if pick is None else float(pick["test"])


# -- output ---------------------------------------------------------------------------------------


def _fmt(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _cell(values: Sequence[float], digits: int) -> str:
    median, q25, q75 = quartiles(values)
    if math.isnan(median):
        return "n/a"
    if q25 == q75:
        return _fmt(median, digits)
    return f"{_fmt(median, digits)} [{_fmt(q25, digits)}, {_fmt(q75, digits)}]"


def _reach_cell(method: Method, values: Sequence[float]) -> str:
    median = float(np.median(values))
    reached = sum(math.isfinite(v) for v in values)
    if math.isinf(median):
        shown = "never"
    else:
        shown = f"{median:g}" if method.anytime else f"budget {median:g}"
    return f"{shown} ({reached}/{len(values)})"


def markdown_table(summary: Summary, digits: int) -> str:
    methods = METHOD_BY_NAME
    top = max(summary.budgets)
    header = [
        "method",
        *[f"best @ {b}" for b in summary.budgets],
        "trials to grid's best",
        f"test of pick @ {top}",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, by_budget in summary.finals.items():
        cells = [_cell(by_budget[b], digits) for b in summary.budgets]
        reach = _reach_cell(methods[name], summary.reach[name])
        test = _cell(summary.tests[name], digits)
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + f" | {reach} | {test} |")
    return "\n".join(lines)


def target_lines(summary: Summary, digits: int) -> list[str]:
    """The two claims, checked on this objective's figures."""
    lines = []
    quarter = summary.grid_trials / 4
    for name in C2F:
        if name not in summary.reach:
            continue
        median = float(np.median(summary.reach[name]))
        within = sum(v <= quarter for v in summary.reach[name])
        verdict = "yes" if median <= quarter else "no"
        shown = "never" if math.isinf(median) else f"{median:g}"
        lines.append(
            f"- {LABELS[name]} reaches the grid's best ({_fmt(summary.grid_best, digits)}, "
            f"{summary.grid_trials} trials) with <= 1/4 of its trials ({quarter:g}): **{verdict}** "
            f"(median budget {shown}; {within}/{len(summary.seeds)} seeds within a quarter)."
        )
    top = max(summary.budgets)
    if "optuna-tpe" in summary.finals:
        tpe = quartiles(summary.finals["optuna-tpe"][top])[0]
        tpe_test = quartiles(summary.tests["optuna-tpe"])[0]
        for name in (n for n in C2F if n in summary.finals):
            ours = quartiles(summary.finals[name][top])[0]
            ours_test = quartiles(summary.tests[name])[0]
            verdict = "yes" if ours >= tpe else "no"
            lines.append(
                f"- At {top} trials, {LABELS[name]}'s median best {_fmt(ours, digits)} >= "
                f"Optuna TPE's {_fmt(tpe, digits)}: **{verdict}** "
                f"(difference {ours - tpe:+.{digits}f}; test value of the pick "
                f"{_fmt(ours_test, digits)} vs {_fmt(tpe_test, digits)})."
            )
    return lines


def y_limits(summary: Summary) -> tuple[float, float]:
    """Room for the methods worth comparing; linear-scale random, far below, may fall off."""
    tops = [quartiles(b[max(summary.budgets)])[2] for b in summary.finals.values()]
    lows = [
        quartiles(by_budget[summary.budgets[0]])[1]
        for name, by_budget in summary.finals.items()
        if name != "random-linear"
    ]
    top, bottom = max(v for v in tops if math.isfinite(v)), min(v for v in lows if math.isfinite(v))
    return bottom - 0.1 * (top - bottom), top + 0.05 * (top - bottom)


def _label(summary: Summary, name: str, bottom: float) -> str:
    """The legend's label; gives the final median of a method whose curve lies below the axes."""
    median = quartiles(summary.finals[name][max(summary.budgets)])[0]
    below = f" (below the axes; median at {max(summary.budgets)}: {median:.2f})"
    return LABELS[name] + (below if median < bottom else "")


def plot(summary: Summary, description: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = {name: METHOD_BY_NAME[name] for name in summary.finals}
    colors = {name: plt.get_cmap("tab10")(i) for i, name in enumerate(methods)}
    figure, axes = plt.subplots(figsize=(9, 6.5), layout="constrained")
    trials = np.arange(1, max(summary.budgets) + 1)
    bottom, top = y_limits(summary)
    for name, curves in summary.curves.items():
        stats = np.array([quartiles(column) for column in zip(*curves, strict=True)])
        axes.plot(trials, stats[:, 0], color=colors[name], label=_label(summary, name, bottom))
        axes.fill_between(trials, stats[:, 1], stats[:, 2], color=colors[name], alpha=0.15)
    for name, method in methods.items():
        if method.anytime or name not in summary.finals:
            continue
        stats = np.array([quartiles(summary.finals[name][b]) for b in summary.budgets])
        error = np.abs(stats[:, [1, 2]].T - stats[:, 0])
        axes.errorbar(
            summary.budgets,
            stats[:, 0],
            yerr=error,
            color=colors[name],
            marker="o",
            linestyle="--",
            capsize=4,
            label=_label(summary, name, bottom) + " (one run per budget)",
        )
    axes.set_ylim(bottom, top)
    ticks = [2**k for k in range(int(math.log2(max(summary.budgets))) + 1)]
    axes.set_xscale("log", base=2)
    axes.set_xticks(ticks, [str(t) for t in ticks])
    axes.set_xlabel("trials")
    axes.set_ylabel("best value so far (median; IQR band or bars)")
    title = f"{summary.objective}, {len(summary.seeds)} seeds: {description}"
    axes.set_title(textwrap.fill(title, 110), fontsize=8)
    axes.grid(alpha=0.3)
    figure.legend(loc="outside lower center", ncols=2, fontsize=8)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def machine() -> str:
    processor = platform.processor() or platform.machine()
    return f"{platform.platform()}, {processor}, {os.cpu_count()} CPUs"


def write_outputs(out: Path, records: Mapping[str, Any]) -> None:
    """The JSON of every objective run so far in ``out``, a PNG each, and the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_efficiency.json").write_text(json.dumps(records, separators=(",", ":")) + "\n")
    sections = [
        "## Search efficiency: coarse to fine on the right scale vs a grid, Optuna, scikit-learn",
        "",
        "Best value found so far (median [25th, 75th percentile] over seeds) at each trial "
        "budget, and how many trials each method needs to match the best value of the grid at "
        "the largest budget (median over seeds; in brackets, the seeds that ever did), and the "
        "test value of each method's pick at the largest budget (its best trial): the MLP's "
        "accuracy on the test split, or a synthetic function's value without its noise. For the "
        "grid and coarse to fine, which plan their trials from the budget, that is the smallest "
        "budget whose run matched it. The grid is deterministic: one run, no spread.",
        "",
        "Optuna gets the same space: `log=True` where tunery's scale is `log`; for β "
        "(tunery's `one_minus_log` scale) it samples `1 - β` with `log=True`, the same "
        "distribution. scikit-learn's `RandomizedSearchCV` searches `tunery.nn.MLPClassifier` "
        "with `scipy.stats.loguniform` on one fixed validation split (`PredefinedSplit`). "
        "Generated by `bench/search_efficiency.py`.",
    ]
    sections += [
        "",
        "`n/a` for coarse to fine with 3 rounds at 8 trials: `Study.caviar` zooms after "
        "`8 // 3 = 2` trials, and a zoom needs at least 3 finished trials.",
    ]
    if importlib.util.find_spec("optuna") is None:
        sections += ["", "Optuna is not installed here: its methods are left out."]
    for name, record in records.items():
        summary = summarize(name, record)
        digits = 3
        png = f"search_efficiency_{name}.png"
        plot(summary, record["description"], out / png)
        space = ", ".join(f"{k} {v}" for k, v in record["space"].items())
        sections += [
            "",
            f"### {name}",
            "",
            f"{record['description']}. Space: {space}.",
            "",
            *source_lines(record),
            f"- seeds: {len(summary.seeds)}; grid at {max(summary.budgets)}: "
            f"{summary.grid_trials} trials, best {_fmt(summary.grid_best, digits)}",
            "",
            markdown_table(summary, digits),
            "",
            *target_lines(summary, digits),
            "",
            f"![{name}](benchmarks/{png})",
        ]
    (out / "search_efficiency.md").write_text("\n".join(sections) + "\n")


# -- command line ---------------------------------------------------------------------------------


def parse_objectives(text: str) -> list[str]:
    names: list[str] = []
    for part in text.split(","):
        part = part.strip()
        expanded = SYNTHETIC if part == "synthetic" else (part,)
        for name in expanded:
            if name not in OBJECTIVES:
                known = ", ".join(["synthetic", *OBJECTIVES])
                raise argparse.ArgumentTypeError(f"unknown objective {name!r} (known: {known})")
            names.append(name)
    return list(dict.fromkeys(names))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="synthetic, 2 seeds, budgets 8/16")
    parser.add_argument("--objectives", type=parse_objectives, default=None)
    parser.add_argument("--seeds", type=int, default=None, help="seeds per method (default 10)")
    parser.add_argument("--workers", type=int, default=1, help="processes (1 BLAS thread each)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--methods",
        type=lambda text: parse_methods(text, METHOD_BY_NAME),
        default=None,
        help="rerun only these methods (comma-separated); the JSON keeps the others' rows",
    )
    parser.add_argument(
        "--replot", action="store_true", help="only rewrite the markdown and PNGs from the JSON"
    )
    args = parser.parse_args(argv)
    objectives = args.objectives or list(SYNTHETIC)
    seeds = args.seeds or (2 if args.quick else 10)
    budgets = QUICK_BUDGETS if args.quick else BUDGETS
    if args.quick and args.objectives is None:
        objectives = list(SYNTHETIC)

    previous = args.out / "search_efficiency.json"
    records: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]])
    if os.nice(0) > 0:
        command = f"nice -n {os.nice(0)} {command}"
    for name in [] if args.replot else objectives:
        start = time.perf_counter()
        subset = method_subset(args.methods, records.get(name), seeds, budgets)
        jobs = [Job(name, s, budgets, subset) for s in range(seeds)]
        if subset is None or "grid" in subset:
            jobs.insert(0, Job(name, None, budgets, subset))
        results = run_jobs(jobs, args.workers)
        record = record_of(name, results, seeds, budgets, command, args.workers)
        record["seconds"] = time.perf_counter() - start
        records[name] = record if subset is None else merged(records[name], record, subset)
    write_outputs(args.out, records)
    print((args.out / "search_efficiency.md").read_text())


def _rounded(values: Values) -> Values:
    """Six significant digits: the JSON stays small, and no figure shown needs more."""
    return [float(f"{v:.6g}") for v in values]


def record_of(
    name: str,
    results: Sequence[JobResult],
    seeds: int,
    budgets: Sequence[int],
    command: str,
    workers: int,
) -> dict[str, Any]:
    """Plain JSON: settings, machine, and every run's values (the grid's copied to each seed)."""
    objective = make_objective(name)
    runs: dict[str, dict[str, dict[str, Values]]] = {}
    picks: dict[str, dict[str, Pick | None]] = {}
    # Without a grid job (a --methods rerun merging into a record that has the grid): no grid rows.
    grid, grid_picks = next(((r, p) for job, r, p in results if job.seed is None), ({}, {}))
    for job, by_method, by_pick in results:
        if job.seed is None:
            continue
        for method, by_budget in {**by_method, **grid}.items():
            slot = runs.setdefault(method, {})
            slot[str(job.seed)] = {str(b): _rounded(v) for b, v in by_budget.items()}
        for method, pick in {**by_pick, **grid_picks}.items():
            picks.setdefault(method, {})[str(job.seed)] = pick
    order = [m.name for m in methods_for(name)]
    return {
        "description": objective.description,
        "space": {k: describe_distribution(v) for k, v in objective.space.items()},
        "seeds": list(range(seeds)),
        "budgets": list(budgets),
        "command": command,
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "workers": workers,
        "runs": {m: runs[m] for m in order if m in runs},
        "picks": {m: picks[m] for m in order if m in picks},
    }


if __name__ == "__main__":
    main()
