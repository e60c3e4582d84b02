"""Benchmark stage: the bench runs on a tiny size with the hash embedder and writes the expected JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def test_generator_varies_within_document(seed_clauses):
    from assistant.bench import Generator, derived_vectors

    gen = Generator(seed_clauses[:20], seed=1)
    clauses, tokens, source = gen.generate(30)
    assert len(clauses) == len(tokens) == 30
    assert len({c.clause_id for c in clauses}) == 30
    assert all(c.doc_id == seed_clauses[s].doc_id for c, s in zip(clauses, source))
    assert all(tokens)
    base = np.eye(4, dtype=np.float32)
    vecs = derived_vectors(base, [0, 1, 2], seed=0)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    assert (vecs[np.arange(3), [0, 1, 2]] > 0.8).all()


def test_bench_tiny(hash_settings, tmp_path):
    from assistant.bench import run, table

    out = tmp_path / "bench.json"
    report = run([200], out, n_queries=5, throughput_sample=10, chat_queries=2,
                 questions=ROOT / "eval" / "testset.jsonl", settings=hash_settings, progress=False)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert out.with_suffix(".png").exists()
    for key in ("note", "model", "real_build_throughput", "sizes", "peak_rss_mb", "hnsw"):
        assert key in data
    point = data["sizes"]["200"]
    assert point["clauses"] == 200
    for kind in ("flat", "hnsw"):
        r = point[kind]
        for key in ("build_s", "build_clauses_per_s", "disk_mb", "search_p50_ms", "search_p95_ms", "chat_p50_ms", "chat_p95_ms"):
            assert r[key] is not None and r[key] >= 0, (kind, key)
    assert 0 <= point["hnsw"]["recall@10_vs_exact"] <= 1
    assert "200" in table(report)
