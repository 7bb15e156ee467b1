"""``tunery panda`` in a subprocess, steered by ``nudge``, ``pause``, ``rollback``, ``resume`` from
this process, then Ctrl-C and a re-run; and the control commands' refusals (exit 2, nothing
written)."""

from __future__ import annotations

import io
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from tunery.cli import main
from tunery.cli._panda import _View, parse_assignments
from tunery.cli._pictures import lineage_tree, sparkline
from tunery.config import load_config
from tunery.records import Event, FrozenTrial, TrialState
from tunery.storage import SqliteStorage
from tunery.study import Study
from tunery.workflows.objective import build_trainer
from tunery.workflows.panda import BRANCH_ATTR, babysit, branch_events

CONFIG = """\
[study]
name = "cub"
storage = "sqlite:///{db}"

[data]
source = "digits"

[model]
layers = [12]
epochs = 20

[space]
lr = {{ low = 1e-3, high = 1e-2, scale = "log" }}
"""
BASE_LR = 3e-3
NUDGED_LR = 1e-3
TIMEOUT = 120.0  # seconds to wait for anything: generous, for 2 busy cores
T = TypeVar("T")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cub.db"


@pytest.fixture
def config(tmp_path: Path, db: Path) -> Path:
    path = tmp_path / "cub.toml"
    path.write_text(CONFIG.format(db=db), encoding="utf-8")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr (whitespace collapsed: rich wraps long lines)."""
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    captured = capsys.readouterr()
    code = exit_.value.code
    out, err = (" ".join(text.split()) for text in (captured.out, captured.err))
    return int(code) if isinstance(code, int) else 1, out, err


def tunery_command() -> list[str]:
    """The console script beside this interpreter, else the same entry point through -c."""
    script = Path(sys.executable).with_name("tunery")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from tunery.cli import main; main()"]


class Store:
    """Reads what the panda process has written so far (WAL: reading never blocks it)."""

    def __init__(self, db: Path) -> None:
        self.storage = SqliteStorage(db)

    def study_id(self) -> int | None:
        info = self.storage.get_study("cub")
        return None if info is None else info.study_id

    def trials(self) -> dict[int, FrozenTrial]:
        study_id = self.study_id()
        if study_id is None:
            return {}
        return {t.number: t for t in self.storage.get_all_trials(study_id)}

    def events(self) -> list[Event]:
        study_id = self.study_id()
        return [] if study_id is None else self.storage.get_events(study_id, pending=False)

    def applied(self, kind: str) -> bool:
        return any(e.kind == kind and e.applied is not None for e in self.events())

    def checkpoint(self, number: int, epoch: int) -> bytes:
        trial = self.trials()[number]
        found = self.storage.load_checkpoint(trial.trial_id, epoch)
        assert found is not None, f"no checkpoint of trial {number} at epoch {epoch}"
        return found[1]


def wait_for(what: str, found: Callable[[], T | None], process: subprocess.Popen[str]) -> T:
    """Poll until ``found()`` is truthy; fail if the panda process ends first or time runs out."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"panda exited ({process.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def epoch_of(store: Store, number: int) -> int:
    trial = store.trials().get(number)
    return max(trial.curve, default=0) if trial is not None else 0


@pytest.fixture
def panda_process(config: Path, db: Path) -> Iterator[subprocess.Popen[str]]:
    """``tunery panda`` with slow epochs (a hidden option), so that commands interleave."""
    command = [*tunery_command(), "panda", str(config), "--set", f"lr={BASE_LR}"]
    process = subprocess.Popen(
        [*command, "--epoch-delay", "0.3", "--no-live"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.communicate()


# ------------------------------------------------------------------------------- the whole session


@pytest.mark.slow
def test_a_babysitting_session_through_the_cli(
    panda_process: subprocess.Popen[str],
    config: Path,
    db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = Store(db)
    url = f"sqlite:///{db}"

    def control(*args: str) -> str:
        code, out, err = run_cli(capsys, *args, "--storage", url)
        assert code == 0, err
        return out

    # Each command waits for the one before it to be applied: no race, whatever the speed.
    # The nudge goes out after epoch 2, so epoch 2 (replayed after the rollback to 1) ran before it.
    wait_for("epoch 2", lambda: epoch_of(store, 0) >= 2, panda_process)
    assert "queued nudge lr=0.001" in control("nudge", "cub", f"lr={NUDGED_LR}")
    wait_for("the nudge", lambda: store.applied("nudge"), panda_process)
    nudged_at = branch_events(store.trials()[0])[0].epoch
    wait_for("an epoch with the new lr", lambda: epoch_of(store, 0) > nudged_at, panda_process)
    control("pause", "cub")
    wait_for("the pause", lambda: store.applied("pause"), panda_process)
    paused_at = epoch_of(store, 0)
    control("rollback", "cub", "--epoch", "1")
    wait_for("the rollback", lambda: store.applied("rollback"), panda_process)
    # Still paused: the new branch exists, restored, and has trained nothing.
    trials = store.trials()
    assert trials[0].state is TrialState.PRUNED
    assert max(trials[0].curve) == paused_at
    assert (trials[1].state, trials[1].parent, trials[1].curve) == (TrialState.RUNNING, (0, 1), {})
    control("resume", "cub")
    wait_for("an epoch of the new branch", lambda: epoch_of(store, 1) >= 2, panda_process)
    panda_process.send_signal(signal.SIGINT)
    out, err = panda_process.communicate(timeout=TIMEOUT)
    assert panda_process.returncode == 130, err
    assert "interrupted" in err

    # Ctrl-C left the branch interrupted; the same command goes on from its last checkpoint.
    stopped = store.trials()[1]
    assert stopped.state is TrialState.FAILED
    assert stopped.interrupted
    last = store.storage.checkpoint_epochs(stopped.trial_id)[-1]
    code, rerun, err = run_cli(
        capsys, "panda", str(config), "--set", f"lr={BASE_LR}", "--epochs", "24"
    )
    assert code == 0, err
    assert f"trial 2 (resume from trial 1 @ epoch {last})" in rerun

    trials = store.trials()
    first, second, third = trials[0], trials[1], trials[2]
    # The curve: each branch goes on from its fork epoch.
    assert sorted(first.curve) == list(range(1, paused_at + 1))
    assert sorted(second.curve) == list(range(2, max(second.curve) + 1))
    assert sorted(third.curve) == list(range(last + 1, 25))
    assert (third.state, third.parent) == (TrialState.COMPLETE, (1, last))
    # The nudge holds from the epoch after it applied, and the rollback to epoch 1 undid it.
    lr = first.metric("lr")
    assert {lr[e] for e in lr if e <= nudged_at} == {BASE_LR}
    assert {lr[e] for e in lr if e > nudged_at} == {NUDGED_LR}
    assert set(second.metric("lr").values()) | set(third.metric("lr").values()) == {BASE_LR}
    # The branch started from the checkpoint bit for bit: its first epoch replays the first's.
    assert second.curve[2] == first.curve[2]
    assert_same_state(store.checkpoint(1, 1), store.checkpoint(0, 1))
    replay = build_trainer(load_config(config), second.params)
    replay.restore(store.checkpoint(0, 1))
    replay.run_epoch()
    assert_same_state(replay.to_bytes(), store.checkpoint(1, 2))

    # The events: kinds, payloads, and the epoch and branch each applied at.
    events = [*branch_events(first), *branch_events(second)]
    assert [(e.kind, e.payload, e.epoch, e.branch) for e in events] == [
        ("nudge", {"lr": NUDGED_LR}, nudged_at, 0),
        ("pause", {}, paused_at, 0),
        ("rollback", {"trial": 0, "epoch": 1}, paused_at, 0),
        ("resume", {}, 1, 1),
    ]
    assert events[2].new_branch == 1
    assert all(e.applied is not None for e in store.events())
    # The lineage: origins and parents in the store, and drawn by `tunery show`.
    origins = [trials[n].user_attrs[BRANCH_ATTR]["origin"] for n in range(3)]
    assert origins == ["start", "rollback", "resume"]
    code, shown, err = run_cli(capsys, "show", "cub", "--storage", url)
    assert code == 0, err
    assert "trial 1 ⑂ rollback from trial 0 @ epoch 1" in shown
    assert f"epoch {nudged_at}: nudge lr=0.001" in shown
    assert f"trial 2 ⑂ resume from trial 1 @ epoch {last}" in shown
    assert "↳ epoch" in out, "the panda process printed the events it applied"
    store.storage.close()


def assert_same_state(a: bytes, b: bytes) -> None:
    """Every array of two checkpoints equal bit for bit, and the same metadata (JSON)."""
    with np.load(io.BytesIO(a)) as first, np.load(io.BytesIO(b)) as second:
        assert sorted(first.files) == sorted(second.files)
        for name in first.files:
            assert np.array_equal(first[name], second[name]), name


# ----------------------------------------------------------------------- refusals: exit 2, no write


@pytest.fixture
def finished(db: Path, config: Path) -> Path:
    """A study whose one branch ran 3 epochs (through the Python API: fast)."""
    with Study("cub", db) as study:
        babysit(study, load_config(config), epochs=3, control=lambda panda: None)
    return db


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nudge", "nope", "lr=1e-3"), "nope"),
        (("nudge", "cub", "lrr=1e-3"), "lrr"),
        (("nudge", "cub", "lr=-1"), "lr"),
        (("nudge", "cub", "batch_size=2.5"), "batch_size"),
        (("nudge", "cub", "lr"), "NAME=VALUE"),
        (("nudge", "cub"), "NAME=VALUE"),
        (("rollback", "cub", "--epoch", "4"), "epochs 0-3"),
        (("rollback", "cub", "--epoch", "1", "--trial", "5"), "trial"),
        (("pause", "nope"), "nope"),
        (("resume", "nope"), "nope"),
    ],
)
def test_a_bad_control_command_exits_2_and_writes_nothing(
    finished: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, _, err = run_cli(capsys, *args, "--storage", f"sqlite:///{finished}")
    assert code == 2
    assert message in " ".join(err.split())
    assert Store(finished).events() == []


def test_a_control_command_needs_an_existing_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.db"
    code, _, err = run_cli(capsys, "pause", "cub", "--storage", f"sqlite:///{missing}")
    assert code == 2
    assert "no" in err
    assert not missing.exists()


def test_a_command_for_a_stopped_panda_is_queued_for_its_next_run(
    finished: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys, "rollback", "cub", "--epoch", "2", "--storage", f"sqlite:///{finished}"
    )
    assert code == 0
    assert "none runs it now" in out
    code, out, err = run_cli(capsys, "panda", str(config), "--epochs", "3")
    assert code == 0, err
    trials = Store(finished).trials()
    assert (trials[1].parent, sorted(trials[1].curve)) == ((0, 2), [3])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("lrr=1", "lrr"),
        ("lr=-1", "--set lr"),
        ("lr", "NAME=VALUE"),
        ("image_size=0", "--set image_size"),
        ("image_size=16", "--set image_size: expected a folder of photos"),  # digits: never resized
    ],
)
def test_panda_refuses_a_bad_setting_before_creating_the_store(
    config: Path, db: Path, capsys: pytest.CaptureFixture[str], setting: str, message: str
) -> None:
    code, _, err = run_cli(capsys, "panda", str(config), "--set", setting)
    assert code == 2
    assert message in " ".join(err.split())
    assert not db.exists()


def test_panda_with_nothing_left_to_do_says_so(
    finished: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "panda", str(config), "--epochs", "3")
    assert code == 0, err
    assert "nothing to do" in out
    assert len(Store(finished).trials()) == 1


# ------------------------------------------------------------------------------------ NAME=VALUE


_SPECIAL = ("true", "false", "nan", "inf", "infinity")  # these read as bools and floats
names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
values = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.from_regex(r"[a-z]{1,8}", fullmatch=True).filter(lambda s: s not in _SPECIAL),
)


@given(st.dictionaries(names, values, max_size=5))
def test_assignments_read_back_what_was_written(settings: dict[str, Any]) -> None:
    text = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()]
    parsed = parse_assignments(text, "--set")
    assert parsed == settings
    assert [type(v) for v in parsed.values()] == [type(v) for v in settings.values()]


# -------------------------------------------------------------------------------------- the view


def test_the_live_view_shows_the_curve_the_figures_and_the_hyperparameters(
    config: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "panda", str(config), "--epochs", "3", "--live")
    assert code == 0, err
    assert "epoch 3/3 done" in out, "the live view's last frame"
    with Study("cub", db) as study:
        babysitter = babysit(study, load_config(config), epochs=5)
        babysitter.run_epoch()
        babysitter.nudge(lr=5e-3)
        babysitter.run_epoch()
        view = _View(babysitter, live=True)
        view.update(babysitter.events, None)
        console = Console(width=120, record=True, color_system=None)
        console.print(view.render())
        text = console.export_text()
        babysitter.close()
    assert "trial 1 (resume from trial 0 @ epoch 3), training to epoch 5" in text
    assert "epoch 5/5" in text
    cost_line = next(line for line in text.splitlines() if line.startswith("cost"))
    assert sum(char in "▁▂▃▄▅▆▇█" for char in cost_line) == 5, "one bar per epoch of the path"
    assert "lr=0.005" in text
    assert "batch_size=64" in text
    assert "↳ epoch 4: nudge lr=0.005" in text


# -------------------------------------------------------------------------------------- pictures


def render(renderable: Any) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_lineage_tree_draws_forks_nudges_and_rollbacks(config: Path, db: Path) -> None:
    with Study("cub", db) as study:
        babysitter = babysit(study, load_config(config), {"lr": BASE_LR}, epochs=5)
        for _ in range(3):
            babysitter.run_epoch()
        babysitter.nudge(lr=NUDGED_LR)
        babysitter.run_epoch()  # the boundary after epoch 3 applies it
        babysitter.rollback(2)
        babysitter.run()
        text = render(lineage_tree(study))
    assert "trial 1 ⑂ rollback from trial 0 @ epoch 2" in text
    assert "epoch 3: nudge lr=0.001" in text
    assert "epoch 4: rollback to trial 0 @ epoch 2 → trial 1" in text


def test_lineage_tree_leaves_out_trials_that_never_branched(db: Path) -> None:
    space = {"lr": {"low": 1e-3, "high": 1e-2, "scale": "log"}}
    with Study("cub", db) as study:
        for _ in range(3):
            study.tell(study.ask(space), 0.5)
        study.tell(study.ask(params={"lr": 2e-3}, parent=(1, 4)), 0.7)
        text = render(lineage_tree(study))
    assert "trial 1" in text
    assert "trial 3 ⑂ branch from trial 1 @ epoch 4" in text
    assert "trial 0" not in text
    assert "trial 2" not in text


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=50))
def test_sparkline_keeps_the_order_of_values(values: list[float]) -> None:
    line = sparkline(values)
    assert len(line) == len(values)
    levels = ["▁▂▃▄▅▆▇█".index(char) for char in line]
    ranked = [level for _, level in sorted(zip(values, levels, strict=True))]
    assert ranked == sorted(ranked)
    if max(values) > min(values):
        assert levels[values.index(min(values))] == 0
        assert levels[values.index(max(values))] == 7


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=20))
def test_sparkline_marks_what_is_not_finite(values: list[float]) -> None:
    line = sparkline(values, 0.0, 1.0)
    assert [char == "×" for char in line] == [not math.isfinite(v) for v in values]
