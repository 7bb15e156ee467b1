"""Per-trial overhead: tunery against Optuna on a trivial objective, side by side in one run.

    python bench/overhead.py              # 2,000 trials each
    python bench/overhead.py --quick      # 200 trials each
    python bench/overhead.py --trials 500 --profile   # and a pyinstrument profile of tunery+SQLite

The objective is a quadratic in one log-scaled float, so the time measured is the framework's:
ask, sample, store, tell. Both libraries sample at random (Optuna's ``RandomSampler``, tunery's
default), both SQLite stores are fresh files in a temporary folder, and tunery keeps its crash
guarantee (every finished trial committed before ``tell`` returns). Targets: tunery+SQLite at least
20x Optuna+SQLite, and at least 0.5x Optuna in memory.

Each fast run is repeated (``--repeat``, default 3, a fresh study each time) and the best time is
kept, as ``timeit`` does: on a shared machine the other runs measure the neighbours. Optuna+SQLite
runs once: it takes minutes, and its gap is two orders of magnitude.
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunery.space import Float
from tunery.study import Study, Trial

SPACE = {"x": Float(1e-4, 1.0, scale="log")}


def tunery_objective(trial: Trial) -> float:
    return (math.log10(trial.params["x"]) + 2.0) ** 2


def run_tunery(storage: str, n_trials: int) -> float:
    study = Study("bench", storage, "minimize")
    start = time.perf_counter()
    study.caviar(tunery_objective, SPACE, n_trials=n_trials, workers=1)
    elapsed = time.perf_counter() - start
    assert len(study.trials) == n_trials
    return elapsed


def run_optuna(storage: str | None, n_trials: int) -> float:
    import optuna

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 1e-4, 1.0, log=True)
        return (math.log10(x) + 2.0) ** 2

    study = optuna.create_study(
        storage=storage, direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    start = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    elapsed = time.perf_counter() - start
    assert len(study.trials) == n_trials
    return elapsed


def silence_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="optuna")


def profile_tunery(folder: Path, n_trials: int) -> None:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0001)
    with profiler:
        run_tunery(f"sqlite:///{folder / 'profile.db'}", n_trials)
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000, help="trials per run (default 2000)")
    parser.add_argument("--quick", action="store_true", help="200 trials per run")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many fast runs")
    parser.add_argument("--profile", action="store_true", help="profile tunery+SQLite too")
    args = parser.parse_args()
    n_trials = 200 if args.quick else args.trials
    silence_optuna()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def db(name: str, attempt: int) -> str:
            return f"sqlite:///{folder / f'{name}-{attempt}.db'}"

        runs: dict[str, tuple[Callable[[int], float], int]] = {
            "tunery + SQLite": (lambda i: run_tunery(db("tunery", i), n_trials), args.repeat),
            "tunery in memory": (lambda i: run_tunery(":memory:", n_trials), args.repeat),
            "Optuna + SQLite": (lambda i: run_optuna(db("optuna", i), n_trials), 1),
            "Optuna in memory": (lambda i: run_optuna(None, n_trials), args.repeat),
        }
        rates: dict[str, float] = {}
        print(f"{n_trials} trials of a trivial objective, random sampling\n")
        print(f"{'':18} {'seconds':>9} {'trials/s':>10} {'ms/trial':>9}")
        for name, (run, repeat) in runs.items():
            seconds = min(run(attempt) for attempt in range(max(1, repeat)))
            rates[name] = n_trials / seconds
            print(f"{name:18} {seconds:9.2f} {rates[name]:10.0f} {1000 * seconds / n_trials:9.3f}")
        if args.profile:
            profile_tunery(folder, n_trials)

    ours = rates["tunery + SQLite"]
    print()
    for other, target in (("Optuna + SQLite", 20.0), ("Optuna in memory", 0.5)):
        ratio = ours / rates[other]
        verdict = "meets" if ratio >= target else "MISSES"
        print(
            f"tunery + SQLite / {other:16} = {ratio:7.1f}x   ({verdict} the >= {target:g}x target)"
        )


if __name__ == "__main__":
    main()
