"""Data store: the one SQLite file (`<data_dir>/assistant.db`) that conversations (tables `conv_`)
and the API's feedback (tables `api_`) share, and the feedback store itself.

WAL so readers never block the writer; one connection per store, guarded by the store's lock.

The seam for several API replicas: every process opens its database through `database_location`
(ASSISTANT_DATABASE_URL), and the two stores are used only through their methods (SessionStore:
create, exists, history, append, turn_count, close; ApiStore: add_feedback, feedback, close), in
plain SQL with no SQLite-only features besides the WAL pragma. Replicas behind a load balancer need
one shared database, because a conversation's next turn may reach another replica: PostgreSQL is the
one to use (server-side, transactional, one row per turn). Its implementation of the two classes is
not written yet; the URL scheme is where it plugs in.
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


def database_location(settings) -> Path:
    """The SQLite file sessions and feedback live in: ASSISTANT_DATABASE_URL (sqlite:///path) or
    <data_dir>/assistant.db. Other schemes are refused by name (a shared server store is not built)."""
    from assistant.schema import BackendError

    url = getattr(settings, "database_url", "") or ""
    if not url:
        return Path(settings.data_dir) / "assistant.db"
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    scheme = url.split(":", 1)[0]
    raise BackendError(f"ASSISTANT_DATABASE_URL: {scheme!r} is not supported; use sqlite:///<path> "
                       "(one shared database for several replicas: see the README, 'Several API replicas')")


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

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_db(self.path)
        self._db.executescript(_SCHEMA)
        self._db.commit()

    @classmethod
    def from_settings(cls, settings) -> "ApiStore":
        return cls(database_location(settings))

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
