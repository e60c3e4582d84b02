"""Local index backend: dense (FAISS, inner product over normalised vectors) + lexical (BM25 over
jieba tokens) in memory, one id space, saved as a readable directory and swapped in atomically.

Layout: manifest.json (written last), clauses.jsonl, documents.jsonl, hashes.json, dense.faiss, bm25/.
A directory without a valid manifest never loads. faiss and bm25s are imported here only, lazily.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from assistant.backends import Idf, StoredClauses, current_doc_ids, idf_from_df
from assistant.manifest import BuildStats, new_manifest, readable
from assistant.schema import Clause, Filters, IndexMissingError
from assistant.text import tokenize
from assistant.vectors import embed_clauses

MANIFEST = "manifest.json"


def _faiss():
    import faiss

    return faiss


def _bm25s():
    import logging

    import bm25s

    # bm25s sets its own logger to DEBUG, so a build printed "Building index from tokens" whenever
    # another library had configured the root handler
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def rrf(rankings: list[list[int]], k: int = 60, weights: list[float] | None = None) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: score(d) = Σ w_i/(k + rank_i), ranks from 1; ties keep first-seen order."""
    scores: dict[int, float] = {}
    for i, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[i]
        for rank, doc in enumerate(ranking, 1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])


def matches_region(clause_region: str, wanted: str) -> bool:
    # "海淀区" or "海淀" finds "北京市海淀区"; "北京市" finds the 市 and every 区 document in it.
    return wanted.strip() in clause_region


class PolicyIndex(StoredClauses):
    """Clauses plus their dense and lexical indexes, sharing row numbers as ids."""

    backend = "faiss"

    def __init__(self, clauses: list[Clause], documents: list[dict], dense, bm25, manifest: dict, hashes: list[str]):
        super().__init__(clauses, documents, manifest, hashes)
        self.dense = dense
        self.bm25 = bm25

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_vectors(
        cls,
        clauses: Sequence[Clause],
        documents: Iterable[dict],
        vectors: np.ndarray,
        hashes: list[str],
        manifest: dict,
        ann_threshold: int = 50_000,
        hnsw_m: int = 32,
        hnsw_ef_search: int = 128,
        texts: list[str] | None = None,
    ) -> "PolicyIndex":
        """Index embedded clauses in memory: exact inner product up to `ann_threshold` clauses, HNSW above."""
        from assistant.text import normalize

        clauses = list(clauses)
        dim = int(manifest.get("dim") or (vectors.shape[1] if len(vectors) else 0))
        faiss = _faiss()
        if len(clauses) > ann_threshold:
            dense = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            dense.hnsw.efConstruction = 80
            dense.hnsw.efSearch = hnsw_ef_search
            kind = "hnsw"
        else:
            dense = faiss.IndexFlatIP(dim)
            kind = "flat"
        if len(clauses):
            dense.add(np.asarray(vectors, dtype=np.float32))
        bm25 = _bm25s().BM25()
        if clauses:
            texts = texts or [normalize(c.index_text()) for c in clauses]
            bm25.index([tokenize(t) or ["\u2205"] for t in texts], show_progress=False)
        manifest = {**manifest, "dense_index": kind, "hnsw": {"m": hnsw_m, "ef_search": hnsw_ef_search} if kind == "hnsw" else None}
        return cls(clauses, list(documents), dense, bm25, manifest, list(hashes))

    @classmethod
    def from_clauses(
        cls,
        clauses: Sequence[Clause],
        embedder,
        documents: Iterable[dict] = (),
        corpus_hash: str = "",
        ann_threshold: int = 50_000,
        hnsw_m: int = 32,
        hnsw_ef_search: int = 128,
        batch_size: int = 32,
        cached: dict[str, np.ndarray] | None = None,
        progress: Callable[[int, int], None] | None = None,
        extra_manifest: dict | None = None,
    ):
        """Embed (reusing cached vectors by text hash) and index clauses in memory → (index, BuildStats)."""
        started = time.perf_counter()
        clauses = list(clauses)
        docs = list(documents)
        embedded = embed_clauses(clauses, embedder, cached, batch_size, progress)
        manifest = new_manifest(embedder, corpus_hash, len(docs), len(clauses), extra_manifest)
        index = cls.from_vectors(clauses, docs, embedded.vectors, embedded.hashes, manifest, ann_threshold,
                                 hnsw_m, hnsw_ef_search, texts=embedded.texts)
        seconds = time.perf_counter() - started
        index.manifest["build_seconds"] = round(seconds, 3)
        return index, BuildStats(len(docs), len(clauses), embedded.computed, seconds, index.manifest["dense_index"])

    # -- search ---------------------------------------------------------------------------------
    def allowed_rows(self, filters) -> np.ndarray | None:
        """Row ids that pass the filters (a Filters, or already an array of rows), or None when no filter is set."""
        if filters is None:
            return None
        if not isinstance(filters, Filters):
            return np.asarray(filters, dtype=np.int64)
        if not filters.active():
            return None
        current = current_doc_ids(self.documents, filters.current_on) if filters.current_on is not None else None
        rows = [
            i
            for i, c in enumerate(self.clauses)
            if (current is None or c.doc_id in current)
            and (not filters.region or matches_region(c.region, filters.region) or (filters.unknown_region and not c.region))
            and (not filters.doc_id or c.doc_id == filters.doc_id)
            and (not filters.department or filters.department in c.department)
        ]
        return np.asarray(rows, dtype=np.int64)

    def dense_search(self, vector: np.ndarray, k: int, filters=None) -> list[tuple[int, float]]:
        """Top-k rows by inner product; `filters` (Filters or row ids) restricts the search."""
        allowed = self.allowed_rows(filters)
        n = len(self.clauses)
        if n == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
            return []
        k = min(k, n if allowed is None else len(allowed))
        faiss = _faiss()
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            if self.manifest.get("dense_index") == "hnsw":
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.dense.hnsw.efSearch, k))
            else:
                params = faiss.SearchParameters(sel=selector)
        scores, ids = self.dense.search(query, k, params=params) if params else self.dense.search(query, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def lexical_search(self, query: str, k: int, filters=None, tokens: list[str] | None = None) -> list[tuple[int, float]]:
        """Top-k rows by BM25 over the shared tokenizer's tokens (of `query`, unless given);
        tokens unknown to the vocabulary simply score nothing."""
        tokens = tokenize(query) if tokens is None else tokens
        if not tokens or not self.clauses or k <= 0:
            return []
        allowed = self.allowed_rows(filters)
        scores = np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)
        if allowed is not None:
            mask = np.full(scores.shape, -1.0, dtype=np.float32)
            mask[allowed] = scores[allowed]
            scores = mask
        k = min(k, int((scores > 0).sum()))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top]

    def hybrid_search(self, vector, query: str, tokens: list[str], fetch: int, filters=None,
                      dense_weight: float = 0.5, rrf_k: int = 60):
        """Dense and lexical top-`fetch`, fused by weighted reciprocal rank (lexical weight 1).

        Returns (fused [(row, score)], dense [(row, cosine)], lexical [(row, bm25)])."""
        allowed = self.allowed_rows(filters)
        if allowed is not None and len(allowed) == 0:
            return [], [], []
        dense = self.dense_search(vector, fetch, allowed) if vector is not None else []
        lexical = self.lexical_search(query, fetch, allowed, tokens=tokens)
        fused = rrf([[r for r, _ in dense], [r for r, _ in lexical]], rrf_k, [dense_weight, 1.0])
        return fused, dense, lexical

    def idf(self) -> Idf:
        """Inverse document frequency of every indexed token (BM25's form), read off the lexical
        index: how much a question word says about which clause answers it."""
        if self._idf is not None:
            return self._idf
        df: dict[str, int] = {}
        if self.clauses:
            indptr = np.asarray(self.bm25.scores["indptr"])
            for token, i in self.bm25.vocab_dict.items():
                if i + 1 < len(indptr):
                    df[token] = int(indptr[i + 1] - indptr[i])
        self._idf = idf_from_df(df, len(self.clauses))
        return self._idf

    def vectors(self) -> np.ndarray:
        """Every clause's vector, in row order."""
        if not self.clauses:
            return np.zeros((0, int(self.manifest.get("dim") or 0)), dtype=np.float32)
        return self.dense.reconstruct_n(0, len(self.clauses))

    # -- persistence ------------------------------------------------------------------------------
    def save(self, out_dir: Path) -> None:
        """Write into a sibling temp dir, manifest last, then swap it in by rename."""
        out_dir = Path(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{time.time_ns()}"
        tmp.mkdir()
        try:
            with open(tmp / "clauses.jsonl", "w", encoding="utf-8") as f:
                for c in self.clauses:
                    f.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
            with open(tmp / "documents.jsonl", "w", encoding="utf-8") as f:
                for d in self.documents:
                    f.write(json.dumps(d, ensure_ascii=False) + "\n")
            (tmp / "hashes.json").write_text(json.dumps(self.hashes), encoding="utf-8")
            _faiss().write_index(self.dense, str(tmp / "dense.faiss"))
            if self.clauses:
                self.bm25.save(str(tmp / "bm25"), show_progress=False)
            (tmp / MANIFEST).write_text(json.dumps(self.manifest, ensure_ascii=False, indent=2), encoding="utf-8")
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-{time.time_ns()}"
            if out_dir.exists():
                os.rename(out_dir, old)
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, index_dir: Path) -> "PolicyIndex":
        """Load a saved index; a directory without a valid manifest raises IndexMissingError."""
        index_dir = Path(index_dir)
        manifest = read_manifest(index_dir)
        if manifest is None:
            raise IndexMissingError(f"no valid index at {index_dir} (run `python -m assistant build`)")
        try:
            with open(index_dir / "clauses.jsonl", encoding="utf-8") as f:
                clauses = [Clause.from_dict(json.loads(line)) for line in f if line.strip()]
            documents = []
            if (index_dir / "documents.jsonl").exists():
                with open(index_dir / "documents.jsonl", encoding="utf-8") as f:
                    documents = [json.loads(line) for line in f if line.strip()]
            hashes = json.loads((index_dir / "hashes.json").read_text(encoding="utf-8"))
            dense = _faiss().read_index(str(index_dir / "dense.faiss"))
            if manifest.get("dense_index") == "hnsw":
                dense.hnsw.efSearch = (manifest.get("hnsw") or {}).get("ef_search", 128)
            bm25 = _bm25s().BM25.load(str(index_dir / "bm25")) if clauses else _bm25s().BM25()
        except (OSError, ValueError, RuntimeError) as exc:
            raise IndexMissingError(f"index at {index_dir} is damaged ({exc}); rebuild it") from exc
        if len(clauses) != dense.ntotal or len(hashes) != len(clauses):
            raise IndexMissingError(f"index at {index_dir} is inconsistent; rebuild it")
        return cls(clauses, documents, dense, bm25, manifest, hashes)


def read_manifest(index_dir: Path) -> dict | None:
    """The manifest of an index directory, or None when absent or unreadable."""
    try:
        manifest = json.loads((Path(index_dir) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return readable(manifest)
