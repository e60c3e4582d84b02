"""Retrieve stage: hybrid search over the index.

Over-fetch from the dense and the lexical side and fuse by weighted reciprocal rank (the backend
does both: in memory with FAISS + bm25s, or in Milvus), with filters (region, document, department,
validity) applied inside both searches, so a filter never empties a result that exists; then re-rank
the fused head by rarity-weighted question coverage. Abbreviations enterprises type (高企, 新三板) are expanded before embedding;
the lexical side maps them through the shared tokenizer.
"""

from __future__ import annotations

import re
import threading
import time

import numpy as np

from assistant.schema import Filters, Hit, QueryError
from assistant.text import expand_aliases, match_form, normalize, split_sentences, token_weights, tokenize, weighted_coverage

MODES = ("hybrid", "dense", "bm25")
MAX_QUERY_CHARS = 1000


class Retriever:
    """Hybrid search over one PolicyIndex with one embedder."""

    def __init__(self, index, embedder, *, fetch_k: int, rrf_k: int, max_k: int, rerank_depth: int, weights):
        """`weights`: the calibrated dense weight and re-rank weights (calibration.Thresholds)."""
        self.index = index
        self.embedder = embedder
        self.fetch_k = fetch_k
        self.rrf_k = rrf_k
        self.max_k = max_k
        self.dense_weight = weights.dense_weight
        self.rerank_depth = rerank_depth
        self.rerank_clause = weights.rerank_clause
        self.rerank_sentence = weights.rerank_sentence
        self._forms: dict[int, tuple[str, list[str]]] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self._vectors_lock = threading.Lock()
        if index.manifest.get("model") not in (None, embedder.name):
            raise QueryError(f"index was built with {index.manifest.get('model')}, not {embedder.name}")

    @classmethod
    def from_settings(cls, index, embedder, settings, weights=None) -> "Retriever":
        """A retriever with the fetch settings of a Settings object and the weights calibrated for the
        embedder (a weight set in settings wins), or `weights` when given."""
        from assistant.calibration import thresholds_for

        weights = weights if weights is not None else thresholds_for(embedder.name, settings)
        return cls(index, embedder, fetch_k=settings.fetch_k, rrf_k=settings.rrf_k, max_k=settings.max_k,
                   rerank_depth=settings.rerank_depth, weights=weights)

    def query_vector(self, query: str) -> np.ndarray:
        """The query's embedding; the last few are kept, since one question is often searched several
        times (once per region it names) and embedding dominates the cost of a search on a CPU."""
        text = expand_aliases(normalize(query))
        with self._vectors_lock:
            vector = self._vectors.get(text)
        if vector is None:
            vector = self.embedder.encode([text])[0]
            with self._vectors_lock:
                if len(self._vectors) >= 256:
                    self._vectors.pop(next(iter(self._vectors)))
                self._vectors[text] = vector
        return vector

    def search(
        self,
        query: str,
        k: int = 5,
        region: str | None = None,
        doc_id: str | None = None,
        department: str | None = None,
        mode: str = "hybrid",
        unknown_region: bool = False,
        current_on=None,
    ) -> list[Hit]:
        """The k best clauses for a query; empty when the query has no searchable content.
        With `unknown_region`, a region filter also lets through documents that state no region."""
        if not isinstance(query, str) or not query.strip():
            raise QueryError("query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise QueryError(f"query is too long ({len(query)} characters, at most {MAX_QUERY_CHARS})")
        if not isinstance(k, int) or k < 1:
            raise QueryError(f"k must be a positive integer, got {k!r}")
        if mode not in MODES:
            raise QueryError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        k = min(k, self.max_k, len(self.index))
        if k == 0:
            return []
        filters = Filters(region or None, doc_id or None, department or None, unknown_region, current_on)
        tokens = tokenize(query)
        if not tokens and not re.search(r"[0-9A-Za-z\u4e00-\u9fff]", normalize(query)):
            return []  # only punctuation or symbols: nothing to search for
        fetch = max(self.fetch_k, k)
        vector = self.query_vector(query) if mode in ("hybrid", "dense") and tokens else None
        dense: list[tuple[int, float]] = []
        lexical: list[tuple[int, float]] = []
        if mode == "dense":
            fused = dense = self.index.dense_search(vector, fetch, filters) if vector is not None else []
        elif mode == "bm25":
            fused = lexical = self.index.lexical_search(query, fetch, filters, tokens=tokens)
        else:
            fused, dense, lexical = self.index.hybrid_search(vector, query, tokens, fetch, filters, self.dense_weight, self.rrf_k)
            fused = self.rerank(query, fused)
        top = fused[:k]
        dense_rank = {row: r for r, (row, _) in enumerate(dense, 1)}
        lexical_rank = {row: r for r, (row, _) in enumerate(lexical, 1)}
        dense_score = dict(dense)
        lexical_score = dict(lexical)
        if mode == "hybrid" and vector is not None and not dense and top:
            # an engine that fuses inside (Milvus) reports no per-side scores; the answer stage's
            # refusal needs each quoted clause's cosine, so it is computed for the few returned
            dense_score = self.index.dense_scores(vector, [row for row, _ in top])
        return [
            Hit(
                clause=self.index.clauses[row],
                score=float(score),
                dense_rank=dense_rank.get(row),
                lexical_rank=lexical_rank.get(row),
                dense_score=dense_score.get(row),
                lexical_score=lexical_score.get(row),
            )
            for row, score in top
        ]

    def _form(self, row: int) -> tuple[str, list[str]]:
        form = self._forms.get(row)
        if form is None:
            clause = self.index.clauses[row]
            form = (match_form(clause.index_text()), [match_form(s) for s in split_sentences(clause.text)])
            self._forms[row] = form
        return form

    def rerank(self, query: str, fused: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Re-order the head of the fused list by how much of the question, weighted by rarity, the
        clause and its best sentence contain. Rank fusion knows only ranks; a news report that repeats
        a question's common words ranks beside the paragraph that holds its rare ones. The weights are
        on the scale of fused scores and are calibrated per model (assistant/calibration.py)."""
        depth = min(self.rerank_depth, len(fused))
        if depth < 2 or not (self.rerank_clause or self.rerank_sentence):
            return fused
        weights = token_weights(query, self.index.idf())
        if not weights:
            return fused
        head = []
        for row, score in fused[:depth]:
            whole, sentences = self._form(row)
            best = max((weighted_coverage(weights, s) for s in sentences), default=0.0)
            head.append((row, score + self.rerank_clause * weighted_coverage(weights, whole) + self.rerank_sentence * best))
        head.sort(key=lambda item: -item[1])
        return head + fused[depth:]

    def timed_search(self, query: str, **kwargs) -> tuple[list[Hit], float]:
        """search() plus its wall time in milliseconds."""
        started = time.perf_counter()
        hits = self.search(query, **kwargs)
        return hits, (time.perf_counter() - started) * 1000
