"""Test accuracy on the 6-class sign-language photos: the classic network, with batch norm, tuned
by tunery, and with its layers searched too; on the NumPy engine and on its PyTorch twin.

    nice -n 10 python bench/accuracy.py                     # full: rows a-d, g, h
    nice -n 10 python bench/accuracy.py --rows ef           # then rows (e), (f): 8 min
    python bench/accuracy.py --quick --out /tmp/accuracy    # seconds: bundled digits, 1 seed

Rows (all on one split: ``load_dataset(photos, classes="0-5", seed=0)``, 64 × 64 RGB photos,
865 train / 186 validation / 186 test):

- (a) the course's exercise: 25-12-6 ReLU, no batch norm, inputs ÷ 255, Adam, lr 1e-4, batch 32,
  1500 epochs;
- (b) the same with batch norm after each hidden layer;
- (c) 25-12-6 with batch norm, standardized inputs, tuned by a tunery study (coarse to fine,
  ASHA pruning) over lr, β, batch size, L2 and keep_prob, selected on VALIDATION accuracy;
- (d) the same study with the hidden layers searched too (``units`` and ``num_layers``);
- (e), (f): (c) and (d) with inverse-time learning-rate decay, its rate searched too: the first
  lever tried after (c) and (d) missed their targets (``--rows ef``; not run by default);
- (g), (h): (c) and (d) with the input resolution searched too: ``image_size`` (the photos are
  resized from 64 × 64 to 16 … 64 pixels a side before the first layer; the network's hidden layers
  are unchanged). Fewer inputs per photo is the lever that worked: every 64 × 64 row overfits its
  865 training photos.

Each study runs once, on the NumPy engine with model seed 0. Its winner's config (params and
epochs) is then trained again like rows (a) and (b): with model seeds 0, 1 and 2 (initial weights,
mini-batch order, dropout masks; the split stays fixed) on both engines. Every figure is the
last epoch's (no early stopping). The test set is read only by these final evaluations.

Outputs ``accuracy.md`` (a fragment of ``docs/benchmarks.md``), ``accuracy.json`` and
``accuracy.png`` in ``--out`` (default ``docs/benchmarks``).
"""

# ruff: noqa: E402 - the thread variables must be set before NumPy, SciPy or torch is imported.

from __future__ import annotations

import os

# One thread for every BLAS and OpenMP pool, set before any of them loads: the optimizers' axpy
# runs in SciPy's OpenBLAS, which is loaded after NumPy's, so a threadpool_limits() call made
# early misses it; with two threads each on a busy 2-core machine, training ran 10x slower.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse
import datetime as dt
import functools
import importlib.util
import json
import math
import multiprocessing
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from threadpoolctl import threadpool_limits

from tunery import Diverged
from tunery.config import DataSection, TuneConfig, config_from_dict, trial_data
from tunery.data import DIGITS, Dataset
from tunery.workflows.objective import build_trainer, load_data_section, run_study

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "benchmarks"
PHOTOS = REPO.parent / "shared" / "data" / "sign-language-digits" / "images"
Backend = Literal["numpy", "torch"]
REFERENCE_TEST = 0.717  # the course's exercise on its own SIGNS photos (TensorFlow, no batch norm)
TARGET_GAIN = 0.15  # (c) at least 15 points above (a)
TARGET_TUNED = 0.90  # (c) test accuracy
TARGET_SEARCHED = 0.92  # (d) test accuracy

CLASSIC_MODEL: dict[str, Any] = {
    "layers": [25, 12],
    "batchnorm": False,
    "optimizer": "adam",
    "lr": 1e-4,
    "batch_size": 32,
}
TUNED_SPACE: dict[str, Any] = {
    "lr": {"low": 1e-4, "high": 1e-1, "scale": "log"},
    "beta": {"low": 0.8, "high": 0.999, "scale": "one_minus_log"},
    "batch_size": {"choices": [16, 32, 64, 128]},
    "l2": {"low": 1e-3, "high": 10.0, "scale": "log"},
    "keep_prob": {"low": 0.5, "high": 1.0},
}
SEARCHED_SPACE: dict[str, Any] = {
    **TUNED_SPACE,
    "units": {"low": 16, "high": 256, "scale": "log"},
    "num_layers": {"low": 1, "high": 3},
}

ROW_KEYS = "abcdefgh"
DEFAULT_ROWS = "abcdgh"
DECAY_SPACE: dict[str, Any] = {"decay_rate": {"low": 1e-3, "high": 1.0, "scale": "log"}}
IMAGE_SPACE: dict[str, Any] = {"image_size": {"choices": [16, 24, 32, 48, 64]}}


# -- plans ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyPlan:
    """A study's budget: ``rounds`` rounds of ``trials // rounds`` trials of ``epochs`` epochs,
    pruned by ASHA with rungs at ``min_epochs · η^k`` (``min_epochs = None``: no pruning)."""

    trials: int
    rounds: int
    epochs: int
    min_epochs: int | None
    reduction_factor: int = 2

    def describe(self) -> str:
        per_round = self.trials // self.rounds
        budget = f"{self.rounds} rounds × {per_round} trials × {self.epochs} epochs"
        if self.min_epochs is None:
            return budget + ", no pruning"
        return f"{budget}, ASHA (rungs from epoch {self.min_epochs}, η = {self.reduction_factor})"

    def run_table(self, workers: int) -> dict[str, Any]:
        """The config's ``[run]`` table."""
        table: dict[str, Any] = {
            "trials": self.trials,
            "rounds": self.rounds,
            "workers": workers,
            "sampler": "random",
            "epochs": self.epochs,
            "pruner": "none",
        }
        if self.min_epochs is not None:
            # η = 2 from epoch E/4 keeps about a quarter of each round to the end: enough
            # COMPLETE trials for the zoom (it needs 3), at half the epochs of no pruning.
            table["pruner"] = "asha"
            table["pruner_options"] = {
                "min_epochs": self.min_epochs,
                "reduction_factor": self.reduction_factor,
            }
        return table


@dataclass(frozen=True)
class Plan:
    """What one invocation runs: the data, the classic rows' epochs, the studies' budgets."""

    source: str
    classes: str
    classic_epochs: int
    study: StudyPlan
    seeds: tuple[int, ...]
    backends: tuple[Backend, ...]
    workers: int

    def data(self, normalize: str) -> dict[str, Any]:
        """The ``[data]`` table of a row: every row splits with seed 0."""
        return {"source": self.source, "classes": self.classes, "normalize": normalize, "seed": 0}


FULL_STUDY = StudyPlan(trials=60, rounds=2, epochs=100, min_epochs=25)
QUICK_STUDY = StudyPlan(trials=6, rounds=2, epochs=3, min_epochs=None)


def make_plan(args: argparse.Namespace) -> Plan:
    quick = bool(args.quick)
    source = args.data or (DIGITS if quick else str(PHOTOS))
    backends = tuple(args.backends) if args.backends else default_backends()
    study = QUICK_STUDY if quick else FULL_STUDY
    return Plan(
        source=source,
        classes="0-5",
        classic_epochs=args.classic_epochs or (5 if quick else 1500),
        study=replace(study, trials=args.trials) if args.trials else study,
        seeds=tuple(range(args.seeds or (1 if quick else 3))),
        backends=backends,
        workers=args.workers or (1 if quick else 2),
    )


def default_backends() -> tuple[Backend, ...]:
    """Both engines when PyTorch is installed, else NumPy alone."""
    return ("numpy", "torch") if importlib.util.find_spec("torch") else ("numpy",)


# -- rows -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One row of the table: fixed ``data`` and ``model`` tables, and a ``space`` if tuned."""

    key: str
    label: str
    data: dict[str, Any]
    model: dict[str, Any]
    space: dict[str, Any] | None = None

    def config(self, plan: StudyPlan, workers: int) -> TuneConfig:
        """The row's config; a fixed row pins ``lr`` (a config needs a searched setting)."""
        space = self.space or {"lr": {"low": self.model["lr"], "high": self.model["lr"]}}
        tables = {
            "study": {"name": f"accuracy-{self.key}", "storage": ":memory:", "seed": 0},
            "data": self.data,
            "model": self.model,
            "space": space,
            "run": plan.run_table(workers),
        }
        return config_from_dict(tables)


def make_rows(plan: Plan) -> list[Row]:
    """Rows (a) to (h), as the module docstring lists them."""
    classic = {**CLASSIC_MODEL, "epochs": plan.classic_epochs}
    tuned: dict[str, Any] = {"layers": [25, 12], "batchnorm": True, "optimizer": "adam"}
    # lr / (1 + rate·epoch); a rate of 1e-3 is all but no decay over 100 epochs.
    decayed = {**tuned, "decay": "inverse_time"}
    scaled, standardized = plan.data("scale"), plan.data("standardize")
    return [
        Row("a", "25-12-6, no batch norm, ÷255 (the exercise)", scaled, classic),
        Row("b", "25-12-6, batch norm, ÷255", scaled, {**classic, "batchnorm": True}),
        Row("c", "25-12-6, batch norm, standardized, tuned", standardized, tuned, TUNED_SPACE),
        Row(
            "d",
            "MLP with layers searched, batch norm, standardized",
            standardized,
            tuned,
            SEARCHED_SPACE,
        ),
        Row(
            "e",
            "(c) with lr decay, its rate searched too",
            standardized,
            decayed,
            {**TUNED_SPACE, **DECAY_SPACE},
        ),
        Row(
            "f",
            "(d) with lr decay, its rate searched too",
            standardized,
            decayed,
            {**SEARCHED_SPACE, **DECAY_SPACE},
        ),
        Row(
            "g",
            "(c) with the input size searched too",
            standardized,
            tuned,
            {**TUNED_SPACE, **IMAGE_SPACE},
        ),
        Row(
            "h",
            "(d) with the input size searched too",
            standardized,
            tuned,
            {**SEARCHED_SPACE, **IMAGE_SPACE},
        ),
    ]


# -- studies --------------------------------------------------------------------------------------


@dataclass
class StudyResult:
    """A finished study: its winner (selected on validation accuracy) and what it cost."""

    space: dict[str, Any]
    budget: str
    trials: dict[str, int]  # state name -> count
    epochs_trained: int
    seconds: float
    best_params: dict[str, Any]
    best_val: float
    epochs: int


def run_row_study(row: Row, plan: Plan) -> StudyResult:
    """Run the row's study (``run_study``: rounds of ``Study.caviar``, zooming between them)."""
    config = row.config(plan.study, plan.workers)
    start = time.perf_counter()
    study = run_study(config)
    seconds = time.perf_counter() - start
    trials = study.trials
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    best = study.best_trial
    return StudyResult(
        space=dict(row.space or {}),
        budget=plan.study.describe(),
        trials=counts,
        epochs_trained=sum(len(trial.curve) for trial in trials),
        seconds=seconds,
        best_params=dict(best.params),
        best_val=float(best.value if best.value is not None else math.nan),
        epochs=config.epochs,
    )


# -- evaluations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One final evaluation: a row's config with ``params``, trained with ``seed`` on
    ``backend``."""

    row: str
    tables: dict[str, Any]  # the config's tables, plain data (it crosses a process boundary)
    params: dict[str, Any]
    epochs: int
    seed: int
    backend: Backend


@dataclass(frozen=True)
class Evaluation:
    """The last epoch's accuracies of one job; NaN where it diverged."""

    row: str
    seed: int
    backend: str
    train: float
    val: float
    test: float
    outcome: str
    seconds: float


def one_thread() -> None:
    """One BLAS / OpenMP / torch thread in this process (each job of the pool is one process)."""
    threadpool_limits(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


@functools.cache
def _dataset(data: DataSection) -> Dataset:
    """Loaded once per process and ``[data]`` section (with a winner's ``image_size`` put in)."""
    return load_data_section(data)


def evaluate(job: Job) -> Evaluation:
    """Train ``job``'s network for its epochs; accuracies on the three sets at the last epoch."""
    if job.backend == "torch":
        import torch

        torch.set_num_threads(1)
    one_thread()
    start = time.perf_counter()
    config = config_from_dict(job.tables)
    model = replace(config.model, seed=job.seed, backend=job.backend, epochs=job.epochs)
    config = replace(config, model=model, run=replace(config.run, epochs=job.epochs))
    data = _dataset(trial_data(config.data, job.params))
    trainer = build_trainer(config, job.params, data)
    try:
        trainer.run(job.epochs)
    except Diverged:
        seconds = time.perf_counter() - start
        nan = math.nan
        return Evaluation(job.row, job.seed, job.backend, nan, nan, nan, "diverged", seconds)
    last = trainer.history[-1]
    test = float(np.mean(trainer.model.predict(data.X_test) == data.y_test))
    val = math.nan if last.val_accuracy is None else last.val_accuracy
    seconds = time.perf_counter() - start
    return Evaluation(
        job.row, job.seed, job.backend, last.train_accuracy, val, test, "complete", seconds
    )


def make_jobs(rows: Sequence[Row], studies: Mapping[str, StudyResult], plan: Plan) -> list[Job]:
    """Every (row, seed, backend), the longest first so that the pool ends together."""
    jobs = []
    for row in rows:
        config = row.config(plan.study, plan.workers).to_dict()
        study = studies.get(row.key)
        params = {} if study is None else study.best_params
        epochs = int(row.model["epochs"]) if study is None else study.epochs
        for seed in plan.seeds:
            for backend in plan.backends:
                jobs.append(Job(row.key, config, params, epochs, seed, backend))
    return sorted(jobs, key=lambda job: -job.epochs)


def run_jobs(jobs: Sequence[Job], workers: int) -> list[Evaluation]:
    """``evaluate`` each job: in this process with one worker, else in a pool of processes."""
    if workers == 1:
        return [_logged(evaluate(job), i + 1, len(jobs)) for i, job in enumerate(jobs)]
    context = multiprocessing.get_context("forkserver")
    results: list[Evaluation] = []
    with ProcessPoolExecutor(workers, mp_context=context, initializer=one_thread) as pool:
        futures: list[Future[Evaluation]] = [pool.submit(evaluate, job) for job in jobs]
        for future in as_completed(futures):
            results.append(_logged(future.result(), len(results) + 1, len(jobs)))
    return results


def _logged(result: Evaluation, done: int, total: int) -> Evaluation:
    print(
        f"[{done}/{total}] ({result.row}) seed {result.seed} {result.backend}: "
        f"train {result.train:.3f} val {result.val:.3f} test {result.test:.3f} "
        f"({result.seconds:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    return result


# -- summaries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """Mean, min and max of one figure over seeds (NaN, as for a diverged run, counts as 0)."""

    mean: float
    low: float
    high: float
    values: tuple[float, ...] = field(default=())

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        clean = tuple(0.0 if math.isnan(v) else float(v) for v in values)
        if not clean:
            return cls(math.nan, math.nan, math.nan)
        return cls(float(np.mean(clean)), min(clean), max(clean), clean)

    def cell(self) -> str:
        if math.isnan(self.mean):
            return "n/a"
        if len(self.values) == 1:
            return f"{self.mean:.3f}"
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def spreads(record: Mapping[str, Any], row: str, backend: str) -> dict[str, Spread]:
    """Train, val and test spreads of one row on one engine, from the JSON record."""
    runs = [e for e in record["evaluations"] if e["row"] == row and e["backend"] == backend]
    runs.sort(key=lambda e: e["seed"])
    return {name: Spread.of(e[name] for e in runs) for name in ("train", "val", "test")}


TUNED_ROWS, SEARCHED_ROWS = "ceg", "dfh"
TARGETS = {
    **dict.fromkeys(TUNED_ROWS, TARGET_TUNED),
    **dict.fromkeys(SEARCHED_ROWS, TARGET_SEARCHED),
}


def target_lines(record: Mapping[str, Any]) -> list[str]:
    """The issue's targets, met or missed, and by how much, for each engine (rows present)."""
    present = sorted(row["key"] for row in record["rows"])
    lines = []
    for backend in record["plan"]["backends"]:
        test = {key: spreads(record, key, backend)["test"].mean for key in present}
        checks = []
        for key in TUNED_ROWS:
            if {"a", key} <= set(present):
                gain = test[key] - test["a"]
                name = f"({key}) ≥ (a) + {TARGET_GAIN * 100:.0f} points"
                value = f"({key}) − (a) = {gain * 100:+.1f} points"
                checks.append((name, gain - TARGET_GAIN, value))
        for key in present:
            if key in TARGETS:
                name = f"({key}) ≥ {TARGETS[key]:.2f}"
                checks.append((name, test[key] - TARGETS[key], f"{test[key]:.3f}"))
        for name, margin, value in checks:
            verdict = "met" if margin >= 0 else "MISSED"
            lines.append(
                f"- {backend}: {name}: **{verdict}** ({value}; margin {margin * 100:+.1f} points; "
                "mean test accuracy over seeds)"
            )
    return lines


# -- outputs --------------------------------------------------------------------------------------


def machine() -> str:
    processor = platform.processor() or platform.machine()
    return f"{platform.platform()}, {processor}, {os.cpu_count()} CPUs"


def command_line() -> str:
    """How this process was started, ``nice`` included."""
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    niceness = os.nice(0)
    return f"nice -n {niceness} {command}" if niceness > 0 else command


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items()
    )


def _space_text(space: Mapping[str, Any]) -> str:
    parts = []
    for name, d in space.items():
        if "choices" in d:
            parts.append(f"{name} {{{', '.join(str(c) for c in d['choices'])}}}")
        else:
            parts.append(f"{name} [{d['low']:g}, {d['high']:g}] {d.get('scale', 'linear')}")
    return ", ".join(parts)


def _source_text(source: str) -> str:
    """The data's folder and its parent (``sign-language-digits/images``), or ``digits``."""
    return source if source == DIGITS else "/".join(Path(source).parts[-2:])


def _smoke_note(source: str) -> list[str]:
    if source != DIGITS:
        return []
    return [
        "**A smoke run on the bundled 8 × 8 digits, not the benchmark: these figures say nothing "
        "about the photos.**",
        "",
    ]


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def _run_lines(record: Mapping[str, Any], workers: int) -> list[str]:
    """Command, machine, date and wall time of each invocation that made the table."""
    lines = []
    for run in record["runs"]:
        rows = ", ".join(f"({key})" for key in run["rows"])
        lines += [
            f"- rows {rows}: command `{run['command']}`",
            f"  - machine: {run['machine']}; date: {run['date']}; wall time "
            f"{_minutes(run['seconds'])} with {workers} worker process(es), one BLAS thread each",
        ]
    return lines


def markdown(record: Mapping[str, Any], png: str) -> str:
    plan = record["plan"]
    seeds = len(plan["seeds"])
    spread = "mean [min, max] over " + (f"{seeds} model seeds" if seeds > 1 else "1 seed")
    lines = [
        "## Accuracy on the sign-language photos: classic, batch norm, tuned, searched",
        "",
        f"Data: `{_source_text(plan['source'])}`, classes {plan['classes']}, one stratified split "
        f"(seed 0) for every row: {record['sizes']}. Accuracies at the last epoch, {spread} "
        "(seeds change the initial weights, mini-batch order and dropout masks, not the split). "
        "Studies select on validation accuracy; their winner is then trained again with each "
        "seed on each engine, and only that touches the test set. Reference: the course's "
        f"exercise, {REFERENCE_TEST} test on its own SIGNS photos. Generated by "
        "`bench/accuracy.py`.",
        "",
        *_smoke_note(plan["source"]),
        *_run_lines(record, plan["workers"]),
        "",
        "| row | engine | epochs | train | validation | test | test by seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in record["rows"]:
        for backend in plan["backends"]:
            s = spreads(record, row["key"], backend)
            by_seed = ", ".join(f"{v:.3f}" for v in s["test"].values)
            lines.append(
                f"| ({row['key']}) {row['label']} | {backend} | {row['epochs']} | "
                f"{s['train'].cell()} | {s['val'].cell()} | {s['test'].cell()} | {by_seed} |"
            )
    lines += ["", "Studies (NumPy engine, model seed 0, random sampler, coarse to fine):", ""]
    lines += [
        "| row | space | budget | trials | epochs trained | wall time | winner | winner val |"
    ]
    lines += ["|---|---|---|---|---|---|---|---|"]
    for key, study in record["studies"].items():
        states = ", ".join(f"{n} {state.lower()}" for state, n in study["trials"].items())
        lines.append(
            f"| ({key}) | {_space_text(study['space'])} | {study['budget']} | {states} | "
            f"{study['epochs_trained']} | {_minutes(study['seconds'])} | "
            f"{_params_text(study['best_params'])} | {study['best_val']:.3f} |"
        )
    lines += ["", *target_lines(record), "", f"![accuracy by row]({png})"]
    return "\n".join(lines) + "\n"


def plot(record: Mapping[str, Any], path: Path) -> None:
    """Test accuracy per row and engine: bars at the mean, whiskers min to max, dots per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = record["plan"]["backends"]
    keys = [row["key"] for row in record["rows"]]
    width = 0.8 / len(backends)
    figure, axes = plt.subplots(figsize=(8.5, 4.4), layout="constrained")
    for b, backend in enumerate(backends):
        x = np.arange(len(keys)) + (b - (len(backends) - 1) / 2) * width
        tests = [spreads(record, key, backend)["test"] for key in keys]
        means = np.array([t.mean for t in tests])
        errors = np.array([[t.mean - t.low for t in tests], [t.high - t.mean for t in tests]])
        axes.bar(x, means, width, yerr=errors, capsize=3, label=backend, alpha=0.8)
        for xi, t in zip(x, tests, strict=True):
            axes.plot([xi] * len(t.values), t.values, "k.", markersize=4)
    for level, text, style in (
        (REFERENCE_TEST, "course reference", ":"),
        (TARGET_TUNED, "target (c), (e), (g)", "--"),
        (TARGET_SEARCHED, "target (d), (f), (h)", "-."),
    ):
        axes.axhline(level, color="grey", linestyle=style, linewidth=1, label=text)
    axes.set_xticks(np.arange(len(keys)), [f"({k})" for k in keys])
    axes.set_ylim(0, 1)
    axes.set_ylabel("test accuracy (last epoch)")
    axes.set_title("Test accuracy by row (rows as in the table)")
    figure.legend(loc="outside lower center", ncols=5, fontsize=8)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_outputs(out: Path, record: Mapping[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "accuracy.json").write_text(json.dumps(record, indent=1) + "\n")
    plot(record, out / "accuracy.png")
    (out / "accuracy.md").write_text(markdown(record, "benchmarks/accuracy.png"))


# -- main -----------------------------------------------------------------------------------------


def run(plan: Plan, keys: str, log: Callable[[str], None]) -> dict[str, Any]:
    """Run the studies, then every final evaluation, of the rows ``keys``: a JSON record."""
    start = time.perf_counter()
    rows = [row for row in make_rows(plan) if row.key in keys]
    if plan.source == DIGITS:  # 8 × 8 digits are never resized: a searched size is refused
        skipped = [row.key for row in rows if row.space and "image_size" in row.space]
        if skipped:
            log(f"rows {', '.join(skipped)} skipped: they search the photos' size")
        rows = [row for row in rows if row.key not in skipped]
    studies: dict[str, StudyResult] = {}
    for row in rows:
        if row.space is not None:
            log(f"study ({row.key}): {plan.study.describe()}")
            studies[row.key] = run_row_study(row, plan)
            log(f"study ({row.key}) winner: {studies[row.key]}")
    evaluations = run_jobs(make_jobs(rows, studies, plan), plan.workers)
    data = _dataset(rows[0].config(plan.study, plan.workers).data)
    sizes = f"{len(data.y_train)} train / {len(data.y_val)} validation / {len(data.y_test)} test"
    invocation = {
        "rows": "".join(row.key for row in rows),
        "command": command_line(),
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.perf_counter() - start,
    }
    return {
        "plan": {**asdict(plan), "study": asdict(plan.study)},
        "sizes": sizes,
        "rows": [
            {
                "key": row.key,
                "label": row.label,
                "normalize": row.data["normalize"],
                "epochs": studies[row.key].epochs if row.key in studies else row.model["epochs"],
            }
            for row in rows
        ],
        "studies": {key: asdict(study) for key, study in studies.items()},
        "evaluations": [asdict(e) for e in evaluations],
        "runs": [invocation],
    }


KEPT_IF_SAME = ("sizes", "source", "classes", "classic_epochs", "seeds", "backends")


def _kept(record: Mapping[str, Any], key: str) -> Any:
    value = record.get(key) if key == "sizes" else record.get("plan", {}).get(key)
    return json.loads(json.dumps(value))  # tuples as the JSON read back has them: lists


def merged(previous: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``previous`` with the rows that ``new`` ran replaced by ``new``'s (a partial re-run)."""
    if any(_kept(previous, key) != _kept(new, key) for key in KEPT_IF_SAME):
        return dict(new)  # other data, seeds or engines: nothing to keep
    keys = {row["key"] for row in new["rows"]}
    rows = [row for row in previous["rows"] if row["key"] not in keys] + list(new["rows"])
    studies = {k: v for k, v in previous["studies"].items() if k not in keys}
    evaluations = [e for e in previous["evaluations"] if e["row"] not in keys]
    return {
        **new,
        "rows": sorted(rows, key=lambda row: row["key"]),
        "studies": dict(sorted({**studies, **new["studies"]}.items())),
        "evaluations": evaluations + list(new["evaluations"]),
        "runs": list(previous["runs"]) + list(new["runs"]),
    }


def parse_backends(text: str) -> list[Backend]:
    names = [name.strip() for name in text.split(",")]
    for name in names:
        if name not in ("numpy", "torch"):
            raise argparse.ArgumentTypeError(f"unknown backend {name!r} (numpy, torch)")
    return cast(list[Backend], names)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="bundled digits, tiny budgets")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--data", default=None, help="a data source (default: the photos)")
    parser.add_argument("--seeds", type=int, default=None, help="model seeds (default 3)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default 2)")
    parser.add_argument("--classic-epochs", type=int, default=None, help="rows (a), (b)")
    parser.add_argument(
        "--backends",
        type=parse_backends,
        default=None,
        help="numpy,torch (default: both when PyTorch is installed)",
    )
    parser.add_argument(
        "--rows",
        default=DEFAULT_ROWS,
        help=f"rows to (re)run (default {DEFAULT_ROWS}; ef: (c), (d) with lr decay); others are "
        "kept from --out's accuracy.json",
    )
    parser.add_argument("--trials", type=int, default=None, help="per study (default 60)")
    parser.add_argument("--replot", action="store_true", help="rewrite md/png from the JSON")
    args = parser.parse_args(argv)
    if not args.rows or set(args.rows) - set(ROW_KEYS):
        parser.error(f"--rows: expected letters of {ROW_KEYS}, got {args.rows!r}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    previous_path = args.out / "accuracy.json"
    previous = json.loads(previous_path.read_text()) if previous_path.exists() else {}
    if args.replot:
        record = previous
    else:
        one_thread()
        log: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
        record = merged(previous, run(make_plan(args), args.rows, log))
    write_outputs(args.out, record)
    print((args.out / "accuracy.md").read_text())


if __name__ == "__main__":
    main()
