"""The Ray executor on a real two-node cluster of this machine (a head and a worker node, one CPU
each, started once for the module): reports while trials run, pruning, failures, a node killed
mid-study, the driver killed mid-study, an unreachable address, Ray missing."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tests.run import _ray_objectives as objectives
from tunery import ConfigError
from tunery.config import config_from_dict, default_config
from tunery.records import TrialState
from tunery.run import Resources, Run, connect, make_executor
from tunery.run._ray import RayExecutor
from tunery.study import Study, load_study
from tunery.workflows.objective import TrainerObjective

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'tunery[ray]')")
from ray.cluster_utils import Cluster  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SPACE = {"x": {"low": 0.0, "high": 1.0}}
_WAIT = 120.0  # seconds a test waits for the cluster before it says what it saw (never a bound)

pytestmark = [
    pytest.mark.slow,
    # Ray's own modules warn on import and at start-up; ours must not.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:google.*"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Head (1 CPU) + worker node (1 CPU) on loopback; workers import this checkout's tunery."""
    paths = [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
        # Loopback only: the switch for a one-machine Ray, here and in the processes it starts.
        env.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        env.setattr(ray._private.ray_constants, "ENABLE_RAY_CLUSTER", False)
        head = {"num_cpus": 1, "include_dashboard": False}
        head["_system_config"] = {
            "health_check_period_ms": 500,
            "health_check_failure_threshold": 2,
        }
        made = Cluster(initialize_head=True, head_node_args=head)
        try:
            # Connect while the head is the only node: on one IP the driver could attach to
            # either raylet, and the hub lives on the driver's node, which must survive.
            ray.init(address=made.address, include_dashboard=False)
            made.add_node(num_cpus=1)
            made.wait_for_nodes()
            yield made
        finally:
            ray.shutdown()
            made.shutdown()


def _study(**options: Any) -> Study:
    return Study("ray", "memory", direction="maximize", seed=0, **options)


def _gated_space(gate: Path) -> dict[str, Any]:
    return {**SPACE, "gate": {"choices": [str(gate)]}}


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + _WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_workers_import_this_checkouts_tunery(cluster: Cluster) -> None:
    @ray.remote(num_cpus=1)
    def where() -> str:
        import tunery

        return str(tunery.__file__)

    files = ray.get([where.remote() for _ in range(2)])
    assert all(Path(f).is_relative_to(REPO / "src") for f in files), files
    assert len(ray.nodes()) == 2


def test_reports_reach_the_driver_while_trials_run_and_the_pruner_prunes(cluster: Cluster) -> None:
    study = _study(pruner=objectives.BelowPruner(0.15))
    study.caviar(objectives.steps, SPACE, n_trials=8, executor="ray", address=cluster.address)
    trials = study.trials
    assert sum(t.state.is_finished() for t in trials) == 8
    for trial in trials:  # the pruner read the epoch-1 report, sent while the trial ran
        low = trial.params["x"] / 3 < 0.15
        assert trial.state is (TrialState.PRUNED if low else TrialState.COMPLETE), trial
        assert trial.curve[1]["val_accuracy"] == pytest.approx(trial.params["x"] / 3)
    assert any(t.state is TrialState.PRUNED for t in trials)
    assert any(t.state is TrialState.COMPLETE and len(t.curve) == 3 for t in trials)


def test_an_exception_fails_its_trial_with_the_traceback_and_the_study_goes_on(
    cluster: Cluster,
) -> None:
    study = _study()
    study.caviar(objectives.broken, SPACE, n_trials=6, executor="ray", address=cluster.address)
    states = [t.state for t in study.trials]
    assert len(states) == 6
    failed = [t for t in study.trials if t.state is TrialState.FAILED]
    assert failed
    assert all(t.params["x"] < 0.5 and not t.interrupted for t in failed)
    assert all("RuntimeError: this trial is broken on purpose" in (t.error or "") for t in failed)
    assert all("Traceback" in (t.error or "") for t in failed)


def test_the_live_view_shows_the_trials(cluster: Cluster) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    study = _study()
    study._prepare(SPACE)  # what caviar does before it calls the executor
    job = Run(study, objectives.steps, target=3, live=True)
    RayExecutor(cluster.address).run(job, console=console)
    assert study.count_done() == 3
    assert "val_accuracy" in screen.getvalue()


def test_the_builtin_objective_trains_on_the_cluster_from_the_object_store(
    cluster: Cluster, tmp_path: Path
) -> None:
    config = default_config().with_overrides(trials=2, rounds=1, epochs=2, executor="ray")
    objective = TrainerObjective(config)
    put: list[Any] = []
    shared = objective.prepare_for_cluster(lambda v: put.append(v) or ray.put(v), ray.get)
    assert put == [objective.dataset]  # the dataset goes in once, from the driver
    study = _study()
    study.caviar(shared, config.space, n_trials=2, executor="ray", address=cluster.address)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert all(len(t.curve) == 2 and "test_accuracy" in t.user_attrs for t in study.trials)


def test_a_node_that_dies_mid_study_has_its_trials_rerun_on_the_survivor(
    cluster: Cluster, tmp_path: Path
) -> None:
    worker_node = next(n for n in cluster.worker_nodes)
    worker_id = worker_node.node_id
    study = _study()
    thread = threading.Thread(
        target=study.caviar,
        args=(objectives.gated, _gated_space(tmp_path)),
        kwargs={"n_trials": 4, "executor": "ray", "address": cluster.address, "live": False},
    )
    thread.start()
    try:
        _wait_for(lambda: len(list(tmp_path.glob("started-*"))) == 2, "a trial on each node")
        on_worker = [p for p in tmp_path.glob("started-*") if p.name.endswith(worker_id)]
        assert len(on_worker) == 1
        killed_number = int(on_worker[0].name.split("-")[1])
        cluster.remove_node(worker_node)
        _wait_for(lambda: any(t.interrupted for t in study.trials), "the dead node's trial")
        (tmp_path / "open").touch()
        thread.join(_WAIT)
        assert not thread.is_alive()
    finally:
        (tmp_path / "open").touch()
        thread.join(_WAIT)
        cluster.add_node(num_cpus=1)  # for the tests after this
        cluster.wait_for_nodes()
    trials = study.trials
    killed = next(t for t in trials if t.number == killed_number)
    assert killed.state is TrialState.FAILED
    assert killed.interrupted
    assert "Ray node died" in (killed.error or "")
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(complete) == 4
    assert len({t.sample_id for t in complete}) == 4  # no draw twice
    rerun = [t for t in complete if t.sample_id == killed.sample_id]
    assert len(rerun) == 1
    assert rerun[0].params == killed.params


DRIVER = textwrap.dedent(
    """
    import sys
    from tests.run import _ray_objectives as objectives
    from tunery.study import Study

    address, storage, gate = sys.argv[1:]
    study = Study("driver", storage, direction="maximize", seed=0)
    space = {"x": {"low": 0.0, "high": 1.0}, "gate": {"choices": [gate]}}
    study.caviar(objectives.gated, space, n_trials=4, executor="ray", address=address, live=False)
    print("finished", study.count_done())
    """
)


def _driver(cluster: Cluster, storage: str, gate: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    command = [sys.executable, "-c", DRIVER, cluster.address, storage, str(gate)]
    return subprocess.Popen(command, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE)


def test_a_killed_driver_keeps_finished_trials_and_the_rerun_runs_the_rest(
    cluster: Cluster, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'tunery.db'}"
    first_gate = second_gate = tmp_path  # the same space in both runs: the gate is a param
    for number in (0, 1):  # the first run's first two trials finish, the others wait
        (first_gate / f"open-{number}").touch()
    driver = _driver(cluster, storage, first_gate)
    try:
        _wait_for(lambda: _complete(storage) == 2 and _running(storage) == 2, "2 trials blocked")
        kept = {t.trial_id for t in load_study("driver", storage).trials if t.state.is_finished()}
        driver.send_signal(signal.SIGKILL)
        driver.wait(_WAIT)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    (second_gate / "open").touch()
    rerun = _driver(cluster, storage, second_gate)
    out, _ = rerun.communicate(timeout=_WAIT)
    assert rerun.returncode == 0
    assert "finished 4" in out
    trials = load_study("driver", storage).trials
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(complete) == 4
    assert kept <= {t.trial_id for t in complete}  # finished trials are kept, not re-run
    seen = [(t.number, t.sample_id, t.state.name, t.interrupted, t.params["x"]) for t in trials]
    assert len({t.sample_id for t in complete}) == 4, seen
    assert any(t.interrupted for t in trials)  # the killed run's RUNNING trials, re-run


def _complete(storage: str) -> int:
    try:
        return len(load_study("driver", storage).get_trials([TrialState.COMPLETE]))
    except Exception:  # not created yet
        return 0


def _running(storage: str) -> int:
    try:
        return len(load_study("driver", storage).get_trials([TrialState.RUNNING]))
    except Exception:
        return 0


# -- without a cluster -----------------------------------------------------------------------------


def test_an_unreachable_address_is_one_line_naming_address_and_writes_nothing(
    tmp_path: Path,
) -> None:
    store = tmp_path / "tunery.db"
    command = [sys.executable, "-m", "tunery", "tune", "--executor", "ray"]
    command += ["--address", "127.0.0.1:1", "--storage", f"sqlite:///{store}", "--trials", "2"]
    command += ["--rounds", "1"]
    env = {**os.environ, "TUNERY_RAY_CONNECT_TIMEOUT": "2", "PYTHONPATH": str(REPO / "src")}
    env["COLUMNS"] = "200"  # the line is not wrapped to a narrow pipe's 80 columns
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "--address" in lines[0]
    assert "127.0.0.1:1" in lines[0]
    assert not store.exists()
    assert not (tmp_path / "reports").exists()


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError, match=r'pip install "tunery\[ray\]"'):
        connect("ray", "auto")
    with pytest.raises(ConfigError, match=r"tunery\[ray\]"):
        make_executor("ray").run(Run(_study(), objectives.steps, target=1))


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"cpu": 0}, "run.resources.cpu"),
        ({"gpu": -1}, "run.resources.gpu"),
        ({"tpu": 1}, "run.resources.tpu"),
        ("1 cpu", "run.resources"),
    ],
)
def test_bad_resources_name_the_field(resources: Any, field: str) -> None:
    tables = default_config().to_dict()
    tables["run"]["resources"] = resources
    with pytest.raises(ConfigError, match=rf"^{field}:"):
        config_from_dict(tables)


def test_the_run_table_takes_executor_address_and_fractional_gpus() -> None:
    tables = default_config().to_dict()
    tables["run"].update(executor="ray", address="auto", resources={"cpu": 2, "gpu": 0.25})
    config = config_from_dict(tables)
    assert (config.run.executor, config.run.address) == ("ray", "auto")
    assert Resources.from_mapping(config.run.resources) == Resources(2.0, 0.25)
    assert config_from_dict(config.to_dict()) == config
    tables["run"]["executor"] = "dask"
    with pytest.raises(ConfigError, match=r"^run.executor:"):
        config_from_dict(tables)
