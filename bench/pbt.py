"""PBT against Ray Tune's PBT and coarse to fine, at the same total epoch budget, side by side.

    python bench/pbt.py                 # digits and signs (if the data is there), 5 seeds each
    python bench/pbt.py --quick         # seconds: digits, 1 seed, a tiny population (CI smoke)
    python bench/pbt.py --seeds 5 --objectives digits --population 8 --epochs 12

For each objective and seed, in one run:

- ``tunery-pbt``: ``tunery.pbt`` with ``population`` members, ``epochs`` each, an exploit/explore
  step every ``interval`` epochs (quantile 0.25, resample probability 0.25, factors 0.8/1.25);
- ``ray-pbt``: Ray Tune's ``PopulationBasedTraining`` (``synch=True``, the same interval, quantile,
  resample probability and factors) on the same objective: a function trainable that builds the
  same tunery trainer from the same config, restores Ray's checkpoint and applies the perturbed
  config. Ray multiplies β itself by the factor (it has no one-minus-log scale), which can pass 1,
  so the trainable clips every value to the space, as a user would have to;
- ``coarse-to-fine``: ``tunery`` caviar, ``population`` trials of ``epochs`` epochs in 2 rounds
  zooming between them (the same epoch budget: ``population × epochs``).

Each method picks its best member or trial by the final validation accuracy; the table reports the
median and the interquartile range over seeds of that best validation accuracy and of the test
accuracy of the pick (the validation figure alone is optimistic: it is what was maximized). Every
method trains the same MLP with the same fixed seed for its weights; the seeds change the draws.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunery.config import TuneConfig, config_from_dict
from tunery.space import Choice, Float
from tunery.study import Study
from tunery.workflows.objective import TEST_ACCURACY, build_trainer, load_config_dataset, run_study
from tunery.workflows.pbt import pbt

SIGNS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sign-language-digits" / "images"
METHODS = ("tunery-pbt", "ray-pbt", "coarse-to-fine")


@dataclass(frozen=True)
class Plan:
    objectives: tuple[str, ...]
    seeds: int
    population: int
    epochs: int
    interval: int
    workers: int


def make_config(objective: str, seed: int, plan: Plan, name: str, storage: str) -> TuneConfig:
    data: dict[str, Any] = {"source": "digits"}
    if objective == "signs":
        data = {"source": str(SIGNS), "classes": "0-5", "image_size": 16}
    tables = {
        "study": {"name": name, "seed": seed, "storage": storage},
        "data": data,
        "model": {"layers": [25, 12], "batchnorm": True, "optimizer": "adam"},
        "space": {
            "lr": {"low": 1e-4, "high": 1.0, "scale": "log"},
            "beta": {"low": 0.8, "high": 0.999, "scale": "one_minus_log"},
            "batch_size": {"choices": [32, 64, 128, 256]},
            "l2": {"low": 1e-3, "high": 10.0, "scale": "log"},
        },
        "run": {"workers": plan.workers, "epochs": plan.epochs, "trials": plan.population},
        "pbt": {"population": plan.population, "perturbation_interval": plan.interval},
    }
    return config_from_dict(tables)


@dataclass(frozen=True)
class Result:
    method: str
    objective: str
    seed: int
    best_val: float
    test: float
    seconds: float


# -- the three methods -----------------------------------------------------------------------------


def run_tunery_pbt(config: TuneConfig) -> tuple[float, float]:
    with Study(config.study.name, config.study.storage, seed=config.study.seed) as study:
        best = pbt(study, config).best
        assert best is not None
        assert best.value is not None
        return float(best.value), float(best.user_attrs[TEST_ACCURACY])


def run_coarse_to_fine(config: TuneConfig) -> tuple[float, float]:
    tables = config.to_dict()
    tables["run"]["rounds"] = 2
    with run_study(config_from_dict(tables)) as study:
        best = study.best_trial
        assert best.value is not None
        return float(best.value), float(best.user_attrs[TEST_ACCURACY])


def run_ray_pbt(config: TuneConfig, plan: Plan, folder: Path) -> tuple[float, float]:
    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    random.seed(config.study.seed)  # Ray's PBT draws from Python's generator
    np.random.seed(config.study.seed)  # and its search space samples from NumPy's
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration",
        metric="val_accuracy",
        mode="max",
        perturbation_interval=plan.interval,
        hyperparam_mutations=_ray_mutations(config),
        quantile_fraction=0.25,
        resample_probability=0.25,
        perturbation_factors=(1.25, 0.8),
        synch=True,
    )
    if not ray.is_initialized():
        ray.init(num_cpus=plan.workers, include_dashboard=False, log_to_driver=False)
    trainable = tune.with_resources(
        tune.with_parameters(_ray_trainable, tune_config=config),
        {"cpu": plan.workers / plan.population},
    )
    tuner = tune.Tuner(
        trainable,
        param_space=_ray_space(config),
        tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=plan.population),
        run_config=tune.RunConfig(storage_path=str(folder), name=config.study.name, verbose=0),
    )
    grid = tuner.fit()
    best = grid.get_best_result(metric="val_accuracy", mode="max", scope="last")
    return float(best.metrics["val_accuracy"]), float(best.metrics["test_accuracy"])


def _ray_space(config: TuneConfig) -> dict[str, Any]:
    from ray import tune

    return {name: tune.sample_from(_sampler(dist)) for name, dist in config.space.items()}


def _ray_mutations(config: TuneConfig) -> dict[str, Any]:
    mutations: dict[str, Any] = {}
    for name, dist in config.space.items():
        if isinstance(dist, Choice):
            mutations[name] = list(dist.options)
        else:
            draw = _sampler(dist)
            mutations[name] = lambda draw=draw: draw(None)
    return mutations


def _sampler(dist: Any) -> Callable[[Any], Any]:
    """A draw on the parameter's own scale (Ray has loguniform, not one-minus-log)."""
    return lambda _spec: dist.from_unit(random.random())


def _clipped(config: TuneConfig, values: Mapping[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, dist in config.space.items():
        value = values[name]
        if isinstance(dist, Float):
            value = min(max(float(value), dist.low), dist.high)
        clean[name] = value
    return clean


def _ray_trainable(params: dict[str, Any], tune_config: TuneConfig) -> None:
    from ray import tune
    from threadpoolctl import threadpool_limits

    config = tune_config
    values = _clipped(config, params)
    dataset = _dataset(config)
    trainer = build_trainer(config, values, dataset)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            trainer.restore((Path(folder) / "trainer.bin").read_bytes())
        from tunery.workflows.objective import trial_settings

        settings = trial_settings(config, values)
        spec = settings.train_spec().hyperparameters()
        trainer.set_hyperparameters(**spec, l2=settings.l2, batch_size=settings.batch_size)
    with threadpool_limits(limits=1, user_api="blas"):
        while trainer.epoch < config.epochs:
            metrics = trainer.run_epoch()
            val = metrics.val_accuracy if metrics.val_accuracy is not None else math.nan
            test = float(np.mean(trainer.model.predict(dataset.X_test) == dataset.y_test))
            report = {"val_accuracy": val, "test_accuracy": test}
            with tempfile.TemporaryDirectory() as folder:  # every epoch, as Ray's examples do
                (Path(folder) / "trainer.bin").write_bytes(trainer.to_bytes())
                tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))


_DATASETS: dict[Any, Any] = {}


def _dataset(config: TuneConfig) -> Any:
    if config.data not in _DATASETS:
        _DATASETS[config.data] = load_config_dataset(config)
    return _DATASETS[config.data]


# -- the run ---------------------------------------------------------------------------------------


def run_all(plan: Plan, folder: Path) -> list[Result]:
    results = []
    for objective in plan.objectives:
        for seed in range(plan.seeds):
            for method in METHODS:
                name = f"{objective}-{method}-{seed}"
                storage = f"sqlite:///{folder / (name + '.db')}"
                config = make_config(objective, seed, plan, name, storage)
                began = time.perf_counter()
                if method == "tunery-pbt":
                    val, test = run_tunery_pbt(config)
                elif method == "ray-pbt":
                    val, test = run_ray_pbt(config, plan, folder / "ray")
                else:
                    val, test = run_coarse_to_fine(config)
                seconds = time.perf_counter() - began
                results.append(Result(method, objective, seed, val, test, seconds))
                print(
                    f"{objective:7} seed {seed}  {method:15} best val {val:.4f}  test {test:.4f}"
                    f"  {seconds:6.1f} s",
                    flush=True,
                )
    return results


def _quartiles(values: Sequence[float]) -> str:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return f"{median:.4f} [{q1:.4f}, {q3:.4f}]"


def table(results: Sequence[Result], plan: Plan) -> str:
    lines = [
        "| objective | method | best val: median [IQR] | test of the pick: median [IQR] | "
        "seconds per run (median) | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for objective in plan.objectives:
        for method in METHODS:
            rows = [r for r in results if r.objective == objective and r.method == method]
            if not rows:
                continue
            lines.append(
                f"| {objective} | {method} | {_quartiles([r.best_val for r in rows])} | "
                f"{_quartiles([r.test for r in rows])} | "
                f"{np.median([r.seconds for r in rows]):.1f} | {len(rows)} |"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="digits, 1 seed, a tiny population")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--objectives", default="digits,signs")
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--interval", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, help="a folder for the stores (default: a temp one)")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(("digits",), 1, 6, 4, 2, 2)  # 6: coarse to fine zooms around 3 per round
    objectives = tuple(name.strip() for name in args.objectives.split(","))
    if "signs" in objectives and not SIGNS.is_dir():
        print(f"skipping signs: {SIGNS} is not there", file=sys.stderr)
        objectives = tuple(name for name in objectives if name != "signs")
    return Plan(objectives, args.seeds, args.population, args.epochs, args.interval, args.workers)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    plan = make_plan(args)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.out if args.out is not None else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        print(
            f"population {plan.population}, {plan.epochs} epochs each, interval {plan.interval}, "
            f"{plan.workers} workers: a budget of {plan.population * plan.epochs} epochs per run",
            flush=True,
        )
        results = run_all(plan, folder)
    print()
    print(table(results, plan))
    print(f"\nload average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
