"""Benchmark stage, index backends compared: the same clauses and vectors written to FAISS + bm25s and to
Milvus, with their write, load, disk size and search and answer latency."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from assistant.bench.measure import chat_latency, dir_mb, search_latency


def index_backends(backends: list[str], settings, corpus: Path | None = None, questions: Path = Path("eval/testset.jsonl"),
                   n_queries: int = 100, progress: bool = True) -> dict:
    """The same clauses and vectors written to each index backend (faiss, milvus) in one run: the
    storage part of a build (write_s: indexing and saving; the shared chunk_s and embed_s once), disk
    size, row count, and the latency of hybrid k=10 searches and of whole answers over the questions."""
    from assistant.backends import LocalTarget
    from assistant.backends.milvus import MilvusTarget
    from assistant.embed import embedder_for
    from assistant.evaluate.items import load_questions
    from assistant.evaluate.sources import documents_from
    from assistant.index import chunk_documents, embed_clauses, new_manifest, pipeline_hash
    from assistant.retrieve import Retriever

    embedder = embedder_for(settings)
    docs = documents_from(corpus, settings)
    t0 = time.perf_counter()
    chunked = chunk_documents(docs, settings.chunk_max_chars, timeout_s=settings.document_timeout_s)
    chunk_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    embedded = embed_clauses(chunked.clauses, embedder, batch_size=settings.embed_batch_size)
    embed_s = time.perf_counter() - t0
    manifest = new_manifest(embedder, "bench", len(chunked.records), len(chunked.clauses),
                            {"chunk_max_chars": settings.chunk_max_chars, "pipeline_hash": pipeline_hash()})
    queries = [i["question"] for i in load_questions(questions) if i.get("question")][:n_queries]
    report = {"corpus": str(corpus or settings.corpus_dir), "model": embedder.name, "documents": len(chunked.records),
              "clauses": len(chunked.clauses), "chunk_s": round(chunk_s, 2), "embed_s": round(embed_s, 2),
              "queries": len(queries), "backends": {}}
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as tmp:
        for name in backends:
            where = Path(tmp) / name
            target = LocalTarget(where) if name == "faiss" else MilvusTarget(str(where) + ".db", alias="bench")
            t0 = time.perf_counter()
            index = target.write(chunked.clauses, chunked.records, embedded.vectors, embedded.hashes, manifest,
                                 ann_threshold=settings.ann_threshold, hnsw_m=settings.hnsw_m,
                                 hnsw_ef_search=settings.hnsw_ef_search, texts=embedded.texts)
            write_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            loaded = target.load()
            load_s = time.perf_counter() - t0
            rows = loaded.count() if hasattr(loaded, "count") else len(loaded)
            disk = where if name == "faiss" else Path(str(where) + ".db")
            retriever = Retriever.from_settings(loaded, embedder, settings)
            point = {"write_s": round(write_s, 2), "load_s": round(load_s, 2), "rows": rows,
                     "build_s": round(chunk_s + embed_s + write_s, 2), "disk_mb": round(dir_mb(disk), 2) if disk.exists() else None}
            if queries:
                point.update(search_latency(retriever, queries))
                point.update(chat_latency(loaded, embedder, settings, queries[:30]))
            report["backends"][name] = point
            del index, loaded, retriever
    return report


def index_backends_lines(report: dict) -> str:
    lines = [
        f"{report['documents']} documents, {report['clauses']} clauses ({report['corpus']}); {report['model']}; "
        f"chunking {report['chunk_s']} s and embedding {report['embed_s']} s, shared by every backend; {report['queries']} questions",
        "| backend | write s | build s (chunk+embed+write) | load s | rows | disk MB | search p50/p95 ms | answer p50/p95 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in report["backends"].items():
        lines.append(f"| {name} | {r['write_s']} | {r['build_s']} | {r['load_s']} | {r['rows']} | {r['disk_mb']} | "
                     f"{r.get('search_p50_ms')}/{r.get('search_p95_ms')} | {r.get('chat_p50_ms')}/{r.get('chat_p95_ms')} |")
    return "\n".join(lines)
