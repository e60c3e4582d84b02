"""Evaluation stage, the question set: reading items, telling seed items from span items, labelling the
clauses that hold each gold quote, and the query a (multi-turn) item is searched with.

Seed items (`eval/testset.jsonl`: `gold_quotes`, `facts`, `refuse`, `turns`) are scored by recall of their
quotes and by facts, citations and refusals; span items (an outside set: `answer` is a gold span, no
`gold_quotes`) by the rule of `score_http.py`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from assistant.text import compact


def is_span_item(item: dict) -> bool:
    """An outside item: a gold `answer` span and no seed `gold_quotes`."""
    return "answer" in item and "gold_quotes" not in item


def relevant_clauses(clauses: Sequence, quotes: Sequence[str]) -> list[str]:
    """Clause ids holding each gold quote; a quote spanning a clause split yields the clauses holding its parts."""
    out: list[str] = []
    by_doc: dict[str, list] = defaultdict(list)
    for c in clauses:
        by_doc[c.doc_id].append(c)
    for quote in quotes:
        q = compact(quote)
        if not q:
            continue
        hits = [c.clause_id for c in clauses if q in compact(c.text)]
        if not hits:
            hits = _spanning(by_doc, q)
        out.extend(h for h in hits if h not in out)
    return out


def _spanning(by_doc: dict, q: str) -> list[str]:
    for doc_clauses in by_doc.values():
        texts = [compact(c.text) for c in doc_clauses]
        joined = "".join(texts)
        pos = joined.find(q)
        if pos < 0:
            continue
        end, start, ids = pos + len(q), 0, []
        for c, t in zip(doc_clauses, texts):
            if start < end and start + len(t) > pos:
                ids.append(c.clause_id)
            start += len(t)
        return ids
    return []


def load_questions(path: Path) -> list[dict]:
    """Test items from a JSONL file (blank lines skipped)."""
    items = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            items.append(json.loads(line))
    return items


def query_of(item: dict, regions: Sequence[str] = ()) -> str:
    """The standalone query searched for an item: the last turn resolved as the conversation does."""
    from assistant.conversation import resolve

    if item.get("turns"):
        turns = list(item["turns"])
        history: list[str] = []
        for t in turns[:-1]:
            history.append(resolve(t, history, regions))
        return resolve(turns[-1], history, regions)
    return item["question"]
