"""Index stage: dense (FAISS, inner product over normalised vectors) + lexical (BM25 over jieba
tokens) in one id space, saved as a readable directory and swapped in atomically.

Layout: manifest.json (written last), clauses.jsonl, documents.jsonl, hashes.json, dense.faiss, bm25/.
A directory without a valid manifest never loads. faiss and bm25s are imported here only, lazily.
The class is the small interface (build, dense search, lexical search, save, load) that a
distributed engine could implement instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from assistant.schema import Clause, Document, IndexMissingError, StaleIndexError
from assistant.text import normalize, tokenize

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def _faiss():
    import faiss

    return faiss


def _bm25s():
    import bm25s

    return bm25s


def pipeline_hash() -> str:
    """Hash of the code and data that turn a corpus into clauses (cleaning, chunking, facts,
    tokenizer dictionaries): a change there makes an index stale even when the corpus is not."""
    import assistant

    root = Path(assistant.__file__).parent
    h = hashlib.sha256()
    for rel in (
        "corpus.py", "chunk.py", "facts.py", "text.py", "dedup.py", "validity.py",
        "data/userdict.txt", "data/synonyms.tsv", "data/variants.tsv",
    ):
        path = root / rel
        if path.exists():
            h.update(rel.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("faiss-cpu", "bm25s", "jieba", "sentence-transformers", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    from assistant import __version__

    out["assistant"] = __version__
    return out


@dataclass(frozen=True)
class BuildStats:
    documents: int
    clauses: int
    embedded: int  # clauses whose vectors were computed (the rest came from the cache)
    seconds: float
    dense_index: str
    chunked: int = 0  # documents chunked in this build
    reused: int = 0  # documents whose clauses came from the previous index (unchanged since)
    skipped: tuple = ()  # the CorpusErrors of documents left out (each names its file and the reason)
    changes: dict | None = None  # documents added / changed / removed since the previous index


class Idf(dict):
    """token → inverse document frequency, with `top` the largest (the weight of an unseen token)."""

    top: float = 1.0


def _embed_rows(embedder, texts: list[str], hashes: list[str], rows: list[int], vectors: np.ndarray,
                batch_size: int, progress: Callable[[int, int], None] | None) -> None:
    """Embed texts[rows] into vectors[rows]: each distinct text once, all of them in one pass sorted by
    length (longest first) across the whole build, so every batch pads to nearly its own length.

    The sorted list is handed to the embedder in slices only to report progress (and let a build stop
    between them); slices keep the global order, unlike encoding clauses in corpus order, where each
    group of short articles waits on its longest one.
    """
    first: dict[str, int] = {}
    for i in rows:
        first.setdefault(hashes[i], i)
    unique = sorted(first.values(), key=lambda i: -len(texts[i]))
    step = max(batch_size * 8, 256)
    for s in range(0, len(unique), step):
        part = unique[s : s + step]
        vectors[part] = embedder.encode([texts[i] for i in part], batch_size=batch_size)
        if progress:
            progress(min(s + step, len(unique)), len(unique))
    for i in rows:
        if first[hashes[i]] != i:  # a repeated text (the same clause under two headings) reuses its vector
            vectors[i] = vectors[first[hashes[i]]]


class PolicyIndex:
    """Clauses plus their dense and lexical indexes, sharing row numbers as ids."""

    def __init__(self, clauses: list[Clause], documents: list[dict], dense, bm25, manifest: dict, hashes: list[str]):
        self.clauses = clauses
        self.documents = documents
        self.dense = dense
        self.bm25 = bm25
        self.manifest = manifest
        self.hashes = hashes
        self._by_id = {c.clause_id: i for i, c in enumerate(clauses)}

    # -- construction -------------------------------------------------------------------------
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
    ) -> tuple["PolicyIndex", BuildStats]:
        """Embed (reusing cached vectors by text hash) and index clauses in memory."""
        started = time.perf_counter()
        clauses = list(clauses)
        texts = [normalize(c.index_text()) for c in clauses]
        hashes = [text_hash(t) for t in texts]
        cached = cached or {}
        dim = embedder.dim
        vectors = np.zeros((len(clauses), dim), dtype=np.float32)
        todo = []
        for i, h in enumerate(hashes):
            if h in cached and cached[h].shape[0] == dim:
                vectors[i] = cached[h]
            else:
                todo.append(i)
        _embed_rows(embedder, texts, hashes, todo, vectors, batch_size, progress)
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
            dense.add(vectors)
        bm25 = _bm25s().BM25()
        if clauses:
            bm25.index([tokenize(t) or ["\u2205"] for t in texts], show_progress=False)
        docs = list(documents)
        manifest = {
            "format": FORMAT_VERSION,
            "model": embedder.name,
            "dim": dim,
            "corpus_hash": corpus_hash,
            "counts": {"documents": len(docs), "clauses": len(clauses)},
            "dense_index": kind,
            "hnsw": {"m": hnsw_m, "ef_search": hnsw_ef_search} if kind == "hnsw" else None,
            "versions": _versions(),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **(extra_manifest or {}),
        }
        index = cls(clauses, docs, dense, bm25, manifest, hashes)
        seconds = time.perf_counter() - started
        manifest["build_seconds"] = round(seconds, 3)
        return index, BuildStats(len(docs), len(clauses), len(todo), seconds, kind)

    # -- search ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.clauses)

    def get(self, clause_id: str) -> Clause | None:
        i = self._by_id.get(clause_id)
        return self.clauses[i] if i is not None else None

    def dense_search(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k rows by inner product; `allowed` (row ids) restricts the search."""
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

    def lexical_search(self, tokens: list[str], k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k rows by BM25; tokens unknown to the vocabulary simply score nothing."""
        if not tokens or not self.clauses or k <= 0:
            return []
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

    def idf(self) -> dict[str, float]:
        """Inverse document frequency of every indexed token (BM25's form), read off the lexical
        index: how much a question word says about which clause answers it."""
        cached = getattr(self, "_idf", None)
        if cached is not None:
            return cached
        table = Idf()
        if self.clauses:
            indptr = np.asarray(self.bm25.scores["indptr"])
            n = len(self.clauses)
            for token, i in self.bm25.vocab_dict.items():
                if token and i + 1 < len(indptr):
                    df = int(indptr[i + 1] - indptr[i])
                    table[token] = float(np.log(1 + (n - df + 0.5) / (df + 0.5)))
        table.top = max(table.values(), default=1.0)
        self._idf = table
        return table

    def vectors_by_hash(self) -> dict[str, np.ndarray]:
        """The stored vectors keyed by text hash: the embedding cache for the next build."""
        if not self.clauses:
            return {}
        vecs = self.dense.reconstruct_n(0, len(self.clauses))
        return {h: vecs[i] for i, h in enumerate(self.hashes)}

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
    return manifest if isinstance(manifest, dict) and manifest.get("format") == FORMAT_VERSION else None


def stale_reason(index_dir: Path, corpus_hash: str, model: str, chunk_max_chars: int) -> str | None:
    """Why the index must be rebuilt ("missing", "corpus changed", …), or None when it is current."""
    manifest = read_manifest(index_dir)
    if manifest is None:
        return "missing"
    if manifest.get("corpus_hash") != corpus_hash:
        return "corpus changed"
    if manifest.get("model") != model:
        return f"model changed ({manifest.get('model')} → {model})"
    if manifest.get("chunk_max_chars") != chunk_max_chars:
        return "chunking settings changed"
    if manifest.get("pipeline_hash") != pipeline_hash():
        return "chunking or tokenizer code changed"
    return None


def document_record(doc: Document, clause_count: int, duplicates: Sequence[str] = (), places: list[str] | None = None) -> dict:
    """Document metadata as stored in documents.jsonl (text excluded), with the doc_ids of the
    near-duplicate copies that were dropped in its favour (`places` when already known)."""
    d = asdict(doc)
    d.pop("text")
    d["clause_count"] = clause_count
    d["duplicates"] = list(duplicates)
    d["places"] = places if places is not None else places_in(doc.text)
    d.update(term_record(doc))
    return d


def term_record(doc: Document) -> dict:
    """`issued` and the document's term (`term`: until + the sentence read), from an override or the text."""
    from assistant.validity import read_term

    if doc.valid_until:
        until, basis = doc.valid_until, doc.validity_basis or "文件元数据载明的有效期"
    else:
        until, basis = read_term(doc.text, doc.date)
    return {"issued": doc.date or None, "term": {"until": until, "basis": basis}}


def places_in(text: str, limit: int = 40) -> list[str]:
    """The places a text names, most often named first (short forms: 江西, 南昌, 蓟州区): the evidence
    that a document concerns a place a question asks about, when its metadata states no region."""
    from collections import Counter

    from assistant.vocab import gazetteer, short_place

    counts = Counter(short_place(name) for _, _, name in gazetteer().find(text))
    return [name for name, _ in counts.most_common(limit)]


def document_hash(doc: Document) -> str:
    """Hash of everything of a document that its clauses are made from (text and metadata): equal
    hashes under the same pipeline mean its clauses from the previous index can be reused as they are."""
    return hashlib.sha1(json.dumps(asdict(doc), ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


@dataclass
class Chunked:
    """The clauses and document records of a corpus, and what it took to get them."""

    clauses: list[Clause]
    records: list[dict]
    chunked: int = 0  # documents chunked now
    reused: int = 0  # documents whose clauses came from the previous index
    skipped: list = field(default_factory=list)  # CorpusErrors of documents left out


def chunk_documents(
    documents: Sequence[Document],
    chunk_max_chars: int = 600,
    previous: "PolicyIndex | None" = None,
    timeout_s: float | None = None,
    stop=None,
    progress: Callable[[int, int], None] | None = None,
) -> Chunked:
    """Clauses (with facts) and records of documents, near-duplicate copies dropped first and listed in
    the kept document's record. A document whose hash is in `previous` (built by the same pipeline)
    keeps its clauses from there; the others are chunked, each under `timeout_s` in a worker process
    (a document over it is skipped, see guard.run). `stop` is checked between documents."""
    from assistant import guard
    from assistant.dedup import duplicate_groups

    groups = duplicate_groups(documents)
    dropped = {j for _, dups in groups for j in dups}
    duplicates = {kept: [documents[j].doc_id for j in dups] for kept, dups in groups}
    old_records, old_clauses = _reusable(previous)
    kept = [i for i in range(len(documents)) if i not in dropped]
    hashes = {i: document_hash(documents[i]) for i in kept}
    todo = [i for i in kept if old_records.get(documents[i].doc_id, {}).get("content_hash") != hashes[i]]
    results = dict(zip(todo, guard.run([documents[i] for i in todo], chunk_max_chars, timeout_s, stop, progress)))
    out = Chunked([], [], chunked=len(todo), reused=len(kept) - len(todo))
    for i in kept:
        doc = documents[i]
        if i in results:
            result = results[i]
            if isinstance(result, Exception):
                out.skipped.append(result)
                continue
            doc_clauses, places = result, None
        else:
            doc_clauses, places = old_clauses.get(doc.doc_id, []), old_records[doc.doc_id].get("places")
        out.clauses.extend(doc_clauses)
        record = document_record(doc, len(doc_clauses), duplicates.get(i, ()), places=places)
        record["content_hash"] = hashes[i]
        out.records.append(record)
    return out


def _reusable(previous: "PolicyIndex | None") -> tuple[dict[str, dict], dict[str, list[Clause]]]:
    # The previous index's records and clauses by doc_id, when its chunking code and settings are ours.
    if previous is None:
        return {}, {}
    records = {d["doc_id"]: d for d in previous.documents if d.get("content_hash")}
    clauses: dict[str, list[Clause]] = {}
    for c in previous.clauses:
        clauses.setdefault(c.doc_id, []).append(c)
    return records, clauses


def clauses_of(documents: Sequence[Document], chunk_max_chars: int = 600) -> tuple[list[Clause], list[dict]]:
    """The clauses (with facts) of documents, and each document's record with its clause count;
    near-duplicate copies are dropped first and listed in the kept document's record."""
    chunked = chunk_documents(documents, chunk_max_chars)
    return chunked.clauses, chunked.records


def _changes(previous: "PolicyIndex | None", records: list[dict]) -> dict:
    old = {d.get("doc_id"): d.get("content_hash") for d in (previous.documents if previous is not None else [])}
    new = {d["doc_id"]: d["content_hash"] for d in records}
    return {
        "added": sum(1 for k in new if k not in old),
        "changed": sum(1 for k, h in new.items() if k in old and old[k] != h),
        "removed": sum(1 for k in old if k not in new),
    }


def build(
    documents: Sequence[Document],
    embedder,
    out_dir: Path,
    corpus_hash: str,
    chunk_max_chars: int = 600,
    ann_threshold: int = 50_000,
    hnsw_m: int = 32,
    hnsw_ef_search: int = 128,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    timeout_s: float | None = None,
    stop=None,
    chunk_progress: Callable[[int, int], None] | None = None,
) -> tuple[PolicyIndex, BuildStats]:
    """Chunk, extract facts, embed and save atomically, incrementally: documents unchanged since the
    previous index keep its clauses, unchanged clause texts its vectors.

    `timeout_s` guards each document's chunking (see guard.run); `stop` (a threading.Event) is checked
    between documents and embedding batches and raises BuildCancelled, leaving the old index in place.
    `progress` reports embedding, `chunk_progress` chunking, as (done, total)."""
    from assistant.guard import check_stop
    from assistant.schema import CorpusError

    previous_manifest = read_manifest(out_dir)
    previous = None
    if previous_manifest is not None:
        try:
            previous = PolicyIndex.load(out_dir)
        except (IndexMissingError, RuntimeError):
            previous = None
    same_pipeline = previous is not None and previous.manifest.get("pipeline_hash") == pipeline_hash() \
        and previous.manifest.get("chunk_max_chars") == chunk_max_chars
    chunked = chunk_documents(
        documents, chunk_max_chars, previous if same_pipeline else None, timeout_s, stop, chunk_progress
    )
    if documents and not chunked.records:
        detail = "; ".join(str(e) for e in chunked.skipped[:3])
        raise CorpusError(f"no document could be chunked: {detail}")
    cached: dict[str, np.ndarray] = {}
    if previous is not None and previous.manifest.get("model") == embedder.name and previous.manifest.get("dim") == embedder.dim:
        cached = previous.vectors_by_hash()

    def tick(done: int, total: int) -> None:
        check_stop(stop)  # between embedding batches
        if progress:
            progress(done, total)

    index, stats = PolicyIndex.from_clauses(
        chunked.clauses,
        embedder,
        documents=chunked.records,
        corpus_hash=corpus_hash,
        ann_threshold=ann_threshold,
        hnsw_m=hnsw_m,
        hnsw_ef_search=hnsw_ef_search,
        batch_size=batch_size,
        cached=cached,
        progress=tick,
        extra_manifest={"chunk_max_chars": chunk_max_chars, "pipeline_hash": pipeline_hash()},
    )
    check_stop(stop)
    index.save(out_dir)
    stats = replace(
        stats,
        chunked=chunked.chunked,
        reused=chunked.reused,
        skipped=tuple(chunked.skipped),
        changes=_changes(previous, chunked.records),
    )
    return index, stats


def build_corpus(
    corpus_dir: Path,
    index_dir: Path,
    embedder,
    chunk_max_chars: int = 600,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    stop=None,
    started: Callable[[str], None] | None = None,
    **options,
) -> tuple[str | None, BuildStats | None, list]:
    """Rebuild `index_dir` from `corpus_dir` when missing, stale or forced (incrementally, see build).

    Returns (why it was built or None when current, build stats, per-file corpus errors, the documents
    skipped while chunking included); `started(reason)` is called when a build begins. Raises
    CorpusError when no document is readable, BuildCancelled when `stop` is set: the old index is then
    kept as it was.
    """
    from assistant.corpus import corpus_hash, load_corpus
    from assistant.schema import CorpusError

    chash = corpus_hash(corpus_dir)
    reason = stale_reason(index_dir, chash, embedder.name, chunk_max_chars)  # said even when forced
    reason = reason or ("forced" if force else None)
    if reason is None:
        return None, None, []
    if started:
        started(reason)
    docs, errors = load_corpus(corpus_dir, stop=stop)
    if not docs:
        detail = "; ".join(str(e) for e in errors) or "the folder has no documents"
        raise CorpusError(f"no readable documents in {corpus_dir}: {detail}")
    _, stats = build(docs, embedder, index_dir, chash, chunk_max_chars=chunk_max_chars, progress=progress, stop=stop, **options)
    return reason, stats, errors + list(stats.skipped)


def require_current(index_dir: Path, corpus_hash: str, model: str, chunk_max_chars: int) -> None:
    """Raise StaleIndexError (or IndexMissingError) unless the index matches corpus and model."""
    reason = stale_reason(index_dir, corpus_hash, model, chunk_max_chars)
    if reason == "missing":
        raise IndexMissingError(f"no index at {index_dir} (run `python -m assistant build`)")
    if reason:
        raise StaleIndexError(f"index at {index_dir} is stale: {reason} (run `python -m assistant build`)")
