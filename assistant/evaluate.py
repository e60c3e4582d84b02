"""Evaluation stage: retrieval quality per mode, answer accuracy, citations, refusals and latency on a test set.

Metrics are pure functions over ranked ids; `evaluate()` runs every mode over one index (plus the naive
500/50-character baseline) and writes report.json, report.md and plots.

Two kinds of items share a run. Seed items (`eval/testset.jsonl`: `gold_quotes`, `facts`, `refuse`, `turns`)
are scored by recall of their quotes and by facts, citations and refusals. Span items (an outside set such as
`../shared/extdata/ncp/dev.jsonl`: `answer` is a gold span, no `gold_quotes`) are scored exactly like
`score_http.py` measures a running service: hit@k / MRR@10 of the clause texts, and whether the answer text
contains the span. An index for a `--corpus` path is cached under `eval/runs/` and rebuilt only when stale,
re-embedding only the clauses whose text changed.
"""

from __future__ import annotations

import argparse
import json
import hashlib
import math
import os
import re
import sys
import unicodedata
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Hashable, Iterable, Sequence

from assistant.text import compact

KS = (1, 3, 5, 10)
MODES = ("bm25", "dense", "hybrid", "naive")
DEFAULT_CACHE = Path("eval/runs")


# -- retrieval metrics --------------------------------------------------------------------------
def recall_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float:
    """Fraction of relevant items found in the top k."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    return len(relevant & set(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int = 10) -> float:
    """Reciprocal rank of the first relevant item within the top k (0 when none)."""
    relevant = set(relevant)
    for i, item in enumerate(ranked[:k], 1):
        if item in relevant:
            return 1.0 / i
    return 0.0


def ndcg_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int = 10) -> float:
    """nDCG with binary gains; a relevant item counts once, at its first rank."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    seen: set = set()
    dcg = 0.0
    for i, item in enumerate(ranked[:k], 1):
        if item in relevant and item not in seen:
            seen.add(item)
            dcg += 1.0 / math.log2(i + 1)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def quote_ranking(passages: Sequence[str], quotes: Sequence[str]) -> list[Hashable]:
    """Map ranked passage texts to the index of the first gold quote each newly contains, else a miss token.

    Comparing compacted text lets clause-based and fixed-window modes be scored on the same footing.
    """
    wanted = [compact(q) for q in quotes]
    found: set[int] = set()
    out: list[Hashable] = []
    for r, text in enumerate(passages):
        body = compact(text)
        label: Hashable = ("miss", r)
        for qi, q in enumerate(wanted):
            if q and q in body and qi not in found:
                found.add(qi)
                label = qi
                break
        else:
            # a passage repeating an already found quote still counts as a hit for MRR purposes
            for qi, q in enumerate(wanted):
                if q and q in body:
                    label = ("again", qi)
                    break
        out.append(label)
    return out


# -- span scoring (the rule of ../shared/extdata/score_http.py, copied: that script lives outside) --------------
_SPACES = re.compile(r"\s+")
_DASHES = re.compile(r"[—–－~～‐‑‒―至到]+")


def span_norm(s: str | None) -> str:
    """NFKC, whitespace removed, dashes/至/到 as "-", curly double quotes and 〔〕 as ASCII: score_http's `norm`."""
    s = unicodedata.normalize("NFKC", s or "")
    s = _SPACES.sub("", s)
    s = _DASHES.sub("-", s)
    return s.replace("“", '"').replace("”", '"').replace("〔", "[").replace("〕", "]")


def span_found(gold: str, text: str) -> bool:
    """Whether normalised `text` holds normalised `gold`; a gold over 60 characters counts by any 30-char run (step 5)."""
    if len(gold) <= 60:
        return gold in text
    return any(gold[i : i + 30] in text for i in range(0, len(gold) - 29, 5))


def span_rank(passages: Sequence[str], gold: str) -> int | None:
    """0-based rank of the first passage containing the gold span (both normalised here), None when none does."""
    g = span_norm(gold)
    for i, p in enumerate(passages):
        if span_found(g, span_norm(p)):
            return i
    return None


def answer_contains(answer: str, gold: str, refused: bool) -> bool:
    """A non-refused answer whose text contains the gold span; a refusal never does."""
    return not refused and span_found(span_norm(gold), span_norm(answer))


def span_hits(ranks: Sequence[int | None], ks: Sequence[int] = KS) -> dict[str, float | None]:
    """hit@k (first gold passage within the top k) and MRR@10 over 0-based first ranks; None for no questions."""
    n = len(ranks)
    out: dict[str, float | None] = {f"hit@{k}": (sum(1 for r in ranks if r is not None and r < k) / n if n else None) for k in ks}
    out["mrr@10"] = sum(1 / (r + 1) for r in ranks if r is not None and r < 10) / n if n else None
    return out


def upper_median(values: Sequence[float]) -> float | None:
    """sorted(values)[n // 2], the median score_http reports for answer length; None for no values."""
    return sorted(values)[len(values) // 2] if values else None


def is_span_item(item: dict) -> bool:
    """An outside item: a gold `answer` span and no seed `gold_quotes`."""
    return "answer" in item and "gold_quotes" not in item


# -- answer metrics ---------------------------------------------------------------------------------
def fact_accuracy(answer: str, facts: Sequence[str]) -> float:
    """Fraction of facts the answer contains (NFKC, whitespace removed on both sides); 1.0 with no facts."""
    if not facts:
        return 1.0
    body = compact(answer)
    return sum(1 for f in facts if compact(f) in body) / len(facts)


def citation_precision(cited: Iterable[str], relevant: Iterable[str]) -> float | None:
    """Cited clauses that are relevant / cited clauses (None when nothing is cited)."""
    cited = set(cited)
    if not cited:
        return None
    return len(cited & set(relevant)) / len(cited)


def citation_recall(cited: Iterable[str], relevant: Iterable[str]) -> float | None:
    """Relevant clauses cited / relevant clauses (None when nothing is relevant)."""
    relevant = set(relevant)
    if not relevant:
        return None
    return len(relevant & set(cited)) / len(relevant)


def refusal_scores(predicted: Sequence[bool], gold: Sequence[bool]) -> dict:
    """Precision and recall of refusing, treating `refuse` as the positive class."""
    tp = sum(1 for p, g in zip(predicted, gold) if p and g)
    fp = sum(1 for p, g in zip(predicted, gold) if p and not g)
    fn = sum(1 for p, g in zip(predicted, gold) if g and not p)
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolated percentile (p in 0..100); None for no values."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean over the values that are not None."""
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def by_tag(rows: Sequence[dict], field: str) -> dict[str, float | None]:
    """Mean of rows[field] grouped by each row's tags."""
    groups: dict[str, list] = defaultdict(list)
    for row in rows:
        for tag in row.get("tags", []):
            groups[tag].append(row.get(field))
    return {tag: mean(vals) for tag, vals in sorted(groups.items())}


# -- labelling ----------------------------------------------------------------------------------------
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


# -- naive baseline -------------------------------------------------------------------------------------
def windows(text: str, size: int = 500, overlap: int = 50) -> list[str]:
    """Fixed character windows: the common chunking recipe the clause chunker is compared against."""
    step = size - overlap
    return [text[i : i + size] for i in range(0, max(len(text) - overlap, 1), step)]


class NaiveIndex:
    """Dense-only flat index over fixed windows of the cleaned document texts."""

    def __init__(self, texts: Sequence[str], embedder, size: int = 500, overlap: int = 50, cache: Path | None = None):
        import faiss
        import numpy as np

        from assistant.text import normalize

        self.passages = [w for t in texts for w in windows(t, size, overlap)]
        self.embedder = embedder
        normed = [normalize(p) for p in self.passages]
        if cache is not None:
            vecs = _cached_encode(normed, embedder, Path(cache))
        else:
            vecs = embedder.encode(normed) if self.passages else np.zeros((0, embedder.dim))
        self.dense = faiss.IndexFlatIP(embedder.dim)
        if len(self.passages):
            self.dense.add(np.asarray(vecs, dtype=np.float32))

    def search(self, query: str, k: int = 10) -> list[str]:
        """The k nearest windows' texts."""
        import numpy as np

        from assistant.text import expand_aliases, normalize

        if not self.passages:
            return []
        vec = np.asarray(self.embedder.encode([expand_aliases(normalize(query))]), dtype=np.float32)
        _, ids = self.dense.search(vec, min(k, len(self.passages)))
        return [self.passages[i] for i in ids[0] if i >= 0]


def _cached_encode(texts: Sequence[str], embedder, path: Path):
    """Vectors of texts, reusing those stored in `path` (an .npz of text hashes and vectors) and saving new ones."""
    import numpy as np

    from assistant.index import text_hash

    hashes = [text_hash(t) for t in texts]
    known: dict[str, object] = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["model"]) == embedder.name and z["vectors"].shape[1:] == (embedder.dim,):
                known = dict(zip(z["hashes"].tolist(), z["vectors"]))
    except (OSError, ValueError, KeyError):
        known = {}
    todo = sorted({h: i for i, h in enumerate(hashes) if h not in known}.values())
    if todo:
        for i, v in zip(todo, embedder.encode([texts[i] for i in todo])):
            known[hashes[i]] = v
        keep = sorted(set(hashes))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as f:
            np.savez(f, model=np.array(embedder.name), hashes=np.array(keep), vectors=np.stack([known[h] for h in keep]).astype(np.float32))
        os.replace(tmp, path)
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.stack([known[h] for h in hashes]).astype(np.float32)


class CachedEmbedder:
    """Memoises single-text encodes so the retrieval modes share one query embedding (charged to the first mode)."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._cache: dict[str, object] = {}

    def encode(self, texts, batch_size: int = 32, progress: bool = False):
        if len(texts) != 1:
            return self.inner.encode(texts, batch_size=batch_size, progress=progress)
        if texts[0] not in self._cache:
            self._cache[texts[0]] = self.inner.encode(texts, batch_size=batch_size)
        return self._cache[texts[0]]


# -- the run ----------------------------------------------------------------------------------------------
def _documents_from(corpus: Path | None, settings):
    from assistant.corpus import build_document, load_corpus
    from assistant.schema import CorpusError

    if corpus is None:
        corpus = Path(settings.corpus_dir)
    corpus = Path(corpus)
    if corpus.is_dir():
        docs, errors = load_corpus(corpus)
        for e in errors:
            print(f"warning: skipped {e}", file=sys.stderr)
        return docs
    docs = []
    for n, line in enumerate(corpus.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if "text" not in rec:
            raise CorpusError(f"{corpus.name}:{n}: document without text")
        doc_id = str(rec.get("doc_id") or f"doc-{n}")
        sidecar = {"title": rec["title"]} if rec.get("title") else {}
        docs.append(build_document(rec["text"], f"{doc_id}.txt", doc_id, sidecar))
    return docs


def corpus_fingerprint(corpus: Path) -> str:
    """Content hash of a corpus folder (as the service's index records it) or of a JSONL file's bytes."""
    from assistant.corpus import corpus_hash

    corpus = Path(corpus)
    if corpus.is_dir():
        return corpus_hash(corpus)
    return hashlib.sha256(corpus.read_bytes()).hexdigest()[:16]


def cache_dir_for(corpus: Path, model: str, root: Path = DEFAULT_CACHE) -> Path:
    """The cached index directory of a corpus path and embedding model.

    Keyed by path and model rather than by content, so an edited corpus (or changed chunking code) reuses the
    vectors of unchanged clauses; the content hash in the manifest decides whether a rebuild is needed.
    """
    key = hashlib.sha256(f"{Path(corpus).resolve()}\0{model}".encode("utf-8")).hexdigest()[:12]
    stem = re.sub(r"[^0-9A-Za-z_-]+", "_", Path(corpus).resolve().stem)[:40] or "corpus"
    return Path(root) / f"index-{stem}-{key}"


def cached_index(docs, corpus: Path, embedder, settings, root: Path = DEFAULT_CACHE, progress: bool = True):
    """The index of `docs` from its cache directory, (re)built by `index.build` when missing or stale.

    Returns (index, info) where info says where the index lives, why it was built and how many clauses were embedded.
    """
    from tqdm import tqdm

    from assistant.backends.local import PolicyIndex
    from assistant.index import build, stale_reason

    out = cache_dir_for(corpus, embedder.name, root)
    chash = corpus_fingerprint(corpus)
    reason = stale_reason(out, chash, embedder.name, settings.chunk_max_chars)
    info = {"dir": str(out), "corpus_hash": chash, "built": reason}
    if reason is None:
        index = PolicyIndex.load(out)
        info.update(clauses=len(index), embedded=0)
        return index, info
    bars: list = []  # made on the first report of embedding work: no empty bar when every vector is cached

    def tick(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc="embedding clauses", unit="clause", disable=not progress, file=sys.stderr))
        bars[0].total = total
        bars[0].n = done
        bars[0].refresh()

    try:
        index, stats = build(
            docs,
            embedder,
            out,
            chash,
            chunk_max_chars=settings.chunk_max_chars,
            ann_threshold=settings.ann_threshold,
            hnsw_m=settings.hnsw_m,
            hnsw_ef_search=settings.hnsw_ef_search,
            batch_size=settings.embed_batch_size,
            progress=tick,
        )
    finally:
        for bar in bars:
            bar.close()
    info.update(clauses=stats.clauses, embedded=stats.embedded, build_seconds=round(stats.seconds, 1))
    return index, info


def copy_to_milvus(index, uri: Path, settings):
    """The Milvus copy of a local index (same clauses, documents and vectors) in a milvus-lite file (or
    settings.milvus_uri when that names a server), rewritten only when the local index changed."""
    from assistant.backends.milvus import MilvusTarget

    where = settings.milvus_uri if "://" in (settings.milvus_uri or "") else str(uri)
    target = MilvusTarget(where, settings.milvus_token, settings.milvus_collection, settings.ann_threshold)
    manifest = target.read_manifest() or {}
    if manifest.get("built_at") == index.manifest.get("built_at") and manifest.get("corpus_hash") == index.manifest.get("corpus_hash") \
            and manifest.get("counts") == index.manifest.get("counts"):
        return target.load()
    return target.write(index.clauses, index.documents, index.vectors(), index.hashes, index.manifest)


def _throwaway_index(docs, embedder):
    from assistant.backends.local import PolicyIndex
    from assistant.index import clauses_of

    clauses, records = clauses_of(docs)
    index, _ = PolicyIndex.from_clauses(clauses, embedder, documents=records)
    return index


def _query_of(item: dict, regions: Sequence[str] = ()) -> str:
    """The standalone query searched for an item: the last turn resolved as the conversation does."""
    from assistant.conversation import resolve

    if item.get("turns"):
        turns = list(item["turns"])
        history: list[str] = []
        for t in turns[:-1]:
            history.append(resolve(t, history, regions))
        return resolve(turns[-1], history, regions)
    return item["question"]


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
) -> dict:
    """Run retrieval (every mode) and answer evaluation; write report.json, report.md and plots; return the report.

    `limit` keeps the first N questions. `cache_root` holds the cached index of a corpus that is not the service's
    own (None: an in-memory index, embedded on every run). `backend` (faiss|milvus, default the settings') is
    where the index is searched; a Milvus index of an outside corpus is a copy of the cached local one (the
    same clauses and vectors), so the two backends are compared on equal terms.
    """
    from tqdm import tqdm

    from assistant.config import Settings
    from assistant.embed import embedder_for
    from assistant.retrieve import Retriever

    settings = settings or Settings()
    if embedder_kind:
        settings = settings.model_copy(update={"embedder": embedder_kind})
    if backend:
        settings = settings.model_copy(update={"backend": backend})
    embedder = embedder_for(settings)
    docs = _documents_from(corpus, settings)
    index_info = None
    if corpus is None and embedder_kind in (None, "sentence-transformers") and settings.embedder != "hash":
        from assistant.backends import target_of
        from assistant.cli import ensure_index

        ensure_index(settings, quiet=True)
        index = target_of(settings).load()
    elif cache_root is None:
        index = _throwaway_index(docs, embedder)
        if settings.backend == "milvus":
            from tempfile import mkdtemp

            index = copy_to_milvus(index, Path(mkdtemp(prefix="eval-milvus-")) / "index.db", settings)
    else:
        source = Path(corpus) if corpus is not None else Path(settings.corpus_dir)
        index, index_info = cached_index(docs, source, embedder, settings, Path(cache_root), progress)
        if settings.backend == "milvus":
            index = copy_to_milvus(index, Path(index_info["dir"] + ".milvus.db"), settings)
            index_info["backend"] = "milvus"
    cached = CachedEmbedder(embedder)
    retriever = Retriever.from_settings(index, cached, settings)
    naive = None
    if "naive" in modes:
        naive_cache = Path(index_info["dir"] + "-naive.npz") if index_info else None
        naive = NaiveIndex([d.text for d in docs], cached, cache=naive_cache)
    items = load_questions(questions)
    if limit is not None:
        items = items[: max(limit, 0)]
    for item in items:
        item["relevant"] = relevant_clauses(index.clauses, item.get("gold_quotes", []))

    kmax = max(KS)
    from assistant.pipeline import regions_of

    regions = regions_of(index)

    def passages_of(mode: str, query: str) -> tuple[list[str], list]:
        if mode == "naive":
            passages = naive.search(query, kmax)
            return passages, [p[:80] for p in passages[:3]]
        hits = retriever.search(query, k=kmax, mode=mode)
        return [h.clause.text for h in hits], [h.clause.clause_id for h in hits[:3]]

    rows: list[dict] = []
    search_ms: dict[str, list[float]] = defaultdict(list)
    span_ms: dict[str, list[float]] = defaultdict(list)
    bar = tqdm(items, desc="evaluating", unit="q", disable=not progress, file=sys.stderr)
    assistant = None
    tmp = tempfile.TemporaryDirectory(prefix="eval-")
    if answers:
        from assistant.pipeline import Assistant

        assistant = Assistant(settings.model_copy(update={"data_dir": Path(tmp.name)}), index=index, embedder=embedder)
    try:
        for item in bar:
            if is_span_item(item):
                rows.append(_span_row(item, modes, passages_of, span_ms, assistant))
                continue
            row = {"id": item["id"], "tags": item.get("tags", []), "refuse": bool(item.get("refuse"))}
            query = _query_of(item, regions)
            row["question"] = " / ".join(item["turns"]) if item.get("turns") else item["question"]
            row["query"] = query
            quotes = item.get("gold_quotes", [])
            row["gold_quotes"] = quotes
            if not row["refuse"] and quotes:
                row["retrieval"] = {}
                for mode in modes:
                    t0 = time.perf_counter()
                    passages, top = passages_of(mode, query)
                    search_ms[mode].append((time.perf_counter() - t0) * 1000)
                    ranked = quote_ranking(passages, quotes)
                    gold = set(range(len(quotes)))
                    hitlike = [r if isinstance(r, int) else (r[1] if r[0] == "again" else r) for r in ranked]
                    m = {f"recall@{k}": recall_at_k(ranked, gold, k) for k in KS}
                    m["mrr@10"] = mrr_at_k(hitlike, gold, 10)
                    m["ndcg@10"] = ndcg_at_k(ranked, gold, 10)
                    m["top"] = top
                    row["retrieval"][mode] = m
            if assistant is not None:
                row.update(_answer_row(assistant, item))
            rows.append(row)
    finally:
        bar.close()
        tmp.cleanup()
    seed_rows = [r for r in rows if r.get("kind") != "span"]
    span_rows = [r for r in rows if r.get("kind") == "span"]
    meta = {"index_kind": index.manifest.get("dense_index"), "model": embedder.name, "backend": getattr(index, "backend", "faiss")}
    if seed_rows or not span_rows:
        report = summarize(seed_rows, modes, search_ms, answers, **meta)
    else:
        report = {"meta": {**meta, "items": 0, "retrieval_items": 0}, "retrieval": {}}
    if span_rows:
        report["meta"]["items"] = len(rows)
        report["meta"]["span_items"] = len(span_rows)
        report["span"] = summarize_span(span_rows, modes, span_ms, answers)
    if index_info:
        report["meta"]["index"] = index_info
    write_report(report, rows, Path(out_dir))
    return report


def _converse(assistant, item: dict, stateless: bool):
    """The answer to an item: every turn of a conversation, else `ask` (stateless) or a fresh `chat` session."""
    if item.get("turns"):
        sid = None
        for t in item["turns"]:
            ans = assistant.chat(t, sid)
            sid = ans.session_id
        return ans
    return assistant.ask(item["question"]) if stateless else assistant.chat(item["question"], None)


def _span_row(item: dict, modes: Sequence[str], passages_of, span_ms: dict, assistant) -> dict:
    """One span item: the rank of the gold span per mode and, with an assistant, whether the answer contains it."""
    query = _query_of(item)
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
        t0 = time.perf_counter()
        passages, top = passages_of(mode, query)
        span_ms[mode].append((time.perf_counter() - t0) * 1000)
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


def summarize_span(rows: Sequence[dict], modes: Sequence[str], span_ms: dict, answers: bool) -> dict:
    """The span section: hit@k and MRR@10 per mode (the headline from hybrid), answer containment, refusals, length."""
    by_mode = {}
    for mode in modes:
        ranks = [None if r["span_retrieval"][mode]["rank"] is None else r["span_retrieval"][mode]["rank"] - 1 for r in rows]
        by_mode[mode] = {**span_hits(ranks), "p50_ms": percentile(span_ms.get(mode, []), 50), "p95_ms": percentile(span_ms.get(mode, []), 95)}
    head = "hybrid" if "hybrid" in by_mode else (next(iter(by_mode)) if by_mode else None)
    out: dict = {"questions": len(rows), "mode": head}
    out.update({key: (by_mode[head][key] if head else None) for key in [f"hit@{k}" for k in KS] + ["mrr@10"]})
    n = len(rows)
    if answers and n:
        lat = [r["latency_ms"] for r in rows]
        out.update(
            answer_contains=sum(r["answer_contains"] for r in rows) / n,
            refused=sum(r["refused"] for r in rows) / n,
            answer_chars_p50=upper_median([r["answer_chars"] for r in rows]),
            latency_p50_ms=percentile(lat, 50),
            latency_p95_ms=percentile(lat, 95),
        )
    else:
        out.update(answer_contains=None, refused=None, answer_chars_p50=None, latency_p50_ms=None, latency_p95_ms=None)
    out["by_mode"] = by_mode
    return out


def span_line(span: dict) -> str:
    """The span headline as one JSON line with score_http.py's keys and rounding, for side-by-side comparison."""
    keys = ["questions"] + [f"hit@{k}" for k in KS] + ["mrr@10", "refused", "answer_contains", "answer_chars_p50"]
    return json.dumps({k: (round(span[k], 3) if isinstance(span[k], float) else span[k]) for k in keys}, ensure_ascii=False)


def _answer_row(assistant, item: dict) -> dict:
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


def summarize(rows: Sequence[dict], modes: Sequence[str], search_ms: dict, answers: bool, **meta) -> dict:
    """Aggregate per-item rows into the report record."""
    ret_rows = [r for r in rows if "retrieval" in r]
    retrieval = {}
    for mode in modes:
        ms = [r["retrieval"][mode] for r in ret_rows]
        retrieval[mode] = {key: mean(m[key] for m in ms) for key in [f"recall@{k}" for k in KS] + ["mrr@10", "ndcg@10"]}
        retrieval[mode]["p50_ms"] = percentile(search_ms.get(mode, []), 50)
        retrieval[mode]["p95_ms"] = percentile(search_ms.get(mode, []), 95)
    report = {"meta": {**meta, "items": len(rows), "retrieval_items": len(ret_rows)}, "retrieval": retrieval}
    if "hybrid" in retrieval and "naive" in retrieval:
        report["hybrid_minus_naive_recall@3"] = retrieval["hybrid"]["recall@3"] - retrieval["naive"]["recall@3"]
    if answers:
        ans = [r for r in rows if not r["refuse"]]
        lat = [r["latency_ms"] for r in rows]
        report["answers"] = {
            "fact_accuracy": mean(r["fact_accuracy"] for r in ans),
            "all_facts": mean(float(r["facts_all"]) for r in ans),
            "citation_precision": mean(r["citation_precision"] for r in ans),
            "citation_recall": mean(r["citation_recall"] for r in ans),
            "refusal": refusal_scores([r["refused"] for r in rows], [r["refuse"] for r in rows]),
            "latency_p50_ms": percentile(lat, 50),
            "latency_p95_ms": percentile(lat, 95),
            "per_tag": {
                "all_facts": by_tag([{**r, "ok": float(r["facts_all"])} for r in ans], "ok"),
                "refusal_correct": by_tag([{**r, "ok": float(r["refused"] == r["refuse"])} for r in rows], "ok"),
            },
        }
    if ret_rows and "hybrid" in modes:
        report["retrieval_per_tag_hybrid_recall@3"] = by_tag(
            [{**r, "v": r["retrieval"]["hybrid"]["recall@3"]} for r in ret_rows], "v"
        )
    return report


def _fmt(v) -> str:
    return "—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def table(report: dict, span: bool = True) -> str:
    """The retrieval table (and answer metrics, and with `span` the span section) as plain text / markdown."""
    cols = [f"recall@{k}" for k in KS] + ["mrr@10", "ndcg@10", "p50_ms", "p95_ms"]
    lines = []
    if report["retrieval"]:
        lines += ["| mode | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for mode, m in report["retrieval"].items():
        lines.append(f"| {mode} | " + " | ".join(_fmt(m[c]) for c in cols) + " |")
    if "hybrid_minus_naive_recall@3" in report:
        lines.append(f"\nhybrid − naive Recall@3: {report['hybrid_minus_naive_recall@3']:+.3f}")
    if "answers" in report:
        a = report["answers"]
        lines.append("\n| answer metric | value |\n|---|---|")
        for key in ("fact_accuracy", "all_facts", "citation_precision", "citation_recall", "latency_p50_ms", "latency_p95_ms"):
            lines.append(f"| {key} | {_fmt(a[key])} |")
        lines.append(f"| refusal precision | {_fmt(a['refusal']['precision'])} |")
        lines.append(f"| refusal recall | {_fmt(a['refusal']['recall'])} |")
    if span and "span" in report:
        if lines:
            lines.append("")
        lines.append(span_table(report["span"]))
    return "\n".join(lines)


def span_table(span: dict) -> str:
    """The span section: hit@k / MRR@10 per mode, then the answer metrics, as markdown."""
    cols = [f"hit@{k}" for k in KS] + ["mrr@10", "p50_ms", "p95_ms"]
    lines = [f"| span mode ({span['questions']} q) | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for mode, m in span["by_mode"].items():
        lines.append(f"| {mode} | " + " | ".join(_fmt(m[c]) for c in cols) + " |")
    lines.append("\n| span answer metric | value |\n|---|---|")
    for key in ("answer_contains", "refused", "answer_chars_p50", "latency_p50_ms", "latency_p95_ms"):
        lines.append(f"| {key} | {_fmt(span[key])} |")
    return "\n".join(lines)


def _plots(report: dict, rows: Sequence[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, m in report["retrieval"].items():
        ax.plot(KS, [m[f"recall@{k}"] or 0 for k in KS], marker="o", label=mode)
    span_modes = report.get("span", {}).get("by_mode", {})
    for mode, m in span_modes.items():
        ax.plot(KS, [m[f"hit@{k}"] or 0 for k in KS], marker="s", linestyle="--", label=f"{mode} (span hit@k)")
    ax.set_xlabel("k")
    ax.set_ylabel("Recall@k" if not span_modes else ("Hit@k (span)" if not report["retrieval"] else "Recall@k; dashed: span Hit@k"))
    ax.set_ylim(0, 1.05)
    ax.legend()
    ax.set_title("Recall@k per retrieval mode")
    fig.tight_layout()
    fig.savefig(out / "recall_at_k.png", dpi=100)
    plt.close(fig)
    made.append("recall_at_k.png")
    lat = [r["latency_ms"] for r in rows if "latency_ms" in r]
    if lat:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(lat, bins=30)
        ax.set_xlabel("answer latency (ms)")
        ax.set_ylabel("questions")
        ax.set_title("Answer latency distribution")
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=100)
        plt.close(fig)
        made.append("latency.png")
    per_tag = report.get("answers", {}).get("per_tag", {}).get("all_facts") or report.get("retrieval_per_tag_hybrid_recall@3")
    if per_tag:
        tags = [t for t, v in per_tag.items() if v is not None]
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.bar(tags, [per_tag[t] for t in tags])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("all facts correct" if "answers" in report else "hybrid Recall@3")
        ax.set_title("Accuracy per tag")
        plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
        fig.tight_layout()
        fig.savefig(out / "accuracy_per_tag.png", dpi=100)
        plt.close(fig)
        made.append("accuracy_per_tag.png")
    return made


SHOW_MISSES = 30


def span_misses(rows: Sequence[dict]) -> list[dict]:
    """Span items whose answer lacks the gold (or, without answers, whose search missed it), as score_http writes them."""
    out = []
    for r in rows:
        mode = "hybrid" if "hybrid" in r["span_retrieval"] else next(iter(r["span_retrieval"]), None)
        rank = r["span_retrieval"][mode]["rank"] if mode else None
        ok = r["answer_contains"] if "answer_contains" in r else rank is not None
        if not ok:
            out.append({"id": r["id"], "question": r["question"], "gold": r["gold"], "refused": r.get("refused", False),
                        "answer": r.get("answer"), "search_rank": rank, "mode": mode})
    return out


def write_report(report: dict, rows: Sequence[dict], out: Path) -> None:
    """report.json (summary + items), report.md (tables, plots, failures) and PNGs in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps({**report, "items": list(rows)}, ensure_ascii=False, indent=1), encoding="utf-8")
    plots = _plots(report, rows, out)
    seed_rows = [r for r in rows if r.get("kind") != "span"]
    span_rows = [r for r in rows if r.get("kind") == "span"]
    md = ["# Evaluation report", "", f"{report['meta']}", ""]
    if report["retrieval"]:
        md += ["## Retrieval (answerable items; hit = passage contains a gold quote, compacted)", ""]
        md.append(table(report, span=False))
        md += [
            "",
            "Notes: `naive` = fixed 500-character windows with 50 overlap over the cleaned document texts, dense only, same "
            "model. Multi-turn items are searched with the query the conversation stage resolves for the last turn. The query "
            "embedding is computed once per item and shared by the modes, so its cost shows in `dense` (run first among the "
            "dense modes) and not in `hybrid`/`naive`. Answer latency is end to end (`ask`, or every turn of a conversation).",
            "",
        ]
    if "span" in report:
        md += ["## Span questions (outside set; the rule of score_http.py)", "", span_table(report["span"]), ""]
        md += [
            "Scoring: both sides NFKC, whitespace removed, dashes/至/到 as `-`, curly quotes and 〔〕 as ASCII; a passage or "
            "answer contains the gold span when the span is a substring of it, or, for a span over 60 characters, when any "
            "30-character run of it (step 5) is. hit@k/MRR@10 use the clause texts (windows for `naive`) of a k=10 search; "
            "the answer is that of a fresh `chat` session (as `POST /api/chat`), a refusal never contains the gold; "
            "`answer_chars_p50` is sorted lengths[n // 2]. Span misses are listed in misses.jsonl.",
            "",
        ]
    per_tag = report.get("answers", {}).get("per_tag")
    if per_tag:
        md += ["", "## Per tag", "", "| tag | all facts correct | refusal decision correct | hybrid Recall@3 |", "|---|---|---|---|"]
        rec = report.get("retrieval_per_tag_hybrid_recall@3", {})
        for tag in sorted(set(per_tag["all_facts"]) | set(per_tag["refusal_correct"])):
            md.append(f"| {tag} | {_fmt(per_tag['all_facts'].get(tag))} | {_fmt(per_tag['refusal_correct'].get(tag))} | {_fmt(rec.get(tag))} |")
    md.append("")
    md.extend(f"![{p}]({p})" for p in plots)
    if seed_rows or not span_rows:
        md += ["", "## Failures", ""]
    for r in seed_rows:
        reasons = []
        hyb = r.get("retrieval", {}).get("hybrid")
        if hyb and hyb["recall@3"] < 1:
            reasons.append(f"hybrid recall@3={hyb['recall@3']:.2f}, top3={hyb['top']}")
        if "refused" in r and r["refused"] != r["refuse"]:
            reasons.append("refused wrongly" if r["refused"] else "should have refused")
        if r.get("facts_all") is False:
            missing = [f for f in r["facts"] if compact(f) not in compact(r["answer"])]
            reasons.append(f"missing facts {missing}")
        if reasons:
            md.append(f"- **{r['id']}** {r['question']}")
            md.append(f"  - expected: {r['gold_quotes'] or '(refusal)'}; relevant {r.get('relevant', [])}")
            md.append(f"  - {'; '.join(reasons)}")
            if "answer" in r:
                md.append(f"  - returned: {r['answer'][:200].replace(chr(10), ' ')} (cited {r['cited']})")
    if span_rows:
        misses = span_misses(span_rows)
        with open(out / "misses.jsonl", "w", encoding="utf-8") as f:
            for m in misses:
                f.write(json.dumps(m, ensure_ascii=False) + "\n")
        shown = misses[:SHOW_MISSES]
        md += ["", f"## Span misses ({len(misses)} of {len(span_rows)}; first {len(shown)} shown, all in misses.jsonl)", ""]
        for m in shown:
            md.append(f"- **{m['id']}** {m['question']}")
            md.append(f"  - gold: {m['gold'][:200]}")
            how = "refused" if m["refused"] else ("answer lacks the span" if m["answer"] is not None else "not found")
            md.append(f"  - {how}; rank of the first clause with the span (search mode {m['mode']}): {m['search_rank']}")
            if m["answer"]:
                md.append(f"  - returned: {m['answer'][:200].replace(chr(10), ' ')}")
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def cli(name: str, argv: list[str]) -> int:
    """`eval [--corpus PATH] [--questions F] [--out DIR] [--modes …] [--embedder K] [--limit N] [--index-cache DIR] [--no-answers]`."""
    parser = argparse.ArgumentParser(
        prog=f"python -m assistant {name}",
        description="Evaluate retrieval and answers on a question set. Seed items (gold_quotes/facts/refuse) get recall, "
        "fact, citation and refusal metrics; span items ({id, question, answer}) get hit@k, MRR@10, answer_contains, "
        "refusal rate and answer length, scored as ../shared/extdata/score_http.py does.",
    )
    parser.add_argument("--corpus", type=Path, help="corpus folder or JSONL of {doc_id,title,text} (default: the service's corpus/ and index/)")
    parser.add_argument("--questions", type=Path, default=Path("eval/testset.jsonl"), help="JSONL question set (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("eval"), help="where report.json, report.md and plots go (default: %(default)s)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="retrieval modes to score (default: all)")
    parser.add_argument("--embedder", choices=["hash", "sentence-transformers"], help="embedding backend (default: the settings')")
    parser.add_argument("--limit", type=_positive, metavar="N", help="only the first N questions")
    parser.add_argument("--index-cache", type=Path, default=DEFAULT_CACHE, metavar="DIR",
                        help="where the cached index of a --corpus lives, rebuilt only when stale (default: %(default)s)")
    parser.add_argument("--no-answers", action="store_true", help="retrieval metrics only")
    parser.add_argument("--backend", choices=["faiss", "milvus"],
                        help="search the index in FAISS + bm25s or in Milvus (default: ASSISTANT_BACKEND or faiss)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = evaluate(args.questions, args.out, args.corpus, args.modes, args.embedder, not args.no_answers,
                      limit=args.limit, cache_root=args.index_cache, backend=args.backend)
    info = report["meta"].get("index")
    if info:
        how = "current" if info["built"] is None else f"built ({info['built']}), {info['embedded']} of {info['clauses']} clauses embedded"
        print(f"index {info['dir']}: {how}")
    print(table(report))
    if "span" in report:
        print("\nspan (score_http.py keys): " + span_line(report["span"]))
    print(f"\nwrote {args.out / 'report.json'}, {args.out / 'report.md'} ({time.perf_counter() - started:.1f} s)")
    return 0
