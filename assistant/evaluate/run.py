"""Evaluation stage, the run: every retrieval mode (plus the naive baseline) searched for every item of a
question set over one index, and the answers asked, scored into per-item rows; `evaluate()` then writes the
report (see report.py).

Seed items are scored by recall of their gold quotes and by facts, citations and refusals; span items exactly
as `score_http.py` measures a running service: hit@k / MRR@10 of the clause texts, and whether the answer of a
fresh chat session contains the gold span.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from assistant.evaluate.baselines import NaiveIndex
from assistant.evaluate.cache import CachedEmbedder
from assistant.evaluate.items import is_span_item, load_questions, query_of, relevant_clauses
from assistant.evaluate.metrics import (
    KS,
    answer_contains,
    citation_precision,
    citation_recall,
    fact_accuracy,
    quote_ranking,
    quote_scores,
    span_rank,
)
from assistant.evaluate.report import build_report, write_report
from assistant.evaluate.sources import DEFAULT_CACHE, documents_from, open_index

MODES = ("bm25", "dense", "hybrid", "naive")


def evaluate(
    questions: Path,
    out_dir: Path,
    corpus: Path | None = None,
    modes: Sequence[str] = MODES,
    embedder_kind: str | None = None,
    answers: bool = True,
    settings=None,
    progress: bool = True,
    limit: int | None = None,
    cache_root: Path | None = DEFAULT_CACHE,
    backend: str | None = None,
    served: tuple | None = None,
    on_item=None,
) -> dict:
    """Run retrieval (every mode) and answer evaluation; write report.json, report.md and plots; return the report.

    `limit` keeps the first N questions. `cache_root` holds the cached index of a corpus that is not the service's
    own (None: an in-memory index, embedded on every run). `backend` (faiss|milvus, default the settings') is
    where the index is searched; a Milvus index of an outside corpus is a copy of the cached local one (the
    same clauses and vectors), so the two backends are compared on equal terms.

    `served` = (index, embedder, naive_cache path or None): evaluate that index as it is served (the console's
    runs: the live index, never rebuilt). `on_item(done, total)` is called after each item.
    """
    from assistant.config import Settings
    from assistant.embed import embedder_for
    from assistant.pipeline import regions_of

    settings = settings or Settings()
    if embedder_kind:
        settings = settings.model_copy(update={"embedder": embedder_kind})
    if backend:
        settings = settings.model_copy(update={"backend": backend})
    docs = documents_from(corpus, settings)
    if served is not None:
        index, embedder, naive_cache = served
        index_info = None
    else:
        embedder = embedder_for(settings)
        service = corpus is None and embedder_kind in (None, "sentence-transformers") and settings.embedder != "hash"
        index, index_info = open_index(docs, corpus, embedder, settings, service, cache_root, progress)
        naive_cache = Path(index_info["dir"] + "-naive.npz") if index_info else None
    searcher = Searcher(index, docs, CachedEmbedder(embedder), settings, modes, naive_cache)
    items = _labelled_items(questions, limit, index.clauses)
    regions = regions_of(index)
    with _assistant_for(settings, index, embedder, answers) as assistant:
        scores = _score_items(items, modes, searcher, regions, assistant, progress, on_item)
    meta = {"index_kind": index.manifest.get("dense_index"), "model": embedder.name, "backend": getattr(index, "backend", "faiss")}
    report = build_report(scores.rows, modes, scores.search_ms, scores.span_ms, answers, meta, index_info)
    write_report(report, scores.rows, Path(out_dir))
    return report


class Searcher:
    """The passages each mode returns for a query: the index's modes through one retriever whose query
    embedding every mode shares, and `naive` through the baseline's windows."""

    def __init__(self, index, docs, embedder: CachedEmbedder, settings, modes: Sequence[str], naive_cache: Path | None):
        from assistant.retrieve import Retriever

        self.retriever = Retriever.from_settings(index, embedder, settings)
        self.naive = NaiveIndex([d.text for d in docs], embedder, cache=naive_cache) if "naive" in modes else None

    def passages(self, mode: str, query: str) -> tuple[list[str], list]:
        """The top max(KS) passage texts, and the first three as the report shows them (ids, or window heads)."""
        kmax = max(KS)
        if mode == "naive":
            passages = self.naive.search(query, kmax)
            return passages, [p[:80] for p in passages[:3]]
        hits = self.retriever.search(query, k=kmax, mode=mode)
        return [h.clause.text for h in hits], [h.clause.clause_id for h in hits[:3]]

    def timed(self, mode: str, query: str, took_ms: dict) -> tuple[list[str], list]:
        """passages(), its milliseconds appended to took_ms[mode]."""
        t0 = time.perf_counter()
        out = self.passages(mode, query)
        took_ms[mode].append((time.perf_counter() - t0) * 1000)
        return out


def _labelled_items(questions: Path, limit: int | None, clauses) -> list[dict]:
    """The first `limit` items of the question file, each with the ids of the clauses holding its gold quotes."""
    items = load_questions(questions)
    if limit is not None:
        items = items[: max(limit, 0)]
    for item in items:
        item["relevant"] = relevant_clauses(clauses, item.get("gold_quotes", []))
    return items


@dataclass
class Scores:
    """A run's per-item rows and the search milliseconds per mode, of seed items and of span items."""

    rows: list[dict] = field(default_factory=list)
    search_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    span_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


@contextmanager
def _assistant_for(settings, index, embedder, answers: bool):
    """An Assistant over the run's index, its conversations kept in a temporary data folder; None without answers."""
    with tempfile.TemporaryDirectory(prefix="eval-") as tmp:
        if not answers:
            yield None
            return
        from assistant.pipeline import Assistant

        yield Assistant(settings.model_copy(update={"data_dir": Path(tmp)}), index=index, embedder=embedder)


def _score_items(items, modes: Sequence[str], searcher: Searcher, regions, assistant, progress: bool, on_item=None) -> Scores:
    """Every item searched in every mode and, with an assistant, answered; on_item(done, total) after each."""
    from tqdm import tqdm

    scores = Scores()
    for done, item in enumerate(tqdm(items, desc="evaluating", unit="q", disable=not progress, file=sys.stderr), 1):
        if on_item is not None:
            on_item(done - 1, len(items))
        if is_span_item(item):
            scores.rows.append(_span_row(item, modes, searcher, scores.span_ms, assistant))
        else:
            scores.rows.append(_seed_row(item, modes, searcher, scores.search_ms, regions, assistant))
    return scores


def _seed_row(item: dict, modes: Sequence[str], searcher: Searcher, search_ms: dict, regions, assistant) -> dict:
    """One seed item: recall/MRR/nDCG of its gold quotes per mode (answerable items with quotes) and, with an
    assistant, the answer's facts, citations and refusal."""
    row = {"id": item["id"], "tags": item.get("tags", []), "refuse": bool(item.get("refuse"))}
    query = query_of(item, regions)
    row["question"] = " / ".join(item["turns"]) if item.get("turns") else item["question"]
    row["query"] = query
    quotes = item.get("gold_quotes", [])
    row["gold_quotes"] = quotes
    if not row["refuse"] and quotes:
        row["retrieval"] = {}
        for mode in modes:
            passages, top = searcher.timed(mode, query, search_ms)
            m = quote_scores(quote_ranking(passages, quotes), len(quotes))
            m["top"] = top
            row["retrieval"][mode] = m
    if assistant is not None:
        row.update(_answer_row(assistant, item))
    return row


def _converse(assistant, item: dict, stateless: bool):
    """The answer to an item: every turn of a conversation, else `ask` (stateless) or a fresh `chat` session."""
    if item.get("turns"):
        sid = None
        for t in item["turns"]:
            ans = assistant.chat(t, sid)
            sid = ans.session_id
        return ans
    return assistant.ask(item["question"]) if stateless else assistant.chat(item["question"], None)


def _span_row(item: dict, modes: Sequence[str], searcher: Searcher, span_ms: dict, assistant) -> dict:
    """One span item: the rank of the gold span per mode and, with an assistant, whether the answer contains it."""
    query = query_of(item)
    gold = item["answer"]
    row = {
        "kind": "span",
        "id": item.get("id"),
        "tags": item.get("tags", []),
        "question": " / ".join(item["turns"]) if item.get("turns") else item["question"],
        "query": query,
        "gold": gold,
        "gold_doc_ids": item.get("gold_doc_ids", []),
        "span_retrieval": {},
    }
    for mode in modes:
        passages, top = searcher.timed(mode, query, span_ms)
        rank = span_rank(passages, gold)
        row["span_retrieval"][mode] = {"rank": None if rank is None else rank + 1, "top": top}
    if assistant is not None:
        t0 = time.perf_counter()
        # a fresh session per question, as POST /api/chat {"message"} does for score_http.py
        ans = _converse(assistant, item, stateless=False)
        row.update(
            answer=ans.answer,
            refused=bool(ans.refused),
            answer_contains=answer_contains(ans.answer, gold, bool(ans.refused)),
            answer_chars=len(ans.answer),
            cited=[c.clause_id for c in ans.citations],
            latency_ms=(time.perf_counter() - t0) * 1000,
        )
    return row


def _answer_row(assistant, item: dict) -> dict:
    """The answer to a seed item (`ask`, or every turn of a conversation) scored by facts, citations and refusal."""
    t0 = time.perf_counter()
    ans = _converse(assistant, item, stateless=True)
    ms = (time.perf_counter() - t0) * 1000
    cited = [c.clause_id for c in ans.citations]
    answerable = not item.get("refuse")
    facts = item.get("facts", [])
    acc = fact_accuracy(ans.answer, facts) if answerable else None
    return {
        "answer": ans.answer,
        "refused": bool(ans.refused),
        "cited": cited,
        "relevant": item["relevant"],
        "facts": facts,
        "fact_accuracy": acc,
        "facts_all": (acc == 1.0) if acc is not None else None,
        "citation_precision": citation_precision(cited, item["relevant"]) if answerable else None,
        "citation_recall": citation_recall(cited, item["relevant"]) if answerable else None,
        "latency_ms": ms,
    }

