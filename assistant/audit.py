"""Audit log: every admin action with its time, actor and target, in the store's database.

Below the edges (the console's routes write here after each action, and on each sign-in attempt);
above the store. A failed sign-in is recorded with the client's address, never with the token it tried.
Entries are only ever added: there is no update or delete.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from assistant.store import Migration, TableStore

_TABLES = (
    Migration(1, """
CREATE TABLE IF NOT EXISTS audit_log (
    id {id},
    at {float} NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    ok INTEGER NOT NULL DEFAULT 1,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at)
"""),
)

MAX_LIMIT = 1000


@dataclass(frozen=True)
class Entry:
    """One recorded action: `ok` False for a refused one (a wrong token)."""

    id: int
    at: float
    actor: str
    action: str
    target: str
    ok: bool
    detail: dict

    def to_dict(self) -> dict:
        return asdict(self)


class AuditStore(TableStore):
    """The audit log (table audit_log): append and read, newest first."""

    component, migrations = "audit", _TABLES

    def __init__(self, location: Path | str, clock=time.time):
        super().__init__(location)
        self.clock = clock

    def record(self, actor: str, action: str, target: str = "", ok: bool = True, **detail) -> int:
        """Add one entry; returns its id."""
        with self.db.transaction() as tx:
            rows = tx.execute(
                "INSERT INTO audit_log (at, actor, action, target, ok, detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (self.clock(), actor or "?", action, str(target or "")[:500], 1 if ok else 0,
                 json.dumps(detail, ensure_ascii=False, default=str)),
            ).fetchall()
        return int(rows[0][0])

    def entries(self, limit: int = 200, action: str = "", actor: str = "") -> list[Entry]:
        """The latest entries, newest first, optionally of one action (or action prefix "curated.") or actor."""
        where, params = [], []
        if action:
            where.append("action LIKE ?")
            params.append(action.replace("%", "") + ("%" if action.endswith(".") else ""))
        if actor:
            where.append("actor = ?")
            params.append(actor)
        sql = "SELECT id, at, actor, action, target, ok, detail FROM audit_log"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
        rows = self.db.query(sql, (*params, max(1, min(int(limit), MAX_LIMIT))))
        return [Entry(int(r[0]), r[1], r[2], r[3], r[4], bool(r[5]), json.loads(r[6] or "{}")) for r in rows]

    def close(self) -> None:
        self.db.close()
