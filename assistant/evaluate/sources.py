"""Evaluation stage, what a run searches: the documents of a corpus path and the index over them — the
service's own (built when missing or stale), a cached one per outside corpus under `eval/runs/` (rebuilt only
when stale, re-embedding only the clauses whose text changed), an in-memory one, or a Milvus copy of either.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

DEFAULT_CACHE = Path("eval/runs")


def documents_from(corpus: Path | None, settings):
    """The documents of a corpus folder or a JSONL file of {doc_id, title, text} (None: the service's corpus)."""
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


def throwaway_index(docs, embedder):
    """An in-memory index of `docs`, every clause embedded anew."""
    from assistant.backends.local import PolicyIndex
    from assistant.index import clauses_of

    clauses, records = clauses_of(docs)
    index, _ = PolicyIndex.from_clauses(clauses, embedder, documents=records)
    return index



def ensure_built(settings, embedder=None) -> str | None:
    """Build the service's index when missing or stale (quietly: no progress bars), warning on stderr of
    each skipped file; returns why it was built (None: it was current)."""
    from assistant.index import build_from_settings

    reason, _, errors = build_from_settings(settings, embedder=embedder)
    for err in errors:
        print(f"warning: skipped {err}", file=sys.stderr)
    return reason


def open_index(docs, corpus: Path | None, embedder, settings, service: bool, cache_root: Path | None,
               progress: bool = True):
    """The index a run searches, and (for a cached one) where it lives and how it was built, or None.

    `service`: the service's own index under `settings`, built when needed. Else with no `cache_root` an
    in-memory index embedded on every run, else the cached index of the corpus path. A Milvus backend gets a
    copy of the local index (the same clauses and vectors), so the two backends are compared on equal terms.
    """
    if service:
        from assistant.backends import target_of

        ensure_built(settings, embedder)
        return target_of(settings).load(), None
    if cache_root is None:
        index = throwaway_index(docs, embedder)
        if settings.backend == "milvus":
            from tempfile import mkdtemp

            index = copy_to_milvus(index, Path(mkdtemp(prefix="eval-milvus-")) / "index.db", settings)
        return index, None
    source = Path(corpus) if corpus is not None else Path(settings.corpus_dir)
    index, info = cached_index(docs, source, embedder, settings, Path(cache_root), progress)
    if settings.backend == "milvus":
        index = copy_to_milvus(index, Path(info["dir"] + ".milvus.db"), settings)
        info["backend"] = "milvus"
    return index, info
