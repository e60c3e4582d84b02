"""Benchmark stage, scale points: build throughput, memory, disk size and search/chat latency at growing
corpus sizes. Synthetic points (`sizes`) index generated clauses with stand-in vectors (see synth.py); real
points (`real_sizes`) embed the generated texts for real, with the fastest backend (int8 ONNX by default).
Query embeddings are always real.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant.bench.measure import chat_latency, dir_mb, rss_mb, search_latency
from assistant.bench.synth import NOISE, Generator, derived_vectors
from assistant.text import tokenize


NOTE = (
    "Generated clauses vary the real ones (sentences shuffled within a document; numbers, regions and "
    "enterprise types substituted). Their vectors are NOT model embeddings: each is its source clause's "
    f"real embedding plus Gaussian noise (norm ≈ {NOISE}), renormalised; query embeddings are real. "
    "Real-model build throughput is measured separately on the real corpus plus a generated sample; "
    "real_sizes points embed generated clauses for real (real_sizes[n].model names the embedder). "
    "BM25 tokens of generated clauses are reused per sentence variant; jieba speed is measured on a sample "
    "and extrapolated (tokenize_estimated_s). Memory is the change in current RSS (VmRSS) around each build (understated when freed memory is reused), "
    "plus the dense index's serialised size (dense_index_mb); peak_rss_mb is the process high-water mark (ru_maxrss)."
)


def real_throughput(clauses, generated, embedder, sample: int) -> dict:
    """Clauses/s of embedding + indexing with the real embedder on the real corpus plus `sample` generated clauses."""
    from assistant.backends.local import PolicyIndex

    todo = list(clauses) + list(generated[:sample])
    t0 = time.perf_counter()
    _, stats = PolicyIndex.from_clauses(todo, embedder)
    seconds = time.perf_counter() - t0
    return {"clauses": len(todo), "seconds": round(seconds, 2), "clauses_per_s": round(len(todo) / seconds, 1), "model": embedder.name}


def bench_size(n, real, documents, base_vecs, gen, embedder, queries, settings, chat_queries) -> dict:
    """Build flat and HNSW indexes over n clauses and time them."""
    import bm25s
    import faiss

    from assistant.backends.local import PolicyIndex
    from assistant.vectors import text_hash
    from assistant.retrieve import Retriever

    clauses, tokens, vecs, generated = _scale_clauses(n, real, base_vecs, gen)
    result = {"clauses": len(clauses), **_tokenize_rate(generated, len(clauses))}
    rss0 = rss_mb()
    t0 = time.perf_counter()
    bm25 = bm25s.BM25()
    bm25.index(tokens, show_progress=False)
    result["bm25_build_s"] = round(time.perf_counter() - t0, 3)
    result["bm25_rss_delta_mb"] = round(rss_mb() - rss0, 1)
    hashes = [text_hash(c.text) for c in clauses]
    qvecs = np.asarray(embedder.encode(queries), dtype=np.float32)
    exact_ids = None
    for kind in ("flat", "hnsw"):
        rss0 = rss_mb()
        t0 = time.perf_counter()
        dense = _dense_index(kind, vecs.shape[1], settings)
        dense.add(vecs)
        dense_s = time.perf_counter() - t0
        build_s = dense_s + result["bm25_build_s"]
        r = {
            "dense_build_s": round(dense_s, 3),
            "build_s": round(build_s, 3),
            "build_clauses_per_s": round(len(clauses) / build_s, 1),
            "dense_rss_delta_mb": round(rss_mb() - rss0, 1),
            # freed memory from the previous size is reused, so RSS deltas understate; the serialised size does not
            "dense_index_mb": round(len(faiss.serialize_index(dense)) / 1e6, 2),
        }
        manifest = {"model": embedder.name, "dim": vecs.shape[1], "dense_index": kind,
                    "counts": {"documents": len(documents), "clauses": len(clauses)}}
        index = PolicyIndex(clauses, documents, dense, bm25, manifest, hashes)
        r.update(_saved_size(index))
        if kind == "flat":
            _, exact_ids = dense.search(qvecs, 10)
        else:
            r.update(_hnsw_recall(dense, qvecs, exact_ids, settings))
        r.update(search_latency(Retriever.from_settings(index, embedder, settings), queries))
        r.update(chat_latency(index, embedder, settings, queries[:chat_queries]))
        result[kind] = r
    return result


def _scale_clauses(n, real, base_vecs, gen):
    """n clauses (the real ones first, then generated variants), their BM25 tokens and vectors, and the generated ones."""
    extra = max(0, n - len(real))
    generated, gen_tokens, source = gen.generate(extra)
    real_tokens = [tokenize(c.index_text()) or ["\u2205"] for c in real[: min(n, len(real))]]
    clauses = list(real[: min(n, len(real))]) + generated
    vecs = np.concatenate([base_vecs[: min(n, len(real))], derived_vectors(base_vecs, source, seed=n)]) if extra else base_vecs[:n]
    return clauses, real_tokens + gen_tokens, vecs, generated


def _tokenize_rate(generated, total: int) -> dict:
    """jieba on the generated texts, timed on a sample and extrapolated to `total` (the bench reuses sentence tokens)."""
    sample = [c.text for c in generated[:500]]
    t0 = time.perf_counter()
    for t in sample:
        tokenize(t)
    rate = len(sample) / (time.perf_counter() - t0) if sample else None
    return {"tokenize_clauses_per_s": round(rate, 1) if rate else None,
            "tokenize_estimated_s": round(total / rate, 1) if rate else None}


def _dense_index(kind: str, dim: int, settings):
    """An empty exact (flat) or HNSW inner-product index, HNSW with the configured M and efSearch."""
    import faiss

    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    dense = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    dense.hnsw.efConstruction = 80
    dense.hnsw.efSearch = settings.hnsw_ef_search
    return dense


def _saved_size(index) -> dict:
    """save_s and disk_mb of the index saved to a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        t0 = time.perf_counter()
        index.save(Path(tmp) / "index")
        return {"save_s": round(time.perf_counter() - t0, 2), "disk_mb": round(dir_mb(Path(tmp) / "index"), 2)}


def _hnsw_recall(dense, qvecs, exact_ids, settings) -> dict:
    """The share of the exact top 10 that HNSW finds, at the configured efSearch and at 512."""
    _, ids = dense.search(qvecs, 10)
    out = {"recall@10_vs_exact": round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact_ids)])), 4)}
    # generated vectors are noisy near-copies of ~160 sources, so many neighbours sit at almost equal
    # distance; a wider beam shows how much of the gap is search effort rather than graph quality
    dense.hnsw.efSearch = 512
    _, wide = dense.search(qvecs, 10)
    dense.hnsw.efSearch = settings.hnsw_ef_search
    out["recall@10_vs_exact_ef512"] = round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(wide, exact_ids)])), 4)
    return out


def real_point(n, real, documents, gen, embedder, queries, settings, progress: bool = True) -> dict:
    """A scale point of n clauses embedded for real: the real clauses, then generated variants of them;
    build (embed + index), save, reload and search are timed."""
    from tqdm import tqdm

    from assistant.backends.local import PolicyIndex
    from assistant.retrieve import Retriever

    clauses = list(real[:n])
    if n > len(clauses):
        clauses += gen.generate(n - len(clauses))[0]
    result = {
        "clauses": len(clauses), "generated": len(clauses) - min(n, len(real)), "model": embedder.name,
        "mean_chars": round(float(np.mean([len(c.index_text()) for c in clauses])), 1),
    }
    bar = tqdm(total=len(clauses), desc=f"embedding {len(clauses)} clauses", unit="clause", disable=not progress, file=sys.stderr)
    embedded_at = []

    def tick(done: int, total: int) -> None:
        bar.total, bar.n = total, done
        bar.refresh()
        embedded_at.append(time.perf_counter())

    rss0 = rss_mb()
    # the process high-water mark before this point (models loaded, the base index, a first ONNX export)
    result["peak_rss_before_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    t0 = time.perf_counter()
    try:
        index, stats = PolicyIndex.from_clauses(
            clauses, embedder, documents=documents, ann_threshold=settings.ann_threshold, hnsw_m=settings.hnsw_m,
            hnsw_ef_search=settings.hnsw_ef_search, batch_size=settings.embed_batch_size, progress=tick,
        )
    finally:
        bar.close()
    result["embed_s"] = round((embedded_at[-1] if embedded_at else t0) - t0, 1)
    result["build_s"] = round(time.perf_counter() - t0, 1)  # embedding, dense and BM25 indexes (jieba included)
    result["embed_clauses_per_s"] = round(stats.embedded / max(result["embed_s"], 1e-9), 1)
    result["build_clauses_per_s"] = round(len(clauses) / max(result["build_s"], 1e-9), 1)
    result["dense_index"] = stats.dense_index
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        t0 = time.perf_counter()
        index.save(Path(tmp) / "index")
        result["save_s"] = round(time.perf_counter() - t0, 2)
        result["disk_mb"] = round(dir_mb(Path(tmp) / "index"), 1)
        del index
        t0 = time.perf_counter()
        loaded = PolicyIndex.load(Path(tmp) / "index")
        result["load_s"] = round(time.perf_counter() - t0, 2)
    result["rss_delta_mb"] = round(rss_mb() - rss0, 1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result.update(search_latency(Retriever.from_settings(loaded, embedder, settings), queries))
    return result


def run(sizes, out: Path, n_queries: int = 50, embedder_kind: str | None = None, throughput_sample: int = 100,
        chat_queries: int = 20, questions: Path = Path("eval/testset.jsonl"), settings=None, progress: bool = True,
        real_sizes=(), real_backend: str = "onnx-int8") -> dict:
    """The whole benchmark; writes JSON to `out` and a plot next to it. `real_sizes` are scale points whose
    generated clauses are embedded for real with `real_backend` (run first, so their peak memory is theirs)."""
    from tqdm import tqdm

    from assistant.config import Settings
    from assistant.embed import embedder_for, make_embedder, onnx_cache_dir
    from assistant.evaluate.items import load_questions
    from assistant.evaluate.sources import documents_from, ensure_built, throwaway_index

    settings = settings or Settings()
    if embedder_kind:
        settings = settings.model_copy(update={"embedder": embedder_kind})
    embedder = embedder_for(settings)
    if settings.embedder == "hash":
        index = throwaway_index(documents_from(None, settings), embedder)
    else:
        from assistant.backends.local import PolicyIndex

        ensure_built(settings, embedder)
        index = PolicyIndex.load(Path(settings.index_dir))
    real = list(index.clauses)
    base_vecs = index.dense.reconstruct_n(0, len(real)).astype(np.float32)
    items = [i for i in load_questions(questions) if i.get("question")]
    queries = [i["question"] for i in items][:n_queries]
    gen = Generator(real)
    sample_clauses, _, _ = gen.generate(throughput_sample + len(real))
    report = {
        "note": NOTE,
        "model": embedder.name,
        "dim": int(base_vecs.shape[1]),
        "queries": len(queries),
        "chat_queries": min(chat_queries, len(queries)),
        "hnsw": {"m": settings.hnsw_m, "ef_construction": 80, "ef_search": settings.hnsw_ef_search},
        "generator_sentence_variants_tokenized": gen.sentences_tokenized,
        "generator_tokenize_s": round(gen.tokenize_seconds, 2),
        "real_build_throughput": real_throughput(real, sample_clauses[len(real):], embedder, throughput_sample),
        "real_sizes": {},
        "sizes": {},
    }
    if real_sizes:
        real_embedder = make_embedder(settings.embedder, settings.model, settings.hash_dim, backend=real_backend,
                                      cache_dir=onnx_cache_dir(settings.index_dir))
        for n in real_sizes:
            report["real_sizes"][str(n)] = real_point(n, real, index.documents, gen, real_embedder, queries, settings, progress)
    for n in tqdm(sizes, desc="bench sizes", disable=not progress, file=sys.stderr):
        report["sizes"][str(n)] = bench_size(n, real, index.documents, base_vecs, gen, embedder, queries, settings, chat_queries)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    _plot(report, out.with_suffix(".png"))
    return report


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(report["sizes"], key=int)
    xs = [int(s) for s in sizes]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for kind in ("flat", "hnsw"):
        axes[0].plot(xs, [report["sizes"][s][kind]["search_p50_ms"] for s in sizes], marker="o", label=f"{kind} search p50")
        axes[0].plot(xs, [report["sizes"][s][kind]["search_p95_ms"] for s in sizes], marker="x", ls="--", label=f"{kind} search p95")
        axes[1].plot(xs, [report["sizes"][s][kind]["build_s"] for s in sizes], marker="o", label=f"{kind} build (dense+BM25)")
        axes[2].plot(xs, [report["sizes"][s][kind]["disk_mb"] for s in sizes], marker="o", label=f"{kind} disk")
    real = sorted(report.get("real_sizes", {}), key=int)
    if real:  # real embeddings: the points that are not noisy copies
        rx = [int(s) for s in real]
        axes[0].plot(rx, [report["real_sizes"][s]["search_p95_ms"] for s in real], marker="*", ls="", ms=12, label="real-text search p95")
        axes[1].plot(rx, [report["real_sizes"][s]["build_s"] for s in real], marker="*", ls="", ms=12, label="real-text build (embedding included)")
        axes[2].plot(rx, [report["real_sizes"][s]["disk_mb"] for s in real], marker="*", ls="", ms=12, label="real-text disk")
    for ax, label in zip(axes, ("latency (ms)", "seconds", "MB")):
        ax.set_xscale("log")
        ax.set_xlabel("clauses")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.suptitle("Bench (lines: generated vectors = real + noise; stars: generated texts embedded for real)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(report: dict) -> str:
    """Markdown table of the size points."""
    lines = [
        "| clauses | index | build s | clauses/s | dense ΔRSS MB | dense index MB | disk MB | search p50/p95 ms | chat p50/p95 ms | HNSW recall@10 (ef=512) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s, res in sorted(report["sizes"].items(), key=lambda kv: int(kv[0])):
        for kind in ("flat", "hnsw"):
            r = res[kind]
            lines.append(
                f"| {s} | {kind} | {r['build_s']} | {r['build_clauses_per_s']} | {r['dense_rss_delta_mb']} | {r['dense_index_mb']} | {r['disk_mb']} | "
                f"{r['search_p50_ms']}/{r['search_p95_ms']} | {r['chat_p50_ms']}/{r['chat_p95_ms']} | {r.get('recall@10_vs_exact', '—')} ({r.get('recall@10_vs_exact_ef512', '—')}) |"
            )
    if report.get("real_sizes"):
        lines += [
            "\nreal scale points (generated clause texts embedded for real):\n",
            "| clauses | embedder | mean chars | embed s | embed clauses/s | build s | save s | disk MB | peak RSS MB (before) | search p50/p95 ms |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s, r in sorted(report["real_sizes"].items(), key=lambda kv: int(kv[0])):
            lines.append(
                f"| {s} | {r['model']} | {r['mean_chars']} | {r['embed_s']} | {r['embed_clauses_per_s']} | {r['build_s']} | "
                f"{r['save_s']} | {r['disk_mb']} | {r['peak_rss_mb']} ({r.get('peak_rss_before_mb', '—')}) | {r['search_p50_ms']}/{r['search_p95_ms']} |"
            )
    t = report["real_build_throughput"]
    lines.append(f"\nreal-model build throughput ({t['model']}): {t['clauses_per_s']} clauses/s over {t['clauses']} clauses")
    return "\n".join(lines)

