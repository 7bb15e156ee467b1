"""What only the SQLite store does: files, schema versions, pragmas, sharing with processes."""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tunery import StorageError
from tunery.records import TrialState
from tunery.storage import SCHEMA_VERSION, SqliteStorage


def pragma(store: SqliteStorage, name: str) -> object:
    with sqlite3.connect(store.path) as con:
        return con.execute(f"PRAGMA {name}").fetchone()[0]


def test_a_new_file_gets_the_schema_and_wal(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "deep" / "folder" / "t.db")
    assert store.path.is_file()
    assert pragma(store, "journal_mode") == "wal"
    with sqlite3.connect(store.path) as con:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


@pytest.mark.parametrize(("durable", "level"), [(False, 1), (True, 2)])
def test_durable_selects_synchronous_full(tmp_path: Path, durable: bool, level: int) -> None:
    store = SqliteStorage(tmp_path / "t.db", durable=durable)
    (got,) = store._con.execute("PRAGMA synchronous").fetchone()
    assert got == level  # 1 = NORMAL, 2 = FULL


def test_a_future_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    SqliteStorage(path).close()
    with sqlite3.connect(path) as con:
        con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StorageError, match="newer tunery"):
        SqliteStorage(path)


def test_another_programs_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "optuna.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE trials (id INTEGER)")
    with pytest.raises(StorageError, match="another program"):
        SqliteStorage(path)
    with sqlite3.connect(path) as con:
        tables = [row[0] for row in con.execute("SELECT name FROM sqlite_master")]
    assert tables == ["trials"]


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database, just some text " * 100)
    with pytest.raises(StorageError, match=r"notes\.db"):
        SqliteStorage(path)


def test_two_stores_on_one_file_see_each_others_trials(tmp_path: Path) -> None:
    writer, reader = SqliteStorage(tmp_path / "t.db"), SqliteStorage(tmp_path / "t.db")
    study_id = writer.open_study("s", direction="maximize", seed=0, metric="m").study_id
    first = writer.create_trial(study_id, round=1, sample_id=0, params={"x": 1}).trial_id
    assert [t.state for t in reader.get_all_trials(study_id)] == [TrialState.RUNNING]
    writer.finish_trial(first, state=TrialState.COMPLETE, value=2.0)
    writer.create_trial(study_id, round=1, sample_id=1, params={"x": 2})
    assert [t.state for t in reader.get_all_trials(study_id)] == [
        TrialState.COMPLETE,
        TrialState.RUNNING,
    ]
    assert reader.get_all_trials(study_id)[0].value == 2.0


def test_a_pickled_store_reopens_the_same_file(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "t.db", durable=True, timeout=5)
    store.open_study("s", direction="minimize", seed=1, metric="loss")
    copy = pickle.loads(pickle.dumps(store))
    assert isinstance(copy, SqliteStorage)
    assert (copy.path, copy.durable, copy.timeout) == (store.path, True, 5.0)
    assert copy.get_study("s") == store.get_study("s")


def test_a_writer_waits_for_another_connections_lock_instead_of_failing(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "t.db")
    study_id = store.open_study("s", direction="maximize", seed=0, metric="m").study_id
    blocker = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: blocker.execute("COMMIT"))
    start = time.perf_counter()
    release.start()
    store.add_event(study_id, "pause")
    waited = time.perf_counter() - start
    release.join()
    blocker.close()
    assert waited >= 0.25
    assert [event.kind for event in store.get_events(study_id)] == ["pause"]


def test_a_lock_held_past_the_timeout_is_a_storage_error(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "t.db", timeout=0.05)
    study_id = store.open_study("s", direction="maximize", seed=0, metric="m").study_id
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageError, match="write lock"):
            store.add_event(study_id, "pause")
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    store.add_event(study_id, "resume")  # the store is usable again
    assert [event.kind for event in store.get_events(study_id)] == ["resume"]


EVENT_WRITER = """
import sys
from tunery.storage import SqliteStorage
store = SqliteStorage(sys.argv[1])
study_id = store.get_study("s").study_id
i = 0
while i % 20 or not any(e.kind == "stop" for e in store.get_events(study_id)):
    store.add_event(study_id, "nudge", {"i": i, "writer": sys.argv[2]})
    i += 1
"""


def test_processes_writing_at_once_never_see_database_is_locked(tmp_path: Path) -> None:
    """Two processes add events while this one runs trials; nothing fails, nothing is lost."""
    path = tmp_path / "t.db"
    store = SqliteStorage(path)
    study_id = store.open_study("s", direction="maximize", seed=0, metric="m").study_id
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", EVENT_WRITER, str(path), name], stderr=subprocess.PIPE
        )
        for name in ("a", "b")
    ]
    while len({e.payload["writer"] for e in store.get_events(study_id)}) < 2:
        time.sleep(0.005)  # both writers are writing from here on, until they see "stop"
    for number in range(200):
        trial_id = store.create_trial(study_id, round=1, sample_id=number, params={}).trial_id
        store.report(trial_id, 1, {"m": 1.0})
        store.finish_trial(trial_id, state=TrialState.COMPLETE, value=1.0)
    store.add_event(study_id, "stop")
    errors = [writer.communicate(timeout=60)[1].decode() for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], errors
    written: dict[str, list[int]] = {"a": [], "b": []}
    for event in store.get_events(study_id):
        if event.kind == "nudge":
            written[event.payload["writer"]].append(event.payload["i"])
    for indices in written.values():
        assert indices == list(range(len(indices)))  # in order, none lost
        assert len(indices) >= 20
    assert len(store.get_all_trials(study_id, states=[TrialState.COMPLETE])) == 200


# -- the writer lock ---------------------------------------------------------------------------


def test_the_writer_lock_stays_out_of_sight(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "t.db")
    study_id = store.open_study("s", direction="maximize", seed=0, metric="m").study_id
    assert not (tmp_path / ".t.db.locks").exists()  # a reader leaves nothing behind
    store.claim_study(study_id)
    store.finish_trial(
        store.create_trial(study_id, round=1, sample_id=0, params={}).trial_id,
        state=TrialState.COMPLETE,
        value=1.0,
    )
    visible = {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")}
    assert visible <= {"t.db", "t.db-wal", "t.db-shm"}
    assert [p.name for p in (tmp_path / ".t.db.locks").iterdir()] == [f"study{study_id}.lock"]
    store.close()


def test_a_second_writer_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    first, second = SqliteStorage(tmp_path / "t.db"), SqliteStorage(tmp_path / "t.db")
    study_id = first.open_study("s", direction="maximize", seed=0, metric="m").study_id
    first.claim_study(study_id)
    with pytest.raises(StorageError, match=r"\.t\.db\.locks"):
        second.claim_study(study_id)
    first.close()
    second.claim_study(study_id)
    second.close()


HOLD_LOCK = """
import sys, time
from tunery.storage import SqliteStorage
store = SqliteStorage(sys.argv[1])
store.claim_study(store.open_study("s", direction="maximize", seed=0, metric="m").study_id)
print("held", flush=True)
time.sleep(120)
"""


def test_a_killed_writers_lock_is_released(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        store = SqliteStorage(db)
        study_id = store.open_study("s", direction="maximize", seed=0, metric="m").study_id
        with pytest.raises(StorageError, match="another process"):
            store.claim_study(study_id)
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    store.claim_study(study_id)  # the kernel dropped the dead process's flock
    store.close()


def test_a_version_1_file_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = SqliteStorage(path)
    study_id = store.open_study("s", direction="maximize", seed=0, metric="m").study_id
    trial_id = store.create_trial(study_id, round=1, sample_id=0, params={"x": 1}).trial_id
    store.close()
    with sqlite3.connect(path) as con:  # back to what tunery wrote at version 1
        con.execute("ALTER TABLE trials DROP COLUMN heartbeat")  # version 2
        con.execute("ALTER TABLE trials DROP COLUMN output")  # version 3
        con.execute("DROP INDEX curves_by_seq")  # version 4
        con.execute("ALTER TABLE curves DROP COLUMN seq")
        con.execute("ALTER TABLE trials DROP COLUMN epochs")  # version 5
        con.execute("UPDATE schema_version SET version = 1")
    con.close()

    reopened = SqliteStorage(path)
    trial = reopened.get_trial(trial_id)
    assert (trial.params, trial.heartbeat, trial.output) == ({"x": 1}, trial.started, None)
    reopened.heartbeat([trial_id], 2e9)
    assert reopened.get_trial(trial_id).heartbeat == 2e9
    reopened.finish_trial(trial_id, state=TrialState.COMPLETE, value=1.0, output="printed\n")
    assert reopened.get_trial(trial_id).output == "printed\n"
    assert pragma(reopened, "user_version") == 0  # the version lives in its own table
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    con.close()
    reopened.close()


def test_a_version_3_file_keeps_its_points_and_numbers_new_reports(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = SqliteStorage(path)
    study_id = store.open_study("s", direction="maximize", seed=0, metric="m").study_id
    trial_id = store.create_trial(study_id, round=1, sample_id=0, params={}).trial_id
    store.report(trial_id, 1, {"m": 0.5})
    store.close()
    with sqlite3.connect(path) as con:  # back to what tunery wrote at version 3
        con.execute("DROP INDEX curves_by_seq")
        con.execute("ALTER TABLE curves DROP COLUMN seq")
        con.execute("ALTER TABLE trials DROP COLUMN epochs")  # version 5
        con.execute("UPDATE schema_version SET version = 3")
    con.close()

    reopened = SqliteStorage(path)
    assert reopened.get_curves([trial_id]) == {trial_id: {1: {"m": 0.5}}}
    assert reopened.curve_points(study_id) == []  # older points have no place in the order
    reopened.report(trial_id, 2, {"m": 0.75})
    (point,) = reopened.curve_points(study_id)
    assert (point.epoch, point.metrics, point.seq) == (2, {"m": 0.75}, reopened.curve_cursor())
    reopened.close()


def test_a_finished_trial_keeps_its_epoch_count_and_a_version_4_file_counts_its_curves(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.db"
    store = SqliteStorage(path)
    study_id = store.open_study("s", direction="maximize", seed=0, metric="m").study_id
    ids = [store.create_trial(study_id, round=1, sample_id=i, params={}).trial_id for i in range(3)]
    for trial_id, epochs in zip(ids, (3, 2, 1), strict=True):
        for epoch in range(epochs):
            store.report(trial_id, epoch, {"m": 0.5})
    store.report(ids[0], 2, {"m": 0.7})  # a re-reported epoch counts once
    store.finish_trial(ids[0], state=TrialState.COMPLETE, value=0.7)
    store.finish_trial(ids[1], state=TrialState.PRUNED, value=0.5)
    store.close()
    with sqlite3.connect(path) as con:
        stored = con.execute("SELECT epochs FROM trials ORDER BY trial_id").fetchall()
    con.close()
    assert stored == [(3,), (2,), (None,)]  # the running one is counted when read

    again = SqliteStorage(path)
    assert [s.epochs for s in again.trial_summaries(study_id)] == [3, 2, 1]
    (failed,) = again.fail_running_trials(study_id, "its process died")
    assert failed.trial_id == ids[2]
    again.close()
    with sqlite3.connect(path) as con:
        assert con.execute(
            "SELECT epochs FROM trials WHERE trial_id = ?", (ids[2],)
        ).fetchall() == [(1,)]
        con.execute("ALTER TABLE trials DROP COLUMN epochs")  # back to what version 4 wrote
        con.execute("UPDATE schema_version SET version = 4")
    con.close()
    migrated = SqliteStorage(path)
    assert [s.epochs for s in migrated.trial_summaries(study_id)] == [3, 2, 1]  # counted
    migrated.close()
