"""Data store: the one SQLite file (`<data_dir>/assistant.db`) that conversations (tables `conv_`)
and the API's feedback (tables `api_`) share, and the feedback store itself.

WAL so readers never block the writer; one connection per store, guarded by the store's lock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS api_feedback_session ON api_feedback (session_id, turn);
"""


def open_db(path: Path | str) -> sqlite3.Connection:
    """A connection to the shared SQLite file (created with its folder), usable across threads."""
    memory = str(path) == ":memory:"
    if not memory:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    if not memory:
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA busy_timeout=30000")
    return db


class ApiStore:
    """Thread-safe access to the API's tables in `<data_dir>/assistant.db`."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / "assistant.db"
        self._lock = threading.Lock()
        self._db = open_db(self.path)
        self._db.executescript(_SCHEMA)
        self._db.commit()

    def add_feedback(self, session_id: str, turn: int, rating: str, comment: str = "") -> int:
        """Store one thumbs up/down (with an optional comment); returns its row id."""
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO api_feedback (session_id, turn, rating, comment, created_at) VALUES (?, ?, ?, ?, ?)",
                (session_id, turn, rating, comment, time.time()),
            )
            self._db.commit()
            return int(cur.lastrowid)

    def feedback(self, limit: int = 100) -> list[dict]:
        """The latest feedback rows, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, session_id, turn, rating, comment, created_at FROM api_feedback ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        keys = ("id", "session_id", "turn", "rating", "comment", "created_at")
        return [dict(zip(keys, r)) for r in rows]

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
