"""tunery on a Ray cluster: overhead against Ray Tune, 1 vs 2 nodes, prune latency, and scale.

    python bench/ray_cluster.py            # full: 200 trivial trials, 8 MLP trials, 100..10,000
    python bench/ray_cluster.py --quick    # seconds: a smoke test for CI

On a local cluster of this machine (a head and a worker node, one CPU each, loopback only):

- trials/s of a trivial objective (it returns its param): tunery's Ray executor against Ray Tune
  2.60 (``Tuner``, ``reuse_actors=True``, the same objective and number of trials), and the ratio;
- the built-in objective (the engine's MLP on the bundled digits) on 1 node, then 2 nodes: the
  speedup, and the driver's CPU seconds per trial (``time.process_time`` of this process);
- the prune round trip: a trial asks ``should_prune()`` 20 times, the median in ms;
- the single writer at scale, without Ray: a fake executor drives a SQLite study as the driver
  does (ask, 5 reports, tell) for 100, 1,000 and 10,000 trials: the driver's cost per report and
  per finished trial, which caps what any cluster can feed it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback: before Ray loads
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _ray_objectives as objectives
import ray
from ray.cluster_utils import Cluster

from tunery.config import default_config
from tunery.study import Study
from tunery.workflows.objective import TrainerObjective

SPACE = {"x": {"low": 0.0, "high": 1.0}}
REPORTS = 5  # per trial in the scale simulation


def _study(path: Path, name: str) -> Study:
    return Study(name, f"sqlite:///{path / (name + '.db')}", direction="maximize", seed=0)


def tunery_rate(tmp: Path, trials: int, address: str) -> float:
    study = _study(tmp, "trivial")
    start = time.perf_counter()
    study.caviar(objectives.trivial, SPACE, n_trials=trials, executor="ray", address=address)
    return trials / (time.perf_counter() - start)


def tune_rate(tmp: Path, trials: int) -> float:
    from ray import tune

    tuner = tune.Tuner(
        objectives.trivial_tune,
        param_space={"x": tune.uniform(0.0, 1.0)},
        tune_config=tune.TuneConfig(num_samples=trials, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp / "tune"), verbose=0),
    )
    start = time.perf_counter()
    tuner.fit()
    return trials / (time.perf_counter() - start)


def mlp_run(tmp: Path, name: str, trials: int, epochs: int, address: str) -> tuple[float, float]:
    """Wall seconds, and the driver's CPU seconds per trial."""
    config = default_config().with_overrides(trials=trials, rounds=1, epochs=epochs)
    study = _study(tmp, name)
    cpu, start = time.process_time(), time.perf_counter()
    study.caviar(
        TrainerObjective(config), config.space, n_trials=trials, executor="ray", address=address
    )
    return time.perf_counter() - start, (time.process_time() - cpu) / trials


def prune_latency(tmp: Path, address: str) -> float:
    study = _study(tmp, "prune")
    study.caviar(objectives.prune_round_trips, SPACE, n_trials=4, executor="ray", address=address)
    return max(float(t.user_attrs["prune_ms"]) for t in study.trials)


def simulate(tmp: Path, trials: int) -> tuple[float, float]:
    """The driver's work without any executor: (ms per report, ms per trial's ask + tell)."""
    study = _study(tmp, f"scale{trials}")
    study._prepare(SPACE)  # what caviar does before it calls the executor
    asked = reported = 0.0
    for _ in range(trials):
        t0 = time.perf_counter()
        trial = study.ask()
        t1 = time.perf_counter()
        for epoch in range(1, REPORTS + 1):
            trial.report(epoch, val_accuracy=0.5)
        t2 = time.perf_counter()
        study.tell(trial, 0.5)
        asked += t1 - t0 + time.perf_counter() - t2
        reported += t2 - t1
    return 1000 * reported / (trials * REPORTS), 1000 * asked / trials


def _cluster() -> Cluster:
    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    ray.init(address=made.address, include_dashboard=False)  # the driver on the head
    return made


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds: a smoke test")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    args = parser.parse_args(argv)
    trivial = 20 if args.quick else 200
    mlp_trials, epochs = (2, 2) if args.quick else (8, 20)
    scales = (100,) if args.quick else (100, 1000, 10000)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        cluster = _cluster()
        try:
            one_wall, one_cpu = mlp_run(tmp, "mlp1", mlp_trials, epochs, cluster.address)
            worker = cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            two_wall, two_cpu = mlp_run(tmp, "mlp2", mlp_trials, epochs, cluster.address)
            ours = tunery_rate(tmp, trivial, cluster.address)
            theirs = tune_rate(tmp, trivial)
            latency = prune_latency(tmp, cluster.address)
            cluster.remove_node(worker)
        finally:
            ray.shutdown()
            cluster.shutdown()
        rows += [
            (f"tunery on Ray, trivial objective ({trivial} trials)", f"{ours:.1f} trials/s"),
            (f"Ray Tune 2.60, reuse_actors=True ({trivial} trials)", f"{theirs:.1f} trials/s"),
            ("ratio tunery / Ray Tune (goal ≥ 5×)", f"{ours / theirs:.1f}×"),
            (f"MLP on digits, {mlp_trials} trials × {epochs} epochs, 1 node", f"{one_wall:.1f} s"),
            ("the same, 2 nodes: speedup", f"{one_wall / two_wall:.2f}× ({two_wall:.1f} s)"),
            ("driver CPU per MLP trial (1 node / 2 nodes)", f"{one_cpu:.3f} s / {two_cpu:.3f} s"),
            ("prune round trip, median of 20 (worst trial)", f"{latency:.2f} ms"),
        ]
        for trials in scales:
            per_report, per_trial = simulate(tmp, trials)
            rows.append(
                (
                    f"single writer at {trials:,} trials (SQLite, no Ray)",
                    f"{per_report:.3f} ms/report, {per_trial:.2f} ms/trial (ask + tell)",
                )
            )
    table = _markdown(rows, argv)
    print(table)
    if args.out is not None:
        args.out.write_text(table)


def _markdown(rows: list[tuple[str, str]], argv: list[str] | None) -> str:
    command = "python bench/ray_cluster.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, Ray {ray.__version__}; "
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- command: `{command.strip()}`",
        "- cluster: a head and a worker node of this machine, 1 CPU each (ray.cluster_utils)",
        "",
        "| measure | result |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
