"""Index stage (building): documents → clauses with facts → vectors → an index written to a target.

Incremental: documents unchanged since the previous index keep its clauses, unchanged clause texts
its vectors. Where the index lives and how it is searched is the backends' job (assistant.backends:
a FAISS + bm25s directory, or a Milvus collection); this module decides what goes in and when an
index is stale.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, Union

import numpy as np

from assistant.backends import as_target
# The build's shared pieces live below the builder and the backends (manifest.py, vectors.py);
from assistant.manifest import BuildStats, new_manifest
from assistant.schema import Clause, Document, IndexMissingError, StaleIndexError
from assistant.vectors import embed_clauses

if TYPE_CHECKING:  # an index of either backend: what the previous build left
    from assistant.backends.local import PolicyIndex
    from assistant.backends.milvus import MilvusIndex

    Index = Union[PolicyIndex, MilvusIndex]


def pipeline_hash() -> str:
    """Hash of the code and data that turn a corpus into clauses (cleaning, chunking, facts,
    tokenizer dictionaries): a change there makes an index stale even when the corpus is not."""
    import assistant

    root = Path(assistant.__file__).parent
    h = hashlib.sha256()
    for rel in (
        "ingest.py", "corpus.py", "chunk.py", "facts.py", "conditions.py", "vocab.py", "text.py", "dedup.py",
        "validity.py", "data/userdict.txt", "data/synonyms.tsv", "data/variants.tsv", "data/units.tsv",
        "data/quantities.tsv", "data/industries.tsv", "data/condition_words.tsv", "data/enterprise_types.txt",
        "data/not_places.txt",
    ):
        path = root / rel
        if path.exists():
            h.update(rel.encode())
            h.update(path.read_bytes())
    # the tokenizer takes its place names from jionlp's gazetteer, and documents their places
    from importlib import metadata

    h.update(f"jionlp {metadata.version('jionlp')}".encode())
    return h.hexdigest()[:16]


def stale_reason(where, corpus_hash: str, model: str, chunk_max_chars: int) -> str | None:
    """Why the index at `where` (a directory or a target) must be rebuilt ("missing", "corpus
    changed", …), or None when it is current."""
    manifest = as_target(where).read_manifest()
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
    """The places a text names, most often named first (short forms: 江西, 南昌, 海淀区): the evidence
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
    previous: "Index | None" = None,
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


def _reusable(previous: "Index | None") -> tuple[dict[str, dict], dict[str, list[Clause]]]:
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


def _changes(previous: "Index | None", records: list[dict]) -> dict:
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
    out_dir,
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
):
    """Chunk, extract facts, embed and write to `out_dir` (an index directory or a backend target)
    atomically, incrementally: documents unchanged since the previous index keep its clauses,
    unchanged clause texts its vectors. Returns (the new index, BuildStats).

    `timeout_s` guards each document's chunking (see guard.run); `stop` (a threading.Event) is checked
    between documents and embedding batches and raises BuildCancelled, leaving the old index in place.
    `progress` reports embedding, `chunk_progress` chunking, as (done, total)."""
    from assistant.guard import check_stop
    from assistant.schema import CorpusError

    started = time.perf_counter()
    target = as_target(out_dir)
    previous = None
    if target.read_manifest() is not None:
        try:
            previous = target.load()
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

    embedded = embed_clauses(chunked.clauses, embedder, cached, batch_size, tick)
    check_stop(stop)
    manifest = new_manifest(embedder, corpus_hash, len(chunked.records), len(chunked.clauses),
                            {"chunk_max_chars": chunk_max_chars, "pipeline_hash": pipeline_hash()})
    index = target.write(chunked.clauses, chunked.records, embedded.vectors, embedded.hashes, manifest, stop=stop,
                         ann_threshold=ann_threshold, hnsw_m=hnsw_m, hnsw_ef_search=hnsw_ef_search, texts=embedded.texts)
    seconds = time.perf_counter() - started
    stats = BuildStats(
        len(chunked.records), len(chunked.clauses), embedded.computed, seconds, index.manifest.get("dense_index", ""),
        chunked=chunked.chunked,
        reused=chunked.reused,
        skipped=tuple(chunked.skipped),
        changes=_changes(previous, chunked.records),
    )
    return index, stats


def build_corpus(
    corpus_dir: Path,
    index_dir,
    embedder,
    chunk_max_chars: int = 600,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    stop=None,
    started: Callable[[str], None] | None = None,
    **options,
) -> tuple[str | None, BuildStats | None, list]:
    """Rebuild `index_dir` (a directory or a backend target) from `corpus_dir` when missing, stale or forced (incrementally, see build).

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


def build_from_settings(settings, embedder=None, target=None, force: bool = False, **hooks) -> tuple[str | None, BuildStats | None, list]:
    """build_corpus with every option taken from `settings` (the one place the edges build from):
    the target and embedder default to the configured ones; `hooks` are build_corpus's progress,
    chunk_progress, started and stop."""
    from assistant.backends import target_of
    from assistant.embed import embedder_for

    return build_corpus(
        Path(settings.corpus_dir),
        target if target is not None else target_of(settings),
        embedder if embedder is not None else embedder_for(settings),
        chunk_max_chars=settings.chunk_max_chars,
        force=force,
        timeout_s=settings.document_timeout_s,
        ann_threshold=settings.ann_threshold,
        hnsw_m=settings.hnsw_m,
        hnsw_ef_search=settings.hnsw_ef_search,
        batch_size=settings.embed_batch_size,
        **hooks,
    )


def require_current(index_dir, corpus_hash: str, model: str, chunk_max_chars: int) -> None:
    """Raise StaleIndexError (or IndexMissingError) unless the index matches corpus and model."""
    reason = stale_reason(index_dir, corpus_hash, model, chunk_max_chars)
    where = as_target(index_dir).describe()
    if reason == "missing":
        raise IndexMissingError(f"no index at {where} (run `python -m assistant build`)")
    if reason:
        raise StaleIndexError(f"index at {where} is stale: {reason} (run `python -m assistant build`)")
