"""Benchmark stage, measuring: process memory, folder sizes, and the latency of searches and of whole answers."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from assistant.evaluate.metrics import percentile


def rss_mb() -> float:
    """Current resident memory (VmRSS) in MB; NaN where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def dir_mb(path: Path) -> float:
    """Bytes of the files under `path`, in MB."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def search_latency(retriever, queries) -> dict:
    """search_p50_ms / search_p95_ms of hybrid k=10 searches, after one warm-up (lazy imports, first allocations)."""
    retriever.search(queries[0], k=10, mode="hybrid")
    lat = []
    for q in queries:
        t0 = time.perf_counter()
        retriever.search(q, k=10, mode="hybrid")
        lat.append((time.perf_counter() - t0) * 1000)
    return {"search_p50_ms": round(percentile(lat, 50), 2), "search_p95_ms": round(percentile(lat, 95), 2)}


def chat_latency(index, embedder, settings, queries) -> dict:
    """chat_p50_ms / chat_p95_ms of whole `ask` answers over `index` (conversations in a temporary folder), after one warm-up."""
    try:
        from assistant.pipeline import Assistant
    except ImportError:
        return {"chat_p50_ms": None, "chat_p95_ms": None}
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as tmp:
        bot = Assistant(settings.model_copy(update={"data_dir": Path(tmp)}), index=index, embedder=embedder)
        if queries:
            bot.ask(queries[0])
        lat = []
        for q in queries:
            t0 = time.perf_counter()
            bot.ask(q)
            lat.append((time.perf_counter() - t0) * 1000)
    return {"chat_p50_ms": round(percentile(lat, 50), 2), "chat_p95_ms": round(percentile(lat, 95), 2)}

