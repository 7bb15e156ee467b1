"""A real crash: SIGKILL the process running a PBT population (pool workers and all), run it
again, and it resumes from the last boundary with the same population and nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tunery.config import TuneConfig, config_from_dict
from tunery.records import FrozenTrial, TrialState
from tunery.report import segment_info
from tunery.storage import SqliteStorage
from tunery.study import Study
from tunery.workflows.pbt import pbt

TIMEOUT = 240  # seconds: generous, the machine is shared
SIZE, EPOCHS, INTERVAL = 4, 8, 2
TABLES: dict[str, Any] = {
    "study": {"name": "crash", "seed": 5},
    "data": {"source": "digits"},
    "model": {"layers": [128, 128], "epochs": EPOCHS, "batch_size": 16},
    "space": {
        "lr": {"low": 1e-3, "high": 0.1, "scale": "log"},
        "beta": {"low": 0.8, "high": 0.99, "scale": "one_minus_log"},
    },
    "run": {"workers": 2},
    "pbt": {"population": SIZE, "perturbation_interval": INTERVAL},
}
RUNNER = textwrap.dedent(
    f"""
    import sys
    from tunery.config import config_from_dict
    from tunery.study import Study
    from tunery.workflows.pbt import pbt

    if __name__ == "__main__":
        config = config_from_dict({TABLES!r})
        pbt(Study("crash", "sqlite:///" + sys.argv[1], seed=5), config)
    """
)


def config() -> TuneConfig:
    return config_from_dict(TABLES)


def start(script: Path, db: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(script), str(db)], stderr=subprocess.PIPE, env=dict(os.environ)
    )


def stored(db: Path) -> list[FrozenTrial]:
    if not db.exists():
        return []
    store = SqliteStorage(db)
    try:
        info = store.get_study("crash")
        return [] if info is None else store.get_all_trials(info.study_id)
    finally:
        store.close()


def finished(trials: list[FrozenTrial]) -> dict[tuple[int, int], FrozenTrial]:
    return {
        (segment_info(t)["member"], segment_info(t)["step"]): t
        for t in trials
        if t.state is not TrialState.RUNNING and not t.interrupted
    }


def mid_population(trials: list[FrozenTrial]) -> bool:
    """A step after the first has begun finishing, and segments are running."""
    later = any(step >= 1 for _, step in finished(trials))
    return later and any(t.state is TrialState.RUNNING for t in trials)


def outcome(trials: list[FrozenTrial]) -> dict[tuple[int, int], tuple[Any, ...]]:
    return {key: (t.params, t.value, t.state) for key, t in finished(trials).items()}


@pytest.mark.slow
def test_sigkill_mid_population_then_rerun_resumes_with_the_same_population(
    tmp_path: Path,
) -> None:
    db, script = tmp_path / "pbt.db", tmp_path / "runner.py"
    script.write_text(RUNNER, encoding="utf-8")
    first = start(script, db)
    deadline = time.monotonic() + TIMEOUT
    while not mid_population(stored(db)):
        if first.poll() is not None:
            pytest.fail(f"the population ended before the kill:\n{first.communicate()[1]!r}")
        assert time.monotonic() < deadline, "the population did not get there in time"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    before = finished(stored(db))
    assert 0 < len(before) < SIZE * EPOCHS // INTERVAL

    rerun = start(script, db)
    _, err = rerun.communicate(timeout=TIMEOUT)
    assert rerun.returncode == 0, err.decode()
    trials = stored(db)
    after = finished(trials)
    assert sorted(after) == [(m, s) for m in range(SIZE) for s in range(EPOCHS // INTERVAL)]
    for key, trial in before.items():  # no finished segment lost or re-run
        assert after[key].number == trial.number
    killed = [t for t in trials if t.interrupted]
    assert killed
    assert all(t.state is TrialState.FAILED for t in killed)

    plain = Study("crash", ":memory:", seed=5)
    pbt(plain, config(), workers=1)  # the same population, never interrupted
    assert outcome(trials) == outcome(plain.trials)
