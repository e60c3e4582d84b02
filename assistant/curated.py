"""Curated answers: staff-written answers served before retrieval for their question or a close paraphrase.

Above paraphrase.py (the match), answer/validity (citations) and the store; below pipeline.py, which asks
`CuratedAnswers.serve` first, and the edges. An answer is text with [n] markers citing the clause ids
picked for it (n = position in clause_ids, from 1). Its citations are built from the index at the
moment it is served, so they always show the current clause text; an answer citing a clause the live
index no longer holds is flagged (`missing`) and never served. The rows live in the store's database
(table `curated_answers`, component "curated"), so replicas share them.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import Sequence

from assistant.schema import Answer, Citation, QueryError, UnknownRecordError
from assistant.store import Migration, TableStore
from assistant.text import compact, split_sentences

MAX_QUESTION = 1000
MAX_ANSWER = 5000
MAX_CLAUSES = 20
_MARKER = re.compile(r"\[(\d+)\]")

_TABLES = (
    Migration(1, """
CREATE TABLE IF NOT EXISTS curated_answers (
    id {id},
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    clause_ids TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT '',
    created_at {float} NOT NULL,
    updated_at {float} NOT NULL
)
"""),
)


@dataclass(frozen=True)
class Curated:
    """One staff-written answer and the clauses it cites."""

    id: int
    question: str
    answer: str
    clause_ids: tuple[str, ...]
    note: str = ""
    actor: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "clause_ids": list(self.clause_ids)}


_COLUMNS = "id, question, answer, clause_ids, note, actor, created_at, updated_at"


def _row(r: tuple) -> Curated:
    return Curated(int(r[0]), r[1], r[2], tuple(json.loads(r[3] or "[]")), r[4] or "", r[5] or "", r[6], r[7])


class CuratedStore(TableStore):
    """The curated answers (table curated_answers) in the store's database; all or nothing per write."""

    component, migrations = "curated", _TABLES

    def add(self, question: str, answer: str, clause_ids: Sequence[str], note: str = "", actor: str = "") -> int:
        """Store a new curated answer; returns its id."""
        now = time.time()
        with self.db.transaction() as tx:
            rows = tx.execute(
                "INSERT INTO curated_answers (question, answer, clause_ids, note, actor, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (question, answer, json.dumps(list(clause_ids), ensure_ascii=False), note, actor, now, now),
            ).fetchall()
        return int(rows[0][0])

    def update(self, id: int, question: str, answer: str, clause_ids: Sequence[str], note: str = "", actor: str = "") -> None:
        """Replace a curated answer's fields (UnknownRecordError when there is none with that id)."""
        with self.db.transaction() as tx:
            done = tx.execute(
                "UPDATE curated_answers SET question = ?, answer = ?, clause_ids = ?, note = ?, actor = ?, updated_at = ? "
                "WHERE id = ?",
                (question, answer, json.dumps(list(clause_ids), ensure_ascii=False), note, actor, time.time(), id),
            ).rowcount
        if done != 1:
            raise UnknownRecordError(f"unknown curated answer: {id}")

    def delete(self, id: int) -> Curated:
        """Remove a curated answer and return what it was (UnknownRecordError when absent)."""
        with self.db.transaction() as tx:
            rows = tx.execute(f"SELECT {_COLUMNS} FROM curated_answers WHERE id = ?", (id,)).fetchall()
            if not rows:
                raise UnknownRecordError(f"unknown curated answer: {id}")
            tx.execute("DELETE FROM curated_answers WHERE id = ?", (id,))
        return _row(rows[0])

    def get(self, id: int) -> Curated:
        rows = self.db.query(f"SELECT {_COLUMNS} FROM curated_answers WHERE id = ?", (id,))
        if not rows:
            raise UnknownRecordError(f"unknown curated answer: {id}")
        return _row(rows[0])

    def all(self) -> list[Curated]:
        """Every curated answer, newest first."""
        return [_row(r) for r in self.db.query(f"SELECT {_COLUMNS} FROM curated_answers ORDER BY id DESC")]

    def close(self) -> None:
        self.db.close()


def checked(index, question: str, answer: str, clause_ids: Sequence[str]) -> tuple[str, str, tuple[str, ...]]:
    """The fields of a curated answer, or QueryError naming what is wrong (an unknown clause by its id)."""
    question, answer = (question or "").strip(), (answer or "").strip()
    if not question or len(question) > MAX_QUESTION:
        raise QueryError(f"question: must be 1–{MAX_QUESTION} characters")
    if not answer or len(answer) > MAX_ANSWER:
        raise QueryError(f"answer: must be 1–{MAX_ANSWER} characters")
    ids = tuple(dict.fromkeys(str(c).strip() for c in clause_ids if str(c).strip()))
    if not ids or len(ids) > MAX_CLAUSES:
        raise QueryError(f"clause_ids: cite 1–{MAX_CLAUSES} clauses")
    for cid in ids:
        if index.get(cid) is None:
            raise QueryError(f"clause_ids: unknown clause {cid!r} (not in the current index)")
    for n in _MARKER.findall(answer):
        if not 1 <= int(n) <= len(ids):
            raise QueryError(f"answer: marker [{n}] cites no clause (clause_ids has {len(ids)})")
    return question, answer, ids


def missing_clauses(item: Curated, index) -> list[str]:
    """The cited clause ids the index no longer holds (a re-index dropped them): such an answer is not served."""
    return [cid for cid in item.clause_ids if index.get(cid) is None]


def quote_of(clause_text: str, answer: str) -> str:
    """The sentence of a clause the answer leans on most (shared characters), else its first; a substring of it."""
    sentences = [s.strip() for s in split_sentences(clause_text) if s.strip()] or [clause_text]
    said = set(compact(answer))
    return max(sentences, key=lambda s: (len(set(compact(s)) & said), -sentences.index(s)))


def citations(item: Curated, index, today=None) -> tuple[Citation, ...]:
    """The answer's citations from the current clause texts and document records."""
    from assistant.validity import of_record

    records = {d.get("doc_id"): d for d in index.documents}
    out = []
    for n, cid in enumerate(item.clause_ids, 1):
        c = index.get(cid)
        record = records.get(c.doc_id)
        validity = of_record(record, today).to_dict() if record is not None else None
        out.append(Citation(n, c.clause_id, c.doc_id, c.doc_title, c.region, c.section, c.text, quote_of(c.text, item.answer),
                            1.0, (record or {}).get("issued") or None, validity))
    return tuple(out)


class CuratedAnswers:
    """The curated answers as the pipeline serves them: match a question, build the answer."""

    def __init__(self, store: CuratedStore):
        self.store = store
        self._vectors: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> "CuratedAnswers":
        return cls(CuratedStore.from_settings(settings))

    def _vectors_of(self, embedder, questions: list[str]):
        import numpy as np

        with self._lock:
            todo = [q for q in dict.fromkeys(questions) if (embedder.name, q) not in self._vectors]
            if todo:
                for q, v in zip(todo, embedder.encode(todo)):
                    self._vectors[(embedder.name, q)] = np.asarray(v, dtype=np.float32)
            return np.stack([self._vectors[(embedder.name, q)] for q in questions])

    def find(self, question: str, index, embedder, regions: Sequence[str] = ()):
        """The servable curated answer whose question the question is, or paraphrases closely, and its match."""
        from assistant.paraphrase import best_match, rule_for

        items = [c for c in self.store.all() if not missing_clauses(c, index)]
        if not items:
            return None, None
        vectors = self._vectors_of(embedder, [c.question for c in items])
        query_vec = embedder.encode([question])[0]
        found = best_match(question, items, [c.question for c in items], vectors, query_vec, rule_for(embedder.name), regions)
        return (found.key, found) if found is not None else (None, None)

    def serve(self, question: str, index, embedder, regions: Sequence[str] = (), today=None) -> Answer | None:
        """The curated answer for a question as an Answer with source "curated", or None (use retrieval)."""
        item, _ = self.find(question, index, embedder, regions)
        if item is None:
            return None
        return Answer(answer=item.answer, citations=citations(item, index, today), source="curated")

    def listing(self, index) -> list[dict]:
        """Every curated answer with the cited clauses the live index lacks (`missing`) and whether it is served."""
        out = []
        for c in self.store.all():
            missing = missing_clauses(c, index)
            out.append({**c.to_dict(), "missing": missing, "served": not missing})
        return out
