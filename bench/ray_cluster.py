"""tunery on a Ray cluster: overhead against Ray Tune, 1 vs 2 nodes, prune latency, and scale.

    python bench/ray_cluster.py            # full: 200 trivial trials, 3 × 2 MLP studies, scale

    python bench/ray_cluster.py --quick    # seconds: a smoke test for CI

On a local cluster of this machine (a head and a worker node, one CPU each, loopback only):

- trials/s of a trivial objective (it returns its param): tunery's Ray executor against Ray Tune
  2.60 (``Tuner``, ``reuse_actors=True``, the same objective and number of trials), and the ratio;
- the built-in objective (the engine's MLP on the bundled digits) on 1 node, then 2 nodes, each
  after a warm-up study (so that every node's worker has started and imported the engine): the
  speedup, the best speedup two slots allow for these trials' lengths (list scheduling of the
  1-node durations), and the driver's CPU (``time.process_time`` of this process) per trial and
  as a share of the wall time;
- the prune round trip: a trial asks ``should_prune()`` 20 times, the median in ms;
- the single writer at scale, without Ray: a fake executor drives a SQLite study as the driver
  does (ask, 5 reports, tell) for 100, 1,000 and 10,000 trials: the driver's cost per report and
  per finished trial, which caps what any cluster can feed it.
"""

from __future__ import annotations

import argparse
import heapq
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback: before Ray loads
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _ray_objectives as objectives
import ray
from ray.cluster_utils import Cluster

from tunery.config import default_config
from tunery.pruners import MedianPruner, Pruner
from tunery.study import Study
from tunery.workflows.objective import TrainerObjective

SPACE = {"x": {"low": 0.0, "high": 1.0}}
REPORTS = 5  # per trial in the scale simulation


def _study(path: Path, name: str, pruner: Pruner | None = None) -> Study:
    storage = f"sqlite:///{path / (name + '.db')}"
    return Study(name, storage, direction="maximize", seed=0, pruner=pruner)


def tunery_rate(tmp: Path, trials: int, address: str, name: str) -> float:
    study = _study(tmp, name)
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


@dataclass(frozen=True)
class MlpRun:
    wall: float  # seconds
    driver_cpu: float  # seconds of this process's CPU
    durations: list[float]  # each trial's, in trial order

    def concurrency(self) -> float:
        """Trials running at once on average: what the executor keeps busy, however slow the
        shared cores make each trial."""
        return sum(self.durations) / self.wall

    def cpu_share(self) -> str:
        return f"{self.driver_cpu / len(self.durations):.3f} s ({self.driver_cpu / self.wall:.0%})"


def mlp_run(tmp: Path, name: str, trials: int, epochs: int, address: str) -> MlpRun:
    """A warm-up study of one short trial per slot, then the timed one."""
    warm = default_config().with_overrides(trials=2, rounds=1, epochs=1)
    _study(tmp, name + "-warm").caviar(
        TrainerObjective(warm), warm.space, n_trials=2, executor="ray", address=address
    )
    config = default_config().with_overrides(trials=trials, rounds=1, epochs=epochs)
    study = _study(tmp, name)
    cpu, start = time.process_time(), time.perf_counter()
    study.caviar(
        TrainerObjective(config), config.space, n_trials=trials, executor="ray", address=address
    )
    wall, driver_cpu = time.perf_counter() - start, time.process_time() - cpu
    durations = [t.duration or 0.0 for t in sorted(study.trials, key=lambda t: t.number)]
    return MlpRun(wall, driver_cpu, durations)


def best_speedup(durations: list[float], slots: int) -> float:
    """What ``slots`` parallel slots at best give for trials of these lengths, started in this
    order each on the first free slot (as the driver does): the sum over the makespan."""
    free = [0.0] * slots
    for duration in durations:
        heapq.heappush(free, heapq.heappop(free) + duration)
    return sum(durations) / max(free)


def prune_latency(tmp: Path, address: str) -> float:
    study = _study(tmp, "prune", MedianPruner())  # without a pruner the task answers alone
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
    # The driver on the head; workers' output is not streamed to it (one process less at work).
    ray.init(address=made.address, include_dashboard=False, log_to_driver=False)
    return made


def _remove(cluster: Cluster, node: Any) -> None:
    """Take a node away and wait until the cluster knows (the driver reads the room from it)."""
    cluster.remove_node(node)
    deadline = time.monotonic() + 60
    while sum(1 for n in ray.nodes() if n.get("Alive")) > 1 and time.monotonic() < deadline:
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds: a smoke test")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    args = parser.parse_args(argv)
    trivial = 20 if args.quick else 200
    mlp_trials, epochs = (2, 2) if args.quick else (12, 200)
    pairs_wanted = 1 if args.quick else 3
    scales = (100,) if args.quick else (100, 1000, 10000)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        cluster = _cluster()
        try:
            pairs = []
            worker: Any = None
            for pair in range(pairs_wanted):  # 1 node, 2 nodes, alternately: load drifts
                if worker is not None:
                    _remove(cluster, worker)
                one = mlp_run(tmp, f"mlp1-{pair}", mlp_trials, epochs, cluster.address)
                worker = cluster.add_node(num_cpus=1)
                cluster.wait_for_nodes()
                pairs.append(
                    (one, mlp_run(tmp, f"mlp2-{pair}", mlp_trials, epochs, cluster.address))
                )
            ours = [tunery_rate(tmp, trivial, cluster.address, "trivial-1")]
            theirs = tune_rate(tmp, trivial)
            ours.append(tunery_rate(tmp, trivial, cluster.address, "trivial-2"))  # and after Tune
            latency = prune_latency(tmp, cluster.address)
            cluster.remove_node(worker)
        finally:
            ray.shutdown()
            cluster.shutdown()
        ratios = [one.wall / two.wall for one, two in pairs]
        one, two = pairs[ratios.index(statistics.median_low(ratios))]
        rows += [
            (
                f"tunery on Ray, trivial objective ({trivial} trials, before / after Ray Tune)",
                " / ".join(f"{rate:.1f}" for rate in ours) + " trials/s",
            ),
            (f"Ray Tune 2.60, reuse_actors=True ({trivial} trials)", f"{theirs:.1f} trials/s"),
            (
                "ratio tunery (mean) / Ray Tune (goal ≥ 5×)",
                f"{statistics.mean(ours) / theirs:.1f}×",
            ),
            (
                f"MLP on digits, {mlp_trials} trials × {epochs} epochs: 1 node / 2 nodes, "
                f"{len(pairs)} pairs in turn",
                ", ".join(f"{one.wall:.1f} s / {two.wall:.1f} s" for one, two in pairs),
            ),
            (
                "speedup 2 nodes over 1, each pair (goal ≥ 1.8×)",
                ", ".join(f"{ratio:.2f}×" for ratio in ratios)
                + f"; median {statistics.median_low(ratios):.2f}×",
            ),
            (
                "trials running at once on average (their seconds / wall), 1 node / 2 nodes",
                ", ".join(
                    f"{one.concurrency():.2f} / {two.concurrency():.2f}" for one, two in pairs
                ),
            ),
            (
                "best speedup 2 slots allow for these trials' lengths",
                f"{best_speedup(one.durations, 2):.2f}×",
            ),
            (
                "driver CPU per MLP trial, share of wall (median pair, 1 node / 2 nodes)",
                f"{one.cpu_share()} / {two.cpu_share()}",
            ),
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
