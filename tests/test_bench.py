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


def test_real_scale_point_tiny(hash_settings, tmp_path):
    from assistant.bench import run, table

    out = tmp_path / "bench.json"
    report = run([], out, n_queries=5, throughput_sample=5, chat_queries=1, questions=ROOT / "eval" / "testset.jsonl",
                 settings=hash_settings, progress=False, real_sizes=[250])
    point = json.loads(out.read_text(encoding="utf-8"))["real_sizes"]["250"]
    assert point["clauses"] == 250 and 0 < point["generated"] < 250  # the real clauses, then generated ones
    for key in ("embed_s", "build_s", "disk_mb", "peak_rss_mb", "search_p50_ms", "search_p95_ms", "embed_clauses_per_s"):
        assert point[key] is not None and point[key] >= 0, key
    assert point["model"] == "hash-256"
    assert "real scale points" in table(report)


def test_vs_recipe_on_a_small_folder(tmp_path, capsys, monkeypatch):
    import shutil

    from assistant.bench import cli
    from assistant.evaluate.baselines import windows as recipe_windows

    assert recipe_windows("x" * 1000) == ["x" * 500, "x" * 500, "x" * 100]
    assert recipe_windows("短") == ["短"]
    folder = tmp_path / "docs"
    folder.mkdir()
    for f in sorted((ROOT / "corpus").glob("*.txt"))[:2]:
        shutil.copy(f, folder / f.name)
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(tmp_path / "index"))
    assert cli("bench", ["--vs-recipe", str(folder), "--embedder", "hash"]) == 0
    out = capsys.readouterr().out
    assert "recipe" in out and "windows" in out and "ratio project/recipe" in out and "clauses/s" in out
    assert not (tmp_path / "index").exists()  # the build went to a temporary folder
