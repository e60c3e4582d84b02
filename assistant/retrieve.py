"""Retrieve stage: hybrid search over the index.

Over-fetch from the dense and the lexical side and fuse by weighted reciprocal rank (the backend
does both: in memory with FAISS + bm25s, or in Milvus), with filters (region, document, department,
validity) applied inside both searches, so a filter never empties a result that exists; then re-rank
the fused head: by the learned model of the embedder when one is trained (assistant/rerank.py), else by
rarity-weighted question coverage. Abbreviations enterprises type (高企, 新三板) are expanded before embedding;
the lexical side maps them through the shared tokenizer.
"""

from __future__ import annotations

import re
import threading
import time

import numpy as np

from assistant.rerank import Candidate, ClauseForm, clause_form, features, read_question
from assistant.schema import Filters, Hit, QueryError
from assistant.text import expand_aliases, expand_query, normalize, token_weights, tokenize, weighted_coverage

MODES = ("hybrid", "dense", "bm25")
MAX_QUERY_CHARS = 1000


class Retriever:
    """Hybrid search over one PolicyIndex with one embedder."""

    def __init__(self, index, embedder, *, fetch_k: int, rrf_k: int, max_k: int, rerank_depth: int, weights,
                 ranker=None, expand: bool = True):
        """`weights`: the calibrated dense weight and re-rank weights (calibration.Thresholds);
        `ranker`: the learned re-ranker (rerank.LinearRanker), None for the coverage re-rank;
        `expand`: add the policy terms of a question's colloquial wording (text.expand_query)."""
        self.index = index
        self.embedder = embedder
        self.fetch_k = fetch_k
        self.rrf_k = rrf_k
        self.max_k = max_k
        self.dense_weight = weights.dense_weight
        self.rerank_depth = rerank_depth
        self.rerank_clause = weights.rerank_clause
        self.rerank_sentence = weights.rerank_sentence
        self.ranker = ranker
        self.expand = expand
        self._forms: dict[int, ClauseForm] = {}
        self._last_ordinal: dict[str, int] | None = None
        self._vectors: dict[str, np.ndarray] = {}
        self._vectors_lock = threading.Lock()
        if index.manifest.get("model") not in (None, embedder.name):
            raise QueryError(f"index was built with {index.manifest.get('model')}, not {embedder.name}")

    @classmethod
    def from_settings(cls, index, embedder, settings, weights=None, ranker=...) -> "Retriever":
        """A retriever with the fetch settings of a Settings object, the weights calibrated for the
        embedder (a weight set in settings wins) or `weights`, and the embedder's learned re-ranker
        unless settings turn it off (ASSISTANT_LEARNED_RERANK=false) or `ranker` is given (None: off)."""
        from assistant.calibration import thresholds_for
        from assistant.rerank import for_model

        weights = weights if weights is not None else thresholds_for(embedder.name, settings)
        if ranker is ...:
            ranker = for_model(embedder.name) if getattr(settings, "learned_rerank", True) else None
        return cls(index, embedder, fetch_k=settings.fetch_k, rrf_k=settings.rrf_k, max_k=settings.max_k,
                   rerank_depth=settings.rerank_depth, weights=weights, ranker=ranker,
                   expand=getattr(settings, "expand_query", True))

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
        # the lexical and the dense side search the question with the policy terms of its colloquial
        # wording; the re-rank weighs the question as asked, so an added term never outweighs its words
        searched = expand_query(query) if self.expand else query
        tokens = tokenize(searched)
        if not tokens and not re.search(r"[0-9A-Za-z\u4e00-\u9fff]", normalize(query)):
            return []  # only punctuation or symbols: nothing to search for
        fetch = max(self.fetch_k, k)
        vector = self.query_vector(searched) if mode in ("hybrid", "dense") and tokens else None
        dense: list[tuple[int, float]] = []
        lexical: list[tuple[int, float]] = []
        if mode == "dense":
            fused = dense = self.index.dense_search(vector, fetch, filters) if vector is not None else []
        elif mode == "bm25":
            fused = lexical = self.index.lexical_search(searched, fetch, filters, tokens=tokens)
        else:
            fused, dense, lexical = self.index.hybrid_search(vector, searched, tokens, fetch, filters, self.dense_weight, self.rrf_k)
            fused = self.rerank(query, fused, dense, lexical)
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

    def _form(self, row: int) -> ClauseForm:
        form = self._forms.get(row)
        if form is None:
            if self._last_ordinal is None:
                last: dict[str, int] = {}
                for c in self.index.clauses:
                    last[c.doc_id] = max(last.get(c.doc_id, 0), c.ordinal)
                self._last_ordinal = last
            clause = self.index.clauses[row]
            form = clause_form(clause, self._last_ordinal.get(clause.doc_id, 0))
            self._forms[row] = form
        return form

    def rerank(self, query: str, fused: list[tuple[int, float]], dense=(), lexical=()) -> list[tuple[int, float]]:
        """Re-order the head of the fused list: by the learned re-ranker when there is one and the
        engine reported each side's list (Milvus fuses inside and does not), else by coverage."""
        if self.ranker is not None and (dense or lexical):
            return self._learned(query, fused, dense, lexical)
        return self._coverage(query, fused)

    def fused_lists(self, query: str, filters: Filters | None = None):
        """(fused, dense, lexical) of a hybrid search before any re-rank, over-fetched (what the
        re-ranker is trained on); empty lists when nothing is searchable."""
        searched = expand_query(query) if self.expand else query
        tokens = tokenize(searched)
        vector = self.query_vector(searched) if tokens else None
        if vector is None and not re.search(r"[0-9A-Za-z\u4e00-\u9fff]", normalize(query)):
            return [], [], []
        return self.index.hybrid_search(vector, searched, tokens, self.fetch_k, filters or Filters(), self.dense_weight, self.rrf_k)

    def head_features(self, query: str, fused, dense, lexical, depth: int | None = None) -> tuple[list[int], np.ndarray]:
        """The rows of the fused head the learned re-rank orders (`depth` of them: the ranker's by
        default), and their feature matrix (rerank.FEATURES); also what the re-ranker is trained on."""
        depth = depth or (self.ranker.depth if self.ranker is not None else self.rerank_depth)
        depth = min(depth, len(fused))
        dense_rank = {row: r for r, (row, _) in enumerate(dense, 1)}
        lexical_rank = {row: r for r, (row, _) in enumerate(lexical, 1)}
        dense_score, lexical_score = dict(dense), dict(lexical)
        head = [
            Candidate(self._form(row), score, dense_score.get(row), dense_rank.get(row), lexical_score.get(row),
                      lexical_rank.get(row))
            for row, score in fused[:depth]
        ]
        floor = dense[-1][1] if dense else 0.0
        x = features(read_question(query, token_weights(query, self.index.idf())), head, floor)
        return [row for row, _ in fused[:depth]], x

    def _learned(self, query: str, fused, dense, lexical) -> list[tuple[int, float]]:
        rows, x = self.head_features(query, fused, dense, lexical)
        if len(rows) < 2:
            return fused
        scores = self.ranker.score(x)
        order = sorted(range(len(rows)), key=lambda i: -scores[i])
        # the head's fused scores are dealt out again in the new order: a hit's score keeps its scale
        # and stays comparable with another search's (the answer merges per-region searches by score)
        dealt = sorted((score for _, score in fused[: len(rows)]), reverse=True)
        return [(rows[i], dealt[n]) for n, i in enumerate(order)] + fused[len(rows):]

    def _coverage(self, query: str, fused: list[tuple[int, float]]) -> list[tuple[int, float]]:
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
            form = self._form(row)
            best = max((weighted_coverage(weights, s) for s in form.sentences), default=0.0)
            head.append((row, score + self.rerank_clause * weighted_coverage(weights, form.whole) + self.rerank_sentence * best))
        head.sort(key=lambda item: -item[1])
        return head + fused[depth:]

    def timed_search(self, query: str, **kwargs) -> tuple[list[Hit], float]:
        """search() plus its wall time in milliseconds."""
        started = time.perf_counter()
        hits = self.search(query, **kwargs)
        return hits, (time.perf_counter() - started) * 1000
