"""Service store: the SQLite data the API keeps (feedback for staff review), in settings.data_dir.

One file (`assistant.db`), WAL so readers never block the writer; every table of this edge is
prefixed `api_` so it shares the file with the conversation store without clashing.
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


class ApiStore:
    """Thread-safe access to the API's tables in `<data_dir>/assistant.db`."""

    def __init__(self, data_dir: Path):
        path = Path(data_dir)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path / "assistant.db"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
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
