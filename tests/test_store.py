"""Data store: the engines behind one interface (SQLite, PostgreSQL), versioned migrations, feedback."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from assistant.schema import BackendError
from assistant.store import ApiStore, Migration, connect

LOG = Migration(1, """
CREATE TABLE demo_log (id {id}, note TEXT NOT NULL, at {float});
INSERT INTO demo_log (note, at) VALUES ('migrated', 1.5)
""")
EXTRA = Migration(2, "ALTER TABLE demo_log ADD COLUMN extra TEXT NOT NULL DEFAULT 'x'")


def test_replicas_starting_together_apply_each_migration_once(store_location):
    # no IF NOT EXISTS and an INSERT: a migration run twice would fail or leave two rows
    errors, dbs = [], []

    def start():
        try:
            dbs.append(connect(store_location, "demo", [LOG, EXTRA]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    db = dbs[0]
    assert db.query("SELECT note, at, extra FROM demo_log") == [("migrated", 1.5, "x")]
    assert db.query("SELECT version FROM store_schema WHERE component = 'demo' ORDER BY version") == [(1,), (2,)]
    for d in dbs:
        d.close()


def test_a_later_migration_is_applied_once_and_keeps_the_rows(store_location):
    db = connect(store_location, "demo", [LOG])
    with db.transaction() as tx:
        tx.execute("INSERT INTO demo_log (note, at) VALUES (?, ?)", ("kept", 2.0))
    db.close()
    db = connect(store_location, "demo", [LOG, EXTRA])
    assert db.query("SELECT note, extra FROM demo_log ORDER BY id") == [("migrated", "x"), ("kept", "x")]
    db.close()
    # an older program meeting the newer schema stops, naming why
    with pytest.raises(BackendError, match="demo tables are at schema version 2, newer than this program's 1"):
        connect(store_location, "demo", [LOG])


def test_a_failing_migration_changes_nothing(store_location):
    connect(store_location, "demo", [LOG]).close()
    broken = Migration(2, "CREATE TABLE demo_other (a TEXT); ALTER TABLE no_such_table ADD COLUMN b TEXT")
    with pytest.raises(Exception, match="no_such_table"):
        connect(store_location, "demo", [LOG, broken])
    db = connect(store_location, "demo", [LOG])
    assert "demo_other" not in db.tables()
    assert db.query("SELECT MAX(version) FROM store_schema WHERE component = 'demo'") == [(1,)]
    db.close()


def test_a_transaction_is_all_or_nothing(store_location):
    db = connect(store_location, "demo", [LOG])
    with pytest.raises(RuntimeError):
        with db.transaction() as tx:
            tx.execute("INSERT INTO demo_log (note, at) VALUES (?, ?)", ("lost", 3.0))
            raise RuntimeError("stop")
    assert [r[0] for r in db.query("SELECT note FROM demo_log")] == ["migrated"]
    db.close()


def test_feedback_newest_first(store_location):
    store = ApiStore(store_location)
    first = store.add_feedback("s1", 1, "up")
    second = store.add_feedback("s1", 2, "down", "不是我问的地区 100%")
    assert second > first
    rows = ApiStore(store_location).feedback()  # another replica's view
    assert [(r["id"], r["rating"], r["comment"]) for r in rows] == [(second, "down", "不是我问的地区 100%"), (first, "up", "")]
    assert rows[0]["created_at"] >= rows[1]["created_at"] > 1.7e9  # a real timestamp, not a float4
    assert store.feedback(limit=1)[0]["id"] == second
    assert store.db.tables() == {"api_feedback", "store_schema"}
    store.close()


def test_a_database_made_before_migrations_is_adopted(tmp_path):
    """A data folder from before store_schema existed: the same tables, made by CREATE TABLE IF NOT
    EXISTS. Opening it records version 1 and keeps every row."""
    from assistant.conversation import SessionStore

    path = tmp_path / "assistant.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE conv_sessions (id TEXT PRIMARY KEY, created_at REAL, updated_at REAL);
        CREATE TABLE conv_turns (session_id TEXT, turn INTEGER, message TEXT, rewritten_query TEXT, answer TEXT,
            created_at REAL, PRIMARY KEY (session_id, turn));
        CREATE TABLE api_feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, turn INTEGER NOT NULL,
            rating TEXT NOT NULL CHECK (rating IN ('up', 'down')), comment TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL);
        INSERT INTO conv_sessions VALUES ('abc', 4102444800, 4102444800);
        INSERT INTO conv_turns VALUES ('abc', 1, '问', '问', '{}', 4102444800);
        INSERT INTO api_feedback (session_id, turn, rating, created_at) VALUES ('abc', 1, 'up', 1.0);
    """)
    old.commit()
    old.close()
    sessions = SessionStore(path, clock=lambda: 4102444800.0)
    assert [t.message for t in sessions.history("abc")] == ["问"]
    assert sessions.append("abc", "再问", "再问", {}) == 2
    assert [r["session_id"] for r in ApiStore(path).feedback()] == ["abc"]


def test_an_unreachable_postgresql_is_named_without_its_password():
    with pytest.raises(BackendError) as caught:
        ApiStore("postgresql://staff:s3cretpw@127.0.0.1:1/assistant")
    message = str(caught.value)
    assert "PostgreSQL at staff@127.0.0.1:1/assistant" in message and "s3cretpw" not in message


def test_postgresql_connections_lost_are_replaced(database_url):
    """A server restart (here: every connection of the store killed) costs no request: the pool
    checks a connection before lending it and opens a new one."""
    import psycopg

    store = ApiStore(database_url)
    store.add_feedback("s", 1, "up")
    with psycopg.connect(database_url, autocommit=True) as admin:
        killed = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'").fetchall()
    assert killed and all(ok for (ok,) in killed)
    assert [r["turn"] for r in store.feedback()] == [1]
    store.close()


def test_sqlite_never_imports_psycopg():
    import subprocess
    import sys

    code = ("import sys; from assistant.conversation import SessionStore; from assistant.store import ApiStore; "
            "SessionStore(':memory:'); ApiStore(':memory:'); print('psycopg' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
