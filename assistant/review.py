"""Feedback review and regression items: what users rated, what staff turned into test items, the export.

Above the store, curated.py and evaluate/items; below the edges. Feedback keeps a copy of the turn it
rates (question and answer record) so a review outlives the session. Staff turn a feedback item into a
test item (the clauses that should answer it, or "should refuse"); `export` writes those and every
servable curated answer as eval/testset.jsonl items, so `assistant eval --questions` runs them. Gold
quotes are sentences of the cited clauses as the current index holds them (verbatim, so they are found).
`parse_testset` checks an uploaded test set, naming the first bad line; nothing is stored when one is bad.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Sequence

from assistant.curated import missing_clauses, quote_of
from assistant.schema import QueryError, UnknownRecordError
from assistant.store import Migration, TableStore

MAX_TESTSET_BYTES = 2 * 1024 * 1024
MAX_TESTSET_ITEMS = 2000


def record_feedback(store, sessions, session_id: str, turn: int, rating: str, comment: str = "") -> int:
    """Store a rating with a copy of the rated turn's question and answer (when the session still has it)."""
    kept = sessions.turn_record(session_id, turn)
    return store.add_feedback(session_id, turn, rating, comment, kept.message if kept else "", kept.answer if kept else None)


def feedback_view(row: dict) -> dict:
    """A feedback row as the console lists it: question, answer text, citations, source."""
    answer = row.get("answer") or {}
    return {
        "id": row["id"], "session_id": row["session_id"], "turn": row["turn"], "rating": row["rating"],
        "comment": row["comment"], "created_at": row["created_at"], "question": row.get("question") or "",
        "answer": answer.get("answer", ""), "refused": bool(answer.get("refused")), "source": answer.get("source", "retrieval"),
        "citations": [{k: c.get(k) for k in ("n", "clause_id", "doc_title", "section", "quote")} for c in answer.get("citations", [])],
    }


_TABLES = (
    Migration(1, """
CREATE TABLE IF NOT EXISTS review_items (
    id {id},
    question TEXT NOT NULL,
    clause_ids TEXT NOT NULL DEFAULT '[]',
    expected TEXT NOT NULL DEFAULT '',
    facts TEXT NOT NULL DEFAULT '[]',
    refuse INTEGER NOT NULL DEFAULT 0,
    feedback_id INTEGER,
    actor TEXT NOT NULL DEFAULT '',
    created_at {float} NOT NULL
)
"""),
)


@dataclass(frozen=True)
class RegressionItem:
    """A question staff turned into a regression test: the clauses that answer it, or that it must be refused."""

    id: int
    question: str
    clause_ids: tuple[str, ...]
    expected: str = ""  # the answer staff expect (helps pick the gold sentence of each clause)
    facts: tuple[str, ...] = ()
    refuse: bool = False
    feedback_id: int | None = None
    actor: str = ""
    created_at: float = 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "clause_ids": list(self.clause_ids), "facts": list(self.facts)}


class ReviewStore(TableStore):
    """Test items made from feedback (table review_items)."""

    component, migrations = "review", _TABLES

    def add(self, item: RegressionItem) -> int:
        with self.db.transaction() as tx:
            rows = tx.execute(
                "INSERT INTO review_items (question, clause_ids, expected, facts, refuse, feedback_id, actor, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (item.question, json.dumps(list(item.clause_ids), ensure_ascii=False), item.expected,
                 json.dumps(list(item.facts), ensure_ascii=False), int(item.refuse), item.feedback_id, item.actor, time.time()),
            ).fetchall()
        return int(rows[0][0])

    def all(self) -> list[RegressionItem]:
        rows = self.db.query("SELECT id, question, clause_ids, expected, facts, refuse, feedback_id, actor, created_at "
                             "FROM review_items ORDER BY id DESC")
        return [RegressionItem(int(r[0]), r[1], tuple(json.loads(r[2])), r[3], tuple(json.loads(r[4])), bool(r[5]), r[6], r[7], r[8])
                for r in rows]

    def delete(self, id: int) -> None:
        with self.db.transaction() as tx:
            if tx.execute("DELETE FROM review_items WHERE id = ?", (id,)).rowcount != 1:
                raise UnknownRecordError(f"unknown test item: {id}")

    def close(self) -> None:
        self.db.close()


def checked_item(index, question: str, clause_ids: Sequence[str], expected: str = "", facts: Sequence[str] = (),
                 refuse: bool = False, feedback_id: int | None = None, actor: str = "") -> RegressionItem:
    """A test item with its fields checked (QueryError naming an unknown clause, or a missing question/clause)."""
    question = (question or "").strip()
    if not question or len(question) > 1000:
        raise QueryError("question: must be 1–1000 characters")
    ids = tuple(dict.fromkeys(str(c).strip() for c in clause_ids if str(c).strip()))
    if not refuse and not ids:
        raise QueryError("clause_ids: name the clauses that answer the question, or mark it refuse")
    for cid in ids:
        if index.get(cid) is None:
            raise QueryError(f"clause_ids: unknown clause {cid!r} (not in the current index)")
    return RegressionItem(0, question, () if refuse else ids, (expected or "").strip(), tuple(f.strip() for f in facts if f.strip()),
                    bool(refuse), feedback_id, actor)


def export(curated: Sequence, items: Sequence[RegressionItem], index) -> list[dict]:
    """Curated answers (servable ones) and test items as eval/testset.jsonl items, in that order."""
    out = []
    for c in curated:
        if missing_clauses(c, index):
            continue
        quotes = [quote_of(index.get(cid).text, c.answer) for cid in c.clause_ids]
        out.append({"id": f"curated-{c.id}", "question": c.question, "gold_quotes": list(dict.fromkeys(quotes)),
                    "facts": [], "refuse": False, "tags": ["curated"]})
    for t in items:
        if t.refuse:
            out.append({"id": f"review-{t.id}", "question": t.question, "gold_quotes": [], "facts": list(t.facts),
                        "refuse": True, "tags": ["review"]})
            continue
        if any(index.get(cid) is None for cid in t.clause_ids):
            continue
        quotes = [quote_of(index.get(cid).text, t.expected or t.question) for cid in t.clause_ids]
        out.append({"id": f"review-{t.id}", "question": t.question, "gold_quotes": list(dict.fromkeys(quotes)),
                    "facts": list(t.facts), "refuse": False, "tags": ["review"]})
    return out


def to_jsonl(items: Sequence[dict]) -> str:
    return "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items)


def parse_testset(data: bytes, max_bytes: int = MAX_TESTSET_BYTES, max_items: int = MAX_TESTSET_ITEMS) -> list[dict]:
    """The items of an eval JSONL test set; QueryError naming the first bad line (or where a limit is passed)."""
    if len(data) > max_bytes:
        line = data[:max_bytes].count(b"\n") + 1
        raise QueryError(f"line {line}: the test set passes the size limit of {max_bytes} bytes here")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise QueryError(f"line {line}: not UTF-8 text") from exc
    items, ids = [], set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if len(items) >= max_items:
            raise QueryError(f"line {n}: the test set passes the limit of {max_items} items here")
        item = _checked_line(n, line)
        item.setdefault("id", f"line-{n}")
        if item["id"] in ids:
            raise QueryError(f"line {n}: id {item['id']!r} is used twice")
        ids.add(item["id"])
        items.append(item)
    if not items:
        raise QueryError("line 1: the test set holds no items")
    return items


def _checked_line(n: int, line: str) -> dict:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise QueryError(f"line {n}: not valid JSON ({exc.msg})") from exc
    if not isinstance(item, dict):
        raise QueryError(f"line {n}: each line must be a JSON object")
    turns = item.get("turns")
    if turns is not None and not (isinstance(turns, list) and turns and all(isinstance(t, str) and t.strip() for t in turns)):
        raise QueryError(f"line {n}: turns must be a non-empty list of strings")
    if turns is None and not (isinstance(item.get("question"), str) and item["question"].strip()):
        raise QueryError(f"line {n}: needs a question (or turns)")
    for key in ("gold_quotes", "facts", "tags"):
        value = item.get(key, [])
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise QueryError(f"line {n}: {key} must be a list of strings")
    if "refuse" in item and not isinstance(item["refuse"], bool):
        raise QueryError(f"line {n}: refuse must be true or false")
    if "answer" in item and not isinstance(item["answer"], str):
        raise QueryError(f"line {n}: answer must be a string")
    if "id" in item and not isinstance(item["id"], (str, int)):
        raise QueryError(f"line {n}: id must be a string")
    if "id" in item:
        item["id"] = str(item["id"])
    return item
