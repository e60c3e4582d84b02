"""Data store: the one database that conversations (tables `conv_`), the API's feedback (`api_`)
and, later, the staff's work share; and the feedback store itself.

Two engines behind one small interface, `Database` (one file each, like backends/):

- `sqlite.py`: one file, `<data_dir>/assistant.db` by default. One machine; WAL, so readers never
  block the writer.
- `postgres.py`: psycopg 3 with a connection pool. The one to use for several API replicas behind a
  load balancer, because a conversation's next turn may reach another replica.

ASSISTANT_DATABASE_URL chooses: empty or `sqlite:///path` → SQLite, `postgresql://…` → PostgreSQL.

A store (SessionStore, ApiStore, …) owns a *component*: tables named with its prefix and its
migrations, numbered from 1. `connect(location, component, migrations)` opens the database and
applies the migrations it has not seen yet, in order, in one transaction that holds the schema lock
(SQLite: the write lock; PostgreSQL: an advisory lock), so replicas that start together apply each
migration once; `store_schema` records which ran. A migration is plain SQL written once for both
engines: `{id}` (an auto-numbered primary key) and `{float}` (a double) are the only words that differ.
Statements are separated by ";" (none inside a literal) and use `?` placeholders. A new table is one
more migration of its store; nothing here or in the engines changes.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from assistant.schema import BackendError

_POSTGRES = ("postgresql://", "postgres://")
_SQLITE = "sqlite:///"

_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS store_schema (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_at {float} NOT NULL,
    PRIMARY KEY (component, version)
)"""


@dataclass(frozen=True)
class Migration:
    """One step of a component's schema: `version` (1, 2, …) and its SQL."""

    version: int
    sql: str

    def statements(self, types: dict[str, str]) -> list[str]:
        """The SQL statements in one engine's words."""
        return [s.strip() for s in _spelled(self.sql, types).split(";") if s.strip()]


def _spelled(sql: str, types: dict[str, str]) -> str:
    for word, spelled in types.items():
        sql = sql.replace("{" + word + "}", spelled)
    return sql


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> tuple | None: ...

    def fetchall(self) -> list[tuple]: ...


class Transaction(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...


class Database:
    """One database as a store uses it: `query` (one read), `transaction` (writes, all or nothing;
    yields something with `execute(sql, params)` → cursor), `tables`, `close`. Engines fill these in."""

    engine = ""
    types: dict[str, str] = {}

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[Transaction]:
        raise NotImplementedError

    def tables(self) -> set[str]:
        """The names of the tables the database holds (the engine's own excepted)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _schema_lock(self, tx: Transaction) -> None:
        """Hold, until the transaction ends, the lock that serialises migrations across processes."""

    def migrate(self, component: str, migrations: Sequence[Migration]) -> int:
        """Apply the component's migrations the database has not seen, in order; returns its version.
        A database already past this program's last migration is refused (a newer release wrote it)."""
        latest = max((m.version for m in migrations), default=0)
        with self.transaction() as tx:
            self._schema_lock(tx)
            tx.execute(_spelled(_SCHEMA_TABLE, self.types))
            row = tx.execute("SELECT MAX(version) FROM store_schema WHERE component = ?", (component,)).fetchone()
            current = int(row[0] or 0) if row else 0
            if current > latest:
                raise BackendError(f"the database's {component} tables are at schema version {current}, newer than "
                                   f"this program's {latest}: run the newer release")
            for m in sorted(migrations, key=lambda m: m.version):
                if m.version <= current:
                    continue
                for statement in m.statements(self.types):
                    tx.execute(statement)
                tx.execute("INSERT INTO store_schema (component, version, applied_at) VALUES (?, ?, ?)",
                           (component, m.version, time.time()))
        return max(current, latest)


def database_location(settings) -> Path | str:
    """Where sessions and feedback live: ASSISTANT_DATABASE_URL (`sqlite:///path` → that file,
    `postgresql://…` → the URL) or <data_dir>/assistant.db. Other schemes are refused by name."""
    url = getattr(settings, "database_url", "") or ""
    if not url:
        return Path(settings.data_dir) / "assistant.db"
    if url.startswith(_SQLITE):
        return Path(url[len(_SQLITE):])
    if url.startswith(_POSTGRES):
        return url
    scheme = url.split(":", 1)[0]
    raise BackendError(f"ASSISTANT_DATABASE_URL: {scheme!r} is not supported; use sqlite:///<path> (one machine) "
                       "or postgresql://user:password@host:port/database (several replicas)")


def open_database(location: Path | str) -> Database:
    """The database at `location`: a SQLite path (or sqlite:///path) or a postgresql:// URL."""
    text = str(location)
    if text.startswith(_POSTGRES):
        from assistant.store.postgres import PostgresDatabase

        return PostgresDatabase(text)
    from assistant.store.sqlite import SqliteDatabase

    return SqliteDatabase(text[len(_SQLITE):] if text.startswith(_SQLITE) else text)


def connect(location: Path | str, component: str, migrations: Sequence[Migration]) -> Database:
    """The database at `location` with the component's tables brought up to its last migration."""
    db = open_database(location)
    try:
        db.migrate(component, migrations)
    except BaseException:
        db.close()
        raise
    return db


class TableStore:
    """A component's tables in the database at `location` (a SQLite path or a postgresql:// URL),
    migrated on opening. A store names its `component` and `migrations`; its methods use `self.db`."""

    component: str = ""
    migrations: Sequence[Migration] = ()

    def __init__(self, location: Path | str):
        self.location = location
        self.db = connect(location, self.component, self.migrations)

    @classmethod
    def from_settings(cls, settings):
        """The store in the database the settings name (database_location)."""
        return cls(database_location(settings))


_FEEDBACK = (
    Migration(1, """
CREATE TABLE IF NOT EXISTS api_feedback (
    id {id},
    session_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT NOT NULL DEFAULT '',
    created_at {float} NOT NULL
);
CREATE INDEX IF NOT EXISTS api_feedback_session ON api_feedback (session_id, turn)
"""),
    # what was asked and answered, kept with the rating: a session expires, the staff's review must not
    Migration(2, """
ALTER TABLE api_feedback ADD COLUMN question TEXT NOT NULL DEFAULT '';
ALTER TABLE api_feedback ADD COLUMN answer TEXT NOT NULL DEFAULT '{}'
"""),
)
_FEEDBACK_COLUMNS = ("id", "session_id", "turn", "rating", "comment", "created_at", "question", "answer")


class ApiStore(TableStore):
    """The API's tables (feedback), thread-safe, in the database the settings name."""

    component, migrations = "api", _FEEDBACK

    def add_feedback(self, session_id: str, turn: int, rating: str, comment: str = "", question: str = "",
                     answer: dict | None = None) -> int:
        """Store one thumbs up/down (with an optional comment, and the turn's question and answer record); returns its id."""
        import json

        with self.db.transaction() as tx:
            rows = tx.execute(
                "INSERT INTO api_feedback (session_id, turn, rating, comment, created_at, question, answer) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (session_id, turn, rating, comment, time.time(), question, json.dumps(answer or {}, ensure_ascii=False)),
            ).fetchall()
        return int(rows[0][0])

    def feedback(self, limit: int = 100, rating: str = "", since: float | None = None, until: float | None = None,
                 commented: bool = False, id: int | None = None) -> list[dict]:
        """The latest feedback rows, newest first, filtered by rating, time ([since, until)), comment or id."""
        import json

        where, params = [], []
        for clause, value in (("rating = ?", rating or None), ("created_at >= ?", since), ("created_at < ?", until),
                              ("id = ?", id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if commented:
            where.append("comment <> ''")
        sql = f"SELECT {', '.join(_FEEDBACK_COLUMNS)} FROM api_feedback"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
        rows = [dict(zip(_FEEDBACK_COLUMNS, r)) for r in self.db.query(sql, (*params, limit))]
        for r in rows:
            r["answer"] = json.loads(r["answer"] or "{}")
        return rows

    def close(self) -> None:
        """Close the connection (or pool)."""
        self.db.close()
