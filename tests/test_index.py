"""Index stage: save/load, manifest, staleness, atomic swap, embedding cache, approximate index."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.corpus import corpus_hash
from assistant.embed import HashEmbedder
from assistant.backends.local import PolicyIndex, read_manifest
from assistant.index import build_corpus, require_current, stale_reason
from assistant.schema import IndexMissingError, StaleIndexError


def test_build_writes_readable_directory(hash_settings):
    d = hash_settings.index_dir
    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"] == "hash-256" and manifest["dim"] == 256
    assert manifest["counts"] == {"documents": 5, "clauses": 162}
    assert manifest["corpus_hash"] == corpus_hash(hash_settings.corpus_dir)
    assert {"faiss-cpu", "bm25s", "jieba"} <= set(manifest["versions"])
    lines = (d / "clauses.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 162
    first = json.loads(lines[0])
    assert {"clause_id", "doc_id", "doc_title", "region", "section", "text", "department"} <= set(first)
    assert "蓟州" in lines[0]  # ensure_ascii=False: the file is readable Chinese
    assert (d / "dense.faiss").exists() and (d / "bm25").is_dir()


def test_roundtrip(hash_settings, hash_embedder):
    index = PolicyIndex.load(hash_settings.index_dir)
    assert len(index) == 162
    c = index.get("jizhou-2018#三.(五).2")
    assert c is not None and c.facts and any(f.text == "150万元" for f in c.facts)
    vec = hash_embedder.encode([c.index_text()])[0]
    row, score = index.dense_search(vec, 1)[0]
    assert index.clauses[row].clause_id == c.clause_id and score > 0.99


def test_missing_or_invalid_manifest_never_loads(tmp_path):
    with pytest.raises(IndexMissingError):
        PolicyIndex.load(tmp_path / "nothing")
    half = tmp_path / "half"
    half.mkdir()
    (half / "clauses.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(IndexMissingError):
        PolicyIndex.load(half)
    (half / "manifest.json").write_text("{broken", encoding="utf-8")
    assert read_manifest(half) is None


def test_staleness(hash_settings):
    s = hash_settings
    h = corpus_hash(s.corpus_dir)
    assert stale_reason(s.index_dir, h, "hash-256", s.chunk_max_chars) is None
    assert stale_reason(s.index_dir, h, "m3e-small", s.chunk_max_chars).startswith("model changed")
    assert stale_reason(s.index_dir, h, "hash-256", 300) == "chunking settings changed"
    import assistant.index as index_mod

    original = index_mod.pipeline_hash
    index_mod.pipeline_hash = lambda: "different"
    try:
        assert stale_reason(s.index_dir, h, "hash-256", s.chunk_max_chars) == "chunking or tokenizer code changed"
    finally:
        index_mod.pipeline_hash = original
    (s.corpus_dir / "new.txt").write_text("一、目标\n新增文件。", encoding="utf-8")
    assert stale_reason(s.index_dir, corpus_hash(s.corpus_dir), "hash-256", s.chunk_max_chars) == "corpus changed"
    with pytest.raises(StaleIndexError, match="corpus changed"):
        require_current(s.index_dir, corpus_hash(s.corpus_dir), "hash-256", s.chunk_max_chars)


def test_rebuild_reuses_unchanged_vectors(hash_settings):
    s = hash_settings
    emb = HashEmbedder(256)
    reason, stats, _ = build_corpus(s.corpus_dir, s.index_dir, emb, s.chunk_max_chars)
    assert reason is None and stats is None  # current: nothing to do
    src = s.corpus_dir / "001_974b9f2b4195c5d8.txt"
    src.write_text(src.read_text(encoding="utf-8").replace("26家", "27家"), encoding="utf-8")
    reason, stats, _ = build_corpus(s.corpus_dir, s.index_dir, emb, s.chunk_max_chars)
    assert reason == "corpus changed"
    assert stats.clauses == 162 and stats.embedded == 1  # only the edited clause is embedded again


def test_crashed_build_keeps_old_index(hash_settings, monkeypatch):
    s = hash_settings
    before = (s.index_dir / "manifest.json").read_text(encoding="utf-8")
    import bm25s

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bm25s.BM25, "save", boom)  # fails half-way through writing the new index
    with pytest.raises(RuntimeError, match="disk full"):
        build_corpus(s.corpus_dir, s.index_dir, HashEmbedder(256), s.chunk_max_chars, force=True)
    monkeypatch.undo()
    assert (s.index_dir / "manifest.json").read_text(encoding="utf-8") == before
    assert len(PolicyIndex.load(s.index_dir)) == 162
    assert not [p for p in s.index_dir.parent.iterdir() if p.name.startswith(".index.tmp")]


def test_approximate_index_above_threshold(seed_clauses, tmp_path):
    emb = HashEmbedder(64)
    index, stats = PolicyIndex.from_clauses(seed_clauses, emb, ann_threshold=50)
    assert stats.dense_index == "hnsw" and index.manifest["dense_index"] == "hnsw"
    exact, _ = PolicyIndex.from_clauses(seed_clauses, emb, ann_threshold=10_000)
    q = emb.encode(["首次获批的国家高新技术企业奖励"])[0]
    top_a = [r for r, _ in index.dense_search(q, 5)]
    top_e = [r for r, _ in exact.dense_search(q, 5)]
    assert len(set(top_a) & set(top_e)) >= 4
    index.save(tmp_path / "ann")
    loaded = PolicyIndex.load(tmp_path / "ann")
    assert [r for r, _ in loaded.dense_search(q, 5)] == top_a
    allowed = np.array([i for i, c in enumerate(seed_clauses) if c.doc_id == "baodi-2019"])
    assert all(seed_clauses[r].doc_id == "baodi-2019" for r, _ in loaded.dense_search(q, 5, allowed))
