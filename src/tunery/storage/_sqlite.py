"""A store in one SQLite file (stdlib ``sqlite3``), shared safely by processes.

Why it does not say "database is locked":

- WAL journal: readers never block the writer and the writer never blocks readers;
- every write is one short ``BEGIN IMMEDIATE`` transaction, so two writers queue on the write lock
  up front instead of deadlocking when a read lock would have to be upgraded;
- a busy timeout (30 s by default) makes a second process (the panda control CLI adding an event)
  wait for that lock instead of failing.

One writer: the process that runs a study holds an advisory lock (``flock``) on a file in a hidden
folder beside the database, ``.<db name>.locks/study<id>.lock`` (``_lock.py``), so that nothing but
the database and its ``-wal`` and ``-shm`` files is in the user's way. The kernel drops the lock
when the process ends, even by SIGKILL, so a crashed writer never blocks the study; a second live
process trying to run the same study gets a ``StorageError`` instead of failing the first one's
running trials. The schema and its migrations live in ``_schema.py``.

Durability: with ``synchronous=NORMAL`` (the default) a committed trial survives the process being
killed (SIGKILL, OOM, Ctrl-C); ``durable=True`` (URL ``?durable=1``) selects ``synchronous=FULL``,
which also survives a power loss, at the price of an fsync per commit.

Speed: finished trials never change, so the store caches their records and reads only newer or
running trials again. Params and user attributes are compact JSON; a trial's curve is one row per
epoch holding a JSON object of its metrics (merged with ``json_patch`` if an epoch is reported
twice).
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Any

from tunery._exceptions import ConfigError, StorageError
from tunery.records import (
    Curve,
    Event,
    FrozenTrial,
    RoundRecord,
    StudyInfo,
    StudySummary,
    TrialState,
    decode_json,
    encode_json,
)
from tunery.storage._base import (
    BaseStorage,
    TrialEnd,
    check_epoch,
    check_event_args,
    check_metrics,
    check_open_args,
    not_running,
)
from tunery.storage._lock import lock_study, unlock
from tunery.storage._schema import SCHEMA_VERSION, check_schema
from tunery.storage._sqlite_rows import (
    COMPLETE,
    RUNNING,
    TRIAL_COLUMNS,
    decode_metrics,
    encode_metrics,
    pick_best,
    trial_record,
)

__all__ = ["SCHEMA_VERSION", "SqliteStorage"]


class SqliteStorage(BaseStorage):
    """Studies in one SQLite file. See the module docstring for locking and durability.

    Args:
        path: the database file; its folder is created if missing.
        durable: ``synchronous=FULL`` (survive power loss) instead of ``NORMAL`` (survive a crash).
        timeout: seconds a write waits for another process's write lock before ``StorageError``.
    """

    def __init__(
        self, path: str | PathLike[str], *, durable: bool = False, timeout: float = 30.0
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigError("timeout", timeout, "a number of seconds > 0")
        self.path = Path(path)
        self.durable = bool(durable)
        self.timeout = float(timeout)
        self.url = f"sqlite:///{self.path}" + ("?durable=1" if self.durable else "")
        self._lock = threading.RLock()
        # study_id -> (watermark, records): every trial of the study with trial_id <= watermark
        # is finished (so immutable) and its record is cached. A new trial's id (max rowid + 1)
        # is above every existing id, so no trial can appear below a watermark later.
        self._finished: dict[int, tuple[int, list[FrozenTrial]]] = {}
        self._claims: dict[int, int] = {}  # study_id -> file descriptor holding its writer lock
        self._con = self._connect()

    def __reduce__(self) -> tuple[Any, ...]:
        """A pickled store reopens the same file (a connection cannot cross processes)."""
        return (_reopen, (str(self.path), self.durable, self.timeout))

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
            # A checkpoint fsyncs twice; every 1000 pages (the default) that is ~6 per 2,000 trials
            # and, on a busy disk, most of the run's time. Every 10000 pages (40 MB of WAL, cut back
            # to 64 MB at most after a checkpoint) it is one.
            con.execute("PRAGMA wal_autocheckpoint=10000")
            con.execute("PRAGMA journal_size_limit=67108864")
            check_schema(con, self.path)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"{self.path}: cannot be opened as a tunery store ({exc})") from exc
        return con

    def close(self) -> None:
        with self._lock:
            self._con.close()
            self._release_claims()

    def __del__(self) -> None:
        # Python 3.13 warns about connections left to the garbage collector; close ours quietly.
        con = getattr(self, "_con", None)
        if con is not None:
            con.close()
        if getattr(self, "_claims", None):
            self._release_claims()

    def _release_claims(self) -> None:
        for descriptor in self._claims.values():
            unlock(descriptor)
        self._claims.clear()

    def claim_study(self, study_id: int) -> None:
        if study_id in self._claims:
            return
        descriptor = lock_study(self.path, study_id)
        if descriptor is not None:
            self._claims[study_id] = descriptor

    # -- transactions --------------------------------------------------------------------------

    def _write(self) -> _WriteTransaction:
        """One short write transaction; it has committed when the ``with`` block ends."""
        return _WriteTransaction(self)

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several queries see one consistent state."""
        with self._lock:
            con = self._con
            con.execute("BEGIN")
            try:
                yield con
            finally:
                con.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._con.execute(sql, args).fetchall()

    # -- studies -------------------------------------------------------------------------------

    def open_study(self, name: str, *, direction: str, seed: int, metric: str) -> StudyInfo:
        check_open_args(name, direction, seed, metric)
        found = self.get_study(name)
        if found is not None:
            return found
        with self._write() as con:
            # OR IGNORE: another process may have created it since get_study looked.
            con.execute(
                "INSERT OR IGNORE INTO studies (name, direction, seed, metric, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, direction, seed, metric, time.time()),
            )
        created = self.get_study(name)
        if created is None:  # only if someone deleted it in between
            raise StorageError(f"{self.path}: study {name!r} vanished while being created")
        return created

    def get_study(self, name: str) -> StudyInfo | None:
        rows = self._query(
            "SELECT study_id, name, direction, seed, metric, created FROM studies WHERE name = ?",
            (name,),
        )
        return StudyInfo(*rows[0]) if rows else None

    def list_studies(self) -> list[StudySummary]:
        with self._snapshot() as con:
            studies = [
                StudyInfo(*row)
                for row in con.execute(
                    "SELECT study_id, name, direction, seed, metric, created FROM studies "
                    "ORDER BY study_id"
                )
            ]
            counts: dict[int, dict[TrialState, int]] = {study.study_id: {} for study in studies}
            for study_id, state, count in con.execute(
                "SELECT study_id, state, COUNT(*) FROM trials GROUP BY study_id, state"
            ):
                counts[study_id][TrialState(state)] = count
            extremes = {
                row[0]: row[1:]
                for row in con.execute(
                    "SELECT study_id, MAX(value), MIN(value) FROM trials WHERE state = ? "
                    "GROUP BY study_id",
                    (COMPLETE,),
                )
            }
        return [
            StudySummary(
                study,
                counts[study.study_id],
                pick_best(extremes.get(study.study_id), study.direction),
            )
            for study in studies
        ]

    def _check_study(self, con: sqlite3.Connection, study_id: int) -> None:
        if con.execute("SELECT 1 FROM studies WHERE study_id = ?", (study_id,)).fetchone() is None:
            raise StorageError(f"there is no study with id {study_id}")

    # -- rounds --------------------------------------------------------------------------------

    def add_round(
        self, study_id: int, *, space: dict[str, Any], box: dict[str, Any] | None, sampler: str
    ) -> RoundRecord:
        space_text = encode_json(space, "space")
        box_text = None if box is None else encode_json(box, "box")
        now = time.time()
        with self._write() as con:
            self._check_study(con, study_id)
            ((index,),) = con.execute(
                "INSERT INTO rounds (study_id, idx, space, box, sampler, created) "
                "SELECT ?, COALESCE(MAX(idx), 0) + 1, ?, ?, ?, ? FROM rounds WHERE study_id = ? "
                "RETURNING idx",
                (study_id, space_text, box_text, sampler, now, study_id),
            ).fetchall()
        return RoundRecord(
            index,
            decode_json(space_text),
            decode_json(box_text) if box_text else None,
            sampler,
            now,
        )

    def get_rounds(self, study_id: int) -> list[RoundRecord]:
        rows = self._query(
            "SELECT idx, space, box, sampler, created FROM rounds WHERE study_id = ? ORDER BY idx",
            (study_id,),
        )
        return [
            RoundRecord(
                idx, decode_json(space), None if box is None else decode_json(box), sampler, created
            )
            for idx, space, box, sampler, created in rows
        ]

    # -- trials --------------------------------------------------------------------------------

    def create_trial(
        self,
        study_id: int,
        *,
        round: int,
        sample_id: int | None,
        params: Mapping[str, Any],
        parent: tuple[int, int] | None = None,
    ) -> FrozenTrial:
        text = encode_json(dict(params), "params")
        now = time.time()
        columns = (sample_id, round, text, RUNNING, now, *(parent or (None, None)))
        with self._write() as con:
            ((number,),) = con.execute(
                "SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = ?", (study_id,)
            ).fetchall()
            # Two statements and lastrowid: RETURNING costs a third more per trial.
            trial_id = con.execute(
                "INSERT INTO trials (study_id, number, sample_id, round, params, state, started, "
                "parent_number, parent_epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (study_id, number, *columns),
            ).lastrowid
        if trial_id is None:  # an INSERT always sets it; this keeps the type checker informed
            raise StorageError(f"{self.path}: the new trial got no id")
        parent_number, parent_epoch = parent or (None, None)
        # The row as TRIAL_COLUMNS would read it back: no value, error or end yet; the start is
        # the last sign of life.
        row = (trial_id, number, sample_id, round, text, RUNNING, None, None, 0, now, None)
        return trial_record((*row, parent_number, parent_epoch, now, None), {}, {})

    def _raise_not_running(self, con: sqlite3.Connection, trial_id: int) -> None:
        row = con.execute("SELECT state FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()
        raise not_running(trial_id, None if row is None else TrialState(row[0]))

    def _insert_for_running(self, sql: str, values: tuple[Any, ...]) -> None:
        """Run an ``INSERT ... SELECT`` for the trial ``values[0]`` only while it is RUNNING.

        ``{running}`` in ``sql`` marks where the guard goes; checking and writing in one statement
        means a trial finished by another thread cannot gain rows after its end.
        """
        trial_id = values[0]
        guarded = sql.format(
            running="WHERE EXISTS (SELECT 1 FROM trials WHERE trial_id = ? AND state = ?)"
        )
        with self._write() as con:
            if not con.execute(guarded, (*values, trial_id, RUNNING)).rowcount:
                self._raise_not_running(con, trial_id)

    def _finish(self, trial_id: int, end: TrialEnd) -> float:
        now = time.time()
        ending = (int(end.state), end.value, end.error, int(end.interrupted), now, end.output)
        with self._write() as con:
            updated = con.execute(
                "UPDATE trials SET state = ?, value = ?, error = ?, interrupted = ?, finished = ?, "
                "output = ? WHERE trial_id = ? AND state = ?",
                (*ending, trial_id, RUNNING),
            ).rowcount
            if not updated:
                self._raise_not_running(con, trial_id)
        return now

    def fail_running_trials(
        self, study_id: int, error: str, *, stale_before: float | None = None
    ) -> list[FrozenTrial]:
        cut = math.inf if stale_before is None else stale_before
        with self._write() as con:
            ids = [
                row[0]
                for row in con.execute(
                    "SELECT trial_id FROM trials WHERE study_id = ? AND state = ? "
                    "AND COALESCE(heartbeat, started) < ?",
                    (study_id, RUNNING, cut),
                )
            ]
            con.executemany(
                "UPDATE trials SET state = ?, error = ?, interrupted = 1, finished = ? "
                "WHERE trial_id = ?",
                [(int(TrialState.FAILED), error, time.time(), trial_id) for trial_id in ids],
            )
        return [self.get_trial(trial_id) for trial_id in ids]

    def heartbeat(self, trial_ids: Iterable[int], now: float) -> None:
        rows = [(float(now), trial_id, RUNNING) for trial_id in trial_ids]
        if not rows:
            return
        with self._write() as con:
            con.executemany(
                "UPDATE trials SET heartbeat = ? WHERE trial_id = ? AND state = ?", rows
            )

    def get_trial(self, trial_id: int) -> FrozenTrial:
        records = self._load_trials("t.trial_id = ?", (trial_id,))
        if not records:
            raise StorageError(f"there is no trial with id {trial_id}")
        return records[0]

    def get_trial_id(self, study_id: int, number: int) -> int:
        rows = self._query(
            "SELECT trial_id FROM trials WHERE study_id = ? AND number = ?", (study_id, number)
        )
        if not rows:
            raise ConfigError("trial number", number, "the number of a trial of the study")
        return int(rows[0][0])

    def get_all_trials(
        self, study_id: int, *, states: Iterable[TrialState] | None = None
    ) -> list[FrozenTrial]:
        with self._lock:
            mark, cached = self._finished.get(study_id, (0, []))
            newer = self._load_trials("t.study_id = ? AND t.trial_id > ?", (study_id, mark))
            settled = 0
            while settled < len(newer) and newer[settled].state.is_finished():
                settled += 1
            if settled:
                cached = cached + newer[:settled]
                self._finished[study_id] = (cached[-1].trial_id, cached)
            records = cached + newer[settled:]
        if states is None:
            return records
        wanted = frozenset(states)
        return [record for record in records if record.state in wanted]

    def _load_trials(self, where: str, args: tuple[Any, ...]) -> list[FrozenTrial]:
        """Records of the trials matching ``where`` (over ``trials t``), in trial_id order."""
        with self._snapshot() as con:
            rows = con.execute(
                f"SELECT {TRIAL_COLUMNS} FROM trials t WHERE {where} ORDER BY t.trial_id", args
            ).fetchall()
            if not rows:
                return []
            curves: dict[int, Curve] = {}
            for trial_id, epoch, metrics in con.execute(
                f"SELECT c.trial_id, c.epoch, c.metrics FROM curves c JOIN trials t "
                f"ON c.trial_id = t.trial_id WHERE {where}",
                args,
            ):
                curves.setdefault(trial_id, {})[epoch] = decode_metrics(metrics)
            attrs: dict[int, dict[str, Any]] = {}
            for trial_id, key, value in con.execute(
                f"SELECT a.trial_id, a.key, a.value FROM user_attrs a JOIN trials t "
                f"ON a.trial_id = t.trial_id WHERE {where}",
                args,
            ):
                attrs.setdefault(trial_id, {})[key] = decode_json(value)
        return [trial_record(row, curves.get(row[0], {}), attrs.get(row[0], {})) for row in rows]

    def report(self, trial_id: int, epoch: int, metrics: Mapping[str, float]) -> None:
        check_epoch(epoch)
        text = encode_metrics(check_metrics(metrics))
        self._insert_for_running(
            "INSERT INTO curves (trial_id, epoch, metrics) SELECT ?, ?, ? {running} "
            "ON CONFLICT (trial_id, epoch) "
            "DO UPDATE SET metrics = json_patch(metrics, excluded.metrics)",
            (trial_id, epoch, text),
        )

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise ConfigError("user attr key", key, "a non-empty string")
        text = encode_json(value, f"user attr {key!r}")
        self._insert_for_running(
            "INSERT OR REPLACE INTO user_attrs (trial_id, key, value) SELECT ?, ?, ? {running}",
            (trial_id, key, text),
        )

    # -- checkpoints ---------------------------------------------------------------------------

    def save_checkpoint(self, trial_id: int, epoch: int, blob: bytes) -> None:
        check_epoch(epoch)
        if not isinstance(blob, bytes | bytearray | memoryview):
            raise ConfigError("checkpoint", type(blob).__name__, "bytes")
        self._insert_for_running(
            "INSERT OR REPLACE INTO checkpoints (trial_id, epoch, blob) SELECT ?, ?, ? {running}",
            (trial_id, epoch, bytes(blob)),
        )

    def load_checkpoint(self, trial_id: int, epoch: int | None = None) -> tuple[int, bytes] | None:
        if epoch is None:
            rows = self._query(
                "SELECT epoch, blob FROM checkpoints WHERE trial_id = ? "
                "ORDER BY epoch DESC LIMIT 1",
                (trial_id,),
            )
        else:
            rows = self._query(
                "SELECT epoch, blob FROM checkpoints WHERE trial_id = ? AND epoch = ?",
                (trial_id, check_epoch(epoch)),
            )
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def checkpoint_epochs(self, trial_id: int) -> list[int]:
        rows = self._query(
            "SELECT epoch FROM checkpoints WHERE trial_id = ? ORDER BY epoch", (trial_id,)
        )
        return [int(row[0]) for row in rows]

    # -- events --------------------------------------------------------------------------------

    def add_event(
        self,
        study_id: int,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        trial_number: int | None = None,
    ) -> Event:
        text = encode_json(check_event_args(kind, payload), "event payload")
        now = time.time()
        with self._write() as con:
            self._check_study(con, study_id)
            ((event_id,),) = con.execute(
                "INSERT INTO events (study_id, trial_number, kind, payload, created) "
                "VALUES (?, ?, ?, ?, ?) RETURNING event_id",
                (study_id, trial_number, kind, text, now),
            ).fetchall()
        return Event(event_id, study_id, trial_number, kind, decode_json(text), now)

    def get_events(self, study_id: int, *, pending: bool = True) -> list[Event]:
        where = "study_id = ? AND applied IS NULL" if pending else "study_id = ?"
        rows = self._query(
            "SELECT event_id, study_id, trial_number, kind, payload, created, applied FROM events "
            f"WHERE {where} ORDER BY event_id",
            (study_id,),
        )
        return [
            Event(event_id, sid, number, kind, decode_json(payload), created, applied)
            for event_id, sid, number, kind, payload, created, applied in rows
        ]

    def mark_event_applied(self, event_id: int) -> None:
        with self._write() as con:
            found = con.execute(
                "SELECT applied FROM events WHERE event_id = ?", (event_id,)
            ).fetchone()
            if found is None:
                raise StorageError(f"there is no event with id {event_id}")
            if found[0] is None:
                con.execute(
                    "UPDATE events SET applied = ? WHERE event_id = ?", (time.time(), event_id)
                )


class _WriteTransaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` under the store's lock (a class: cheaper than generators).

    IMMEDIATE takes the write lock up front, waiting up to the busy timeout for it; a deferred
    transaction that read first could fail to upgrade its lock without waiting.
    """

    __slots__ = ("_store",)

    def __init__(self, store: SqliteStorage) -> None:
        self._store = store

    def __enter__(self) -> sqlite3.Connection:
        store = self._store
        store._lock.acquire()
        try:
            store._con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            store._lock.release()
            raise StorageError(
                f"{store.path}: another process held the write lock for {store.timeout:g} s ({exc})"
            ) from exc
        return store._con

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        con = self._store._con
        try:
            if kind is not None:
                con.execute("ROLLBACK")
                return
            try:
                con.execute("COMMIT")
            except sqlite3.Error:
                # A failed COMMIT leaves the transaction open; every later BEGIN would fail.
                con.execute("ROLLBACK")
                raise
        finally:
            self._store._lock.release()


def _reopen(path: str, durable: bool, timeout: float) -> SqliteStorage:
    return SqliteStorage(path, durable=durable, timeout=timeout)
