"""The schema of an SQLite store: its tables, its version, and the migrations between versions.

A new file gets the current schema. A file of an older version is migrated in place when it is
opened, one version at a time, each step one transaction (so a crash mid-way leaves a file of the
step before, migrated again next time). A file of a newer version is refused: this tunery would
not know what the newer columns mean.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tunery._exceptions import StorageError

__all__ = ["SCHEMA_VERSION", "check_schema", "require_store"]

SCHEMA_VERSION = 5

# A new file gets the current version's tables; _MIGRATIONS bring older files to them.
_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version SELECT {version} WHERE NOT EXISTS (SELECT 1 FROM schema_version);
CREATE TABLE IF NOT EXISTS studies (
    study_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    direction TEXT NOT NULL,
    seed INTEGER NOT NULL,
    metric TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
    study_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    space TEXT NOT NULL,
    box TEXT,
    sampler TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (study_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trials (
    trial_id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    sample_id INTEGER,
    round INTEGER NOT NULL,
    params TEXT NOT NULL,
    state INTEGER NOT NULL,
    value REAL,
    error TEXT,
    interrupted INTEGER NOT NULL DEFAULT 0,
    started REAL NOT NULL,
    finished REAL,
    parent_number INTEGER,
    parent_epoch INTEGER,
    heartbeat REAL,
    output TEXT,
    epochs INTEGER,
    UNIQUE (study_id, number)
);
CREATE TABLE IF NOT EXISTS curves (
    trial_id INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    seq INTEGER,
    PRIMARY KEY (trial_id, epoch)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS curves_by_seq ON curves (seq);
CREATE TABLE IF NOT EXISTS user_attrs (
    trial_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (trial_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    trial_id INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (trial_id, epoch)
);
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL,
    trial_number INTEGER,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    applied REAL
);
CREATE INDEX IF NOT EXISTS events_by_study ON events (study_id, applied);
COMMIT;
"""


# version -> the statements that turn a file of the version before into this version.
_MIGRATIONS: dict[int, str] = {
    # 2: a RUNNING trial's last sign of life (NULL reads as its start time).
    2: "ALTER TABLE trials ADD COLUMN heartbeat REAL",
    # 3: the tail of what the trial printed in a pool worker.
    3: "ALTER TABLE trials ADD COLUMN output TEXT",
    # 4: each report's place in the store's order of reports, so that a reader (the dashboard)
    # asks for the points reported since it last looked. Older points keep NULL: before any cursor.
    4: "ALTER TABLE curves ADD COLUMN seq INTEGER;\nCREATE INDEX curves_by_seq ON curves (seq)",
    # 5: a finished trial's number of reported epochs, counted once when it finishes, so that a
    # reader of 50,000 trials' summaries does not count 50,000 curves. NULL (a RUNNING trial, or
    # one finished before version 5) reads as a count of its curve.
    5: "ALTER TABLE trials ADD COLUMN epochs INTEGER",
}


def require_store(con: sqlite3.Connection, path: Path) -> None:
    """Refuse, by reading only, a file that is not a tunery store: an empty one, another
    program's SQLite file, or not SQLite at all (``StorageError``)."""
    try:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{path}: is not a tunery store ({exc})") from None
    if not tables:
        raise StorageError(f"{path}: is an empty file, not a tunery store")
    if "schema_version" not in tables:
        raise StorageError(f"{path}: is an SQLite file of another program, not a tunery store")


def check_schema(con: sqlite3.Connection, path: Path) -> None:
    """Give a new file the schema, migrate an older one, refuse a newer one or a foreign one."""
    tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if tables and "schema_version" not in tables:
        raise StorageError(f"{path}: is an SQLite file of another program, not a tunery store")
    if "schema_version" not in tables or not {"studies", "trials", "events"} <= tables:
        con.executescript(_SCHEMA.format(version=SCHEMA_VERSION))
    version = _version(con)
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"{path}: written by a newer tunery (schema version {version}); "
            f"this tunery reads version {SCHEMA_VERSION}. Upgrade tunery."
        )
    for step in range(version + 1, SCHEMA_VERSION + 1):
        _migrate(con, step)


def _version(con: sqlite3.Connection) -> int:
    (version,) = con.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(version)


def _migrate(con: sqlite3.Connection, step: int) -> None:
    con.execute("BEGIN IMMEDIATE")
    try:
        if _version(con) < step:  # another process may have migrated it while we waited
            for statement in _MIGRATIONS[step].strip().split(";\n"):
                if statement.strip():
                    con.execute(statement)
            con.execute("UPDATE schema_version SET version = ?", (step,))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
